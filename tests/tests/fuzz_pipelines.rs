//! The pipeline fuzzer, and the regressions it found.
//!
//! Mutated pipeline files go through the real `host validate` and, for a
//! bounded share of those that validate, `host run --duration 1 --no-watch`.
//! Whatever the file, the host must answer, never crash: no panic (exit 101
//! or "panicked at" on stderr), no death by a signal (an abort, a stack
//! overflow, SIGSEGV), no hang (a process still running after its timeout
//! is killed and counts as one), and an invalid file (exit 2) is answered
//! with errors that each name the file at `line:column`.
//!
//! Seeds: the files in `pipelines/`, the corpus in `tests/fuzz/corpus/`
//! (among them each file that found a bug), and a few generated here
//! because they are large (a 4000-stage chain, a 70,000-character id).
//! Mutations change, remove, add and duplicate keys and stages, put edge
//! values in (0, -1, 2^31, 2^32, 2^63 - 1, integers past 64 bits, 1e308,
//! nan, inf, very long strings), rewire and swap inputs, swap stage kinds,
//! and cut or splice the text at any byte. Every `path` is rewritten into
//! the case's scratch directory, which is also the host's working
//! directory, so sinks never write into the repository.
//!
//! Cost: each host invocation copies and probes every plugin (the fuzzer
//! hands it copies stripped of debug info: 0.3 s instead of 0.8). By
//! default 160 cases are validated and up to 16 of them run, on 2 workers:
//! under a minute on a 2-core machine. `HSP_FUZZ_CASES=N` (or
//! `PROPTEST_CASES`) sets the number of cases (runs: up to one in ten),
//! `HSP_FUZZ_JOBS` the workers,
//! `HSP_FUZZ_SEED` the random seed (a number; fixed by default so CI is
//! reproducible) and `HSP_FUZZ_KEEP_GOING=1` records every failure instead
//! of stopping at the first (no shrinking), for long exploratory runs:
//!
//! ```sh
//! HSP_FUZZ_CASES=2000 HSP_FUZZ_KEEP_GOING=1 cargo test -p hsp-tests --test fuzz_pipelines -- --nocapture fuzz
//! ```

use hsp_tests::{built_plugins_dir, host_binary, scratch_dir, workspace_root};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use toml::{Table, Value};

/// Cases validated by default, and the share of them also run.
const DEFAULT_CASES: usize = 160;
const RUNS_PER_CASE: usize = 10;

/// A `host validate` still running after this is a hang.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(20);
/// A `host run --duration 1` still running after this is a hang (it stops
/// its sources after 1 s; draining and a stuck stage's watchdog take a few
/// more).
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// The memory limit the fuzzer runs the host under, in MiB: mutated files
/// may ask for pools of gigabytes, which validation would accept on a large
/// machine and the runs would then allocate.
const MEMORY_LIMIT_MB: &str = "1024";

/// More output than this from one invocation is a failure (an error
/// message that grows with the file, quadratically, say).
const MAX_OUTPUT: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Running the host.

/// The built plugins without their debug info, made once per test binary.
///
/// Every host invocation copies each plugin to a private path and probes
/// it; the debug builds' debug info makes that copy most of an
/// invocation's cost (0.8 s against 0.3 s stripped, on 2 cores). The code
/// is the same. Falls back to plain copies where `strip` is missing.
fn plugins_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let built = built_plugins_dir();
        let dir = scratch_dir("fuzz-plugins");
        let suffix = format!(".{}", std::env::consts::DLL_EXTENSION);
        for entry in std::fs::read_dir(&built).expect("read the plugins dir") {
            let path = entry.expect("dir entry").path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !(name.starts_with("lib") && name.ends_with(&suffix)) {
                continue;
            }
            let copy = dir.join(name);
            let stripped = Command::new("strip")
                .arg("--strip-debug")
                .arg("-o")
                .arg(&copy)
                .arg(&path)
                .status()
                .is_ok_and(|s| s.success());
            if !stripped {
                std::fs::copy(&path, &copy).expect("copy a plugin");
            }
        }
        dir
    })
}

/// How one host invocation ended.
struct Outcome {
    /// `None`: it did not exit within its timeout and was killed.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    /// Bytes it wrote in all (only the first [`MAX_OUTPUT`] are kept).
    output_bytes: usize,
}

/// Runs `host ARGS` with `--plugins` set to the built plugins, in `cwd`,
/// killing it (and the probe processes it started) after `timeout`.
fn run_host(args: &[OsString], cwd: &Path, timeout: Duration) -> Outcome {
    let mut child = Command::new(host_binary())
        .arg("--plugins")
        .arg(plugins_dir())
        .args(args)
        .current_dir(cwd)
        .env_remove("HSP_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .env("HSP_MEMORY_LIMIT_MB", MEMORY_LIMIT_MB)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a hang can be killed with its children.
        .process_group(0)
        .spawn()
        .expect("run host");
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut pipe = pipe.expect("piped");
            let mut kept = Vec::new();
            let _ = (&mut pipe).take(MAX_OUTPUT as u64).read_to_end(&mut kept);
            let rest = std::io::copy(&mut pipe, &mut std::io::sink()).unwrap_or(0);
            let total = kept.len() + rest as usize;
            (String::from_utf8_lossy(&kept).into_owned(), total)
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("wait for host") {
            Some(status) => break Some(status),
            None if started.elapsed() > timeout => {
                let group = format!("-{}", child.id());
                let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let (stdout, out_bytes) = stdout.join().expect("stdout reader");
    let (stderr, err_bytes) = stderr.join().expect("stderr reader");
    Outcome {
        status,
        stdout,
        stderr,
        output_bytes: out_bytes + err_bytes,
    }
}

/// The fuzzer's verdict on one invocation: `Err` says what went wrong.
fn check(what: &str, file: &str, timeout: Duration, outcome: &Outcome) -> Result<(), String> {
    let fail = |why: String| {
        Err(format!(
            "`host {what}`: {why}\nstderr:\n{}",
            tail(&outcome.stderr)
        ))
    };
    let Some(status) = outcome.status else {
        return fail(format!("still running after {timeout:?}: a hang"));
    };
    if let Some(signal) = status.signal() {
        return fail(format!("killed by signal {signal}"));
    }
    if status.code() == Some(101) || outcome.stderr.contains("panicked at") {
        return fail(format!("panicked (exit {status})"));
    }
    if outcome.output_bytes > MAX_OUTPUT {
        return fail(format!("wrote {} bytes of output", outcome.output_bytes));
    }
    match status.code() {
        Some(0 | 1) => Ok(()),
        Some(2) => {
            let mut located = 0;
            for line in outcome.stderr.lines() {
                let Some(rest) = line.strip_prefix(file) else {
                    continue;
                };
                if !has_line_and_column(rest) {
                    return fail(format!("an error without line:column: {line}"));
                }
                located += 1;
            }
            if located == 0 {
                return fail("exit 2 without an error at FILE:LINE:COLUMN".into());
            }
            Ok(())
        }
        _ => fail(format!("unexpected {status}")),
    }
}

/// `rest` (what follows the file name) starts with `:LINE:COL: `.
fn has_line_and_column(rest: &str) -> bool {
    let mut parts = rest.splitn(4, ':');
    let number =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    parts.next() == Some("")
        && number(parts.next())
        && number(parts.next())
        && parts.next().is_some_and(|p| p.starts_with(' '))
}

/// The end of a long text, for messages.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(20);
    lines[from..]
        .iter()
        .map(|l| {
            let cut: String = l.chars().take(300).collect();
            if cut.len() < l.len() {
                format!("{cut}…")
            } else {
                cut
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// Seeds.

/// One starting file.
struct Seed {
    name: String,
    text: String,
}

/// A chain of `n` stages after a synth source: `kind` x (n - 2), then a
/// `null_sink`.
fn chain(n: usize, kind: &str) -> String {
    let mut text = String::from(
        "[[stage]]\nid = \"s0\"\nplugin = \"synth\"\n[stage.config]\nduration_s = 0.5\nrealtime = false\n",
    );
    for i in 1..n - 1 {
        text.push_str(&format!(
            "[[stage]]\nid = \"s{i}\"\nplugin = \"{kind}\"\ninputs = [\"s{}\"]\n",
            i - 1
        ));
    }
    text.push_str(&format!(
        "[[stage]]\nid = \"sink\"\nplugin = \"null_sink\"\ninputs = [\"s{}\"]\n",
        n - 2
    ));
    text
}

/// A synth feeding a sink, the synth's id `id`.
fn with_id(id: &str) -> String {
    format!(
        "[[stage]]\nid = \"{id}\"\nplugin = \"synth\"\n[stage.config]\nduration_s = 0.5\n\n[[stage]]\nid = \"out\"\nplugin = \"null_sink\"\ninputs = [\"{id}\"]\n"
    )
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn seeds() -> Vec<Seed> {
    let root = workspace_root();
    let mut seeds: Vec<Seed> = toml_files(&root.join("pipelines"))
        .into_iter()
        .chain(toml_files(&root.join("tests/fuzz/corpus")))
        .map(|path| Seed {
            name: path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string(),
            text: std::fs::read_to_string(&path).expect("read seed"),
        })
        .collect();
    for (name, text) in [
        ("generated: 4000-stage chain", chain(4000, "passthrough")),
        ("generated: 257-stage chain", chain(257, "gain")),
        (
            "generated: 70,000-character id",
            with_id(&"i".repeat(70_000)),
        ),
    ] {
        seeds.push(Seed {
            name: name.to_string(),
            text,
        });
    }
    seeds
}

// ---------------------------------------------------------------------------
// Mutations.

/// A value put into a file.
#[derive(Debug, Clone)]
enum Edge {
    Int(i64),
    /// An integer TOML can write but `i64` cannot hold, or another literal
    /// written as is.
    Raw(&'static str),
    Float(f64),
    /// `text` repeated `times`.
    Repeat(&'static str, usize),
    Bool(bool),
    Floats(Vec<f64>),
    EmptyTable,
}

const RAW: &[&str] = &[
    "18446744073709551616",
    "-9223372036854775809",
    "99999999999999999999999999999999999999999",
    "0x7fffffffffffffff",
    "1e309",
    "-0.0",
    "1979-05-27T07:32:00Z",
];

fn edge() -> impl Strategy<Value = Edge> {
    let ints = [
        0,
        -1,
        1,
        2,
        7,
        255,
        256,
        1024,
        1025,
        65_535,
        65_536,
        1 << 20,
        (1 << 20) + 1,
        1 << 31,
        1 << 32,
        i64::MAX,
        i64::MIN,
    ];
    let floats = [
        0.0,
        -1.0,
        0.5,
        1e-300,
        5e-324,
        1e308,
        -1e308,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        250.0,
        4294967296.0,
    ];
    let strings: [(&'static str, usize); 9] = [
        ("", 1),
        ("a", 65),
        ("i", 70_000),
        ("é", 40_000),
        ("x", 300),
        ("../", 20),
        ("a b", 1),
        ("\u{0}", 1),
        ("lowpass", 1),
    ];
    prop_oneof![
        4 => prop::sample::select(ints.to_vec()).prop_map(Edge::Int),
        1 => prop::sample::select(RAW.to_vec()).prop_map(Edge::Raw),
        3 => prop::sample::select(floats.to_vec()).prop_map(Edge::Float),
        2 => prop::sample::select(strings.to_vec()).prop_map(|(s, n)| Edge::Repeat(s, n)),
        1 => any::<bool>().prop_map(Edge::Bool),
        1 => prop::collection::vec(prop::sample::select(floats.to_vec()), 0..4).prop_map(Edge::Floats),
        1 => Just(Edge::EmptyTable),
    ]
}

/// Keys the mutations add: every setting and every shipped stage kind's
/// config key (but `panic_at_packet`, which injects a panic on purpose).
const KEYS: &[&str] = &[
    "name",
    "pool_size",
    "idle",
    "data_plane_threads",
    "memory_limit_mb",
    "id",
    "plugin",
    "stage_type",
    "inputs",
    "queue",
    "on_error",
    "config",
    "capacity",
    "policy",
    "decimate",
    "channels",
    "sample_rate_hz",
    "duration_s",
    "realtime",
    "block_size",
    "seed",
    "samples",
    "stream_id",
    "type",
    "cutoff_hz",
    "order",
    "size",
    "hop",
    "window",
    "scale",
    "relative",
    "edges_hz",
    "path",
    "channel_names",
    "flush_every",
    "level",
    "hysteresis",
    "channel",
    "feature",
    "label",
    "target",
    "key",
    "rise_value",
    "fall_value",
    "rise_code",
    "fall_code",
    "gain",
    "finish_after",
    "packets",
];

/// Stage kinds a mutation may switch a stage to.
const KINDS: &[&str] = &[
    "synth",
    "counter_source",
    "iir",
    "fft",
    "bandpower",
    "gain",
    "passthrough",
    "null_sink",
    "csv_sink",
    "threshold",
    "jsonl_sink",
    "param_switch",
    "nope",
];

/// Text spliced into a file.
const SNIPPETS: &[&[u8]] = &[
    b"\n[[stage]]\n",
    b"\"",
    b"[",
    b"]",
    b"=",
    b"\n",
    b"\r",
    b"{",
    b"#",
    b"'''",
    b"\\",
    b"\0",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\nid = \"dup\"\n",
    b"\n[pipeline]\n",
    b"\ninputs = [\"eeg\"]\n",
    b"\n[stage.config]\n",
];

/// Ordinary values of each type, for [`Mutation::Tweak`].
const INTS: &[i64] = &[1, 2, 3, 4, 5, 8, 16, 32, 64, 100, 128, 256, 1000];
const FLOATS: &[f64] = &[
    0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 13.0, 40.0, 100.0, 124.0, 250.0, 1000.0,
];
const WORDS: &[&str] = &[
    "lowpass",
    "highpass",
    "bandpass",
    "bandstop",
    "notch",
    "hann",
    "rect",
    "power",
    "magnitude",
    "block",
    "drop_oldest",
    "spin",
    "yield",
    "park",
    "stop",
    "restart",
    "bypass",
    "control",
    "data_plane",
    "eeg",
    "bands",
    "display",
    "cutoff_hz",
    "gain",
    "Fz,Cz",
    "x.csv",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Give the `at`-th value another ordinary value of the same type
    /// (`pick` chooses it): files that stay valid more often, and run.
    Tweak {
        at: usize,
        pick: usize,
    },
    /// Replace the `at`-th value (any depth) with `value`.
    Set {
        at: usize,
        value: Edge,
    },
    /// Remove the `at`-th key.
    Remove {
        at: usize,
    },
    /// Add key `KEYS[key]` to the `table`-th table.
    Add {
        table: usize,
        key: usize,
        value: Edge,
    },
    /// Make a stage another kind.
    Kind {
        stage: usize,
        kind: usize,
    },
    /// Make a stage read (only) another one: may make cycles and self-loops.
    Rewire {
        stage: usize,
        from: usize,
    },
    /// Give a stage one more input.
    AddInput {
        stage: usize,
        from: usize,
    },
    /// Swap two stages' inputs.
    SwapInputs {
        a: usize,
        b: usize,
    },
    DuplicateStage {
        stage: usize,
    },
    RemoveStage {
        stage: usize,
    },
    /// Cut the text at a byte (of the serialized file).
    Truncate {
        at: usize,
    },
    /// Splice `SNIPPETS[snippet]` in at a byte.
    Insert {
        at: usize,
        snippet: usize,
    },
    DuplicateLine {
        at: usize,
    },
    DeleteLine {
        at: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let n = any::<usize>;
    prop_oneof![
        8 => (n(), n()).prop_map(|(at, pick)| Mutation::Tweak { at, pick }),
        5 => (n(), edge()).prop_map(|(at, value)| Mutation::Set { at, value }),
        2 => n().prop_map(|at| Mutation::Remove { at }),
        3 => (n(), 0..KEYS.len(), edge()).prop_map(|(table, key, value)| Mutation::Add { table, key, value }),
        2 => (n(), 0..KINDS.len()).prop_map(|(stage, kind)| Mutation::Kind { stage, kind }),
        2 => (n(), n()).prop_map(|(stage, from)| Mutation::Rewire { stage, from }),
        1 => (n(), n()).prop_map(|(stage, from)| Mutation::AddInput { stage, from }),
        1 => (n(), n()).prop_map(|(a, b)| Mutation::SwapInputs { a, b }),
        1 => n().prop_map(|stage| Mutation::DuplicateStage { stage }),
        1 => n().prop_map(|stage| Mutation::RemoveStage { stage }),
        1 => n().prop_map(|at| Mutation::Truncate { at }),
        2 => (n(), 0..SNIPPETS.len()).prop_map(|(at, snippet)| Mutation::Insert { at, snippet }),
        1 => n().prop_map(|at| Mutation::DuplicateLine { at }),
        1 => n().prop_map(|at| Mutation::DeleteLine { at }),
    ]
}

/// One fuzz case: a seed, what is done to it, and whether to run it too
/// (when it validates).
#[derive(Debug, Clone)]
struct Case {
    seed: usize,
    mutations: Vec<Mutation>,
    run: bool,
}

/// Cases start from one of the first `examples` seeds (the shipped
/// pipelines, which are valid) more often than from the others.
fn case(seeds: usize, examples: usize) -> impl Strategy<Value = Case> {
    (
        prop_oneof![3 => 0..examples.max(1), 2 => 0..seeds],
        // Some cases only tweak values, so that more of them validate and
        // run; the rest mix every kind of mutation.
        prop_oneof![
            2 => prop::collection::vec(
                (any::<usize>(), any::<usize>()).prop_map(|(at, pick)| Mutation::Tweak { at, pick }),
                1..3,
            ),
            3 => prop::collection::vec(mutation(), 1..4),
        ],
        prop::bool::weighted(0.5),
    )
        .prop_map(|(seed, mutations, run)| Case {
            seed,
            mutations,
            run,
        })
}

/// A step into a TOML document.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every value's path, depth first, each with whether it is a table.
fn value_paths(table: &Table) -> Vec<(Vec<Step>, bool)> {
    fn walk(value: &Value, path: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, bool)>) {
        out.push((path.clone(), value.is_table()));
        match value {
            Value::Table(table) => {
                for (key, value) in table {
                    path.push(Step::Key(key.clone()));
                    walk(value, path, out);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (i, value) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    walk(value, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (key, value) in table {
        let mut path = vec![Step::Key(key.clone())];
        walk(value, &mut path, &mut out);
    }
    out
}

fn value_at<'a>(table: &'a mut Table, path: &[Step]) -> Option<&'a mut Value> {
    let (Step::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let mut value = table.get_mut(first)?;
    for step in rest {
        value = match (value, step) {
            (Value::Table(t), Step::Key(k)) => t.get_mut(k)?,
            (Value::Array(a), Step::Index(i)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// The file's `[[stage]]` tables.
fn stages(table: &mut Table) -> Option<&mut Vec<Value>> {
    match table.get_mut("stage") {
        Some(Value::Array(items)) if !items.is_empty() => Some(items),
        _ => None,
    }
}

fn stage_id(stage: &Value) -> String {
    stage
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("nope")
        .to_string()
}

/// Applies a structural mutation; raw literals it puts in are recorded in
/// `raw` and written as `"@@RAW<n>@@"` placeholders.
fn mutate(table: &mut Table, mutation: &Mutation, raw: &mut Vec<&'static str>) {
    let mut value_of = |edge: &Edge| -> Value {
        match edge {
            Edge::Int(i) => Value::Integer(*i),
            Edge::Raw(text) => {
                raw.push(text);
                Value::String(format!("@@RAW{}@@", raw.len() - 1))
            }
            Edge::Float(f) => Value::Float(*f),
            Edge::Repeat(s, n) => Value::String(s.repeat(*n)),
            Edge::Bool(b) => Value::Boolean(*b),
            Edge::Floats(items) => Value::Array(items.iter().map(|f| Value::Float(*f)).collect()),
            Edge::EmptyTable => Value::Table(Table::new()),
        }
    };
    match mutation {
        Mutation::Tweak { at, pick } => {
            let paths = value_paths(table);
            let slot = paths
                .get(at % paths.len().max(1))
                .and_then(|(path, _)| value_at(table, path));
            if let Some(slot) = slot {
                let new = match slot {
                    Value::Integer(_) => Value::Integer(INTS[pick % INTS.len()]),
                    Value::Float(_) => Value::Float(FLOATS[pick % FLOATS.len()]),
                    Value::String(_) => Value::String(WORDS[pick % WORDS.len()].into()),
                    Value::Boolean(b) => Value::Boolean(!*b),
                    Value::Array(items) if items.iter().all(|v| v.is_float() || v.is_integer()) => {
                        let low = FLOATS[pick % FLOATS.len()];
                        let high = FLOATS[(pick / FLOATS.len()) % FLOATS.len()];
                        Value::Array(match pick % 3 {
                            0 => vec![Value::Float(low)],
                            _ => vec![Value::Float(low), Value::Float(high)],
                        })
                    }
                    _ => return,
                };
                *slot = new;
            }
        }
        Mutation::Set { at, value } => {
            let paths = value_paths(table);
            if let Some((path, _)) = paths.get(at % paths.len().max(1)) {
                let new = value_of(value);
                if let Some(slot) = value_at(table, path) {
                    *slot = new;
                }
            }
        }
        Mutation::Remove { at } => {
            let paths: Vec<Vec<Step>> = value_paths(table)
                .into_iter()
                .map(|(p, _)| p)
                .filter(|p| matches!(p.last(), Some(Step::Key(_))))
                .collect();
            let Some(path) = paths.get(at % paths.len().max(1)) else {
                return;
            };
            let Some((Step::Key(key), parent)) = path.split_last() else {
                return;
            };
            if parent.is_empty() {
                table.remove(key);
            } else if let Some(Value::Table(t)) = value_at(table, parent) {
                t.remove(key);
            }
        }
        Mutation::Add {
            table: which,
            key,
            value,
        } => {
            let mut tables: Vec<Vec<Step>> = value_paths(table)
                .into_iter()
                .filter_map(|(p, is_table)| is_table.then_some(p))
                .collect();
            tables.push(Vec::new());
            let path = &tables[which % tables.len()];
            let new = value_of(value);
            let target = if path.is_empty() {
                Some(&mut *table)
            } else {
                match value_at(table, path) {
                    Some(Value::Table(t)) => Some(t),
                    _ => None,
                }
            };
            if let Some(t) = target {
                t.insert(KEYS[*key].to_string(), new);
            }
        }
        Mutation::Kind { stage, kind } => {
            if let Some(items) = stages(table) {
                let n = items.len();
                if let Some(Value::Table(t)) = items.get_mut(stage % n) {
                    t.insert("plugin".into(), Value::String(KINDS[*kind].into()));
                }
            }
        }
        Mutation::Rewire { stage, from } | Mutation::AddInput { stage, from } => {
            let add = matches!(mutation, Mutation::AddInput { .. });
            if let Some(items) = stages(table) {
                let n = items.len();
                let id = stage_id(&items[from % n]);
                if let Some(Value::Table(t)) = items.get_mut(stage % n) {
                    let mut inputs = match (add, t.get("inputs")) {
                        (true, Some(Value::Array(existing))) => existing.clone(),
                        _ => Vec::new(),
                    };
                    inputs.push(Value::String(id));
                    t.insert("inputs".into(), Value::Array(inputs));
                }
            }
        }
        Mutation::SwapInputs { a, b } => {
            if let Some(items) = stages(table) {
                let n = items.len();
                let (a, b) = (a % n, b % n);
                let take = |v: &mut Value| v.as_table_mut().and_then(|t| t.remove("inputs"));
                let (ia, ib) = (take(&mut items[a]), take(&mut items[b]));
                for (index, inputs) in [(a, ib), (b, ia)] {
                    if let (Some(Value::Table(t)), Some(inputs)) = (items.get_mut(index), inputs) {
                        t.insert("inputs".into(), inputs);
                    }
                }
            }
        }
        Mutation::DuplicateStage { stage } => {
            if let Some(items) = stages(table) {
                let copy = items[stage % items.len()].clone();
                items.push(copy);
            }
        }
        Mutation::RemoveStage { stage } => {
            if let Some(items) = stages(table) {
                let n = items.len();
                items.remove(stage % n);
            }
        }
        Mutation::Truncate { .. }
        | Mutation::Insert { .. }
        | Mutation::DuplicateLine { .. }
        | Mutation::DeleteLine { .. } => {}
    }
}

/// Applies a text mutation.
fn mutate_text(text: &mut Vec<u8>, mutation: &Mutation) {
    let lines = |text: &[u8]| -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let mut start = 0;
        for (i, b) in text.iter().enumerate() {
            if *b == b'\n' {
                spans.push((start, i + 1));
                start = i + 1;
            }
        }
        if start < text.len() {
            spans.push((start, text.len()));
        }
        spans
    };
    match mutation {
        Mutation::Truncate { at } => text.truncate(at % (text.len() + 1)),
        Mutation::Insert { at, snippet } => {
            let at = at % (text.len() + 1);
            text.splice(at..at, SNIPPETS[*snippet].iter().copied());
        }
        Mutation::DuplicateLine { at } => {
            let spans = lines(text);
            if let Some(&(start, end)) = spans.get(at % spans.len().max(1)) {
                let line = text[start..end].to_vec();
                text.splice(end..end, line);
            }
        }
        Mutation::DeleteLine { at } => {
            let spans = lines(text);
            if let Some(&(start, end)) = spans.get(at % spans.len().max(1)) {
                text.drain(start..end);
            }
        }
        _ => {}
    }
}

/// Points every `path` string into `dir` (keeping a sanitized name).
fn confine_paths(value: &mut Value, dir: &Path) {
    match value {
        Value::Table(table) => {
            for (key, value) in table.iter_mut() {
                match value {
                    Value::String(path) if key == "path" && !path.is_empty() => {
                        let name: String = path
                            .chars()
                            .map(|c| if c == '/' || c == '\0' { '_' } else { c })
                            .collect();
                        *path = dir.join(format!("out-{name}")).display().to_string();
                    }
                    other => confine_paths(other, dir),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| confine_paths(v, dir)),
        _ => {}
    }
}

/// The file a case makes from its seed, with paths confined to `dir`.
fn build(seed: &Seed, case: &Case, dir: &Path) -> Vec<u8> {
    let mut text = match seed.text.parse::<Table>() {
        Ok(mut table) => {
            let mut raw = Vec::new();
            for mutation in &case.mutations {
                mutate(&mut table, mutation, &mut raw);
            }
            let mut root = Value::Table(table);
            confine_paths(&mut root, dir);
            let Value::Table(table) = root else {
                unreachable!()
            };
            let mut text = toml::to_string(&table).unwrap_or_else(|_| seed.text.clone());
            for (i, literal) in raw.iter().enumerate() {
                text = text.replace(&format!("\"@@RAW{i}@@\""), literal);
            }
            text
        }
        // A seed that is not TOML (or not a table) gets text mutations only.
        Err(_) => seed.text.clone(),
    }
    .into_bytes();
    for mutation in &case.mutations {
        mutate_text(&mut text, mutation);
    }
    text
}

// ---------------------------------------------------------------------------
// The fuzzer.

#[derive(Default)]
struct Tally {
    cases: AtomicUsize,
    valid: AtomicUsize,
    invalid: AtomicUsize,
    runs: AtomicUsize,
    runs_ok: AtomicUsize,
    runs_failed: AtomicUsize,
    runs_invalid: AtomicUsize,
    /// Runs' error lines (the file name taken out), with how often.
    run_errors: Mutex<BTreeMap<String, usize>>,
    failures: Mutex<Vec<String>>,
}

struct Fuzzer {
    seeds: Vec<Seed>,
    /// How many of the seeds are the shipped examples (they come first).
    examples: usize,
    scratch: PathBuf,
    max_runs: usize,
    tally: Tally,
    next_dir: AtomicUsize,
    /// Keep every case's directory, not only the failing ones'.
    keep_files: bool,
}

impl Fuzzer {
    /// Runs one case; `Err` is a failure, with the file that shows it.
    fn case(&self, case: &Case) -> Result<(), String> {
        let seed = &self.seeds[case.seed];
        let dir = self.scratch.join(format!(
            "case-{}",
            self.next_dir.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("case dir");
        let path = dir.join("case.toml");
        let text = build(seed, case, &dir);
        std::fs::write(&path, &text).expect("write case");
        let file = path.display().to_string();
        let tally = &self.tally;
        tally.cases.fetch_add(1, Ordering::Relaxed);

        let validate = run_host(
            &["validate".into(), path.clone().into()],
            &dir,
            VALIDATE_TIMEOUT,
        );
        let mut result = check("validate", &file, VALIDATE_TIMEOUT, &validate);
        let valid = validate.status.and_then(|s| s.code()) == Some(0);
        let counter = if valid { &tally.valid } else { &tally.invalid };
        counter.fetch_add(1, Ordering::Relaxed);
        // Counts every case that would run; only the first `max_runs` do.
        if result.is_ok()
            && valid
            && case.run
            && tally.runs.fetch_add(1, Ordering::Relaxed) < self.max_runs
        {
            let args: Vec<OsString> = vec![
                "run".into(),
                path.clone().into(),
                "--duration".into(),
                "1".into(),
                "--no-watch".into(),
            ];
            let run = run_host(&args, &dir, RUN_TIMEOUT);
            result = check("run --duration 1 --no-watch", &file, RUN_TIMEOUT, &run);
            match run.status.and_then(|s| s.code()) {
                Some(0) => tally.runs_ok.fetch_add(1, Ordering::Relaxed),
                Some(2) => tally.runs_invalid.fetch_add(1, Ordering::Relaxed),
                _ => tally.runs_failed.fetch_add(1, Ordering::Relaxed),
            };
            let mut errors = tally.run_errors.lock().unwrap();
            for line in run
                .stderr
                .lines()
                .filter(|l| l.contains("error:") || l.contains(" ERROR "))
            {
                let line = line.replace(&file, "FILE");
                // Log lines start with a timestamp: keep what follows.
                let line = match line.find(" ERROR ") {
                    Some(at) => line[at + 1..].to_string(),
                    None => line,
                };
                *errors.entry(line.chars().take(200).collect()).or_default() += 1;
            }
        }
        match result {
            Ok(()) => {
                if !self.keep_files {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                Ok(())
            }
            Err(why) => Err(format!(
                "{why}\nseed: {}\nfile (kept): {file}\ncase: {case:?}",
                seed.name
            )),
        }
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn fuzz_mutated_pipelines_never_crash_hang_or_lose_their_place() {
    let cases = env_number("HSP_FUZZ_CASES")
        .or_else(|| env_number("PROPTEST_CASES"))
        .map_or(DEFAULT_CASES, |n| n as usize);
    let jobs = env_number("HSP_FUZZ_JOBS").map_or(2, |n| n.max(1) as usize);
    let seed = env_number("HSP_FUZZ_SEED").unwrap_or(0x4853_5046_555a_5a31);
    let keep_going = std::env::var_os("HSP_FUZZ_KEEP_GOING").is_some_and(|v| v != "0");
    host_binary();
    let fuzzer = Fuzzer {
        examples: toml_files(&workspace_root().join("pipelines")).len(),
        seeds: seeds(),
        scratch: scratch_dir("fuzz"),
        max_runs: cases / RUNS_PER_CASE,
        tally: Tally::default(),
        next_dir: AtomicUsize::new(0),
        keep_files: std::env::var_os("HSP_FUZZ_KEEP_FILES").is_some_and(|v| v != "0"),
    };
    let started = Instant::now();
    std::thread::scope(|scope| {
        for job in 0..jobs {
            let fuzzer = &fuzzer;
            let share = cases / jobs + usize::from(job < cases % jobs);
            scope.spawn(move || {
                let config = Config {
                    cases: share as u32,
                    max_shrink_iters: if keep_going { 0 } else { 48 },
                    failure_persistence: None,
                    ..Config::default()
                };
                let mut key = [0u8; 32];
                key[..8].copy_from_slice(&seed.to_le_bytes());
                key[8..16].copy_from_slice(&(job as u64).to_le_bytes());
                let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
                let mut runner = TestRunner::new_with_rng(config, rng);
                let strategy = case(fuzzer.seeds.len(), fuzzer.examples);
                let result = runner.run(&strategy, |case| match fuzzer.case(&case) {
                    Ok(()) => Ok(()),
                    Err(why) if keep_going => {
                        fuzzer.tally.failures.lock().unwrap().push(why);
                        Ok(())
                    }
                    Err(why) => Err(TestCaseError::fail(why)),
                });
                match result {
                    Ok(()) => {}
                    Err(TestError::Fail(why, minimal)) => {
                        fuzzer
                            .tally
                            .failures
                            .lock()
                            .unwrap()
                            .push(format!("{why}\nminimal case: {minimal:?}"));
                    }
                    Err(TestError::Abort(why)) => {
                        fuzzer.tally.failures.lock().unwrap().push(why.to_string())
                    }
                }
            });
        }
    });
    let tally = &fuzzer.tally;
    let load = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    let runs = load(&tally.runs).min(fuzzer.max_runs);
    eprintln!(
        "fuzz: {} cases in {:.1} s on {jobs} workers ({} seeds): {} valid, {} invalid; {runs} runs: {} ok, {} failed (exit 1), {} refused (exit 2)",
        load(&tally.cases),
        started.elapsed().as_secs_f64(),
        fuzzer.seeds.len(),
        load(&tally.valid),
        load(&tally.invalid),
        load(&tally.runs_ok),
        load(&tally.runs_failed),
        load(&tally.runs_invalid),
    );
    for (line, count) in tally.run_errors.lock().unwrap().iter() {
        eprintln!("  {count:4} x {line}");
    }
    let failures = tally.failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// What the fuzzer found (issue item 12), each checked end to end.

/// Writes `text` as `NAME.toml` in a fresh scratch dir; the file's path.
fn write_case(name: &str, text: &str) -> (PathBuf, String) {
    let dir = scratch_dir(&format!("fuzz-{name}"));
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write pipeline");
    let file = path.display().to_string();
    (path, file)
}

/// `host ARGS` on `path` (validate or run), with the environment `env`
/// added and `HSP_MEMORY_LIMIT_MB` unset unless `env` sets it.
fn host_on(args: &[&str], path: &Path, env: &[(&str, &str)]) -> Outcome {
    let dir = path.parent().expect("in a dir");
    let mut command = Command::new(host_binary());
    command
        .arg("--plugins")
        .arg(plugins_dir())
        .args(args)
        .arg(path)
        .current_dir(dir)
        .env_remove("HSP_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .env_remove("HSP_MEMORY_LIMIT_MB");
    if args.first() == Some(&"run") {
        command.args(["--duration", "1", "--no-watch"]);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run host");
    Outcome {
        status: Some(output.status),
        output_bytes: output.stdout.len() + output.stderr.len(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Asserts `outcome` is a refusal (exit 2) with an error at
/// `file:line:col` whose message contains each of `needles`; returns that
/// line and the next (its hint, if any).
fn assert_refused(
    outcome: &Outcome,
    file: &str,
    (line, col): (usize, usize),
    needles: &[&str],
) -> String {
    assert_eq!(
        outcome.status.and_then(|s| s.code()),
        Some(2),
        "stdout:\n{}\nstderr:\n{}",
        tail(&outcome.stdout),
        tail(&outcome.stderr)
    );
    let prefix = format!("{file}:{line}:{col}: error: ");
    let lines: Vec<&str> = outcome.stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&prefix) && needles.iter().all(|n| l.contains(n)))
        .unwrap_or_else(|| {
            panic!(
                "no `{prefix}` error with {needles:?} in:\n{}",
                tail(&outcome.stderr)
            )
        });
    format!("{}\n{}", lines[at], lines.get(at + 1).unwrap_or(&""))
}

#[test]
fn a_pool_too_large_to_allocate_is_refused_at_pool_size_not_aborted() {
    // 2^20 packets of 1024 channels x 32 samples: ~128 GiB.
    let text =
        std::fs::read_to_string(workspace_root().join("tests/fuzz/corpus/pool_2pow20_1024ch.toml"))
            .expect("corpus file");
    let (path, file) = write_case("huge-pool", &text);
    let line = text
        .lines()
        .position(|l| l.starts_with("pool_size"))
        .expect("pool_size")
        + 1;
    for args in [&["validate"][..], &["run"]] {
        let outcome = host_on(args, &path, &[]);
        let error = assert_refused(
            &outcome,
            &file,
            (line, 13),
            &[
                "the pipeline would preallocate about 128.",
                "GiB for its packets, more than the default limit of",
            ],
        );
        assert!(
            error.contains("hint: stage `eeg` (`synth`) takes the most, 128.")
                && error.contains("an output pool of 1048576 packets of 128.")
                && error.contains("lower `pool_size`, or raise the limit with `memory_limit_mb` in `[pipeline]` or HSP_MEMORY_LIMIT_MB (in MiB)"),
            "{error}"
        );
    }
}

#[test]
fn the_memory_limit_comes_from_the_file_or_the_environment() {
    // 64 pools' worth of 64 ch x 1000 samples (256 KiB a packet): ~16 MiB.
    let pipeline = "[[stage]]\nid = \"eeg\"\nplugin = \"synth\"\n[stage.config]\nchannels = 64\nblock_size = 1000\n\n[[stage]]\nid = \"out\"\nplugin = \"null_sink\"\ninputs = [\"eeg\"]\n";
    let (path, file) = write_case("memory-limit", pipeline);
    let ok = host_on(&["validate"], &path, &[]);
    assert_eq!(ok.status.and_then(|s| s.code()), Some(0), "{}", ok.stderr);
    let ok = host_on(&["validate"], &path, &[("HSP_MEMORY_LIMIT_MB", "64")]);
    assert_eq!(ok.status.and_then(|s| s.code()), Some(0), "{}", ok.stderr);

    let refused = host_on(&["validate"], &path, &[("HSP_MEMORY_LIMIT_MB", "8")]);
    assert_refused(
        &refused,
        &file,
        (1, 1),
        &[
            "the pipeline would preallocate about 15.",
            "MiB for its packets, more than the limit of 8.0 MiB set by HSP_MEMORY_LIMIT_MB",
        ],
    );
    let bad = host_on(&["validate"], &path, &[("HSP_MEMORY_LIMIT_MB", "lots")]);
    assert_refused(
        &bad,
        &file,
        (1, 1),
        &["HSP_MEMORY_LIMIT_MB=\"lots\" is not a memory limit: give a whole number of MiB, from 1"],
    );

    // The file's own key wins over the environment.
    let (path, file) = write_case(
        "memory-limit-key",
        &format!("[pipeline]\nmemory_limit_mb = 8\n\n{pipeline}"),
    );
    let refused = host_on(&["validate"], &path, &[("HSP_MEMORY_LIMIT_MB", "100000")]);
    assert_refused(
        &refused,
        &file,
        (4, 1),
        &["more than the file's `memory_limit_mb` of 8.0 MiB"],
    );
}

#[test]
fn a_chain_deeper_than_the_data_plane_can_hand_down_is_refused_not_overflowed() {
    // 257 data-plane stages: one past the limit.
    let (path, file) = write_case("deep-chain", &chain(257, "passthrough"));
    let line = 7 + 4 * 255 + 3; // the sink's `inputs`
    for args in [&["validate"][..], &["run"]] {
        let outcome = host_on(args, &path, &[]);
        assert_refused(
            &outcome,
            &file,
            (line, 11),
            &[
                "stage `sink` is the 257th data-plane stage of a chain: a chain may have at most 256",
            ],
        );
    }
    // 4000 stages (it overflowed the data-plane thread's stack): refused at
    // the first stage past the count limit, quickly, with one error.
    let (path, file) = write_case("long-chain", &chain(4000, "passthrough"));
    for args in [&["validate"][..], &["run"]] {
        let outcome = host_on(args, &path, &[]);
        assert_refused(
            &outcome,
            &file,
            (7 + 4 * 1023, 1),
            &["the pipeline has 4000 stages, more than the 1024 a pipeline may have"],
        );
        assert_eq!(
            outcome.stderr.matches(": error: ").count(),
            1,
            "{}",
            tail(&outcome.stderr)
        );
    }
    // The longest allowed chain runs.
    let (path, _) = write_case("deepest-chain", &chain(256, "passthrough"));
    let outcome = host_on(&["run"], &path, &[]);
    assert_eq!(
        outcome.status.and_then(|s| s.code()),
        Some(0),
        "{}",
        tail(&outcome.stderr)
    );
}

#[test]
fn an_index_no_packet_can_have_is_refused_at_validation_at_its_key() {
    let text = std::fs::read_to_string(
        workspace_root().join("tests/fuzz/corpus/threshold_channel_2pow32.toml"),
    )
    .expect("corpus file");
    let (path, file) = write_case("threshold-channel", &text);
    let line = text
        .lines()
        .position(|l| l.starts_with("channel ="))
        .expect("channel")
        + 1;
    for args in [&["validate"][..], &["run"]] {
        let outcome = host_on(args, &path, &[]);
        assert_refused(
            &outcome,
            &file,
            (line, 1),
            &[
                "stage `high` (`threshold`): config key `channel`: invalid value: integer `4294967296`, expected u32",
            ],
        );
    }
    // The same for a feature index.
    let text = text.replace("channel = 4294967296", "feature = 4294967296");
    let (path, file) = write_case("threshold-feature", &text);
    let outcome = host_on(&["validate"], &path, &[]);
    assert_refused(
        &outcome,
        &file,
        (line, 1),
        &["config key `feature`", "expected u32"],
    );
}

#[test]
fn a_70000_character_id_is_an_error_at_the_id_not_a_panic() {
    let (path, file) = write_case("long-id", &with_id(&"i".repeat(70_000)));
    for args in [&["validate"][..], &["run"]] {
        let outcome = host_on(args, &path, &[]);
        let error = assert_refused(
            &outcome,
            &file,
            (2, 6),
            &["is 70000 characters long, more than the 64 an id may have"],
        );
        assert!(
            !outcome.stderr.contains("panicked"),
            "{}",
            tail(&outcome.stderr)
        );
        // Every message shows the id cut short.
        assert!(
            outcome.stderr.lines().all(|l| l.chars().count() < 400),
            "{}",
            tail(&outcome.stderr)
        );
        assert!(error.contains(&format!("`{}…`", "i".repeat(64))), "{error}");
    }
    // 64 characters are fine, and print whole.
    let id = "i".repeat(64);
    let (path, _) = write_case("longest-id", &with_id(&id));
    let outcome = host_on(&["validate"], &path, &[]);
    assert_eq!(
        outcome.status.and_then(|s| s.code()),
        Some(0),
        "{}",
        outcome.stderr
    );
    assert!(outcome.stdout.contains(&id), "{}", outcome.stdout);
}

#[test]
fn a_thousand_misspelt_inputs_are_answered_in_seconds() {
    // 1024 stages with 64-character ids, each reading one that is not
    // there: looking for a typo of each among all ids took ten minutes.
    let id = |i: usize, salt: &str| format!("{i:04}{salt}{}", "q".repeat(59));
    let text: String = (0..1024)
        .map(|i| {
            format!(
                "[[stage]]\nid = \"{}\"\nplugin = \"gain\"\ninputs = [\"{}\"]\n",
                id(i, "a"),
                id(i, "b")
            )
        })
        .collect();
    let (path, file) = write_case("misspelt-inputs", &text);
    // Not a speed check: a bound a hundred times what it takes, that the
    // quadratic search (ten minutes) could never meet.
    let (done, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(host_on(&["validate"], &path, &[]));
    });
    let outcome = answer
        .recv_timeout(Duration::from_secs(120))
        .expect("validate answers within 120 s");
    assert_refused(
        &outcome,
        &file,
        (4, 11),
        &["stage `0000a", "reads from `0000b"],
    );
    assert_eq!(outcome.stderr.matches(": error: ").count(), 1024);
}

#[test]
fn the_corpus_files_are_answered_without_a_crash() {
    // Each seed once, unmutated: the corpus doubles as a regression suite.
    let dir = scratch_dir("fuzz-corpus");
    for seed in seeds() {
        let path = dir.join("seed.toml");
        let mut root = match seed.text.parse::<Table>() {
            Ok(table) => Value::Table(table),
            Err(_) => {
                std::fs::write(&path, &seed.text).expect("write seed");
                let file = path.display().to_string();
                let outcome = run_host(
                    &["validate".into(), path.clone().into()],
                    &dir,
                    VALIDATE_TIMEOUT,
                );
                check("validate", &file, VALIDATE_TIMEOUT, &outcome)
                    .unwrap_or_else(|why| panic!("{}: {why}", seed.name));
                continue;
            }
        };
        confine_paths(&mut root, &dir);
        std::fs::write(&path, toml::to_string(&root).expect("serialize")).expect("write seed");
        let file = path.display().to_string();
        let outcome = run_host(
            &["validate".into(), path.clone().into()],
            &dir,
            VALIDATE_TIMEOUT,
        );
        check("validate", &file, VALIDATE_TIMEOUT, &outcome)
            .unwrap_or_else(|why| panic!("{}: {why}", seed.name));
    }
}
