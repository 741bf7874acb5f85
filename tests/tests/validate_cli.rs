//! `host validate FILE`: every kind of mistake in a pipeline file is reported
//! as `FILE:LINE:COL: error: MESSAGE` (plus `  hint: HINT`), all of them at
//! once, with exit code 2; a good file prints its stages and formats.

use hsp_tests::{host, scratch_dir, stderr, stdout};
use std::path::PathBuf;
use std::process::Output;

/// Writes `text` to `NAME.toml` in a fresh scratch dir and validates it.
fn validate(name: &str, text: &str) -> (String, Output) {
    let dir = scratch_dir(&format!("validate-{name}"));
    let file: PathBuf = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).expect("write pipeline");
    let file = file.to_str().expect("UTF-8 path").to_string();
    let output = host(&["validate", &file]);
    (file, output)
}

/// Validates `text`, expecting failure; returns the file name and stderr.
fn invalid(name: &str, text: &str) -> (String, String) {
    let (file, output) = validate(name, text);
    let errors = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(2),
        "expected exit 2; stderr:\n{errors}"
    );
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    (file, errors)
}

/// Asserts that `errors` has an error at `file:line:col` whose message
/// contains `message`, followed by exactly the hint line `hint` (or by no
/// hint when `None`).
fn assert_error(
    errors: &str,
    file: &str,
    (line, col): (usize, usize),
    message: &str,
    hint: Option<&str>,
) {
    let lines: Vec<&str> = errors.lines().collect();
    let prefix = format!("{file}:{line}:{col}: error: ");
    let at = lines
        .iter()
        .position(|l| l.starts_with(&prefix) && l.contains(message))
        .unwrap_or_else(|| panic!("no error `{prefix}...{message}...` in:\n{errors}"));
    let next = lines.get(at + 1).copied().unwrap_or("");
    match hint {
        Some(hint) => assert_eq!(
            next,
            format!("  hint: {hint}"),
            "hint of `{}` in:\n{errors}",
            lines[at]
        ),
        None => assert!(
            !next.starts_with("  hint:"),
            "unexpected hint `{next}` in:\n{errors}"
        ),
    }
}

fn error_count(errors: &str) -> usize {
    errors.lines().filter(|l| l.contains(": error: ")).count()
}

#[test]
fn the_shipped_example_pipelines_validate() {
    for (file, ids) in [
        (
            "pipelines/alpha_power.toml",
            "6 stages: eeg -> bandpass -> notch -> spectrum -> bands -> csv",
        ),
        (
            "pipelines/filter_to_csv.toml",
            "3 stages: eeg -> lowpass -> csv",
        ),
        (
            "pipelines/fan_out.toml",
            "4 stages: eeg -> tap -> record -> count",
        ),
    ] {
        let output = host(&["validate", file]);
        let text = stdout(&output);
        assert!(output.status.success(), "{file}:\n{}", stderr(&output));
        assert_eq!(
            text.lines().next(),
            Some(format!("{file}: ok ({ids})").as_str()),
            "{text}"
        );
    }
    let text = stdout(&host(&["validate", "pipelines/alpha_power.toml"]));
    for expected in [
        "eeg       synth      -> 2 outputs: signal, events",
        ".signal -> raw_eeg, 8 ch x 32 samples @ 250 Hz, 7.8125 packets/s",
        ".events -> events",
        "channels: Fz, Cz, Pz, Oz, F3, F4, O1, O2 (uV), from synth (seed 1)",
        "spectrum  fft        -> fft, 8 ch x 129 bins from 250 Hz EEG, 2 packets/s",
        // Power bins, in the square of the signal's unit, and what filtered it.
        "channels: Fz, Cz, Pz, Oz, F3, F4, O1, O2 (uV^2), filtered HP:1Hz LP:40Hz N:50Hz",
        "bands     bandpower  -> features, 8 ch x 5 features from 250 Hz EEG, 2 packets/s",
        "csv       csv_sink   -> sink",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
}

/// synth -> iir -> fft -> bandpower, ids `src`, `filter`, `spectrum`, `bands`:
/// the data plane the control-stage tests read from.
const BAND_POWERS: &str = r#"[[stage]]
id = "src"
plugin = "synth"

[[stage]]
id = "filter"
plugin = "iir"
inputs = ["src"]
[stage.config]
type = "bandpass"
cutoff_hz = [1.0, 40.0]

[[stage]]
id = "spectrum"
plugin = "fft"
inputs = ["filter"]

[[stage]]
id = "bands"
plugin = "bandpower"
inputs = ["spectrum"]
"#;

#[test]
fn a_control_stage_and_queue_settings_are_accepted() {
    let (file, output) = validate(
        "control",
        &format!(
            r#"
[pipeline]
name = "ctl"
pool_size = 32
idle = "yield"
data_plane_threads = 1

{BAND_POWERS}
[[stage]]
id = "watch"
plugin = "threshold"
stage_type = "control"
inputs = ["bands.out"]
queue = {{ capacity = 4, decimate = 2 }}
on_error = "restart"
[stage.config]
level = 0.5

[[stage]]
id = "log"
plugin = "jsonl_sink"
inputs = ["watch", "bands"]
[stage.config]
path = "events.jsonl"
"#
        ),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with(&format!("{file}: ok (6 stages:")),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_policy_on_a_control_stage_input_is_refused_at_its_place() {
    // The control plane drops the newest message when a control stage is
    // behind, whatever the file says: a `policy` there would be a lie.
    let (file, errors) = invalid(
        "control-policy",
        &format!(
            r#"{BAND_POWERS}
[[stage]]
id = "watch"
plugin = "threshold"
inputs = ["bands"]
queue = {{ capacity = 4, policy = "drop_oldest" }}
[stage.config]
level = 0.5
"#
        ),
    );
    assert_error(
        &errors,
        &file,
        (27, 34),
        "stage `watch` is a control stage; its inputs always drop the newest message when it falls behind (counted), so `policy` does not apply",
        Some(
            "remove `policy`; `capacity` sets how far behind it may fall, `decimate` thins its input",
        ),
    );
}

#[test]
fn control_and_data_plane_stages_are_told_apart_at_their_place() {
    let (file, output) = validate(
        "roles",
        r#"
[[stage]]
id = "src"
plugin = "synth"

[[stage]]
id = "sink"
plugin = "null_sink"
stage_type = "control"
inputs = ["src"]

[[stage]]
id = "events"
plugin = "threshold"
inputs = ["src"]
[stage.config]
level = 1.0

[[stage]]
id = "again"
plugin = "null_sink"
inputs = ["events"]
queue = { decimate = 4 }
"#,
    );
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains(&format!(
            "{file}:9:14: error: stage `sink` (`null_sink`) is a data-plane stage, but `stage_type` says \"control\""
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{file}:15:11: error: packet types do not match: control stage `events` (`threshold`) takes features, but its input `src` (`synth`) emits raw_eeg"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{file}:22:11: error: data-plane stage `again` reads from control stage `events`"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{file}:23:22: error: stage `again` is a data-plane stage; `decimate` thins a control stage's inputs"
        )),
        "{text}"
    );
}

#[test]
fn a_toml_syntax_error_names_the_position_and_what_was_expected() {
    let (file, errors) = invalid("syntax", "[[stage]]\nid = \"a\"\nplugin = synth\n");
    assert_error(
        &errors,
        &file,
        (3, 10),
        "invalid TOML: string values must be quoted, expected literal string; found `synth`",
        None,
    );
    assert_eq!(error_count(&errors), 1, "{errors}");

    let (file, errors) = invalid("unclosed", "[[stage]\nid = \"a\"\n");
    assert_error(
        &errors,
        &file,
        (1, 9),
        "invalid TOML: unclosed array table, expected `]`",
        None,
    );
}

#[test]
fn an_unreadable_file_is_one_error_at_1_1_naming_the_os_error() {
    let dir = scratch_dir("validate-missing");
    let file = dir.join("nope.toml");
    let file = file.to_str().expect("UTF-8 path");
    let output = host(&["validate", file]);
    assert_eq!(output.status.code(), Some(2));
    let errors = stderr(&output);
    assert_error(
        &errors,
        file,
        (1, 1),
        "cannot read the pipeline file: No such file or directory",
        None,
    );
}

#[test]
fn unknown_keys_are_errors_at_the_key_with_a_did_you_mean() {
    let (file, errors) = invalid(
        "unknown-keys",
        r#"[pipeline]
pool = 4
[[stage]]
id = "src"
plugin = "synth"
channels = 8
[[stage]]
id = "sink"
plugin = "null_sink"
inputs = ["src"]
queue = { capacity = 4, polcy = "block" }
kind = "x"
extra = 1
[colour]
"#,
    );
    assert_error(
        &errors,
        &file,
        (2, 1),
        "unknown key `pool` in `[pipeline]`",
        Some("did you mean `pool_size`?"),
    );
    assert_error(
        &errors,
        &file,
        (6, 1),
        "unknown key `channels` in `[[stage]]`",
        Some("`channels` is a config key of `synth`: put it under `[stage.config]`"),
    );
    assert_error(
        &errors,
        &file,
        (11, 25),
        "unknown key `polcy` in `queue`",
        Some("did you mean `policy`?"),
    );
    assert_error(
        &errors,
        &file,
        (12, 1),
        "unknown key `kind` in `[[stage]]`",
        Some("the stage kind goes in `plugin = \"...\"`"),
    );
    assert_error(
        &errors,
        &file,
        (13, 1),
        "unknown key `extra` in `[[stage]]`",
        Some(
            "a stage takes `id`, `plugin`, `stage_type`, `inputs`, `queue`, `on_error`, `config`; its own settings go under `[stage.config]`",
        ),
    );
    assert_error(
        &errors,
        &file,
        (14, 2),
        "unknown key `colour` at the top level",
        Some("known keys: `pipeline`, `stage`"),
    );
}

#[test]
fn bad_setting_values_say_what_was_expected() {
    let (file, errors) = invalid(
        "settings",
        r#"[pipeline]
idle = "parq"
pool_size = 0
data_plane_threads = 2
[[stage]]
id = "src.1"
plugin = "synth"
stage_type = "ctrl"
on_error = 3
"#,
    );
    assert_error(
        &errors,
        &file,
        (2, 8),
        r#"`idle` must be one of "spin", "yield", "park", got "parq""#,
        Some("did you mean `park`?"),
    );
    assert_error(
        &errors,
        &file,
        (3, 13),
        "`pool_size` must be an integer from 1 to 1048576, got 0",
        None,
    );
    assert_error(
        &errors,
        &file,
        (4, 22),
        "`data_plane_threads` must be 1, got 2",
        Some("only one data-plane thread is supported for now"),
    );
    assert_error(
        &errors,
        &file,
        (6, 6),
        "stage id `src.1` contains `.`",
        Some("ids use letters, digits, `_` and `-` only"),
    );
    assert_error(
        &errors,
        &file,
        (8, 14),
        r#"`stage_type` must be one of "data_plane", "control", got "ctrl""#,
        None,
    );
    assert_error(
        &errors,
        &file,
        (9, 12),
        r#"`on_error` must be one of "stop", "restart", "bypass", got an integer"#,
        None,
    );
}

#[test]
fn an_unknown_stage_kind_suggests_the_closest_or_lists_the_known_ones() {
    let (file, errors) = invalid(
        "unknown-kind",
        r#"[[stage]]
id = "src"
plugin = "synth"
[[stage]]
id = "filter"
plugin = "iirr"
inputs = ["src"]
[[stage]]
id = "other"
plugin = "quux"
inputs = ["src"]
"#,
    );
    assert_error(
        &errors,
        &file,
        (6, 10),
        "unknown stage kind `iirr`",
        Some("did you mean `iir`?"),
    );
    let at = errors.find("unknown stage kind `quux`").expect(&errors);
    let hint = errors[at..].lines().nth(1).unwrap_or("");
    assert!(hint.starts_with("  hint: known stage kinds: "), "{hint}");
    for kind in [
        "bandpower",
        "fft",
        "gain",
        "iir",
        "null_sink",
        "passthrough",
        "synth",
    ] {
        assert!(hint.contains(kind), "{hint}");
    }
    assert_eq!(error_count(&errors), 2, "{errors}");
}

#[test]
fn a_duplicate_id_points_at_the_second_and_names_the_first_line() {
    let (file, errors) = invalid(
        "duplicate-id",
        r#"[[stage]]
id = "src"
plugin = "synth"

[[stage]]
id = "src"
plugin = "synth"
"#,
    );
    assert_error(
        &errors,
        &file,
        (6, 6),
        "duplicate stage id `src`",
        Some("the first stage with this id is at line 2; ids must be unique"),
    );
    assert_eq!(error_count(&errors), 1, "{errors}");
}

#[test]
fn a_dangling_input_names_the_known_ids() {
    let (file, errors) = invalid(
        "dangling",
        r#"[[stage]]
id = "source"
plugin = "synth"
[[stage]]
id = "a"
plugin = "null_sink"
inputs = ["sourse"]
[[stage]]
id = "b"
plugin = "null_sink"
inputs = ["nowhere"]
"#,
    );
    assert_error(
        &errors,
        &file,
        (7, 11),
        "stage `a` reads from `sourse`, which is not a stage in this file",
        Some("did you mean `source`?"),
    );
    assert_error(
        &errors,
        &file,
        (11, 11),
        "stage `b` reads from `nowhere`, which is not a stage in this file",
        Some("stage ids in this file: `source`, `a`, `b`"),
    );
    assert_eq!(error_count(&errors), 2, "{errors}");
}

#[test]
fn a_data_plane_stage_takes_one_input() {
    let (file, errors) = invalid(
        "two-inputs",
        r#"[[stage]]
id = "a"
plugin = "synth"
[[stage]]
id = "b"
plugin = "synth"
[[stage]]
id = "both"
plugin = "null_sink"
inputs = ["a", "b"]
"#,
    );
    assert_error(
        &errors,
        &file,
        (10, 10),
        "stage `both` (`null_sink`) takes one input, but `inputs` lists 2: `a`, `b`",
        Some("one stage may feed several (fan-out), but this stage reads one stream"),
    );
    assert_eq!(error_count(&errors), 1, "{errors}");
}

#[test]
fn a_source_takes_no_inputs_and_other_stages_need_one() {
    let (file, errors) = invalid(
        "source-inputs",
        r#"[[stage]]
id = "src"
plugin = "synth"
[[stage]]
id = "src2"
plugin = "synth"
inputs = ["src"]
[[stage]]
id = "sink"
plugin = "null_sink"
"#,
    );
    assert_error(
        &errors,
        &file,
        (7, 10),
        "stage `src2` is a `synth`, a source that takes no input, but it lists inputs",
        Some("remove `inputs` from this stage"),
    );
    assert_error(
        &errors,
        &file,
        (10, 10),
        "stage `sink` (`null_sink`) takes packets of any kind but has no `inputs`",
        Some("add `inputs = [\"ID\"]`; stages here that emit packets: `src`, `src2`"),
    );
    assert_eq!(error_count(&errors), 2, "{errors}");
}

#[test]
fn a_cycle_names_its_stages() {
    let (file, errors) = invalid(
        "cycle",
        r#"[[stage]]
id = "a"
plugin = "gain"
inputs = ["c"]
[[stage]]
id = "b"
plugin = "gain"
inputs = ["a"]
[[stage]]
id = "c"
plugin = "passthrough"
inputs = ["b"]
[[stage]]
id = "self"
plugin = "gain"
inputs = ["self"]
[[stage]]
id = "below"
plugin = "null_sink"
inputs = ["c"]
"#,
    );
    assert_error(
        &errors,
        &file,
        (4, 11),
        "the stages form a cycle: `a` -> `b` -> `c` -> `a`",
        Some("data must flow one way: remove one of these `inputs`"),
    );
    assert_error(
        &errors,
        &file,
        (16, 11),
        "stage `self` reads from itself",
        Some("data must flow one way: remove one of these `inputs`"),
    );
    // `below` reads from the cycle but is not on it: no error of its own.
    assert_eq!(error_count(&errors), 2, "{errors}");
}

#[test]
fn a_packet_type_mismatch_names_both_stages_and_both_types() {
    let (file, errors) = invalid(
        "types",
        r#"[[stage]]
id = "src"
plugin = "synth"
[[stage]]
id = "spectrum"
plugin = "fft"
inputs = ["src"]
[[stage]]
id = "sink"
plugin = "gain"
inputs = ["spectrum"]
"#,
    );
    assert_error(
        &errors,
        &file,
        (7, 11),
        "packet types do not match: stage `spectrum` (`fft`) takes filtered_eeg, but its input `src` (`synth`) emits raw_eeg",
        Some("put a stage that turns raw_eeg into filtered_eeg between them: `iir`"),
    );
    assert_error(
        &errors,
        &file,
        (11, 11),
        "packet types do not match: stage `sink` (`gain`) takes raw_eeg or filtered_eeg, but its input `spectrum` (`fft`) emits fft",
        Some("stage kinds that take fft: `bandpower`"),
    );
    assert_eq!(error_count(&errors), 2, "{errors}");
}

#[test]
fn config_keys_and_types_are_checked_against_the_stage_schema() {
    let (file, errors) = invalid(
        "config",
        r#"[[stage]]
id = "src"
plugin = "synth"
[stage.config]
chanels = 8
realtime = "no"
block_size = 32.5

[[stage]]
id = "lowpass"
plugin = "iir"
inputs = ["src"]
[stage.config]
type = "lowpass"
cutoff_hz = "30"

[[stage]]
id = "bandpass"
plugin = "iir"
inputs = ["src"]
[stage.config]
cutoff_hz = [1, "forty"]

[[stage]]
id = "when"
plugin = "gain"
inputs = ["src"]
config = { gain = 1979-05-27 }
"#,
    );
    assert_error(
        &errors,
        &file,
        (5, 1),
        "unknown config key `chanels` for stage kind `synth`",
        Some("did you mean `channels`?"),
    );
    assert_error(
        &errors,
        &file,
        (6, 1),
        "`realtime` must be a bool, got a string",
        Some("write `true` or `false`"),
    );
    assert_error(
        &errors,
        &file,
        (7, 1),
        "`block_size` must be an integer, got a float",
        Some("write a whole number without a decimal point"),
    );
    assert_error(
        &errors,
        &file,
        (15, 1),
        "`cutoff_hz` must be a list of floats, got a string",
        Some("write a list of numbers, e.g. `cutoff_hz = [8.0, 13.0]`"),
    );
    assert_error(
        &errors,
        &file,
        (21, 1),
        "stage `bandpass` (`iir`) is missing required config key `type` (string)",
        Some("`type`: Filter type: lowpass, highpass, bandpass, bandstop or notch"),
    );
    assert_error(
        &errors,
        &file,
        (22, 1),
        "`cutoff_hz` must be a list of floats, got a list holding a string",
        Some("write a list of numbers, e.g. `cutoff_hz = [8.0, 13.0]`"),
    );
    assert_error(
        &errors,
        &file,
        (28, 19),
        "`gain` is a TOML date-time, which stage configs do not take",
        Some("write it as a string in quotes"),
    );
    assert_eq!(error_count(&errors), 7, "{errors}");
}

#[test]
fn plugin_format_errors_are_reported_at_the_config_without_cascading() {
    let (file, errors) = invalid(
        "formats",
        r#"[[stage]]
id = "src"
plugin = "synth"
[stage.config]
sample_rate_hz = 250.0

[[stage]]
id = "lowpass"
plugin = "iir"
inputs = ["src"]
[stage.config]
type = "lowpass"
cutoff_hz = [200.0]

# Downstream of the failed filter: not negotiated, so no second error.
[[stage]]
id = "spectrum"
plugin = "fft"
inputs = ["lowpass"]

[[stage]]
id = "record"
plugin = "csv_sink"
inputs = ["src"]
[stage.config]
path = "out.csv"
channel_names = ["Fz", "Cz"]

[[stage]]
id = "bandpass"
plugin = "iir"
inputs = ["src"]
[stage.config]
type = "bandpass"
cutoff_hz = [1, 40]
[[stage]]
id = "fft"
plugin = "fft"
inputs = ["bandpass"]
[[stage]]
id = "bands"
plugin = "bandpower"
inputs = ["fft"]
[stage.config]
edges_hz = [100, 200]
"#,
    );
    let input = "its input from `src`: raw_eeg, 8 ch x 32 samples @ 250 Hz, 7.8125 packets/s";
    assert_error(
        &errors,
        &file,
        (13, 1),
        "stage `lowpass` (`iir`): `cutoff_hz` = [200.0]: frequency 200 Hz must lie strictly between 0 and Nyquist (125 Hz)",
        Some(input),
    );
    assert_error(
        &errors,
        &file,
        (27, 1),
        "stage `record` (`csv_sink`): `channel_names` = [\"Fz\", \"Cz\"] names 2 channels, the input has 8",
        Some(input),
    );
    assert_error(
        &errors,
        &file,
        (45, 1),
        "stage `bands` (`bandpower`): `edges_hz` = [100.0, 200.0]: 200 Hz is above the input's Nyquist frequency (125 Hz)",
        Some("its input from `fft`: fft, 8 ch x 129 bins from 250 Hz EEG, 1.953125 packets/s"),
    );
    assert_eq!(error_count(&errors), 3, "{errors}");
}

#[test]
fn bypass_needs_a_stage_whose_output_type_is_its_input_type() {
    let (file, errors) = invalid(
        "bypass",
        r#"[[stage]]
id = "src"
plugin = "synth"
on_error = "bypass"
[[stage]]
id = "ok"
plugin = "gain"
inputs = ["src"]
on_error = "bypass"
"#,
    );
    assert_error(
        &errors,
        &file,
        (4, 12),
        "`on_error = \"bypass\"` forwards a stage's input in place of its output, but `synth` takes nothing (a source) and emits raw_eeg",
        Some("use \"stop\" or \"restart\" for this stage"),
    );
    assert_eq!(error_count(&errors), 1, "{errors}");
}

#[test]
fn every_error_in_a_file_is_reported_at_once_in_file_order() {
    let (file, errors) = invalid(
        "many",
        r#"[pipeline]
idle = "spinning"

[[stage]]
id = "src"
plugin = "synthh"

[[stage]]
id = "filter"
plugin = "iir"
inputs = ["scr"]
[stage.config]
type = "lowpass"
cutoff = [30.0]

[[stage]]
id = "filter"
plugin = "null_sink"
inputs = ["src"]
"#,
    );
    assert_eq!(error_count(&errors), 6, "{errors}");
    assert_error(
        &errors,
        &file,
        (2, 8),
        "`idle` must be one of",
        Some("did you mean `spin`?"),
    );
    assert_error(
        &errors,
        &file,
        (6, 10),
        "unknown stage kind `synthh`",
        Some("did you mean `synth`?"),
    );
    assert_error(
        &errors,
        &file,
        (11, 11),
        "reads from `scr`",
        Some("did you mean `src`?"),
    );
    assert_error(
        &errors,
        &file,
        (12, 1),
        "missing required config key `cutoff_hz`",
        Some(
            "`cutoff_hz`: Corner frequencies: [f] for lowpass/highpass, [low, high] for bandpass/bandstop, [f0] for notch",
        ),
    );
    assert_error(
        &errors,
        &file,
        (14, 1),
        "unknown config key `cutoff`",
        Some("did you mean `cutoff_hz`?"),
    );
    assert_error(
        &errors,
        &file,
        (17, 6),
        "duplicate stage id `filter`",
        Some("the first stage with this id is at line 9; ids must be unique"),
    );
    let positions: Vec<usize> = errors
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{file}:")))
        .filter_map(|l| l.split(':').next()?.parse().ok())
        .collect();
    assert!(positions.is_sorted(), "{positions:?}");
}

#[test]
fn an_empty_file_and_a_single_stage_table_are_explained() {
    let (file, errors) = invalid("empty", "# nothing yet\n");
    assert_error(
        &errors,
        &file,
        (1, 1),
        "the pipeline has no stages",
        Some("add a `[[stage]]` table with `id` and `plugin` for each stage"),
    );
    let (file, errors) = invalid("single", "[stage]\nid = \"src\"\nplugin = \"synth\"\n");
    assert_error(
        &errors,
        &file,
        (1, 2),
        "`[stage]` is a single table, but stages are an array of tables",
        Some("start each stage with `[[stage]]` (double brackets)"),
    );
    assert_eq!(error_count(&errors), 1, "{errors}");
}

#[test]
fn a_packet_too_large_to_preallocate_is_an_error_not_an_abort() {
    let (file, errors) = invalid(
        "huge-packet",
        "[[stage]]\nid = \"eeg\"\nplugin = \"synth\"\n[stage.config]\nchannels = 1024\nblock_size = 1000000000\n",
    );
    assert_error(
        &errors,
        &file,
        (4, 1),
        "stage `eeg` (`synth`) would emit packets of 1024 channels x 1000000000 values",
        Some(
            "use fewer channels or a smaller block size; every output pool preallocates its packets",
        ),
    );
}

#[test]
fn a_control_stage_config_its_plugin_refuses_is_a_validation_error() {
    let (file, output) = validate(
        "control-config",
        &format!(
            r#"{BAND_POWERS}
[[stage]]
id = "watch"
plugin = "threshold"
inputs = ["bands"]
[stage.config]
level = 0.5
hysteresis = -0.1
"#
        ),
    );
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    // Reported at the key the plugin names, like any config error.
    let line = BAND_POWERS.lines().count() + 8;
    assert!(
        text.contains(&format!(
            "{file}:{line}:1: error: stage `watch` (`threshold`): `hysteresis` must be a number >= 0, got -0.1"
        )),
        "{text}"
    );
}
