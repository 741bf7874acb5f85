//! `host run`: every shipped pipeline runs to completion; samples produced
//! equal samples written; pools are full again; the data plane allocates
//! nothing in steady state; a faulty plugin never takes the host down.

use hsp_tests::{host_binary, scratch_dir, stderr, workspace_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run_in(dir: &Path, pipeline: &Path, extra: &[&str]) -> Output {
    Command::new(host_binary())
        .arg("run")
        .arg(pipeline)
        .args(extra)
        .current_dir(dir)
        .env_remove("HSP_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .output()
        .expect("run host")
}

/// The `in` and `out` columns of a stage's row in the stats table.
fn counts(report: &str, stage: &str) -> (u64, u64) {
    let row = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(stage))
        .unwrap_or_else(|| panic!("no stats row for `{stage}` in:\n{report}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    (cells[2].parse().unwrap(), cells[3].parse().unwrap())
}

fn csv_rows(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().count() - 1
}

fn write_pipeline(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_clean_end(report: &str) {
    for line in report
        .lines()
        .filter(|l| l.trim_start().starts_with("pool "))
    {
        let fraction = line.split_whitespace().nth(2).unwrap();
        let (free, capacity) = fraction.split_once('/').unwrap();
        assert_eq!(
            free, capacity,
            "every pool is full again at the end: {line}"
        );
    }
    assert!(!report.contains("did not return"), "{report}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn every_shipped_pipeline_runs_to_completion() {
    let pipelines = workspace_root().join("pipelines");
    let mut ran = 0;
    for entry in std::fs::read_dir(&pipelines).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let dir = scratch_dir(&format!(
            "pipeline-{}",
            path.file_stem().unwrap().to_string_lossy()
        ));
        // Pipelines name their inputs from the repository root.
        copy_dir(&pipelines.join("data"), &dir.join("pipelines/data"));
        // Finite pipelines end by themselves well within this; live
        // (endless, paced) ones are stopped by it, as Ctrl-C would.
        let output = run_in(&dir, &path, &["--duration", "3"]);
        let report = stderr(&output);
        assert!(output.status.success(), "{}:\n{report}", path.display());
        assert_clean_end(&report);
        ran += 1;
    }
    assert!(ran >= 3, "expected the shipped pipelines, found {ran}");
}

#[test]
fn samples_produced_equal_samples_written() {
    let dir = scratch_dir("samples-count");
    let pipeline = write_pipeline(
        &dir,
        "count.toml",
        r#"
[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
channels = 4
block_size = 32
samples = 10007          # not a multiple of the block: the last block is short
realtime = false

[[stage]]
id = "filter"
plugin = "iir"
inputs = ["eeg"]
queue = { capacity = 2 } # tiny queue: backpressure all the way
[stage.config]
type = "lowpass"
cutoff_hz = [30.0]

[[stage]]
id = "out"
plugin = "csv_sink"
inputs = ["filter"]
[stage.config]
path = "out.csv"
"#,
    );
    let output = run_in(&dir, &pipeline, &[]);
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    let (_, produced) = counts(&report, "eeg");
    let (consumed, _) = counts(&report, "out");
    assert_eq!(produced, 10007_u64.div_ceil(32));
    assert_eq!(consumed, produced, "{report}");
    assert_eq!(csv_rows(&dir.join("out.csv")), 10007);
    assert_clean_end(&report);
}

#[test]
fn the_data_plane_allocates_nothing_in_steady_state() {
    let dir = scratch_dir("zero-alloc");
    let output = run_in(
        &dir,
        &workspace_root().join("pipelines/alpha_power.toml"),
        &[],
    );
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    // Its CSV names each column by channel and band.
    let csv = std::fs::read_to_string(dir.join("alpha_power.csv")).unwrap();
    assert!(
        csv.starts_with("timestamp_ns,Fz_delta,Fz_theta,Fz_alpha,Fz_beta,Fz_gamma,Cz_delta,"),
        "{}",
        &csv[..csv.len().min(200)]
    );
    let line = report
        .lines()
        .find(|l| l.contains("data-plane allocations after warm-up"))
        .unwrap_or_else(|| panic!("no allocation line in:\n{report}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let allocations: u64 = words[4].parse().unwrap();
    let moves: u64 = words[6].parse().unwrap();
    assert!(
        moves > 50,
        "the steady state must cover real traffic: {line}"
    );
    assert_eq!(allocations, 0, "{line}");
}

fn faulty_pipeline(dir: &Path, on_error: &str) -> PathBuf {
    write_pipeline(
        dir,
        "faulty.toml",
        &format!(
            r#"
[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
channels = 2
block_size = 10
samples = 3000           # 300 blocks
realtime = false

[[stage]]
id = "flaky"
plugin = "passthrough"
inputs = ["eeg"]
on_error = "{on_error}"
[stage.config]
panic_at_packet = 100

[[stage]]
id = "out"
plugin = "csv_sink"
inputs = ["flaky"]
[stage.config]
path = "out.csv"
"#
        ),
    )
}

#[test]
fn a_stage_that_panics_stops_the_run_with_its_message_not_a_crash() {
    let dir = scratch_dir("panic-stop");
    let output = run_in(&dir, &faulty_pipeline(&dir, "stop"), &[]);
    let text = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a runtime failure, not a signal:\n{text}"
    );
    assert!(
        text.contains("stage `flaky` (passthrough) failed"),
        "{text}"
    );
    assert!(text.contains("injected fault at packet 100"), "{text}");
}

#[test]
fn bypass_keeps_the_pipeline_running_and_every_sample_reaches_the_sink() {
    let dir = scratch_dir("panic-bypass");
    let output = run_in(&dir, &faulty_pipeline(&dir, "bypass"), &[]);
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("injected fault at packet 100"), "{report}");
    assert_eq!(csv_rows(&dir.join("out.csv")), 3000, "{report}");
    // A panic leaves the stage's state broken: it is rebuilt from its
    // config and only the packet that panicked goes on unfiltered. The
    // fresh instance counts from 1 again: it panics at stream packets 100,
    // 199 and 298.
    assert!(
        report.contains("flaky: 3 restart(s), 3 packet(s) bypassed, 0 lost to errors"),
        "{report}"
    );
    // Handling the panics allocates (the unwinding, the rebuilt stage): that
    // is counted apart, and the packet path stays at zero.
    let line = report
        .lines()
        .find(|l| l.contains("data-plane allocations after warm-up:"))
        .unwrap_or_else(|| panic!("no allocation line in:\n{report}"));
    assert!(line.contains("warm-up: 0 over "), "{line}");
    assert!(
        !line.ends_with("; 0 while swapping stages or handling errors"),
        "{line}"
    );
    assert_clean_end(&report);
}

#[test]
fn restart_rebuilds_the_stage_from_its_config() {
    let dir = scratch_dir("panic-restart");
    let output = run_in(&dir, &faulty_pipeline(&dir, "restart"), &[]);
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    // Under `restart` a stage works out of place, so the packet it failed
    // on is still intact and the fresh instance is given it. It counts from
    // 1 again: it fails at stream packets 100, 199 and 298, and no block is
    // lost.
    assert!(
        report.contains("flaky: 3 restart(s), 0 packet(s) bypassed, 0 lost to errors"),
        "{report}"
    );
    let rows = csv_rows(&dir.join("out.csv"));
    let (_, flaky_out) = counts(&report, "flaky");
    assert_eq!(flaky_out, 300, "{report}");
    assert_eq!(rows, 3000, "{report}");
}

#[test]
fn an_endless_source_stops_at_the_duration_and_drains() {
    let dir = scratch_dir("duration");
    let pipeline = write_pipeline(
        &dir,
        "endless.toml",
        r#"
[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
realtime = true

[[stage]]
id = "sink"
plugin = "null_sink"
inputs = ["eeg"]
"#,
    );
    let output = run_in(&dir, &pipeline, &["--duration", "1"]);
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    let (_, produced) = counts(&report, "eeg");
    let (consumed, _) = counts(&report, "sink");
    assert_eq!(produced, consumed);
    // 250 Hz in blocks of 32: about 7.8 blocks a second.
    assert!((5..=10).contains(&produced), "{report}");
    assert!(report.contains("latency source -> sink: p50"), "{report}");
}

#[test]
fn allocations_by_plugin_code_on_the_data_plane_are_counted_and_named() {
    // A plugin allocates through its own allocator, which the host's cannot
    // see; every plugin library counts its own, and the host reads them.
    let dir = scratch_dir("plugin-allocates");
    let pipeline = write_pipeline(
        &dir,
        "allocates.toml",
        r#"
[[stage]]
id = "count"
plugin = "counter_source"
[stage.config]
packets = 2000

[[stage]]
id = "careless"
plugin = "passthrough"
inputs = ["count"]
[stage.config]
allocate_every_packet = true

[[stage]]
id = "sink"
plugin = "null_sink"
inputs = ["careless"]
"#,
    );
    let output = run_in(&dir, &pipeline, &[]);
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    let line = report
        .lines()
        .find(|l| l.contains("data-plane allocations after warm-up:"))
        .unwrap_or_else(|| panic!("no allocation line in:\n{report}"));
    let number = |after: &str| -> u64 {
        line.split(after)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.trim_start_matches('(').parse().ok())
            .unwrap_or_else(|| panic!("no number after `{after}` in `{line}`"))
    };
    // One allocation per packet after warm-up, all by plugin code.
    let total = number("warm-up: ");
    let by_plugins = number("packet moves (");
    assert!(total >= 1500, "{line}");
    assert_eq!(total, by_plugins, "{line}");
    assert!(
        report.contains("careless: its plugin allocated on the data plane in "),
        "{report}"
    );
    assert!(!report.contains("sink: its plugin allocated"), "{report}");
}

#[test]
fn throughput_is_per_source_packet_and_the_signal_against_the_wall_clock() {
    // One source fanned out to two sinks: each block is delivered twice,
    // but it is one packet of data.
    let dir = scratch_dir("throughput");
    let pipeline = write_pipeline(
        &dir,
        "fan.toml",
        r#"
[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
realtime = false
samples = 3200

[[stage]]
id = "a"
plugin = "null_sink"
inputs = ["eeg"]

[[stage]]
id = "b"
plugin = "null_sink"
inputs = ["eeg"]
"#,
    );
    let output = run_in(&dir, &pipeline, &[]);
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    // 3200 samples in blocks of 32: 100 source packets, 200 deliveries.
    assert!(
        report.contains("throughput: 100 source packet(s) in "),
        "{report}"
    );
    assert!(report.contains("(200 delivered into sinks)"), "{report}");
    // 3200 samples at 250 Hz: 12.8 s of signal, unpaced: far faster than real time.
    let signal = report
        .lines()
        .find(|l| l.contains("signal: 12.8 s of data in "))
        .unwrap_or_else(|| panic!("no signal line in:\n{report}"));
    let factor: f64 = signal
        .rsplit(": ")
        .next()
        .and_then(|t| t.strip_suffix("x real time"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no factor in `{signal}`"));
    assert!(factor > 1.0, "{signal}");
}

#[test]
fn a_source_without_a_wall_clock_gets_no_latency_figure() {
    // counter_source stamps its packets from 0, not from the wall clock.
    let dir = scratch_dir("no-clock");
    let pipeline = write_pipeline(
        &dir,
        "counter.toml",
        r#"
[[stage]]
id = "count"
plugin = "counter_source"
[stage.config]
packets = 200

[[stage]]
id = "sink"
plugin = "null_sink"
inputs = ["count"]
"#,
    );
    let output = run_in(&dir, &pipeline, &[]);
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("latency source -> sink: n/a (the source stamps no wall-clock time)"),
        "{report}"
    );
}

#[test]
fn an_invalid_pipeline_exits_2_and_runs_nothing() {
    let dir = scratch_dir("invalid-run");
    let pipeline = write_pipeline(
        &dir,
        "bad.toml",
        "[[stage]]\nid = \"x\"\nplugin = \"no_such\"\n",
    );
    let output = run_in(&dir, &pipeline, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("bad.toml:"), "{}", stderr(&output));
}

#[cfg(unix)]
#[test]
fn sigint_and_sigterm_stop_the_sources_and_drain_with_exit_0() {
    for signal in ["-INT", "-TERM"] {
        let dir = scratch_dir(&format!("signal{signal}"));
        let pipeline = write_pipeline(
            &dir,
            "live.toml",
            r#"
[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
realtime = true

[[stage]]
id = "out"
plugin = "csv_sink"
inputs = ["eeg"]
[stage.config]
path = "live.csv"
flush_every = 1
"#,
        );
        let child = Command::new(host_binary())
            .arg("run")
            .arg(&pipeline)
            .current_dir(&dir)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Signal only once data flows (the handlers are installed by then).
        let csv = dir.join("live.csv");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) < 2 {
            assert!(std::time::Instant::now() < deadline, "no data flowed");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let output = child.wait_with_output().unwrap();
        let report = stderr(&output);
        assert!(output.status.success(), "{signal}: {report}");
        let (_, produced) = counts(&report, "eeg");
        let (consumed, _) = counts(&report, "out");
        assert!(produced > 0, "{report}");
        assert_eq!(produced, consumed, "{report}");
        assert_eq!(
            csv_rows(&dir.join("live.csv")) as u64,
            produced * 32,
            "{report}"
        );
    }
}

/// A control stage that fails on every packet (its feature index is out of
/// range for the band powers it reads), under the given `on_error`.
fn failing_control_pipeline(dir: &Path, on_error: &str) -> PathBuf {
    write_pipeline(
        dir,
        "failing_control.toml",
        &format!(
            r#"[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
channels = 2
duration_s = 10.0
realtime = false

[[stage]]
id = "filter"
plugin = "iir"
inputs = ["eeg"]
[stage.config]
type = "bandpass"
cutoff_hz = [1.0, 40.0]

[[stage]]
id = "csv"
plugin = "csv_sink"
inputs = ["filter"]
[stage.config]
path = "filtered.csv"

[[stage]]
id = "spectrum"
plugin = "fft"
inputs = ["filter"]

[[stage]]
id = "bands"
plugin = "bandpower"
inputs = ["spectrum"]

[[stage]]
id = "broken"
plugin = "threshold"
inputs = ["bands"]
on_error = "{on_error}"
[stage.config]
level = 0.5
feature = 99
"#
        ),
    )
}

#[test]
fn a_failing_control_stage_follows_its_policy_and_never_crashes_the_host() {
    let dir = scratch_dir("failing-control");
    let stop = failing_control_pipeline(&dir, "stop");
    let output = run_in(&dir, &stop, &["--no-watch"]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("control stage `broken` (threshold) failed") && text.contains("99"),
        "{text}"
    );

    let bypass = failing_control_pipeline(&dir, "bypass");
    let output = run_in(&dir, &bypass, &["--no-watch"]);
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    // Every message failed and was skipped; the data plane lost nothing.
    let line = text
        .lines()
        .find(|l| l.contains("control broken (threshold)"))
        .unwrap_or_else(|| panic!("no control stats in:\n{text}"));
    let received: u64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("messages in");
    assert!(received > 0, "{line}");
    assert!(line.contains(&format!("{received} error(s)")), "{line}");
    assert_eq!(csv_rows(&dir.join("filtered.csv")), 2500, "{text}");
}

#[test]
fn host_bench_reports_the_runtime_against_its_baseline_from_the_same_run() {
    let output = hsp_tests::host(&["bench", "--packets", "5000", "--runs", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = hsp_tests::stdout(&output);
    let figure = |label: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no `{label}` line in:\n{text}"));
        line.split(':')
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.trim_end_matches('x').parse().ok())
            .unwrap_or_else(|| panic!("no figure in `{line}`"))
    };
    let baseline = figure("baseline");
    let runtime = figure("DataPlane");
    let ratio = figure("runtime / baseline");
    assert!(baseline > 0.0 && runtime > 0.0, "{text}");
    // The printed figures are rounded: the ratio agrees with them to 2 %.
    assert!((ratio / (runtime / baseline) - 1.0).abs() < 0.02, "{text}");
}

#[test]
fn a_stage_that_finishes_early_lets_its_upstream_run_to_its_end() {
    let dir = scratch_dir("finish-early");
    let pipeline = write_pipeline(
        &dir,
        "early.toml",
        r#"[[stage]]
id = "source"
plugin = "counter_source"
[stage.config]
packets = 1000

[[stage]]
id = "short"
plugin = "passthrough"
inputs = ["source"]
queue = { capacity = 2 }
[stage.config]
finish_after = 50

[[stage]]
id = "sink"
plugin = "null_sink"
inputs = ["short"]
"#,
    );
    let output = run_in(&dir, &pipeline, &["--no-watch"]);
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    assert_eq!(counts(&report, "source").1, 1000, "{report}");
    assert_eq!(counts(&report, "sink").0, 50, "{report}");
    assert_clean_end(&report);
}
