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

/// A `host` process in the background whose standard error is collected
/// line by line.
pub struct LiveHost {
    child: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl LiveHost {
    /// `host run PIPELINE ARGS...` in `dir`, without inherited plugin paths
    /// or log settings, plugins from `plugins`.
    pub fn run(dir: &Path, pipeline: &Path, plugins: &[&Path], args: &[&str]) -> Self {
        let mut command = Command::new(host_binary());
        for plugins in plugins {
            command.arg("--plugins").arg(plugins);
        }
        command
            .arg("run")
            .arg(pipeline)
            .args(args)
            .current_dir(dir)
            .env_remove("HSP_PLUGIN_PATH")
            .env_remove("RUST_LOG");
        Self::spawn(command)
    }

    /// Starts `command` with its standard error collected.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start host");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self {
            child,
            log,
            reader: Some(reader),
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("wait host").is_none()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`"INT"`, `"TERM"`, `"HUP"`, `"USR1"`...) with `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// How often `text` occurs in the log so far.
    pub fn count(&self, text: &str) -> usize {
        self.log().matches(text).count()
    }

    /// Waits until the log contains `text`; panics with the log after 60 s.
    pub fn wait_for(&self, text: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if self.log().contains(text) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("no `{text}` in the host's log:\n{}", self.log());
    }

    /// Waits for the run to end (killing it after 90 s); returns its exit
    /// code (`None` if a signal ended it) and the whole log.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait host") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the host did not end:\n{}", self.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        // The reader ends when the pipe closes: every line is in.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (status.code(), self.log())
    }
}

/// The Python packages the interop tests run (`tests/requirements.txt`).
const PYTHON_PACKAGES: &str = "numpy, scipy, pyedflib, edfio, mne";

/// The project's Python, `.venv/bin/python`, with the reference tools the
/// interop tests compare against (pyedflib, edfio, MNE, scipy). The README's
/// test command, `tests/run`, makes it; without it these tests fail and say
/// how to make it, never skip.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let python = std::env::var_os("HSP_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
        let how = "run the tests with `tests/run`, which makes it, or make it by hand: \
                   python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt";
        let imported = Command::new(&python)
            .args(["-c", &format!("import {PYTHON_PACKAGES}")])
            .output();
        match imported {
            Ok(output) if output.status.success() => python,
            Ok(output) => panic!(
                "{} cannot import {PYTHON_PACKAGES}: {}\n{how}",
                python.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(e) => panic!("no project Python at {} ({e}): {how}", python.display()),
        }
    })
}

/// Runs `tests/python/SCRIPT ARGS...` with [`python`]; panics with its
/// output unless it succeeds. Returns its standard output.
pub fn run_python(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(python())
        .arg(workspace_root().join("tests/python").join(script))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{script} {args:?} failed:\n{text}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
