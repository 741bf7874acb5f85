//! Loading one plugin file: a trust check, a private shadow copy, a
//! completeness check, an optional time-limited probe in a child process,
//! then abi_stable's checked load of the very file that was probed.
//!
//! Why a shadow copy: the dynamic loader maps the file, so a library rewritten
//! in place while mapped (a rebuild, an install) changes code under our feet,
//! and glibc hands back the already-loaded library for a path it has seen.
//! A fresh, uniquely named copy per load avoids both (see `shadow.rs`); it is
//! unlinked as soon as it is mapped. abi_stable never unloads a library, so
//! every load costs one mapping for the life of the process:
//! [`mapped_libraries`] counts them.

use super::elf;
use super::error::LoadError;
use super::shadow::ShadowCopy;
use super::trust::{self, Trust};
use hsp_sdk::abi::{HSP_ABI_VERSION, Manifest, PluginModuleRef, SDK_VERSION};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static MAPPED_LIBRARIES: AtomicUsize = AtomicUsize::new(0);

/// The hidden `host` subcommand that probes a library in a child process.
pub const PROBE_SUBCOMMAND: &str = "__probe-plugin";

/// The environment variable that sets the probe's time limit, in seconds.
pub const PROBE_TIMEOUT_ENV: &str = "HSP_PROBE_TIMEOUT_S";

/// The probe's time limit when [`PROBE_TIMEOUT_ENV`] is not set: loading a
/// plugin takes milliseconds; a constructor still busy after this is stuck.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment variable through which the probe child learns its
/// parent's pid, to die with it.
const PROBE_PARENT_ENV: &str = "HSP_PROBE_PARENT";

/// Libraries this process has mapped (and, by abi_stable's design, keeps).
pub fn mapped_libraries() -> usize {
    MAPPED_LIBRARIES.load(Ordering::Relaxed)
}

/// How to check a library before mapping it into this process.
#[derive(Debug, Clone)]
pub enum Probe {
    /// Load it first in a child process running this executable with
    /// [`PROBE_SUBCOMMAND`], killed after `timeout`: a crash or a hang there
    /// costs the child, not us.
    ChildProcess {
        /// This executable.
        exe: PathBuf,
        /// How long the child may take.
        timeout: Duration,
    },
    /// Trust the completeness check alone (tests, and the probe child itself).
    None,
}

impl Probe {
    /// A probe in a child process of `exe`, with the time limit from
    /// [`PROBE_TIMEOUT_ENV`] or [`DEFAULT_PROBE_TIMEOUT`].
    pub fn child(exe: PathBuf) -> Self {
        let timeout = match std::env::var(PROBE_TIMEOUT_ENV) {
            Err(_) => DEFAULT_PROBE_TIMEOUT,
            Ok(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .filter(|d| !d.is_zero())
                .unwrap_or_else(|| {
                    tracing::warn!(
                        "{PROBE_TIMEOUT_ENV}={text:?} is not a positive number of seconds; using {} s",
                        DEFAULT_PROBE_TIMEOUT.as_secs()
                    );
                    DEFAULT_PROBE_TIMEOUT
                }),
        };
        Self::ChildProcess { exe, timeout }
    }
}

/// Everything that decides whether and how a file is loaded.
#[derive(Debug, Clone)]
pub struct LoadPolicy {
    /// How to check a library before mapping it.
    pub probe: Probe,
    /// Whether files others could have written are refused.
    pub trust: Trust,
}

impl LoadPolicy {
    /// Strict trust with `probe`.
    pub fn new(probe: Probe) -> Self {
        Self {
            probe,
            trust: Trust::Strict,
        }
    }
}

/// A plugin library mapped into this process.
pub struct LoadedPlugin {
    /// The file as found in the plugin directory.
    pub path: PathBuf,
    /// The library's root module: its entry points.
    pub module: PluginModuleRef,
    /// What it declares.
    pub manifest: Manifest,
    /// The file's size and modification time when it was loaded.
    pub stamp: Option<(u64, std::time::SystemTime)>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .finish_non_exhaustive()
    }
}

/// Loads the plugin at `path` (see the module docs for how).
pub fn load(path: &Path, policy: &LoadPolicy) -> Result<LoadedPlugin, LoadError> {
    if policy.trust == Trust::Strict {
        trust::check_file(path).map_err(|reason| LoadError::Untrusted {
            path: path.to_path_buf(),
            reason,
        })?;
    }
    let stamp = file_stamp(path);
    let shadow = ShadowCopy::create(path)?;
    check_complete(path, shadow.path())?;
    if let Probe::ChildProcess { exe, timeout } = &policy.probe {
        shadow.verify(path)?;
        probe_in_child(exe, *timeout, path, shadow.path())?;
    }
    // The probe ran on this very file; it is still the one we wrote.
    shadow.verify(path)?;
    let (module, manifest) = load_in_process(path, shadow.path())?;
    drop(shadow);
    Ok(LoadedPlugin {
        path: path.to_path_buf(),
        module,
        manifest,
        stamp,
    })
}

/// A file's size and modification time: what tells a rebuilt library from
/// the same one linked again (cargo re-links unchanged outputs).
pub fn file_stamp(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Refuses an ELF file that is shorter than its headers say.
fn check_complete(path: &Path, shadow: &Path) -> Result<(), LoadError> {
    let io_error = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let actual = std::fs::metadata(shadow).map_err(io_error)?.len();
    match elf::required_len(shadow).map_err(io_error)? {
        Some(needed) if needed > actual => Err(LoadError::Truncated {
            path: path.to_path_buf(),
            needed,
            actual,
        }),
        _ => Ok(()),
    }
}

/// Maps `shadow` and checks it as an hsp plugin; errors name `path`.
pub fn load_in_process(
    path: &Path,
    shadow: &Path,
) -> Result<(PluginModuleRef, Manifest), LoadError> {
    // Not `RootModule::load_from_*`: those cache one module per root-module
    // type, so every plugin after the first would silently be the first.
    let header = abi_stable::library::lib_header_from_path(shadow)
        .map_err(|e| LoadError::from_library(path.to_path_buf(), &e))?;
    MAPPED_LIBRARIES.fetch_add(1, Ordering::Relaxed);
    let module =
        header
            .init_root_module::<PluginModuleRef>()
            .map_err(|e| match LoadError::from_library(path.to_path_buf(), &e) {
                // Its layout differs: its ABI marker says which ABI it speaks.
                LoadError::SdkMismatch { .. }
                    if elf::plugin_abi(shadow) != Some(HSP_ABI_VERSION) =>
                {
                    LoadError::older_or_other_abi(path, elf::plugin_abi(shadow))
                }
                error => error,
            })?;
    let manifest = (module.manifest())();
    if manifest.abi_version != HSP_ABI_VERSION {
        return Err(LoadError::AbiVersion {
            path: path.to_path_buf(),
            found: manifest.abi_version,
            expected: HSP_ABI_VERSION,
            host_sdk: SDK_VERSION,
        });
    }
    Ok((module, manifest))
}

/// Loads `shadow` in a child process (its own process group, so a timeout
/// kills whatever it started), waiting at most `timeout`.
fn probe_in_child(
    exe: &Path,
    timeout: Duration,
    path: &Path,
    shadow: &Path,
) -> Result<(), LoadError> {
    let mut command = Command::new(exe);
    command
        .arg(PROBE_SUBCOMMAND)
        .arg(shadow)
        .arg(path)
        .env_remove("RUST_LOG")
        .env(PROBE_PARENT_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().map_err(|source| LoadError::Io {
        path: exe.to_path_buf(),
        source,
    })?;
    // Read stderr beside the wait, so a chatty child never blocks on a full
    // pipe; the reader ends when every holder of the pipe is gone.
    let (stderr_tx, stderr_rx) = std::sync::mpsc::channel();
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = stderr_tx.send(text);
        });
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) => {
                kill_group(&mut child);
                return Err(LoadError::ProbeTimeout {
                    path: path.to_path_buf(),
                    seconds: timeout.as_secs_f64(),
                });
            }
            Err(source) => {
                kill_group(&mut child);
                return Err(LoadError::Io {
                    path: exe.to_path_buf(),
                    source,
                });
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Err(LoadError::Crashed {
                path: path.to_path_buf(),
                signal: signal_name(signal),
            });
        }
    }
    let message = stderr_rx
        .recv_timeout(Duration::from_secs(1))
        .unwrap_or_default();
    let line = message
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(LoadError::Other {
        path: path.to_path_buf(),
        detail: match line.strip_prefix(&format!("{}: ", path.display())) {
            Some(detail) => detail.to_string(),
            None if line.is_empty() => format!("the probe process failed ({status})"),
            None => line.to_string(),
        },
    })
}

/// Kills the probe child and its process group, and reaps it.
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill only sends a signal; `-pid` names the group the child
        // leads (it was spawned with `process_group(0)`), which holds only
        // the child and what it started.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        _ => return format!("signal {signal}"),
    };
    name.to_string()
}

/// The body of the probe child: make sure it dies with its parent, then
/// load `shadow`, reporting in terms of `path`.
pub fn run_probe(shadow: &Path, path: &Path) -> Result<(), LoadError> {
    die_with_parent();
    check_complete(path, shadow)?;
    load_in_process(path, shadow).map(|_| ())
}

/// Asks the kernel to kill this (probe) process when its parent dies, so a
/// killed host leaves no probe behind; exits at once if the parent is
/// already gone.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process;
        // the extra arguments are unused zeros as the man page requires.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        }
        let expected = std::env::var(PROBE_PARENT_ENV)
            .ok()
            .and_then(|p| p.parse::<u32>().ok());
        // SAFETY: getppid takes no arguments and cannot fail.
        let parent = unsafe { libc::getppid() };
        if expected.is_some_and(|expected| u32::try_from(parent).ok() != Some(expected)) {
            std::process::exit(4);
        }
    }
}

impl LoadedPlugin {
    /// Its entry points, to build stages with.
    pub fn entry_points(&self) -> EntryPoints {
        EntryPoints(self.module)
    }
}

/// A loaded library's entry points. Each call runs plugin code, caught at
/// the library boundary by the SDK's export layer: an error or a panic comes
/// back as the plugin's message.
#[derive(Clone, Copy)]
pub struct EntryPoints(PluginModuleRef);

impl EntryPoints {
    /// What stage `kind` outputs on each output port with `config_json`
    /// given `inputs`, one per input port.
    pub fn output_formats(
        &self,
        kind: &str,
        config_json: &str,
        inputs: &[hsp_sdk::StreamFormat],
    ) -> Result<Vec<hsp_sdk::StreamFormat>, String> {
        (self.0.output_format())(kind.into(), config_json.into(), inputs.into())
            .into_result()
            .map(|formats| formats.into_vec())
            .map_err(|e| e.into_string())
    }

    /// Builds a stage of `kind` from `config_json` for inputs of `inputs`.
    pub fn create_stage(
        &self,
        kind: &str,
        config_json: &str,
        inputs: &[hsp_sdk::StreamFormat],
    ) -> Result<hsp_sdk::abi::FfiStageBox, String> {
        (self.0.create_stage())(kind.into(), config_json.into(), inputs.into())
            .into_result()
            .map_err(|e| e.into_string())
    }

    /// The library's count of its own allocations on the calling thread.
    pub fn allocation_counter(&self) -> Option<extern "C" fn() -> u64> {
        Some(self.0.thread_allocations())
    }

    /// Builds a control stage of `kind` from `config_json`.
    pub fn create_control_stage(
        &self,
        kind: &str,
        config_json: &str,
    ) -> Result<hsp_sdk::abi::FfiControlStageBox, String> {
        (self.0.create_control_stage())(kind.into(), config_json.into())
            .into_result()
            .map_err(|e| e.into_string())
    }
}
