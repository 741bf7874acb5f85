//! Stages that may block run on threads of their own: a slow sink (the
//! `slow_sink` fixture, 5 ms per packet) beside a fast branch holds nothing
//! back under `drop_oldest` and loses nothing under `block`, and every
//! packet such a stage accepted is written before the run ends.

use hsp_tests::{fixture_library, host, host_binary, scratch_dir, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A plugin directory in `dir` holding the `slow_sink` fixture.
fn plugins_with_slow_sink(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let library = format!("libslow_sink.{}", std::env::consts::DLL_EXTENSION);
    std::fs::copy(fixture_library("slow_sink"), plugins.join(library)).unwrap();
    plugins
}

fn run(dir: &Path, text: &str) -> Output {
    let pipeline = dir.join("pipeline.toml");
    std::fs::write(&pipeline, text).unwrap();
    let plugins = plugins_with_slow_sink(dir);
    Command::new(host_binary())
        .arg("run")
        .arg(&pipeline)
        .arg("--plugins")
        .arg(&plugins)
        .current_dir(dir)
        .env_remove("HSP_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .output()
        .expect("run host")
}

/// The `in` column of a stage's row in the stats table.
fn taken_in(report: &str, stage: &str) -> u64 {
    let row = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(stage))
        .unwrap_or_else(|| panic!("no stats row for `{stage}` in:\n{report}"));
    row.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// (pushed, dropped) of the edge `from -> to`.
fn edge(report: &str, from: &str, to: &str) -> (u64, u64) {
    let prefix = format!("  edge {from} -> {to}: ");
    let line = report
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{report}"));
    let words: Vec<&str> = line[prefix.len()..].split_whitespace().collect();
    (words[0].parse().unwrap(), words[2].parse().unwrap())
}

fn fan_out(blocks: u32, policy: &str) -> String {
    format!(
        r#"
[[stage]]
id = "src"
plugin = "synth"
[stage.config]
channels = 4
block_size = 25
samples = {samples}
realtime = false

[[stage]]
id = "fast"
plugin = "null_sink"
inputs = ["src"]

[[stage]]
id = "slow"
plugin = "slow_sink"
inputs = ["src"]
queue = {{ capacity = 4, policy = "{policy}" }}
[stage.config]
delay_ms = 5.0
"#,
        samples = blocks * 25
    )
}

#[test]
fn a_slow_sink_on_its_own_thread_holds_back_no_other_branch_under_drop_oldest() {
    let dir = scratch_dir("own-thread-drop");
    let output = run(&dir, &fan_out(400, "drop_oldest"));
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    // The fast branch got every block although the slow one could take
    // only a few of them as they came: the data plane did not wait.
    assert_eq!(taken_in(&report, "fast"), 400, "{report}");
    let (pushed, dropped) = edge(&report, "src", "slow");
    assert_eq!(pushed, 400, "{report}");
    assert!(dropped > 0, "the slow edge dropped its oldest: {report}");
    assert_eq!(taken_in(&report, "slow") + dropped, 400, "{report}");
}

#[test]
fn a_slow_sink_under_block_applies_backpressure_and_loses_nothing() {
    let dir = scratch_dir("own-thread-block");
    let output = run(&dir, &fan_out(60, "block"));
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    assert_eq!(taken_in(&report, "fast"), 60, "{report}");
    assert_eq!(taken_in(&report, "slow"), 60, "{report}");
    assert_eq!(edge(&report, "src", "slow"), (60, 0), "{report}");
}

#[test]
fn a_stage_that_may_block_is_shown_on_its_own_thread() {
    let dir = scratch_dir("own-thread-inspect");
    let plugins = plugins_with_slow_sink(&dir);
    let output = host(&[
        "plugins",
        "inspect",
        "slow_sink",
        "--plugins",
        plugins.to_str().unwrap(),
    ]);
    let text = stdout(&output);
    assert!(
        text.contains("runs on: a thread of its own (it may block on files, sockets or devices)"),
        "{text}{}",
        stderr(&output)
    );
    let pipeline = dir.join("fan-out.toml");
    std::fs::write(&pipeline, fan_out(1, "block")).unwrap();
    let output = host(&[
        "validate",
        pipeline.to_str().unwrap(),
        "--plugins",
        plugins.to_str().unwrap(),
    ]);
    let text = stdout(&output);
    assert!(
        text.contains("slow  slow_sink  -> sink (own thread)"),
        "{text}"
    );
}
