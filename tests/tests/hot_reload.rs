//! Hot reload, end to end: a running `host run` whose pipeline file is
//! edited by atomic rename (as editors save), and whose plugin directory
//! gets a new build of a control plugin.

use hsp_tests::{LiveHost, built_plugins_dir, fixture_library, scratch_dir};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Replaces `path` by `text` the way editors save: write a temporary file
/// beside it, then rename it over the original.
fn save_by_rename(path: &Path, text: &str) {
    let temporary = path.with_extension("toml.tmp");
    std::fs::write(&temporary, text).expect("write temporary");
    std::fs::rename(&temporary, path).expect("rename over");
}

fn csv_data_rows(path: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(path).expect("read csv");
    text.lines()
        .skip(1)
        .map(|line| {
            line.split(',')
                .skip(1)
                .map(|v| v.parse().expect("a number"))
                .collect()
        })
        .collect()
}

/// A live pipeline: 250 Hz synthetic EEG for `seconds`, a filter to CSV, and
/// band powers feeding two threshold control stages, one of them logged.
fn monitor_pipeline(seconds: f64, filter_band: &str, level: f64) -> String {
    monitor_pipeline_flushing(seconds, filter_band, level, 1)
}

/// [`monitor_pipeline`] with the CSV sink flushing every `flush_every` blocks.
fn monitor_pipeline_flushing(
    seconds: f64,
    filter_band: &str,
    level: f64,
    flush_every: u32,
) -> String {
    format!(
        r#"[pipeline]
name = "monitor"

[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
channels = 2
sample_rate_hz = 250.0
block_size = 25
duration_s = {seconds}
realtime = true

[[stage]]
id = "filter"
plugin = "iir"
inputs = ["eeg"]
[stage.config]
type = "bandpass"
cutoff_hz = {filter_band}

[[stage]]
id = "csv"
plugin = "csv_sink"
inputs = ["filter"]
[stage.config]
path = "filtered.csv"
flush_every = {flush_every}

[[stage]]
id = "spectrum"
plugin = "fft"
inputs = ["filter"]
[stage.config]
size = 128
hop = 50

[[stage]]
id = "bands"
plugin = "bandpower"
inputs = ["spectrum"]
[stage.config]
relative = true

[[stage]]
id = "alpha_high"
plugin = "threshold"
inputs = ["bands"]
[stage.config]
feature = 2
level = {level}

[[stage]]
id = "beta_high"
plugin = "threshold"
inputs = ["bands"]
[stage.config]
feature = 3
level = 0.5

[[stage]]
id = "log"
plugin = "jsonl_sink"
inputs = ["alpha_high"]
[stage.config]
path = "events.jsonl"
"#
    )
}

/// The data-plane front of a live pipeline: `eeg` (synth, 2 channels at
/// 250 Hz, real time, plus `source` config lines) -> `filter` (1-40 Hz) ->
/// `spectrum` (with `fft` config lines) -> `bands`; tests append control
/// stages that read `bands`.
fn live_band_powers(source: &str, fft: &str) -> String {
    format!(
        r#"[[stage]]
id = "eeg"
plugin = "synth"
[stage.config]
channels = 2
sample_rate_hz = 250.0
realtime = true
{source}
[[stage]]
id = "filter"
plugin = "iir"
inputs = ["eeg"]
[stage.config]
type = "bandpass"
cutoff_hz = [1.0, 40.0]

[[stage]]
id = "spectrum"
plugin = "fft"
inputs = ["filter"]
[stage.config]
{fft}
[[stage]]
id = "bands"
plugin = "bandpower"
inputs = ["spectrum"]
"#
    )
}

/// The event codes a `jsonl_sink` wrote to `path`, in order.
fn event_codes(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).expect("read the JSON lines");
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            value["code"].as_u64().expect("an event code")
        })
        .collect()
}

/// A plugin directory in `dir` holding the `tagger` fixture (v1).
fn plugins_with_tagger(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    let library = format!("libtagger.{}", std::env::consts::DLL_EXTENSION);
    std::fs::copy(fixture_library("tagger"), plugins.join(library)).expect("install tagger");
    plugins
}

#[test]
fn editing_a_control_stage_restarts_only_it_and_an_invalid_edit_keeps_the_old_graph() {
    let dir = scratch_dir("reload-control");
    let pipeline = dir.join("monitor.toml");
    let seconds = 4.0;
    std::fs::write(&pipeline, monitor_pipeline(seconds, "[1.0, 40.0]", 0.8)).expect("write");
    let host = LiveHost::run(&dir, &pipeline, &[], &[]);
    host.wait_for("watching");
    std::thread::sleep(Duration::from_millis(500));

    // One save changes a control stage and the data-plane sink: the sink is
    // swapped live and must append to its file, not start it again.
    save_by_rename(
        &pipeline,
        &monitor_pipeline_flushing(seconds, "[1.0, 40.0]", 0.6, 4),
    );
    host.wait_for("control stage `alpha_high` restarted");
    host.wait_for("stage `csv` swapped at packet");

    // An invalid edit: a string where the level must be a number.
    let invalid = monitor_pipeline_flushing(seconds, "[1.0, 40.0]", 0.6, 4)
        .replace("level = 0.6", "level = \"high\"");
    save_by_rename(&pipeline, &invalid);
    host.wait_for("the running pipeline is unchanged");

    let (code, log) = host.finish();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        log.matches("restarted").count(),
        1,
        "only one restart:\n{log}"
    );
    assert!(!log.contains("`beta_high` restarted"), "{log}");
    // The invalid edit is reported at its line and column.
    let line = invalid
        .lines()
        .position(|l| l.contains("\"high\""))
        .expect("the edit")
        + 1;
    let position = format!("monitor.toml:{line}:1: error: `level` must be a float, got a string");
    assert!(log.contains(&position), "no `{position}` in:\n{log}");
    // Nothing lost: every sample produced reached the CSV, under one header,
    // in order, across the sink's swap.
    let rows = csv_data_rows(&dir.join("filtered.csv"));
    assert_eq!(rows.len(), (seconds * 250.0) as usize, "{log}");
    let text = std::fs::read_to_string(dir.join("filtered.csv")).expect("read csv");
    let stamps: Vec<u64> = text
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .next()
                .and_then(|t| t.parse().ok())
                .expect("a timestamp")
        })
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "rows in time order");
    assert!(log.contains("control alpha_high (threshold)"), "{log}");
    // The stats count the reload, apart from restarts after errors.
    let row = |id: &str| {
        log.lines()
            .find(|l| l.contains(&format!("control {id} (threshold)")))
            .unwrap_or_else(|| panic!("no row for {id} in:\n{log}"))
            .to_string()
    };
    assert!(
        row("alpha_high").ends_with("0 restart(s) after errors, 1 reload(s)"),
        "{log}"
    );
    assert!(row("beta_high").ends_with("0 reload(s)"), "{log}");
}

#[test]
fn a_filter_band_changed_in_the_file_takes_effect_at_a_packet_boundary_without_a_restart() {
    let dir = scratch_dir("reload-filter");
    let pipeline = dir.join("monitor.toml");
    let seconds = 5.0;
    std::fs::write(&pipeline, monitor_pipeline(seconds, "[8.0, 12.0]", 0.8)).expect("write");
    let host = LiveHost::run(&dir, &pipeline, &[], &[]);
    host.wait_for("watching");
    std::thread::sleep(Duration::from_millis(1500));

    save_by_rename(&pipeline, &monitor_pipeline(seconds, "[30.0, 40.0]", 0.8));
    host.wait_for("stage `filter` swapped at packet");
    let (code, log) = host.finish();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        !log.contains("restarted"),
        "no control stage changed:\n{log}"
    );

    let swapped_at: usize = log
        .split("stage `filter` swapped at packet ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the packet of the swap");
    let rows = csv_data_rows(&dir.join("filtered.csv"));
    assert_eq!(
        rows.len(),
        (seconds * 250.0) as usize,
        "nothing lost:\n{log}"
    );
    // The synthetic EEG is rich in alpha (8-12 Hz) and poor at 30-40 Hz: the
    // output's power drops where the new band starts, at a block boundary.
    let boundary = swapped_at * 25;
    let rms = |rows: &[Vec<f64>]| {
        let values: Vec<f64> = rows.iter().flatten().copied().collect();
        (values.iter().map(|v| v * v).sum::<f64>() / values.len() as f64).sqrt()
    };
    let settle = 125; // half a second for each filter's transient
    let before = rms(&rows[settle..boundary]);
    let after = rms(&rows[boundary + settle..]);
    assert!(
        before > 4.0 * after,
        "alpha band RMS {before} should dwarf the 30-40 Hz band's {after} (swap at sample {boundary})"
    );
}

#[test]
fn a_new_build_of_a_control_plugin_dropped_in_while_running_is_used() {
    let dir = scratch_dir("reload-plugin");
    let builds = build_tagger_versions(&dir);
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    let installed = plugins.join(format!("libtagger.{}", std::env::consts::DLL_EXTENSION));
    std::fs::copy(&builds[0], &installed).expect("install v1");

    let pipeline = dir.join("tagged.toml");
    let text = live_band_powers(
        "block_size = 25\nduration_s = 4.0\n",
        "size = 128\nhop = 25\n",
    ) + r#"
[[stage]]
id = "tag"
plugin = "tagger"
inputs = ["bands"]

[[stage]]
id = "log"
plugin = "jsonl_sink"
inputs = ["tag"]
[stage.config]
path = "tags.jsonl"
"#;
    std::fs::write(&pipeline, text).expect("write pipeline");
    let built = built_plugins_dir();
    let host = LiveHost::run(&dir, &pipeline, &[&plugins, &built], &[]);
    host.wait_for("watching");
    std::thread::sleep(Duration::from_millis(1000));
    // A plain copy, not a rename: the host must wait until it is complete.
    std::fs::copy(&builds[1], &installed).expect("install v2");
    host.wait_for("control stage `tag` restarted");
    let (code, log) = host.finish();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("library mapping(s) behind"), "{log}");

    let codes = event_codes(&dir.join("tags.jsonl"));
    let first_v2 = codes.iter().position(|&c| c == 2).expect("v2 ran");
    assert!(first_v2 > 0, "v1 ran first: {codes:?}");
    assert!(codes[..first_v2].iter().all(|&c| c == 1), "{codes:?}");
    assert!(codes[first_v2..].iter().all(|&c| c == 2), "{codes:?}");
}

/// The two builds of the `tagger` fixture (v1, and the same source as v2).
fn build_tagger_versions(dir: &Path) -> [PathBuf; 2] {
    let keep = |name: &str| {
        let to = dir.join(format!("{name}.so"));
        std::fs::copy(fixture_library(name), &to).expect("keep a build");
        to
    };
    [keep("tagger"), keep("tagger_v2")]
}

/// A live pipeline whose control stage `stuck` sleeps 60 s in every call,
/// beside another control stage `other`; returns the host (data flowing,
/// `stuck` asleep), the pipeline file and its text.
fn start_with_a_stuck_control_stage(name: &str) -> (LiveHost, PathBuf, String) {
    let dir = scratch_dir(name);
    let plugins = plugins_with_tagger(&dir);
    let pipeline = dir.join("stuck.toml");
    let text = live_band_powers("", "size = 64\nhop = 25\n")
        + r#"
[[stage]]
id = "stuck"
plugin = "tagger"
inputs = ["bands"]
[stage.config]
sleep_ms = 60000

[[stage]]
id = "other"
plugin = "threshold"
inputs = ["bands"]
[stage.config]
level = 0.5
"#;
    std::fs::write(&pipeline, &text).expect("write pipeline");
    let built = built_plugins_dir();
    let host = LiveHost::run(&dir, &pipeline, &[&plugins, &built], &[]);
    host.wait_for("watching");
    // The tagger's first packet comes within a second; then it sleeps.
    std::thread::sleep(Duration::from_millis(2000));
    (host, pipeline, text)
}

#[test]
fn a_stuck_control_stage_holds_up_only_itself_and_never_the_exit() {
    let (host, pipeline, text) = start_with_a_stuck_control_stage("stuck-control");
    // The rest of the control plane carries on: an edit of `other` applies.
    save_by_rename(&pipeline, &text.replace("level = 0.5", "level = 0.6"));
    host.wait_for("control stage `other` restarted");
    host.signal("INT");
    let started = Instant::now();
    let (code, log) = host.finish();
    assert_eq!(code, Some(0), "{log}");
    assert!(started.elapsed() < Duration::from_secs(10), "{log}");
    assert!(log.contains("stuck in a call"), "{log}");
}

#[test]
fn a_second_interrupt_exits_at_once() {
    let (mut host, _, _) = start_with_a_stuck_control_stage("stuck-control-twice");
    host.signal("INT");
    std::thread::sleep(Duration::from_millis(300));
    assert!(host.is_running(), "still waiting for the stuck stage");
    host.signal("INT");
    let (code, log) = host.finish();
    assert_eq!(code, Some(130), "{log}");
    assert!(
        log.contains("SIGINT again: stopping every stage now"),
        "{log}"
    );
}

#[test]
fn a_control_stage_that_asks_for_ticks_gets_them_between_its_messages() {
    let dir = scratch_dir("ticks");
    let plugins = plugins_with_tagger(&dir);
    let pipeline = dir.join("ticks.toml");
    let text = live_band_powers("duration_s = 2.0\n", "")
        + r#"
[[stage]]
id = "tag"
plugin = "tagger"
inputs = ["bands"]
[stage.config]
tick_ms = 100

[[stage]]
id = "log"
plugin = "jsonl_sink"
inputs = ["tag"]
[stage.config]
path = "tags.jsonl"
"#;
    std::fs::write(&pipeline, text).expect("write pipeline");
    let built = built_plugins_dir();
    let host = LiveHost::run(&dir, &pipeline, &[&plugins, &built], &[]);
    let (code, log) = host.finish();
    assert_eq!(code, Some(0), "{log}");
    let codes = event_codes(&dir.join("tags.jsonl"));
    let ticks = codes.iter().filter(|&&c| c == 1001).count();
    let packets = codes.iter().filter(|&&c| c == 1).count();
    // About 20 ticks in 2 s; a loaded machine may skip some, never bunch them.
    assert!((5..=25).contains(&ticks), "{ticks} ticks: {codes:?}");
    assert!(packets > 0, "{codes:?}");
}
