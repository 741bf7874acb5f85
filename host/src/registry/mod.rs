//! The plugin registry: finds plugin libraries along the search path, loads
//! each safely, and indexes their stage kinds.

mod elf;
mod error;
mod install;
mod load;
mod search_path;
mod shadow;
mod trust;

pub use elf::plugin_abi;
pub use error::LoadError;
pub use install::{InstallError, install};
pub use load::{
    DEFAULT_PROBE_TIMEOUT, EntryPoints, LoadPolicy, LoadedPlugin, PROBE_SUBCOMMAND,
    PROBE_TIMEOUT_ENV, Probe, file_stamp, mapped_libraries, run_probe,
};
pub use search_path::{PLUGIN_PATH_ENV, drop_in_dirs, library_files, plugin_dirs};
pub use shadow::{current_shadow_dir, remove_shadow_dir};
pub use trust::{OVERRIDE_FLAG, Trust};

use hsp_sdk::abi::StageDescriptor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every plugin found, the files that failed and why, and an index of stage
/// kinds. A file that fails never stops the others from loading.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    plugins: Vec<LoadedPlugin>,
    failures: Vec<LoadError>,
    skipped: Vec<LoadError>,
    kinds: BTreeMap<String, (usize, usize)>,
}

impl PluginRegistry {
    /// Loads every library directly inside `dirs`, in order. A file whose
    /// name was already loaded from an earlier directory is skipped (the
    /// earlier one wins, like `PATH`). Under [`Trust::Strict`], a directory
    /// someone else could write to is refused whole (one failure names it).
    pub fn discover(dirs: &[PathBuf], policy: &LoadPolicy) -> Self {
        let mut registry = Self::default();
        let mut loaded_names: BTreeMap<std::ffi::OsString, PathBuf> = BTreeMap::new();
        for dir in dirs {
            let files = library_files(dir);
            if files.is_empty() {
                continue;
            }
            if policy.trust == Trust::Strict {
                if let Err(reason) = trust::check_dir(dir) {
                    registry.failures.push(LoadError::Untrusted {
                        path: dir.clone(),
                        reason,
                    });
                    continue;
                }
            }
            for file in files {
                // Read from the file, not loaded: its code never runs.
                if elf::is_proc_macro(&file) {
                    tracing::debug!(file = %file.display(), "a procedural-macro library; skipped");
                    registry.skipped.push(LoadError::ProcMacro { path: file });
                    continue;
                }
                let name = file.file_name().unwrap_or_default().to_os_string();
                if let Some(other) = loaded_names.get(&name) {
                    registry.skipped.push(LoadError::Shadowed {
                        path: file.clone(),
                        name: name.to_string_lossy().into_owned(),
                        other: other.clone(),
                    });
                    continue;
                }
                if registry.add_file(&file, policy).is_ok() {
                    loaded_names.insert(name, file);
                }
            }
        }
        registry
    }

    /// Loads one file and registers its stage kinds, or records why not.
    pub fn add_file(
        &mut self,
        path: &Path,
        policy: &LoadPolicy,
    ) -> Result<&LoadedPlugin, &LoadError> {
        match load::load(path, policy).and_then(|plugin| self.check_kinds(plugin)) {
            Ok(plugin) => {
                let index = self.plugins.len();
                for (stage_index, stage) in plugin.manifest.stages.iter().enumerate() {
                    self.kinds
                        .insert(stage.kind.to_string(), (index, stage_index));
                }
                tracing::debug!(file = %path.display(), plugin = %plugin.manifest.name, "plugin loaded");
                self.plugins.push(plugin);
                Ok(&self.plugins[index])
            }
            Err(error) => {
                tracing::debug!("{error}");
                self.failures.push(error);
                Err(self.failures.last().expect("just pushed"))
            }
        }
    }

    /// Loads `path` again after it changed on disk (a new build dropped into
    /// a plugin directory): a new file is added; a file loaded before is
    /// replaced, its stage kinds then served by the new code. Returns the
    /// stage kinds the file provides now, or `None` if the file is the one
    /// already loaded (same size and modification time). On failure the
    /// registry is as it was (the old code keeps serving its kinds).
    ///
    /// `path` may be spelt differently from the path it was found under
    /// (relative or absolute): both are made absolute before comparing.
    pub fn reload_file(
        &mut self,
        path: &Path,
        policy: &LoadPolicy,
    ) -> Result<Option<Vec<String>>, LoadError> {
        let wanted = absolute(path);
        let Some(old) = self
            .plugins
            .iter()
            .position(|p| absolute(&p.path) == wanted)
        else {
            if policy.trust == Trust::Strict {
                if let Some(dir) = path.parent() {
                    trust::check_dir(dir).map_err(|reason| LoadError::Untrusted {
                        path: dir.to_path_buf(),
                        reason,
                    })?;
                }
            }
            let plugin = load::load(path, policy).and_then(|plugin| self.check_kinds(plugin))?;
            let index = self.plugins.len();
            for (stage_index, stage) in plugin.manifest.stages.iter().enumerate() {
                self.kinds
                    .insert(stage.kind.to_string(), (index, stage_index));
            }
            let kinds = kinds_of(&plugin);
            self.plugins.push(plugin);
            return Ok(Some(kinds));
        };
        let stamp = load::file_stamp(path);
        if stamp.is_some() && stamp == self.plugins[old].stamp {
            return Ok(None);
        }
        let plugin = load::load(&self.plugins[old].path.clone(), policy)?;
        for stage in plugin.manifest.stages.iter() {
            if let Some(&(other, _)) = self.kinds.get(stage.kind.as_str()) {
                if other != old {
                    return Err(LoadError::DuplicateStageKind {
                        path: plugin.path.clone(),
                        kind: stage.kind.to_string(),
                        other: self.plugins[other].path.clone(),
                    });
                }
            }
        }
        self.kinds.retain(|_, (index, _)| *index != old);
        for (stage_index, stage) in plugin.manifest.stages.iter().enumerate() {
            self.kinds
                .insert(stage.kind.to_string(), (old, stage_index));
        }
        let kinds = kinds_of(&plugin);
        self.plugins[old] = plugin;
        Ok(Some(kinds))
    }

    fn check_kinds(&self, plugin: LoadedPlugin) -> Result<LoadedPlugin, LoadError> {
        for stage in plugin.manifest.stages.iter() {
            if let Some(&(other, _)) = self.kinds.get(stage.kind.as_str()) {
                return Err(LoadError::DuplicateStageKind {
                    path: plugin.path.clone(),
                    kind: stage.kind.to_string(),
                    other: self.plugins[other].path.clone(),
                });
            }
        }
        Ok(plugin)
    }

    /// The loaded plugins, in load order.
    pub fn plugins(&self) -> &[LoadedPlugin] {
        &self.plugins
    }

    /// The files that failed, with why.
    pub fn failures(&self) -> &[LoadError] {
        &self.failures
    }

    /// Files skipped: the same file name loaded from an earlier directory,
    /// or a library that is a build artifact, not a plugin.
    pub fn skipped(&self) -> &[LoadError] {
        &self.skipped
    }

    /// The plugin and descriptor of stage `kind`.
    pub fn stage(&self, kind: &str) -> Option<(&LoadedPlugin, &StageDescriptor)> {
        let &(plugin, stage) = self.kinds.get(kind)?;
        let plugin = &self.plugins[plugin];
        Some((plugin, &plugin.manifest.stages[stage]))
    }

    /// A plugin by its name (`hsp-iir`) or by its file stem (`libhsp_iir`).
    pub fn plugin(&self, name: &str) -> Option<&LoadedPlugin> {
        self.plugins.iter().find(|p| {
            p.manifest.name.as_str() == name || p.path.file_stem().is_some_and(|stem| stem == name)
        })
    }

    /// Every stage kind, sorted.
    pub fn stage_kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn kinds_of(plugin: &LoadedPlugin) -> Vec<String> {
    plugin
        .manifest
        .stages
        .iter()
        .map(|stage| stage.kind.to_string())
        .collect()
}
