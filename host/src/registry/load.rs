//! Loading one plugin file: a private shadow copy, a completeness check, an
//! optional probe in a child process, then abi_stable's checked load.
//!
//! Why a shadow copy: the dynamic loader maps the file, so a library rewritten
//! in place while mapped (a rebuild, an install) changes code under our feet,
//! and glibc hands back the already-loaded library for a path it has seen.
//! A fresh, uniquely named copy per load avoids both; it is unlinked as soon
//! as it is mapped. abi_stable never unloads a library, so every load costs
//! one mapping for the life of the process: [`mapped_libraries`] counts them.

use super::elf;
use super::error::LoadError;
use hsp_sdk::abi::{HSP_ABI_VERSION, Manifest, PluginModuleRef, SDK_VERSION};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

static SHADOW_COUNTER: AtomicU64 = AtomicU64::new(0);
static MAPPED_LIBRARIES: AtomicUsize = AtomicUsize::new(0);

/// The hidden `host` subcommand that probes a library in a child process.
pub const PROBE_SUBCOMMAND: &str = "__probe-plugin";

/// Libraries this process has mapped (and, by abi_stable's design, keeps).
pub fn mapped_libraries() -> usize {
    MAPPED_LIBRARIES.load(Ordering::Relaxed)
}

/// How to check a library before mapping it into this process.
#[derive(Debug, Clone)]
pub enum Probe {
    /// Load it first in a child process running this executable with
    /// [`PROBE_SUBCOMMAND`]: a crash there costs the child, not us.
    ChildProcess(PathBuf),
    /// Trust the completeness check alone (tests, and the probe child itself).
    None,
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
pub fn load(path: &Path, probe: &Probe) -> Result<LoadedPlugin, LoadError> {
    let stamp = file_stamp(path);
    let shadow = shadow_copy(path)?;
    let result = check_and_load(path, &shadow, probe);
    // Mapped or refused, the copy is no longer needed (a mapping keeps its
    // inode alive), so nothing is left behind in the temp directory.
    let _ = std::fs::remove_file(&shadow);
    let (module, manifest) = result?;
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

fn check_and_load(
    path: &Path,
    shadow: &Path,
    probe: &Probe,
) -> Result<(PluginModuleRef, Manifest), LoadError> {
    check_complete(path, shadow)?;
    if let Probe::ChildProcess(exe) = probe {
        probe_in_child(exe, path, shadow)?;
    }
    load_in_process(path, shadow)
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
    let module = header
        .init_root_module::<PluginModuleRef>()
        .map_err(|e| LoadError::from_library(path.to_path_buf(), &e))?;
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

fn probe_in_child(exe: &Path, path: &Path, shadow: &Path) -> Result<(), LoadError> {
    let output = Command::new(exe)
        .arg(PROBE_SUBCOMMAND)
        .arg(shadow)
        .arg(path)
        .env_remove("RUST_LOG")
        .output()
        .map_err(|source| LoadError::Io {
            path: exe.to_path_buf(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = output.status.signal() {
            return Err(LoadError::Crashed {
                path: path.to_path_buf(),
                signal: signal_name(signal),
            });
        }
    }
    let message = String::from_utf8_lossy(&output.stderr);
    let line = message
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(LoadError::Other {
        path: path.to_path_buf(),
        detail: match line.strip_prefix(&format!("{}: ", path.display())) {
            Some(detail) => detail.to_string(),
            None if line.is_empty() => format!("the probe process failed ({})", output.status),
            None => line.to_string(),
        },
    })
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

/// Copies `path` to a new, uniquely named file in this process's shadow
/// directory.
fn shadow_copy(path: &Path) -> Result<PathBuf, LoadError> {
    let dir = shadow_dir();
    std::fs::create_dir_all(&dir).map_err(|source| LoadError::Io {
        path: dir.clone(),
        source,
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_string());
    let n = SHADOW_COUNTER.fetch_add(1, Ordering::Relaxed);
    let shadow = dir.join(format!("{stem}-{n}.{}", std::env::consts::DLL_EXTENSION));
    std::fs::copy(path, &shadow).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(shadow)
}

/// This process's private directory for shadow copies.
pub fn shadow_dir() -> PathBuf {
    std::env::temp_dir().join(format!("hsp-shadow-{}", std::process::id()))
}

/// Removes this process's (by then empty) shadow directory.
pub fn remove_shadow_dir() {
    let _ = std::fs::remove_dir(shadow_dir());
}

/// The body of the probe child: load `shadow`, report in terms of `path`.
pub fn run_probe(shadow: &Path, path: &Path) -> Result<(), LoadError> {
    check_complete(path, shadow)?;
    load_in_process(path, shadow).map(|_| ())
}

impl LoadedPlugin {
    /// What stage `kind` outputs with `config_json` given `input`: the
    /// plugin's answer, or its error message.
    pub fn output_format(
        &self,
        kind: &str,
        config_json: &str,
        input: Option<hsp_sdk::StreamFormat>,
    ) -> Result<Option<hsp_sdk::StreamFormat>, String> {
        (self.module.output_format())(kind.into(), config_json.into(), input.into())
            .into_result()
            .map(|format| format.into_option())
            .map_err(|e| e.into_string())
    }

    /// Builds a stage of `kind` from `config_json` for input of `input`.
    pub fn create_stage(
        &self,
        kind: &str,
        config_json: &str,
        input: Option<hsp_sdk::StreamFormat>,
    ) -> Result<hsp_sdk::abi::FfiStageBox, String> {
        (self.module.create_stage())(kind.into(), config_json.into(), input.into())
            .into_result()
            .map_err(|e| e.into_string())
    }

    /// Builds a control stage of `kind` from `config_json`.
    pub fn create_control_stage(
        &self,
        kind: &str,
        config_json: &str,
    ) -> Result<hsp_sdk::abi::FfiControlStageBox, String> {
        (self.module.create_control_stage())(kind.into(), config_json.into())
            .into_result()
            .map_err(|e| e.into_string())
    }
}
