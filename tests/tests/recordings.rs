//! Recordings in and out (`plugins/recording`), checked against the tools
//! labs use: files pyedflib ships are replayed and compared with what
//! pyedflib and edfio read; files hsp records are opened in pyedflib, edfio
//! and MNE. Bad files are refused at `host validate`, naming the byte.

use hsp_tests::{
    LiveHost, built_plugins_dir, host, python, run_python, scratch_dir, stderr, stdout,
};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A TOML string.
fn quoted(text: &str) -> String {
    format!("{text:?}")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

/// `host run PIPELINE` with the workspace's plugins; panics unless it
/// succeeds. Returns its standard error.
fn run(pipeline: &Path) -> String {
    let plugins = built_plugins_dir();
    let output = host(&[
        "--plugins",
        plugins.to_str().unwrap(),
        "run",
        pipeline.to_str().unwrap(),
    ]);
    let log = stderr(&output);
    assert!(
        output.status.success(),
        "{} failed:\n{log}",
        pipeline.display()
    );
    log
}

/// `host validate PIPELINE`: (success, stdout + stderr).
fn validate(pipeline: &Path) -> (bool, String) {
    let plugins = built_plugins_dir();
    let output = host(&[
        "--plugins",
        plugins.to_str().unwrap(),
        "validate",
        pipeline.to_str().unwrap(),
    ]);
    (
        output.status.success(),
        format!("{}{}", stdout(&output), stderr(&output)),
    )
}

/// Records `seconds` of synthetic EEG (4 channels, 250 Hz, a stimulus
/// marker every 0.7 s) to `file`, and what was sent to `file.csv` and
/// `file.events.csv`.
fn record_synthetic(dir: &Path, file: &str, seconds: f64) -> PathBuf {
    let path = dir.join(file);
    let pipeline = format!(
        r#"
[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
channels = 4
realtime = false
duration_s = {seconds}
stimulus_every_s = 0.7

[[stage]]
id = "rec"
plugin = "edf_sink"
inputs = ["eeg.signal", "eeg.events"]
[stage.config]
path = {path}

[[stage]]
id = "sent"
plugin = "csv_sink"
inputs = ["eeg.signal"]
[stage.config]
path = {reference}

[[stage]]
id = "markers"
plugin = "csv_sink"
inputs = ["eeg.events"]
[stage.config]
path = {events}
"#,
        path = quoted(path.to_str().unwrap()),
        reference = quoted(&format!("{}.csv", path.display())),
        events = quoted(&format!("{}.events.csv", path.display())),
    );
    run(&write(dir, &format!("{file}.toml"), &pipeline));
    path
}

/// A replay of `channels` of `file` to `out.csv`, its annotations to
/// `events.csv`, unpaced unless `realtime`.
fn replay_pipeline(
    file: &Path,
    channels: &[String],
    out: &Path,
    events: &Path,
    realtime: bool,
) -> String {
    let channels: Vec<String> = channels.iter().map(|c| quoted(c)).collect();
    format!(
        r#"
[[stage]]
id = "play"
plugin = "edf_source"
[stage.config]
path = {file}
channels = [{channels}]
realtime = {realtime}

[[stage]]
id = "samples"
plugin = "csv_sink"
inputs = ["play.signal"]
[stage.config]
path = {out}

[[stage]]
id = "annotations"
plugin = "csv_sink"
inputs = ["play.events"]
[stage.config]
path = {events}
"#,
        file = quoted(file.to_str().unwrap()),
        channels = channels.join(", "),
        out = quoted(out.to_str().unwrap()),
        events = quoted(events.to_str().unwrap()),
    )
}

/// pyedflib's sample files, from its installed package.
fn pyedflib_samples() -> Vec<PathBuf> {
    let dir = run_python_inline("import pyedflib, os; print(os.path.dirname(pyedflib.__file__))");
    let dir = PathBuf::from(dir.trim());
    let mut files = vec![dir.join("data/test_generator.edf")];
    let mut tests: Vec<PathBuf> = std::fs::read_dir(dir.join("tests/data"))
        .expect("pyedflib's tests/data")
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(OsStr::to_str), Some("edf" | "bdf")))
        .collect();
    tests.sort();
    files.extend(tests);
    assert!(
        files.len() >= 6,
        "pyedflib ships fewer sample files than expected: {files:?}"
    );
    files
}

fn run_python_inline(code: &str) -> String {
    let output = Command::new(python())
        .args(["-c", code])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The data signals of `file` grouped by sample rate, as pyedflib sees them.
fn rate_groups(file: &Path) -> Vec<Vec<String>> {
    let code = format!(
        "import pyedflib\nr = pyedflib.EdfReader({:?})\ngroups = {{}}\n\
         for i, label in enumerate(r.getSignalLabels()):\n    if label not in ('EDF Annotations', 'BDF Annotations'):\n        groups.setdefault(r.getSampleFrequency(i), []).append(label)\n\
         for labels in groups.values():\n    print('\\t'.join(labels))",
        file.to_str().unwrap()
    );
    run_python_inline(&code)
        .lines()
        .map(|line| line.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn pyedflib_sample_files_replay_with_the_values_labels_times_and_annotations_pyedflib_reads() {
    let dir = scratch_dir("recordings-pyedflib");
    for (n, file) in pyedflib_samples().iter().enumerate() {
        let mut csvs: Vec<PathBuf> = Vec::new();
        let events = dir.join(format!("{n}.events.csv"));
        for (g, labels) in rate_groups(file).iter().enumerate() {
            let out = dir.join(format!("{n}.{g}.csv"));
            let pipeline = replay_pipeline(file, labels, &out, &events, false);
            run(&write(&dir, &format!("{n}.{g}.toml"), &pipeline));
            csvs.push(out);
        }
        let mut args: Vec<&OsStr> = vec![OsStr::new("check-read"), file.as_os_str()];
        args.extend(csvs.iter().map(|p| p.as_os_str()));
        args.extend([OsStr::new("--events"), events.as_os_str()]);
        let verdict = run_python("edf_peers.py", &args);
        assert!(verdict.starts_with("ok"), "{}: {verdict}", file.display());
    }
}

#[test]
fn recordings_hsp_writes_open_in_pyedflib_edfio_and_mne_with_the_same_samples_and_annotations() {
    let dir = scratch_dir("recordings-written");
    for file in ["written.edf", "written.bdf"] {
        let path = record_synthetic(&dir, file, 5.3);
        let reference = PathBuf::from(format!("{}.csv", path.display()));
        let events = PathBuf::from(format!("{}.events.csv", path.display()));
        let verdict = run_python(
            "edf_peers.py",
            &[
                OsStr::new("check-written"),
                path.as_os_str(),
                reference.as_os_str(),
                events.as_os_str(),
            ],
        );
        let peers = if file.ends_with(".edf") {
            "in pyedflib, edfio and MNE"
        } else {
            "in pyedflib and MNE"
        };
        assert!(verdict.contains(peers), "{file}: {verdict}");
    }
}

#[test]
fn channels_at_several_rates_are_refused_naming_each_rate_and_a_selection_plays() {
    let bdf = pyedflib_samples()
        .into_iter()
        .find(|p| p.file_name() == Some(OsStr::new("test_generator.bdf")))
        .expect("pyedflib's test_generator.bdf");
    let dir = scratch_dir("recordings-rates");
    let out = dir.join("out.csv");
    let events = dir.join("events.csv");
    let (ok, text) = validate(&write(
        &dir,
        "all.toml",
        &replay_pipeline(&bdf, &[], &out, &events, false),
    ));
    assert!(!ok, "{text}");
    for expected in [
        "different sample rates",
        "1000 Hz: sine 5Hz",
        "800 Hz: square 13Hz",
        "channels = [",
        "test_generator.bdf",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    let picked = vec!["ramp 7Hz".to_string()];
    let (ok, text) = validate(&write(
        &dir,
        "one.toml",
        &replay_pipeline(&bdf, &picked, &out, &events, false),
    ));
    assert!(ok, "{text}");
    assert!(text.contains("1 ch x 32 samples @ 500 Hz"), "{text}");
}

/// `file` with `edit` applied to its bytes, at `dir/name`.
fn corrupted(dir: &Path, good: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(good).expect("read recording");
    edit(&mut bytes);
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write corrupted copy");
    path
}

#[test]
fn bad_recordings_are_refused_at_validate_naming_the_file_and_the_byte() {
    let dir = scratch_dir("recordings-bad");
    let good = record_synthetic(&dir, "good.edf", 3.0);
    // 4 channels + annotations: a 1536-byte header, 3 records of 1 s.
    let record = (4 * 250 + 60) * 2;
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        (dir.join("missing.edf"), vec!["missing.edf", "cannot open"]),
        (
            corrupted(&dir, &good, "empty.edf", |b| b.clear()),
            vec!["empty.edf", "the file is empty"],
        ),
        (
            corrupted(&dir, &good, "cut.edf", |b| b.truncate(1536 + record + 100)),
            vec![
                "cut.edf",
                "truncated",
                "byte 236 (number of data records) says 3 records",
                "in record 2 of 3",
            ],
        ),
        (
            corrupted(&dir, &good, "more.edf", |b| {
                b[236..244].copy_from_slice(b"9       ")
            }),
            vec!["more.edf", "says 9 records", "truncated"],
        ),
        (
            corrupted(&dir, &good, "fewer.edf", |b| {
                b[236..244].copy_from_slice(b"2       ")
            }),
            vec!["fewer.edf", "says 2 records", "the file holds 3"],
        ),
        (
            corrupted(&dir, &good, "size.edf", |b| {
                b[184..192].copy_from_slice(b"1024    ")
            }),
            vec![
                "size.edf",
                "byte 184 (header size)",
                "take a 1536-byte header",
            ],
        ),
        (
            corrupted(&dir, &good, "utf8.edf", |b| {
                b[8..10].copy_from_slice("é".as_bytes())
            }),
            vec![
                "utf8.edf",
                "byte 8 (patient identification)",
                "not printable ASCII",
            ],
        ),
        (
            corrupted(&dir, &good, "notedf.edf", |b| {
                b[0..8].copy_from_slice(b"PK\x03\x04abcd")
            }),
            vec!["notedf.edf", "byte 0 (version)", "not an EDF or BDF file"],
        ),
        (
            corrupted(&dir, &good, "label.edf", |b| b[256 + 16 * 4 + 2] = b'x'),
            vec![
                "label.edf",
                "byte 192 (reserved (EDF+C/EDF+D)): says EDF+C, but no signal is labelled `EDF Annotations`",
            ],
        ),
    ];
    for (file, expected) in cases {
        let pipeline = format!(
            "[[stage]]\nid = \"play\"\nplugin = \"edf_source\"\n[stage.config]\npath = {}\n\n\
             [[stage]]\nid = \"out\"\nplugin = \"null_sink\"\ninputs = [\"play.signal\"]\n",
            quoted(file.to_str().unwrap())
        );
        let (ok, text) = validate(&write(&dir, "bad.toml", &pipeline));
        assert!(!ok, "{} was accepted:\n{text}", file.display());
        for expected in expected {
            assert!(
                text.contains(expected),
                "{}: no {expected:?} in:\n{text}",
                file.display()
            );
        }
    }
}

/// Every output of one replay: the samples and annotations as CSV, the
/// filtered signal recorded again as BDF.
fn replay_everything(dir: &Path, file: &Path, tag: &str, realtime: bool) -> Vec<Vec<u8>> {
    let outputs = [
        dir.join(format!("{tag}.csv")),
        dir.join(format!("{tag}.events.csv")),
        dir.join(format!("{tag}.bdf")),
    ];
    let pipeline = format!(
        r#"
[[stage]]
id = "play"
plugin = "edf_source"
[stage.config]
path = {file}
realtime = {realtime}
block_size = 25

[[stage]]
id = "band"
plugin = "iir"
inputs = ["play.signal"]
[stage.config]
type = "bandpass"
cutoff_hz = [1.0, 40.0]

[[stage]]
id = "samples"
plugin = "csv_sink"
inputs = ["band"]
[stage.config]
path = {csv}

[[stage]]
id = "annotations"
plugin = "csv_sink"
inputs = ["play.events"]
[stage.config]
path = {events}

[[stage]]
id = "again"
plugin = "edf_sink"
inputs = ["band", "play.events"]
[stage.config]
path = {bdf}
"#,
        file = quoted(file.to_str().unwrap()),
        csv = quoted(outputs[0].to_str().unwrap()),
        events = quoted(outputs[1].to_str().unwrap()),
        bdf = quoted(outputs[2].to_str().unwrap()),
    );
    run(&write(dir, &format!("{tag}.toml"), &pipeline));
    outputs
        .iter()
        .map(|p| std::fs::read(p).expect("read output"))
        .collect()
}

#[test]
fn a_replay_is_byte_identical_run_twice_and_paced_or_not() {
    let dir = scratch_dir("recordings-determinism");
    let file = record_synthetic(&dir, "source.edf", 2.0);
    let first = replay_everything(&dir, &file, "first", false);
    let second = replay_everything(&dir, &file, "second", false);
    let paced = replay_everything(&dir, &file, "paced", true);
    assert!(first[0].len() > 10_000 && first[1].len() > 30 && first[2].len() > 3000);
    for (i, name) in ["samples", "annotations", "BDF"].iter().enumerate() {
        assert!(
            first[i] == second[i],
            "{name} differ between two unpaced runs"
        );
        assert!(
            first[i] == paced[i],
            "{name} differ between the unpaced and the paced run"
        );
    }
}

/// `file`'s record count field and its record count by size, given
/// `record_bytes` and a `header_bytes` header.
fn counts(file: &Path, header_bytes: usize, record_bytes: usize) -> (i64, usize, usize) {
    let bytes = std::fs::read(file).expect("read recording");
    let stated = std::str::from_utf8(&bytes[236..244])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let data = bytes.len() - header_bytes;
    (stated, data / record_bytes, data % record_bytes)
}

fn live_recording(dir: &Path, file: &Path) -> LiveHost {
    let pipeline = format!(
        r#"
[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
channels = 4
realtime = true

[[stage]]
id = "rec"
plugin = "edf_sink"
inputs = ["eeg.signal", "eeg.events"]
[stage.config]
path = {path}
record_s = 0.2
"#,
        path = quoted(file.to_str().unwrap())
    );
    let pipeline = write(dir, "live.toml", &pipeline);
    LiveHost::run(dir, &pipeline, &[&built_plugins_dir()], &[])
}

/// Waits until `file` holds at least `records` records.
fn wait_for_records(file: &Path, records: usize, record_bytes: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if std::fs::metadata(file).is_ok_and(|m| m.len() as usize >= 1536 + records * record_bytes)
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{} did not reach {records} records", file.display());
}

#[test]
fn an_interrupted_recording_is_whole_after_sigint_and_readable_after_sigkill() {
    let dir = scratch_dir("recordings-interrupted");
    // 4 channels x 50 samples + 60 annotation samples, 2 bytes each.
    let record = (4 * 50 + 60) * 2;
    let opens_in_pyedflib = |file: &Path| {
        run_python_inline(&format!(
            "import pyedflib\nr = pyedflib.EdfReader({:?})\nprint(r.datarecords_in_file)",
            file.to_str().unwrap()
        ))
        .trim()
        .parse::<usize>()
        .expect("a record count")
    };

    let file = dir.join("sigint.edf");
    let live = live_recording(&dir, &file);
    wait_for_records(&file, 5, record);
    live.signal("INT");
    let (code, log) = live.finish();
    assert_eq!(code, Some(0), "{log}");
    let (stated, whole, partial) = counts(&file, 1536, record);
    assert!(
        stated >= 5 && stated as usize == whole && partial == 0,
        "{stated} {whole} {partial}"
    );
    assert_eq!(opens_in_pyedflib(&file), whole);

    let file = dir.join("sigkill.edf");
    let live = live_recording(&dir, &file);
    wait_for_records(&file, 5, record);
    live.signal("KILL");
    let (code, _) = live.finish();
    assert_eq!(code, None, "SIGKILL ends it");
    let (stated, whole, partial) = counts(&file, 1536, record);
    assert!(
        stated >= 5 && stated as usize == whole && partial == 0,
        "{stated} {whole} {partial}"
    );
    assert_eq!(opens_in_pyedflib(&file), whole);
    let replay = format!(
        "[[stage]]\nid = \"play\"\nplugin = \"edf_source\"\n[stage.config]\npath = {}\nrealtime = false\n\n\
         [[stage]]\nid = \"out\"\nplugin = \"null_sink\"\ninputs = [\"play.signal\"]\n",
        quoted(file.to_str().unwrap())
    );
    run(&write(&dir, "replay.toml", &replay));
}

#[test]
fn a_replay_shows_a_progress_bar_on_a_terminal_and_nothing_elsewhere() {
    let dir = scratch_dir("recordings-progress");
    let file = record_synthetic(&dir, "long.edf", 120.0);
    let pipeline = format!(
        "[[stage]]\nid = \"play\"\nplugin = \"edf_source\"\n[stage.config]\npath = {}\nrealtime = false\nblock_size = 1\n\n\
         [[stage]]\nid = \"out\"\nplugin = \"null_sink\"\ninputs = [\"play.signal\"]\n",
        quoted(file.to_str().unwrap())
    );
    let pipeline = write(&dir, "progress.toml", &pipeline);
    let command = format!(
        "{} --plugins {} run {}",
        hsp_tests::host_binary().display(),
        built_plugins_dir().display(),
        pipeline.display()
    );
    // `script` gives the host a terminal and copies what it draws.
    let on_terminal = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("HSP_PLUGIN_PATH")
        .output()
        .expect("run script (util-linux)");
    let drawn = String::from_utf8_lossy(&on_terminal.stdout);
    assert!(on_terminal.status.success(), "{drawn}");
    assert!(
        drawn.contains("long.edf [") && drawn.contains("%"),
        "no progress bar on a terminal:\n{drawn}"
    );
    let piped = run(&pipeline);
    assert!(
        !piped.contains("long.edf [") && !piped.contains("eta"),
        "a progress bar without a terminal:\n{piped}"
    );
}

#[test]
fn csv_files_replay_and_bad_ones_are_refused_with_line_and_column() {
    let dir = scratch_dir("recordings-csv");
    let recorded = record_synthetic(&dir, "rec.edf", 2.0);
    let original = PathBuf::from(format!("{}.csv", recorded.display()));
    // csv_sink's own output replays to the same file: labels, units,
    // timestamps and values, with the rate from the timestamps.
    let copy = dir.join("copy.csv");
    let pipeline = format!(
        "[[stage]]\nid = \"play\"\nplugin = \"csv_source\"\n[stage.config]\npath = {}\nrealtime = false\n\n\
         [[stage]]\nid = \"out\"\nplugin = \"csv_sink\"\ninputs = [\"play\"]\n[stage.config]\npath = {}\n",
        quoted(original.to_str().unwrap()),
        quoted(copy.to_str().unwrap())
    );
    run(&write(&dir, "copy.toml", &pipeline));
    assert!(
        std::fs::read(&original).unwrap() == std::fs::read(&copy).unwrap(),
        "the replayed CSV differs"
    );

    let cases = [
        (
            "ragged.csv",
            "Fz,Cz\n1,2\n3\n",
            "ragged.csv:3:1: this row has 1 cells, the header has 2 columns",
        ),
        (
            "word.csv",
            "time_s,Fz,Cz\n0,1,2\n0.004,3,abc\n",
            "word.csv:3:9: expected a number in column \"Cz\", found \"abc\"",
        ),
        (
            "norate.csv",
            "Fz,Cz\n1,2\n3,4\n",
            "no sample rate: set `sample_rate_hz`",
        ),
        ("empty.csv", "", "empty.csv:1: the file is empty"),
    ];
    for (name, text, expected) in cases {
        let file = write(&dir, name, text);
        let pipeline = format!(
            "[[stage]]\nid = \"play\"\nplugin = \"csv_source\"\n[stage.config]\npath = {}\n\n\
             [[stage]]\nid = \"out\"\nplugin = \"null_sink\"\ninputs = [\"play\"]\n",
            quoted(file.to_str().unwrap())
        );
        let (ok, text) = validate(&write(&dir, "bad.toml", &pipeline));
        assert!(
            !ok && text.contains(expected),
            "{name}: no {expected:?} in:\n{text}"
        );
    }
}

#[test]
fn the_replay_example_filters_a_shipped_recording_into_csv_and_a_new_edf() {
    let root = hsp_tests::workspace_root();
    let sample = root.join("pipelines/data/eeg_sample.edf");
    let size = std::fs::metadata(&sample)
        .expect("the shipped recording")
        .len();
    assert!(
        size < 1 << 20,
        "the shipped recording is {size} bytes, over 1 MB"
    );
    let dir = scratch_dir("recordings-example");
    std::fs::create_dir_all(dir.join("pipelines/data")).unwrap();
    std::fs::copy(&sample, dir.join("pipelines/data/eeg_sample.edf")).unwrap();
    let plugins = built_plugins_dir();
    let output = Command::new(hsp_tests::host_binary())
        .args(["--plugins", plugins.to_str().unwrap(), "run"])
        .arg(root.join("pipelines/replay.toml"))
        .current_dir(&dir)
        .env_remove("HSP_PLUGIN_PATH")
        .output()
        .expect("run host");
    assert!(output.status.success(), "{}", stderr(&output));
    let csv = std::fs::read_to_string(dir.join("replay_bandpower.csv")).unwrap();
    assert!(
        csv.starts_with("timestamp_ns,Fz_delta,Fz_theta,Fz_alpha,"),
        "{}",
        &csv[..200]
    );
    assert!(csv.lines().count() > 100, "{} rows", csv.lines().count());
    let filtered = dir.join("replay_filtered.edf");
    let described = run_python_inline(&format!(
        "import pyedflib\nr = pyedflib.EdfReader({:?})\n\
         print(r.getSignalLabels()[:3], r.getPrefilter(0), len(r.readAnnotations()[0]), r.getFileDuration())",
        filtered.to_str().unwrap()
    ));
    // 60 s of 8 channels with a stimulus every 2 s (the first at 2 s);
    // the prefiltering now says what the pipeline did.
    assert_eq!(
        described.trim(),
        "['Fz', 'Cz', 'Pz'] HP:1Hz LP:40Hz N:50Hz 29 60.0",
        "{described}"
    );
}

#[test]
fn a_recorder_takes_its_events_port_or_leaves_it_unconnected() {
    let dir = scratch_dir("recordings-optional-port");
    let stage = |inputs: &str| {
        format!(
            "[[stage]]\nid = \"eeg\"\nplugin = \"synth\"\n[stage.config]\nduration_s = 1.0\nrealtime = false\n\n\
             [[stage]]\nid = \"rec\"\nplugin = \"edf_sink\"\n{inputs}\n[stage.config]\npath = {}\n",
            quoted(dir.join("rec.bdf").to_str().unwrap())
        )
    };
    let (ok, text) = validate(&write(
        &dir,
        "signal.toml",
        &stage("inputs = [\"eeg.signal\"]"),
    ));
    assert!(ok, "{text}");
    let (ok, text) = validate(&write(
        &dir,
        "both.toml",
        &stage("inputs = [\"eeg.signal\", \"eeg.events\"]"),
    ));
    assert!(ok, "{text}");
    let (ok, text) = validate(&write(&dir, "none.toml", &stage("")));
    assert!(!ok, "{text}");
    assert!(
        text.contains("takes 1 to 2 inputs (`signal`, `events` (optional))"),
        "{text}"
    );
    let inspect = host(&[
        "--plugins",
        built_plugins_dir().to_str().unwrap(),
        "plugins",
        "inspect",
        "edf_sink",
    ]);
    let text = stdout(&inspect);
    assert!(text.contains("`events`: event (optional)"), "{text}");
}
