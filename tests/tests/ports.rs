//! Stages with several ports, run by the host: a source with a signal and
//! an event output (`synth` with stimuli), a stage with two outputs
//! (`detect`: the signal and its threshold crossings), a stage with two
//! inputs (`gate`: a signal and the events that open it), `id.port` naming
//! an output port in `inputs`, and a control stage reading an event port.

use hsp_tests::{host, host_binary, scratch_dir, stderr};
use std::path::Path;
use std::process::{Command, Output};

fn run_in(dir: &Path, text: &str) -> Output {
    let pipeline = dir.join("pipeline.toml");
    std::fs::write(&pipeline, text).unwrap();
    Command::new(host_binary())
        .arg("run")
        .arg(&pipeline)
        .current_dir(dir)
        .env_remove("HSP_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .output()
        .expect("run host")
}

/// The rows of a CSV file, header dropped, each split into its fields.
fn rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .map(|line| line.split(',').map(str::to_string).collect())
        .collect()
}

/// 2 channels of synthetic EEG, 10 s at 250 Hz in blocks of 25, unpaced,
/// then `detect` on `Fz` at 30 uV.
const SOURCE_AND_DETECTOR: &str = r#"
[[stage]]
id = "src"
plugin = "synth"
[stage.config]
channels = 2
block_size = 25
duration_s = 10.0
realtime = false
seed = 7

[[stage]]
id = "det"
plugin = "detect"
inputs = ["src"]
[stage.config]
threshold_uv = 30.0
channel = "Fz"
refractory_s = 0.25
"#;

#[test]
fn a_stage_with_two_outputs_feeds_each_port_to_its_own_stages() {
    let dir = scratch_dir("ports-two-outputs");
    let output = run_in(
        &dir,
        &format!(
            r#"{SOURCE_AND_DETECTOR}
[[stage]]
id = "signal"
plugin = "csv_sink"
inputs = ["det"]
[stage.config]
path = "signal.csv"

[[stage]]
id = "events"
plugin = "csv_sink"
inputs = ["det.events"]
[stage.config]
path = "events.csv"
"#
        ),
    );
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    let signal = rows(&dir.join("signal.csv"));
    assert_eq!(signal.len(), 2500, "every sample passes through");
    let header = std::fs::read_to_string(dir.join("signal.csv")).unwrap();
    assert!(
        header.starts_with("timestamp_ns,Fz [uV],Cz [uV]\n"),
        "{header}"
    );
    let events = rows(&dir.join("events.csv"));
    assert!(
        (3..200).contains(&events.len()),
        "{} crossings:\n{report}",
        events.len()
    );
    // Each event is at the sample where Fz rose to 30 uV, and carries it.
    let mut last = 0u64;
    for event in &events {
        let at: u64 = event[0].parse().unwrap();
        let row = signal
            .iter()
            .position(|r| r[0].parse::<u64>().unwrap() == at)
            .unwrap_or_else(|| panic!("no sample at {at}"));
        let fz = |row: usize| signal[row][1].parse::<f32>().unwrap();
        assert!(fz(row).abs() >= 30.0, "{event:?}");
        assert!(
            row == 0 || fz(row - 1).abs() < 30.0,
            "a rise, not a plateau: {event:?}"
        );
        assert_eq!(event[2].parse::<f32>().unwrap(), fz(row));
        assert!(
            at - last >= 250_000_000 || last == 0,
            "refractory time kept"
        );
        assert_eq!(event[3], "\"detect\"");
        last = at;
    }
    assert!(report.contains("edge det.events -> events"), "{report}");
}

#[test]
fn a_source_with_a_signal_and_an_event_output_marks_its_stimuli() {
    let dir = scratch_dir("ports-source-events");
    let output = run_in(
        &dir,
        r#"
[[stage]]
id = "src"
plugin = "synth"
[stage.config]
channels = 2
block_size = 25
duration_s = 5.0
realtime = false
stimulus_every_s = 1.0

[[stage]]
id = "signal"
plugin = "csv_sink"
inputs = ["src.signal"]
[stage.config]
path = "signal.csv"

[[stage]]
id = "markers"
plugin = "csv_sink"
inputs = ["src.events"]
[stage.config]
path = "markers.csv"
"#,
    );
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    let signal = rows(&dir.join("signal.csv"));
    let markers = rows(&dir.join("markers.csv"));
    assert_eq!(signal.len(), 1250);
    // A marker at 1, 2, 3 and 4 s, each at the time of a sample.
    assert_eq!(markers.len(), 4, "{markers:?}");
    let t0: u64 = signal[0][0].parse().unwrap();
    for (i, marker) in markers.iter().enumerate() {
        let at: u64 = marker[0].parse().unwrap();
        assert_eq!(at - t0, (i as u64 + 1) * 1_000_000_000);
        assert_eq!(marker[1..], ["1", &(i + 1).to_string(), "\"stimulus\""]);
        assert!(signal.iter().any(|row| row[0] == marker[0]));
    }
}

#[test]
fn a_stage_with_two_inputs_takes_the_oldest_packet_first() {
    let dir = scratch_dir("ports-two-inputs");
    let output = run_in(
        &dir,
        &format!(
            r#"{SOURCE_AND_DETECTOR}
[[stage]]
id = "gate"
plugin = "gate"
inputs = ["src", "det.events"]
[stage.config]
open_code = 1

[[stage]]
id = "gated"
plugin = "csv_sink"
inputs = ["gate"]
[stage.config]
path = "gated.csv"

[[stage]]
id = "all"
plugin = "csv_sink"
inputs = ["src"]
[stage.config]
path = "all.csv"

[[stage]]
id = "events"
plugin = "csv_sink"
inputs = ["det.events"]
[stage.config]
path = "events.csv"
"#
        ),
    );
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    let all = rows(&dir.join("all.csv"));
    let gated = rows(&dir.join("gated.csv"));
    let first_event: u64 = rows(&dir.join("events.csv"))[0][0].parse().unwrap();
    // The gate opens at the first crossing: the block holding it has begun
    // before it and is held back; every block after it passes.
    let first_passed: u64 = gated[0][0].parse().unwrap();
    assert!(
        first_passed > first_event,
        "{first_passed} <= {first_event}"
    );
    assert!(
        first_passed - first_event <= 100_000_000,
        "the next block, 100 ms long at most"
    );
    let from = all
        .iter()
        .position(|r| r[0].parse::<u64>().unwrap() == first_passed)
        .unwrap();
    assert_eq!(
        gated,
        all[from..],
        "every sample from the opening on, unchanged"
    );
    assert_eq!(from % 25, 0, "whole blocks");
}

#[test]
fn a_control_stage_reads_an_event_port_through_its_bridge() {
    let dir = scratch_dir("ports-control");
    let output = run_in(
        &dir,
        &format!(
            r#"{SOURCE_AND_DETECTOR}
[[stage]]
id = "sink"
plugin = "null_sink"
inputs = ["det"]

[[stage]]
id = "log"
plugin = "jsonl_sink"
inputs = ["det.events"]
[stage.config]
path = "events.jsonl"
"#
        ),
    );
    let report = stderr(&output);
    assert!(output.status.success(), "{report}");
    let log = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert!(
        log.lines().count() >= 3
            && log
                .lines()
                .all(|l| l.contains(r#""from":"det.events""#) && l.contains(r#""label":"detect""#)),
        "{log}"
    );
}

#[test]
fn inputs_name_output_ports_and_give_one_stream_per_input_port() {
    let dir = scratch_dir("ports-validate");
    let pipeline = dir.join("ports.toml");
    std::fs::write(
        &pipeline,
        format!(
            r#"{SOURCE_AND_DETECTOR}
[[stage]]
id = "gate"
plugin = "gate"
inputs = ["src"]

[[stage]]
id = "events"
plugin = "csv_sink"
inputs = ["det.spikes"]
[stage.config]
path = "events.csv"
"#
        ),
    )
    .unwrap();
    let output = host(&["validate", pipeline.to_str().unwrap()]);
    let errors = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{errors}");
    let file = pipeline.display();
    assert!(
        errors.contains(&format!(
            "{file}:24:10: error: stage `gate` (`gate`) takes 2 inputs (`signal`, `events`), but `inputs` lists 1: `src`"
        )),
        "{errors}"
    );
    assert!(
        errors.contains("hint: list one input per port, in this order: `signal`, `events`"),
        "{errors}"
    );
    assert!(
        errors.contains(&format!(
            "{file}:29:11: error: stage `det` has no output `spikes`"
        )),
        "{errors}"
    );
    assert!(
        errors.contains("hint: the outputs of `detect`: `signal`, `events`"),
        "{errors}"
    );
    // `host validate` shows each output port of a stage with several.
    let ok = dir.join("ok.toml");
    std::fs::write(&ok, SOURCE_AND_DETECTOR).unwrap();
    let output = host(&["validate", ok.to_str().unwrap()]);
    let text = hsp_tests::stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(text.contains(".events -> events"), "{text}");
    assert!(
        text.contains(".signal -> raw_eeg, 2 ch x 25 samples @ 250 Hz"),
        "{text}"
    );
}
