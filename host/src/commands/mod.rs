//! What each CLI subcommand does, apart from parsing (in `main.rs`).

pub mod bench;
pub mod plugins;
pub mod run;
pub mod validate;

use crate::registry::{PluginRegistry, Probe, plugin_dirs};
use std::path::PathBuf;

/// Discovers plugins along the search path built from `cli_dirs`, probing
/// each library in a child process of this executable.
pub fn discover_plugins(cli_dirs: &[PathBuf]) -> PluginRegistry {
    let dirs = plugin_dirs(cli_dirs);
    tracing::debug!(?dirs, "plugin search path");
    PluginRegistry::discover(&dirs, &probe())
}

/// How libraries are checked before they are loaded: in a child process of
/// this executable when it can be found.
pub fn probe() -> Probe {
    match std::env::current_exe() {
        Ok(exe) => Probe::ChildProcess(exe),
        Err(error) => {
            tracing::warn!(
                "cannot find the host executable to probe plugins in a child process ({error}); loading without a probe"
            );
            Probe::None
        }
    }
}
