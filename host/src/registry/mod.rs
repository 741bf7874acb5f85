//! The plugin registry: finds plugin libraries along the search path, loads
//! each safely, and indexes their stage kinds.

mod elf;
mod error;
mod install;
mod load;
mod search_path;

pub use error::LoadError;
pub use install::install;
pub use load::{
    LoadedPlugin, PROBE_SUBCOMMAND, Probe, mapped_libraries, remove_shadow_dir, run_probe,
};
pub use search_path::{PLUGIN_PATH_ENV, drop_in_dirs, library_files, plugin_dirs};

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
    /// earlier one wins, like `PATH`).
    pub fn discover(dirs: &[PathBuf], probe: &Probe) -> Self {
        let mut registry = Self::default();
        let mut loaded_names: BTreeMap<std::ffi::OsString, PathBuf> = BTreeMap::new();
        for dir in dirs {
            for file in library_files(dir) {
                let name = file.file_name().unwrap_or_default().to_os_string();
                if let Some(other) = loaded_names.get(&name) {
                    registry.skipped.push(LoadError::Shadowed {
                        path: file.clone(),
                        name: name.to_string_lossy().into_owned(),
                        other: other.clone(),
                    });
                    continue;
                }
                if registry.add_file(&file, probe).is_ok() {
                    loaded_names.insert(name, file);
                }
            }
        }
        registry
    }

    /// Loads one file and registers its stage kinds, or records why not.
    pub fn add_file(&mut self, path: &Path, probe: &Probe) -> Result<&LoadedPlugin, &LoadError> {
        match load::load(path, probe).and_then(|plugin| self.check_kinds(plugin)) {
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
    pub fn reload_file(
        &mut self,
        path: &Path,
        probe: &Probe,
    ) -> Result<Option<Vec<String>>, LoadError> {
        let Some(old) = self.plugins.iter().position(|p| p.path == path) else {
            let plugin = load::load(path, probe).and_then(|plugin| self.check_kinds(plugin))?;
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
        let plugin = load::load(path, probe)?;
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

    /// Files skipped because the same file name loaded from an earlier directory.
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

fn kinds_of(plugin: &LoadedPlugin) -> Vec<String> {
    plugin
        .manifest
        .stages
        .iter()
        .map(|stage| stage.kind.to_string())
        .collect()
}
