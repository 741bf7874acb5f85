//! Shared helpers for the end-to-end tests in `tests/tests/`: build the
//! workspace (host and plugins) and the broken-plugin fixtures once, and find
//! the binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn run_cargo(what: &str, args: &[&str]) {
    let status = cargo()
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {what}: {e}"));
    assert!(status.success(), "building {what} failed");
}

/// The `host` binary and the plugin libraries beside it, built once per test
/// binary (a no-op when `cargo test` already built them).
pub fn host_binary() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        run_cargo(
            "the host and plugins",
            &["build", "--workspace", "--lib", "--bins"],
        );
        target_dir().join("debug").join("host")
    })
}

/// The directory of the workspace's built plugin libraries.
pub fn built_plugins_dir() -> PathBuf {
    host_binary();
    target_dir().join("debug")
}

/// The broken-plugin fixtures of `tests/fixtures`, built once into their own
/// target directory so they never sit beside the real plugins.
pub fn fixture_library(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let target = target_dir().join("fixtures");
        let manifest = workspace_root().join("tests/fixtures/Cargo.toml");
        run_cargo(
            "the test fixtures",
            &[
                "build",
                "--manifest-path",
                manifest.to_str().expect("UTF-8 path"),
                "--target-dir",
                target.to_str().expect("UTF-8 path"),
            ],
        );
        target.join("debug")
    });
    dir.join(format!("lib{name}.{}", std::env::consts::DLL_EXTENSION))
}

/// A fresh, empty directory for one test.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = target_dir()
        .join("test-scratch")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Runs `host` with `args`, from the workspace root, without inherited
/// plugin paths.
pub fn host(args: &[&str]) -> Output {
    Command::new(host_binary())
        .args(args)
        .current_dir(workspace_root())
        .env_remove("HSP_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .output()
        .expect("run host")
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
