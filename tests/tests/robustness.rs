//! Defects found by trying to break the host, as a hostile and as a clumsy
//! user would, each with the test that caught it: plugin files are code
//! and only trusted ones run; nothing the pipeline accepted is lost to a
//! signal, a closed terminal or a broken stderr; a stage that hangs, lags
//! or emits the wrong shape is named and contained.

use hsp_tests::{LiveHost, fixture_library, host_binary, scratch_dir, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

/// Replaces `name` in `dir` the way editors save: a temporary file renamed
/// over it, so the watcher never sees it half-written.
fn save(dir: &Path, name: &str, text: &str) {
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, text).expect("write temporary");
    std::fs::rename(&temporary, dir.join(name)).expect("rename over");
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

fn csv_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// The `out` column of a stage's row in the stats table.
fn packets_out(report: &str, stage: &str) -> u64 {
    let row = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(stage))
        .unwrap_or_else(|| panic!("no stats row for `{stage}` in:\n{report}"));
    row.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// A live (wall-clock paced) 8-channel source at 250 Hz in blocks of 25
/// samples, endless unless `duration_s` is given, into a CSV file `out.csv`.
fn live_to_csv(extra_stage: &str, duration_s: Option<f64>) -> String {
    let duration = duration_s.map_or(String::new(), |s| format!("duration_s = {s}\n"));
    let input = if extra_stage.is_empty() {
        "eeg"
    } else {
        "middle"
    };
    format!(
        r#"[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
channels = 8
sample_rate_hz = 250.0
block_size = 25
{duration}
{extra_stage}
[[stage]]
id = "out"
plugin = "csv_sink"
inputs = ["{input}"]
[stage.config]
path = "out.csv"
"#
    )
}

/// `host plugins list` with `args`, from `dir`, with a clean environment.
fn plugins_list(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(host_binary())
        .args(["plugins", "list"])
        .args(args)
        .current_dir(dir)
        .env_remove("HSP_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .output()
        .expect("run host")
}

fn tagger_dir(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    chmod(&plugins, 0o755);
    let library = plugins.join(format!("libtagger.{}", std::env::consts::DLL_EXTENSION));
    std::fs::copy(fixture_library("tagger"), &library).expect("install tagger");
    chmod(&library, 0o755);
    plugins
}

/// Whether `plugins list` shows the tagger among the loaded plugins.
fn loads_tagger(output: &std::process::Output) -> bool {
    stdout(output).lines().any(|l| l.starts_with("tagger "))
}

/// Waits until the CSV sink has written at least one data row.
fn wait_for_rows(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(path).map_or(0, |t| t.lines().count()) < 2 {
        assert!(Instant::now() < deadline, "no rows in {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn shadow_copies_live_in_a_fresh_private_directory_that_a_hangup_removes() {
    let dir = scratch_dir("shadow-private");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    chmod(&tmp, 0o1777);
    let pipeline = write(&dir, "live.toml", &live_to_csv("", None));
    let mut command = Command::new(host_binary());
    command
        .args(["run", "live.toml", "--no-watch"])
        .current_dir(&dir)
        .env("TMPDIR", &tmp)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("HSP_PLUGIN_PATH")
        .env_remove("RUST_LOG");
    let host = LiveHost::spawn(command);
    host.wait_for(&format!(
        "running {}",
        pipeline.file_name().unwrap().to_str().unwrap()
    ));
    let shadows: Vec<PathBuf> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let log = host.log();
    assert_eq!(shadows.len(), 1, "one shadow directory: {shadows:?}\n{log}");
    let shadow = &shadows[0];
    let name = shadow.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("hsp-shadow-"), "{name}");
    assert_ne!(
        name,
        format!("hsp-shadow-{}", host.pid()),
        "the name must not be predictable from the pid"
    );
    assert_eq!(mode(shadow), 0o700, "private to the host's user");
    let left: Vec<_> = std::fs::read_dir(shadow).unwrap().collect();
    assert!(
        left.is_empty(),
        "copies are unlinked once mapped: {left:?}\n{log}"
    );

    // A closed terminal drains like SIGTERM, and the directory goes.
    wait_for_rows(&dir.join("out.csv"));
    host.signal("HUP");
    let (code, log) = host.finish();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("SIGHUP: stopping the sources and draining"),
        "{log}"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "{left:?}\n{log}");
    let rows = csv_lines(&dir.join("out.csv")).len() as u64 - 1;
    assert_eq!(rows, packets_out(&log, "eeg") * 25, "{log}");
    assert!(rows > 0, "{log}");
}

#[test]
fn sigusr1_prints_the_table_and_the_run_goes_on_and_sigquit_drains() {
    let dir = scratch_dir("sigusr1");
    write(&dir, "live.toml", &live_to_csv("", None));
    let host = LiveHost::run(&dir, Path::new("live.toml"), &[], &["--no-watch"]);
    host.wait_for("running live.toml");
    wait_for_rows(&dir.join("out.csv"));
    host.signal("USR1");
    host.wait_for("pipeline `");
    assert!(
        !host.log().contains("stopping the sources"),
        "{}",
        host.log()
    );
    host.signal("QUIT");
    let (code, log) = host.finish();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("SIGQUIT: stopping the sources and draining"),
        "{log}"
    );
    let rows = csv_lines(&dir.join("out.csv")).len() as u64 - 1;
    assert_eq!(rows, packets_out(&log, "eeg") * 25, "{log}");
}

#[test]
fn plugin_files_others_could_have_written_are_refused_unless_allowed() {
    let dir = scratch_dir("trust");
    let plugins = tagger_dir(&dir);
    let library = plugins.join(format!("libtagger.{}", std::env::consts::DLL_EXTENSION));
    let args = ["--plugins", "plugins"];

    let output = plugins_list(&dir, &args);
    assert!(output.status.success());
    assert!(loads_tagger(&output), "{}", stdout(&output));

    chmod(&plugins, 0o777);
    let output = plugins_list(&dir, &args);
    let text = stdout(&output);
    assert!(!loads_tagger(&output), "{text}");
    assert!(
        text.contains("refused: the directory is writable by others"),
        "{text}"
    );
    assert!(text.contains("--allow-insecure-plugins"), "{text}");
    let output = plugins_list(&dir, &["--plugins", "plugins", "--allow-insecure-plugins"]);
    assert!(loads_tagger(&output), "{}", stdout(&output));
    chmod(&plugins, 0o755);

    chmod(&library, 0o666);
    let output = plugins_list(&dir, &args);
    assert!(!loads_tagger(&output), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("refused: the file is writable by others"),
        "{}",
        stdout(&output)
    );
    chmod(&library, 0o755);

    std::fs::remove_file(&library).unwrap();
    std::os::unix::fs::symlink(fixture_library("tagger"), &library).unwrap();
    let output = plugins_list(&dir, &args);
    assert!(!loads_tagger(&output), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("is a symbolic link"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn the_current_directorys_plugins_are_not_run_unless_named() {
    let dir = scratch_dir("cwd-plugins");
    tagger_dir(&dir);
    let output = plugins_list(&dir, &[]);
    assert!(output.status.success());
    assert!(!loads_tagger(&output), "{}", stdout(&output));
    let output = plugins_list(&dir, &["--plugins", "plugins"]);
    assert!(loads_tagger(&output), "{}", stdout(&output));
}

#[test]
fn validate_names_the_plugin_files_a_pipeline_would_run() {
    let dir = scratch_dir("validate-files");
    let pipeline = write(&dir, "live.toml", &live_to_csv("", Some(1.0)));
    let output = Command::new(host_binary())
        .arg("validate")
        .arg(&pipeline)
        .env_remove("HSP_PLUGIN_PATH")
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(text.contains("plugin files loaded for it:"), "{text}");
    let synth = format!("libhsp_synth.{} (synth)", std::env::consts::DLL_EXTENSION);
    assert!(text.contains(&synth), "{text}");
}

#[test]
fn a_library_whose_constructor_hangs_is_timed_out_and_its_probe_dies_with_the_host() {
    let dir = scratch_dir("probe-timeout");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    chmod(&plugins, 0o755);
    let library = plugins.join(format!("libhang.{}", std::env::consts::DLL_EXTENSION));
    std::fs::copy(fixture_library("hang_on_load"), &library).unwrap();

    let output = Command::new(host_binary())
        .args(["plugins", "list", "--plugins", "plugins"])
        .current_dir(&dir)
        .env("HSP_PROBE_TIMEOUT_S", "2")
        .env_remove("HSP_PLUGIN_PATH")
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(
            "libhang.so: loading it did not finish within 2 s in a probe process (killed)"
        ),
        "{text}"
    );
    assert!(text.contains("hsp-synth"), "the other plugins load: {text}");
    assert!(probes_of(&dir).is_empty(), "the probe was killed");

    // A host killed while its probe hangs leaves no probe behind.
    let mut host = Command::new(host_binary())
        .args(["plugins", "list", "--plugins", "plugins"])
        .current_dir(&dir)
        .env("HSP_PROBE_TIMEOUT_S", "600")
        .env_remove("HSP_PLUGIN_PATH")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while probes_of(&dir).is_empty() {
        assert!(Instant::now() < deadline, "no probe ever started");
        std::thread::sleep(Duration::from_millis(20));
    }
    host.kill().unwrap();
    host.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !probes_of(&dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the probe outlived its host: {:?}",
            probes_of(&dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Probe processes for a library in `dir` (from `/proc`).
fn probes_of(dir: &Path) -> Vec<u32> {
    let needle = dir.join("plugins").display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("__probe-plugin") && cmdline.contains(&needle)
        })
        .collect()
}

#[test]
fn a_touched_library_in_a_relative_plugin_dir_is_reloaded_once() {
    let dir = scratch_dir("relative-reload");
    let plugins = tagger_dir(&dir);
    let library = plugins.join(format!("libtagger.{}", std::env::consts::DLL_EXTENSION));
    write(&dir, "live.toml", &live_to_csv("", None));
    let host = LiveHost::run(&dir, Path::new("live.toml"), &[Path::new("plugins")], &[]);
    host.wait_for("watching");
    let file = std::fs::File::options().write(true).open(&library).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    host.wait_for(" loaded in ");
    // Whatever the watcher reports next (our own reads of the file among
    // it), the same bytes are never loaded twice: a broken save of the
    // pipeline is the marker that every earlier event was handled.
    save(&dir, "live.toml", "[[stage]\n");
    host.wait_for("error(s) in the new version");
    host.signal("INT");
    let (code, log) = host.finish();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(log.matches(" loaded in ").count(), 1, "{log}");
    assert!(!log.contains("already provided by"), "{log}");
    assert!(log.contains("left 1 library mapping(s) behind"), "{log}");
}

#[test]
fn reading_the_pipeline_file_is_not_a_save_and_a_broken_save_is_reported_once() {
    let dir = scratch_dir("no-self-trigger");
    let text = live_to_csv("", None);
    let pipeline = write(&dir, "live.toml", &text);
    let host = LiveHost::run(&dir, Path::new("live.toml"), &[], &[]);
    host.wait_for("watching");
    for _ in 0..5 {
        let _ = std::fs::read(&pipeline).unwrap();
    }
    save(&dir, "live.toml", "[[stage]\n");
    host.wait_for("error(s) in the new version");
    for _ in 0..5 {
        let _ = std::fs::read(&pipeline).unwrap();
    }
    // Back to the running text: a save, with nothing to apply.
    save(&dir, "live.toml", &text);
    host.wait_for("saved with no change to apply");
    host.signal("INT");
    let (code, log) = host.finish();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        log.matches("saved with no change to apply").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("error(s) in the new version").count(),
        1,
        "{log}"
    );
}

#[test]
fn a_sink_that_cannot_write_what_it_accepted_fails_the_run() {
    let dir = scratch_dir("dev-full");
    let text = live_to_csv("", Some(1.0))
        .replace("path = \"out.csv\"", "path = \"/dev/full\"")
        .replace("block_size = 25", "block_size = 25\nrealtime = false");
    write(&dir, "full.toml", &text);
    let host = LiveHost::run(&dir, Path::new("full.toml"), &[], &["--no-watch"]);
    let (code, log) = host.finish();
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("/dev/full"), "{log}");
}

#[test]
fn a_closed_stderr_loses_the_text_not_the_run() {
    let dir = scratch_dir("closed-stderr");
    let text =
        live_to_csv("", Some(4.0)).replace("block_size = 25", "block_size = 25\nrealtime = false");
    write(&dir, "finite.toml", &text);
    let mut child = Command::new(host_binary())
        .args(["run", "finite.toml", "--no-watch"])
        .current_dir(&dir)
        .env_remove("HSP_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // As `2>&1 | head -0` would: the reading end is gone before anything
    // is written.
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(csv_lines(&dir.join("out.csv")).len(), 1 + 1000);
}

#[test]
fn a_stage_stuck_in_a_call_is_named_and_the_run_still_ends() {
    let dir = scratch_dir("stuck-stage");
    let stuck = r#"
[[stage]]
id = "middle"
plugin = "passthrough"
inputs = ["eeg"]
[stage.config]
hang_at_packet = 3
"#;
    write(&dir, "stuck.toml", &live_to_csv(stuck, None));
    let host = LiveHost::run(
        &dir,
        Path::new("stuck.toml"),
        &[],
        &["--no-watch", "--watchdog", "1", "--duration", "1.5"],
    );
    let (code, log) = host.finish();
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("stage `middle` (passthrough) has not returned from a call for"),
        "{log}"
    );
    assert!(log.contains("could not drain"), "{log}");
}

#[test]
fn a_stage_that_emits_another_shape_than_declared_is_an_error_under_its_policy() {
    let dir = scratch_dir("misshapen");
    let shrinking = |on_error: &str| {
        format!(
            r#"
[[stage]]
id = "middle"
plugin = "passthrough"
inputs = ["eeg"]
on_error = "{on_error}"
[stage.config]
drop_channel_at_packet = 5
"#
        )
    };
    let finite = |extra: &str| {
        live_to_csv(extra, Some(4.0))
            .replace("block_size = 25", "block_size = 25\nrealtime = false")
    };

    write(&dir, "stop.toml", &finite(&shrinking("stop")));
    let (code, log) = LiveHost::run(&dir, Path::new("stop.toml"), &[], &["--no-watch"]).finish();
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("emitted a packet of 7 channel(s) x 25 value(s), but declared 8 x 25"),
        "{log}"
    );
    assert!(log.contains("stage `middle` (passthrough) failed"), "{log}");
    let lines = csv_lines(&dir.join("out.csv"));
    assert_eq!(
        lines.len(),
        1 + 4 * 25,
        "the blocks before the fault: {log}"
    );
    assert!(
        lines.iter().all(|l| l.split(',').count() == 9),
        "ragged CSV"
    );

    std::fs::remove_file(dir.join("out.csv")).unwrap();
    write(&dir, "bypass.toml", &finite(&shrinking("bypass")));
    let (code, log) = LiveHost::run(&dir, Path::new("bypass.toml"), &[], &["--no-watch"]).finish();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("middle: 36 packet(s) emitted with a shape other than declared"),
        "{log}"
    );
    let lines = csv_lines(&dir.join("out.csv"));
    assert_eq!(lines.len(), 1 + 1000, "{log}");
    assert!(
        lines.iter().all(|l| l.split(',').count() == 9),
        "ragged CSV"
    );
}

#[test]
fn a_live_source_held_back_by_a_slow_stage_says_how_far_behind_it_is() {
    let dir = scratch_dir("behind");
    let slow = r#"
[[stage]]
id = "middle"
plugin = "passthrough"
inputs = ["eeg"]
[stage.config]
sleep_ms = 150
"#;
    write(&dir, "slow.toml", &live_to_csv(slow, None));
    let (code, log) = LiveHost::run(
        &dir,
        Path::new("slow.toml"),
        &[],
        &["--no-watch", "--duration", "3"],
    )
    .finish();
    assert_eq!(code, Some(0), "{log}");
    // 100 ms blocks taking 150 ms each: after 3 s about 1 s of data is
    // still due; a loaded machine only makes it more.
    let line = log
        .lines()
        .find(|l| l.contains("source eeg:"))
        .unwrap_or_else(|| panic!("no pace line:\n{log}"));
    let behind: f64 = line
        .split("source eeg: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(behind > 0.4, "{line}");
    assert!(line.contains("due but not produced"), "{line}");
}

#[test]
fn durations_too_large_for_a_clock_are_input_errors_not_panics() {
    let dir = scratch_dir("huge-durations");
    write(&dir, "live.toml", &live_to_csv("", Some(1.0)));
    for flag in ["--watchdog", "--duration", "--stats-interval"] {
        let (code, log) = LiveHost::run(
            &dir,
            Path::new("live.toml"),
            &[],
            &["--no-watch", flag, "1e30"],
        )
        .finish();
        assert_eq!(code, Some(2), "{flag}: {log}");
        assert!(
            log.contains(&format!("{flag} must be a positive number of seconds")),
            "{log}"
        );
    }
    let output = Command::new(host_binary())
        .args(["plugins", "list"])
        .env("HSP_PROBE_TIMEOUT_S", "1e30")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("HSP_PROBE_TIMEOUT_S=\"1e30\" is not a positive number"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains("hsp-synth"), "{}", stdout(&output));
}
