//! Why a plugin file did not load, in one line a person can act on.
//! abi_stable's own (sometimes 80 kB) explanation goes to the debug log.

use abi_stable::library::LibraryError;
use std::path::{Path, PathBuf};

/// A plugin file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read or copied.
    #[error("{path}: cannot read the file: {source}")]
    Io {
        /// The plugin file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a shared library of this platform (garbage, a text file, ...).
    #[error("{path}: not a shared library ({reason})")]
    NotALibrary {
        /// The plugin file.
        path: PathBuf,
        /// What the loader said.
        reason: String,
    },
    /// An ELF file shorter than its own headers say: still being written, or cut.
    #[error(
        "{path}: truncated library ({actual} bytes, its headers need {needed}); not loaded (is it still being written?)"
    )]
    Truncated {
        /// The plugin file.
        path: PathBuf,
        /// Bytes the headers require.
        needed: u64,
        /// Bytes the file has.
        actual: u64,
    },
    /// Loading it in a child process killed that process.
    #[error("{path}: loading it crashed a probe process ({signal}); not loaded")]
    Crashed {
        /// The plugin file.
        path: PathBuf,
        /// The signal, by name.
        signal: String,
    },
    /// A shared library without an hsp root module.
    #[error(
        "{path}: not an hsp plugin (it exports no hsp root module; was it built with hsp_sdk::export_plugin!?)"
    )]
    NotAPlugin {
        /// The plugin file.
        path: PathBuf,
    },
    /// Built against an incompatible `hsp-sdk`.
    #[error(
        "{path}: built against an incompatible hsp-sdk: {detail}; rebuild it against hsp-sdk {host_sdk}"
    )]
    SdkMismatch {
        /// The plugin file.
        path: PathBuf,
        /// What differed, in one line.
        detail: String,
        /// The host's SDK version.
        host_sdk: &'static str,
    },
    /// Layout-compatible, but a different hsp ABI version.
    #[error(
        "{path}: declares hsp ABI version {found}, this host speaks {expected}; rebuild it against hsp-sdk {host_sdk}"
    )]
    AbiVersion {
        /// The plugin file.
        path: PathBuf,
        /// The plugin's ABI version.
        found: u32,
        /// The host's.
        expected: u32,
        /// The host's SDK version.
        host_sdk: &'static str,
    },
    /// Built for an older ABI than any that exports its version.
    #[error(
        "{path}: built for hsp plugin ABI 2 or older, this host speaks ABI {expected}: rebuild it against hsp-sdk {host_sdk}"
    )]
    OldAbi {
        /// The plugin file.
        path: PathBuf,
        /// The host's ABI version.
        expected: u32,
        /// The host's SDK version.
        host_sdk: &'static str,
    },
    /// Declares a stage kind another loaded plugin already provides.
    #[error(
        "{path}: stage kind `{kind}` is already provided by {other}, earlier in the search path, which wins; not loaded"
    )]
    DuplicateStageKind {
        /// The plugin file.
        path: PathBuf,
        /// The kind both declare.
        kind: String,
        /// The file that provides it first.
        other: PathBuf,
    },
    /// A Rust procedural-macro library: cargo leaves them beside the binaries
    /// it builds (the host's own directory), and they are never plugins.
    #[error("{path}: a Rust procedural-macro library, not a plugin; skipped")]
    ProcMacro {
        /// The library file.
        path: PathBuf,
    },
    /// The same plugin (by name) was already loaded from an earlier directory.
    #[error(
        "{path}: plugin `{name}` is already loaded from {other}, earlier in the search path; skipped"
    )]
    Shadowed {
        /// The plugin file.
        path: PathBuf,
        /// The plugin name.
        name: String,
        /// The file loaded instead.
        other: PathBuf,
    },
    /// A file or directory that someone other than the user could have
    /// written, or a symlink (see `registry/trust.rs`).
    #[error("{path}: refused: {reason} (pass --allow-insecure-plugins to load it anyway)")]
    Untrusted {
        /// The plugin file or directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The probe child did not finish loading it in time (a constructor
    /// that blocks, say); the child was killed.
    #[error(
        "{path}: loading it did not finish within {seconds} s in a probe process (killed); not loaded"
    )]
    ProbeTimeout {
        /// The plugin file.
        path: PathBuf,
        /// The time limit.
        seconds: f64,
    },
    /// Anything else the library loader reported.
    #[error("{path}: {detail}")]
    Other {
        /// The plugin file.
        path: PathBuf,
        /// One line.
        detail: String,
    },
}

impl LoadError {
    /// A plugin whose layout differs from this host's, by the ABI version
    /// its marker declares (`None`: it has none, so predates ABI 3).
    pub fn older_or_other_abi(path: &Path, found: Option<u32>) -> Self {
        match found {
            Some(found) => Self::AbiVersion {
                path: path.to_path_buf(),
                found,
                expected: hsp_sdk::abi::HSP_ABI_VERSION,
                host_sdk: hsp_sdk::abi::SDK_VERSION,
            },
            None => Self::OldAbi {
                path: path.to_path_buf(),
                expected: hsp_sdk::abi::HSP_ABI_VERSION,
                host_sdk: hsp_sdk::abi::SDK_VERSION,
            },
        }
    }

    /// `true` for a skipped duplicate of a plugin loaded from earlier in the
    /// search path: informational, not a fault.
    pub fn is_shadowed(&self) -> bool {
        matches!(self, Self::Shadowed { .. })
    }

    /// Maps abi_stable's error for `path` to one line; the full text is logged
    /// at debug level.
    pub fn from_library(path: PathBuf, error: &LibraryError) -> Self {
        tracing::debug!(file = %path.display(), "abi_stable: {error}");
        match error {
            LibraryError::OpenError { err, .. } => {
                let text = err.to_string();
                // dlerror's text starts with the (shadow) path; keep the reason.
                let reason = text.rsplit(": ").next().unwrap_or(&text).trim().to_string();
                Self::NotALibrary { path, reason }
            }
            LibraryError::GetSymbolError { .. } => Self::NotAPlugin { path },
            LibraryError::IncompatibleVersionNumber {
                expected_version,
                actual_version,
                ..
            } => Self::SdkMismatch {
                path,
                detail: format!(
                    "it was built against hsp-sdk {actual_version}, this host has {expected_version}"
                ),
                host_sdk: hsp_sdk::abi::SDK_VERSION,
            },
            LibraryError::AbiInstability(text) => Self::SdkMismatch {
                path,
                detail: abi_instability_digest(&text.to_string()),
                host_sdk: hsp_sdk::abi::SDK_VERSION,
            },
            LibraryError::InvalidAbiHeader(_) => Self::SdkMismatch {
                path,
                detail: "it was built with another major version of abi_stable".to_string(),
                host_sdk: hsp_sdk::abi::SDK_VERSION,
            },
            LibraryError::InvalidCAbi { .. } => Self::SdkMismatch {
                path,
                detail: "its C ABI differs (another compiler or target?)".to_string(),
                host_sdk: hsp_sdk::abi::SDK_VERSION,
            },
            other => Self::Other {
                path,
                detail: one_line(&other.to_string()),
            },
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// abi_stable flattens a layout mismatch into formatted text; pull out the
/// first differences as "<what> (expected X, found Y) in <type>".
fn abi_instability_digest(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut current_type = "?";
    let mut in_expected = false;
    let mut found: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if line.starts_with("Layout of expected type:") {
            in_expected = true;
        } else if in_expected && trimmed.starts_with("type:") {
            current_type = trimmed.trim_start_matches("type:").trim();
            in_expected = false;
        } else if let Some(message) = line.strip_prefix("Error:") {
            let value_after = |label: &str| {
                lines[i + 1..]
                    .iter()
                    .take(8)
                    .position(|l| l.trim() == label)
                    .and_then(|k| lines.get(i + 2 + k))
                    .map(|v| v.trim())
                    .unwrap_or("?")
            };
            let item = format!(
                "{} (expected {}, found {}) in {current_type}",
                message.trim(),
                value_after("Expected:"),
                value_after("Found:")
            );
            if !found.contains(&item) {
                found.push(item);
            }
        }
    }
    match found.len() {
        0 => "the layouts of its types differ from this host's".to_string(),
        1..=2 => found.join("; "),
        n => format!("{}; {} (+{} more differences)", found[0], found[1], n - 2),
    }
}
