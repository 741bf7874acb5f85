//! `host new-plugin`: a ready cargo project for one stage, from templates
//! that build and load on the first try (a test builds every kind).

use std::path::{Path, PathBuf};

/// What kind of stage to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    /// No input, emits raw EEG.
    Source,
    /// Raw EEG in, raw EEG out.
    Filter,
    /// Raw EEG in, nothing out.
    Sink,
    /// On the control plane: band powers in, events out.
    Control,
    /// Two EEG inputs, one EEG output.
    Mix,
}

impl TemplateKind {
    /// The generated README's paragraph on `src/lib.rs`.
    fn stage_section(self) -> &'static str {
        match self {
            Self::Control => {
                "`src/lib.rs` holds one `ControlStage` implementation: its config struct (keys,\n\
                 defaults, units and docs are declared once, on its fields), `ACCEPTS` (the packet kinds\n\
                 its inputs may carry), `new` (build from config and reject bad values: the host\n\
                 also calls it to validate a pipeline), `on_packet` (one call per packet, on the\n\
                 tokio control plane's blocking pool: it may allocate and block, and a slow call\n\
                 delays only its own messages), and `export_plugin!(; control: ...)`, which\n\
                 publishes it to the host."
            }
            Self::Mix => {
                "`src/lib.rs` holds one `Stage` implementation with two input ports: its config\n\
                 struct, an enum with `#[derive(InputPorts)]` (one variant per port, named in\n\
                 snake case: `a`, `b`), `output_formats` (checks the two streams fit together),\n\
                 `process` (one packet per call, from whichever port has the oldest waiting: it\n\
                 pairs them itself, with no allocation, lock or blocking), and `export_plugin!`."
            }
            _ => {
                "`src/lib.rs` holds one `Stage` implementation: its config struct (keys,\n\
                 defaults, units and docs are declared once, on its fields), `new` (build from config),\n\
                 `process` (one call per packet, on the data-plane thread: do not allocate,\n\
                 lock or block there), and `export_plugin!`, which publishes it to the host."
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Source => "a source: emits a sine wave",
            Self::Filter => "a filter: removes each channel's DC offset",
            Self::Sink => "a sink: prints each channel's RMS at the end",
            Self::Control => {
                "a control stage: an event when a band power's mean over a window exceeds a level"
            }
            Self::Mix => "a stage with two inputs: the first stream plus a scaled second",
        }
    }
}

/// Why a project was not generated.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The name is not a valid crate and stage name.
    #[error(
        "`{0}` is not a valid plugin name: use lowercase letters, digits, `_` or `-`, starting with a letter (e.g. `my_filter`)"
    )]
    InvalidName(String),
    /// The target exists; nothing is overwritten.
    #[error("{0} already exists; choose another name or --dir (nothing was overwritten)")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// What was being written.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Checks `name` as a crate name whose stage kind (`-` as `_`) is a valid
/// identifier-like name.
pub fn check_name(name: &str) -> Result<(), TemplateError> {
    let mut chars = name.chars();
    let valid = name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && !name.ends_with(['-', '_']);
    if valid {
        Ok(())
    } else {
        Err(TemplateError::InvalidName(name.to_string()))
    }
}

/// The `hsp-sdk` dependency line for a generated `Cargo.toml`: a path to this
/// repository's SDK when the host was built from it and it is still there,
/// otherwise the exact registry version.
pub fn sdk_dependency() -> String {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    match sdk.join("Cargo.toml").is_file().then(|| sdk.canonicalize()) {
        Some(Ok(path)) => format!(
            "hsp-sdk = {{ path = {:?} }}  # this host's SDK, {}",
            path.display().to_string(),
            hsp_sdk::abi::SDK_VERSION
        ),
        _ => format!("hsp-sdk = \"={}\"", hsp_sdk::abi::SDK_VERSION),
    }
}

/// Writes a new plugin project named `name` into `dir` (created; must not
/// exist) and returns the files written.
pub fn generate(name: &str, dir: &Path, kind: TemplateKind) -> Result<Vec<PathBuf>, TemplateError> {
    check_name(name)?;
    if dir.exists() {
        return Err(TemplateError::Exists(dir.to_path_buf()));
    }
    let stage_kind = name.replace('-', "_");
    let struct_name: String = stage_kind
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    let substitute = |template: &str| {
        template
            .replace("{{crate_name}}", name)
            .replace("{{lib_name}}", &stage_kind)
            .replace("{{kind}}", &stage_kind)
            .replace("{{struct_name}}", &struct_name)
            .replace("{{kind_description}}", kind.describe())
            .replace("{{stage_section}}", kind.stage_section())
            .replace("{{sdk_dependency}}", &sdk_dependency())
    };
    let (lib, pipeline) = match kind {
        TemplateKind::Source => (
            include_str!("files/source.rs.tmpl"),
            include_str!("files/pipeline_source.toml.tmpl"),
        ),
        TemplateKind::Filter => (
            include_str!("files/filter.rs.tmpl"),
            include_str!("files/pipeline_filter.toml.tmpl"),
        ),
        TemplateKind::Sink => (
            include_str!("files/sink.rs.tmpl"),
            include_str!("files/pipeline_sink.toml.tmpl"),
        ),
        TemplateKind::Control => (
            include_str!("files/control.rs.tmpl"),
            include_str!("files/pipeline_control.toml.tmpl"),
        ),
        TemplateKind::Mix => (
            include_str!("files/mix.rs.tmpl"),
            include_str!("files/pipeline_mix.toml.tmpl"),
        ),
    };
    let files = [
        ("Cargo.toml", include_str!("files/Cargo.toml.tmpl")),
        ("README.md", include_str!("files/README.md.tmpl")),
        (".gitignore", include_str!("files/gitignore.tmpl")),
        ("src/lib.rs", lib),
        ("pipeline.toml", pipeline),
    ];
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TemplateError::Io { path, source }
    };
    std::fs::create_dir_all(dir.join("src")).map_err(io(dir))?;
    let mut written = Vec::new();
    for (relative, template) in files {
        let path = dir.join(relative);
        std::fs::write(&path, substitute(template)).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["my_filter", "notch2", "alpha-detector"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "My", "2fast", "has space", "x/y", "trailing_", "ünï"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
