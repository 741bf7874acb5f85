//! `host plugins list` / `inspect`, and every kind of bad plugin file: each
//! gets a one-line reason naming the file, and the good plugins still load.

use hsp_sdk::abi::HSP_ABI_VERSION;
use hsp_tests::{built_plugins_dir, fixture_library, host, scratch_dir, stderr, stdout};
use std::fs;
use std::path::Path;

const SHIPPED: [&str; 11] = [
    "synth",
    "iir",
    "fft",
    "bandpower",
    "csv_sink",
    "passthrough",
    "null_sink",
    "gain",
    "threshold",
    "jsonl_sink",
    "param_switch",
];

fn copy_into(dir: &Path, source: &Path, name: &str) -> std::path::PathBuf {
    let target = dir.join(name);
    fs::copy(source, &target).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
    target
}

fn shipped_library(crate_name: &str) -> std::path::PathBuf {
    built_plugins_dir().join(format!(
        "lib{}.{}",
        crate_name.replace('-', "_"),
        std::env::consts::DLL_EXTENSION
    ))
}

#[test]
fn list_shows_every_shipped_plugin_and_its_stage_kinds() {
    let output = host(&["plugins", "list"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for kind in SHIPPED {
        let crate_name = format!("hsp-{}", kind.replace('_', "-"));
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{crate_name} ")))
            .unwrap_or_else(|| panic!("no line for {crate_name} in:\n{text}"));
        assert!(line.contains(kind), "{line}");
        assert!(line.contains("0.1.0"), "{line}");
    }
    assert!(!text.contains("failed to load"), "{text}");
}

#[test]
fn inspect_shows_ports_and_config_keys_with_types_defaults_units_and_docs() {
    let output = host(&["plugins", "inspect", "null_sink"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("Stage kind `null_sink`"), "{text}");
    assert!(
        text.contains("input:  raw_eeg or filtered_eeg or fft or features or event\n"),
        "{text}"
    );
    assert!(text.contains("output: none (sink)"), "{text}");
    // A stage with several ports lists each by name.
    let detect = stdout(&host(&["plugins", "inspect", "detect"]));
    for port in [
        "input:  raw_eeg or filtered_eeg\n",
        "output: `signal`: raw_eeg or filtered_eeg\n",
        "output: `events`: event\n",
    ] {
        assert!(detect.contains(port), "no `{port}` in:\n{detect}");
    }
    // List types are shown as such.
    let csv = stdout(&host(&["plugins", "inspect", "csv_sink"]));
    assert!(
        csv.lines()
            .any(|l| l.trim_start().starts_with("channel_names") && l.contains("list of strings")),
        "{csv}"
    );
    let key = text
        .lines()
        .find(|l| l.trim_start().starts_with("panic_at_packet"))
        .unwrap_or_else(|| panic!("no config line in:\n{text}"));
    assert!(
        key.contains("integer") && key.contains("default 0"),
        "{key}"
    );

    let by_plugin = stdout(&host(&["plugins", "inspect", "hsp-gain"]));
    assert!(by_plugin.contains("Plugin hsp-gain 0.1.0"), "{by_plugin}");
    let abi = format!("hsp-sdk 0.1.0 (plugin ABI {HSP_ABI_VERSION})");
    assert!(by_plugin.contains(&abi), "{by_plugin}");
    assert!(
        by_plugin.contains("gain  float  default 1.0"),
        "{by_plugin}"
    );
}

#[test]
fn inspect_of_an_unknown_name_is_an_input_error() {
    let output = host(&["plugins", "inspect", "no_such_stage"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no plugin or stage kind named `no_such_stage`"));
}

#[test]
fn inspect_of_a_misspelt_kind_suggests_the_close_one() {
    let output = host(&["plugins", "inspect", "iri"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no plugin or stage kind named `iri`; did you mean `iir`?"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_named_plugin_directory_that_does_not_exist_is_an_input_error() {
    let missing = scratch_dir("missing-plugins").join("not-there");
    for args in [
        &["plugins", "list"][..],
        &["validate", "pipelines/alpha_power.toml"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--plugins", missing.to_str().unwrap()]);
        let output = host(&all);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(&format!(
                "--plugins {}: no such directory",
                missing.display()
            )),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn every_bad_file_gets_its_own_reason_and_the_good_plugins_still_load() {
    let dir = scratch_dir("bad-files");
    fs::write(
        dir.join("libgarbage.so"),
        (0..65536u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    fs::write(dir.join("libnotes.so"), b"not a library\n").unwrap();
    let real = fs::read(shipped_library("hsp-passthrough")).unwrap();
    fs::write(dir.join("libcut_4k.so"), &real[..4096]).unwrap();
    fs::write(dir.join("libcut_half.so"), &real[..real.len() / 2]).unwrap();
    copy_into(&dir, &fixture_library("not_a_plugin"), "libnot_a_plugin.so");
    copy_into(&dir, &fixture_library("foreign_abi"), "libforeign_abi.so");
    copy_into(&dir, &fixture_library("future_abi"), "libfuture_abi.so");
    copy_into(
        &dir,
        &fixture_library("crash_on_load"),
        "libcrash_on_load.so",
    );

    let output = host(&["plugins", "list", "--plugins", dir.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "list must exit 0 and show failures: {}",
        stderr(&output)
    );
    let text = stdout(&output);
    let reason = |file: &str| -> String {
        text.lines()
            .find(|l| l.contains(&format!("{}/{file}:", dir.display())))
            .unwrap_or_else(|| panic!("no failure line for {file} in:\n{text}"))
            .to_string()
    };
    assert!(reason("libgarbage.so").contains("not a shared library"));
    assert!(reason("libnotes.so").contains("not a shared library"));
    assert!(reason("libcut_4k.so").contains("truncated library (4096 bytes"));
    assert!(reason("libcut_half.so").contains("truncated library"));
    assert!(reason("libnot_a_plugin.so").contains("not an hsp plugin"));
    // Another layout and no ABI marker: a plugin from before ABI 3.
    assert!(
        reason("libforeign_abi.so").contains(&format!(
            "built for hsp plugin ABI 2 or older, this host speaks ABI {HSP_ABI_VERSION}: rebuild it against hsp-sdk"
        )),
        "{text}"
    );
    // Every shipped plugin says which ABI it speaks, readable without
    // loading it.
    let gain = hsp_tests::built_plugins_dir()
        .join(format!("libhsp_gain.{}", std::env::consts::DLL_EXTENSION));
    assert_eq!(hsp_host::registry::plugin_abi(&gain), Some(HSP_ABI_VERSION));
    let future = format!(
        "hsp ABI version {}, this host speaks {}",
        HSP_ABI_VERSION + 1,
        HSP_ABI_VERSION
    );
    assert!(reason("libfuture_abi.so").contains(&future));
    assert!(reason("libcrash_on_load.so").contains("crashed a probe process (SIGABRT)"));
    assert!(text.contains("8 file(s) failed to load"), "{text}");
    for line in text.lines().filter(|l| l.contains(".so:")) {
        assert!(line.len() < 300, "one short line per failure: {line}");
    }
    for kind in SHIPPED {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("hsp-{} ", kind.replace('_', "-")))),
            "{kind} must still load:\n{text}"
        );
    }
}

#[test]
fn a_second_plugin_declaring_a_known_stage_kind_is_refused_by_name() {
    let dir = scratch_dir("duplicate-kind");
    copy_into(
        &dir,
        &fixture_library("duplicate_kind"),
        "libduplicate_kind.so",
    );
    // The shipped plugins come first on the search path, so theirs wins.
    let output = host(&[
        "plugins",
        "list",
        "--plugins",
        built_plugins_dir().to_str().unwrap(),
        "--plugins",
        dir.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let text = stdout(&output);
    let line = text
        .lines()
        .find(|l| l.contains("libduplicate_kind.so:"))
        .unwrap_or_else(|| panic!("no failure line in:\n{text}"));
    assert!(
        line.contains("stage kind `gain` is already provided by"),
        "{line}"
    );
    assert!(line.contains("libhsp_gain.so"), "{line}");
    assert!(text.lines().any(|l| l.starts_with("hsp-gain ")), "{text}");
}

#[test]
fn a_procedural_macro_library_beside_the_plugins_is_skipped_not_a_failure() {
    // Cargo leaves the SDK's derive-macro library beside `host`, where the
    // host looks for plugins; it is read, never loaded, and never reported.
    let deps = built_plugins_dir().join("deps");
    let proc_macro = fs::read_dir(&deps)
        .expect("the build's deps directory")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("libhsp_sdk_macros-") && name.ends_with(".so")
        })
        .expect("the SDK's proc-macro library was built");
    let dir = scratch_dir("proc-macro");
    copy_into(&dir, &proc_macro, "libhsp_sdk_macros.so");
    copy_into(&dir, &shipped_library("hsp-gain"), "libhsp_gain.so");
    let output = host(&["plugins", "list", "--plugins", dir.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("gain"), "{text}");
    assert!(!text.contains("libhsp_sdk_macros"), "{text}");
}

#[test]
fn library_files_in_subdirectories_of_the_plugin_dir_are_ignored() {
    let dir = scratch_dir("nested");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(dir.join("src/libgarbage.so"), b"junk").unwrap();
    let output = host(&["plugins", "list", "--plugins", dir.to_str().unwrap()]);
    assert!(
        !stdout(&output).contains("libgarbage"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn the_plugin_path_variable_is_searched_too() {
    let dir = scratch_dir("env-path");
    fs::write(dir.join("libnotes.so"), b"text").unwrap();
    let output = std::process::Command::new(hsp_tests::host_binary())
        .args(["plugins", "list"])
        .env("HSP_PLUGIN_PATH", format!("/nonexistent:{}", dir.display()))
        .output()
        .unwrap();
    assert!(
        stdout(&output).contains("libnotes.so: not a shared library"),
        "{}",
        stdout(&output)
    );
}
