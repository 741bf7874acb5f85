//! A third party's path: `host new-plugin` for every kind, then `cargo test`,
//! `cargo build`, `host plugins install`, and `host run` of the generated
//! pipeline, all on the generated project as it is.

use hsp_tests::{host, host_binary, scratch_dir, stderr, stdout, workspace_root};
use std::path::Path;
use std::process::Command;

fn cargo_in(project: &Path, args: &[&str]) -> std::process::Output {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(project)
        // One shared target dir: the SDK and abi_stable compile once for all kinds.
        .env(
            "CARGO_TARGET_DIR",
            workspace_root().join("target/generated"),
        )
        .output()
        .expect("run cargo")
}

fn generate_build_install_run(kind: &str) {
    let name = format!("my_{kind}");
    let dir = scratch_dir(&format!("new-plugin-{kind}"));
    let project = dir.join(&name);
    let output = host(&[
        "new-plugin",
        &name,
        "--kind",
        kind,
        "--dir",
        project.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    for file in ["Cargo.toml", "src/lib.rs", "README.md", "pipeline.toml"] {
        assert!(project.join(file).is_file(), "{file} missing");
    }

    let tested = cargo_in(&project, &["test"]);
    assert!(
        tested.status.success(),
        "generated unit tests fail:\n{}",
        stderr(&tested)
    );
    assert!(
        stdout(&tested).contains("test result: ok"),
        "{}",
        stdout(&tested)
    );
    let built = cargo_in(&project, &["build"]);
    assert!(built.status.success(), "{}", stderr(&built));

    let library = workspace_root().join(format!(
        "target/generated/debug/lib{name}.{}",
        std::env::consts::DLL_EXTENSION
    ));
    let plugins = project.join("plugins");
    let installed = host(&[
        "plugins",
        "install",
        library.to_str().unwrap(),
        "--plugins",
        plugins.to_str().unwrap(),
    ]);
    assert!(installed.status.success(), "{}", stderr(&installed));
    assert!(plugins.join(library.file_name().unwrap()).is_file());

    let inspected = host(&[
        "plugins",
        "inspect",
        &name,
        "--plugins",
        plugins.to_str().unwrap(),
    ]);
    assert!(
        stdout(&inspected).contains(&format!("Stage kind `{name}`")),
        "{}",
        stdout(&inspected)
    );

    let run = Command::new(host_binary())
        .args(["run", "pipeline.toml", "--plugins", "plugins"])
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "generated pipeline fails:\n{}",
        stderr(&run)
    );
}

#[test]
fn a_generated_filter_builds_tests_installs_and_runs() {
    generate_build_install_run("filter");
}

#[test]
fn a_generated_source_builds_tests_installs_and_runs() {
    generate_build_install_run("source");
}

#[test]
fn a_generated_sink_builds_tests_installs_and_runs() {
    generate_build_install_run("sink");
}

#[test]
fn a_generated_control_stage_builds_tests_installs_and_runs() {
    generate_build_install_run("control");
}

#[test]
fn a_generated_two_input_stage_builds_tests_installs_and_runs() {
    generate_build_install_run("mix");
}

#[test]
fn an_existing_directory_is_never_overwritten_and_bad_names_are_refused() {
    let dir = scratch_dir("new-plugin-refusals");
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let output = host(&["new-plugin", "taken", "--dir", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("already exists"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
        "mine"
    );

    let output = host(&["new-plugin", "Not-A-Crate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not a valid plugin name"),
        "{}",
        stderr(&output)
    );
}
