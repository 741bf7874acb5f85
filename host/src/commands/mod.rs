//! What each CLI subcommand does, apart from parsing (in `main.rs`).

pub mod bench;
pub mod plugins;
pub mod run;
pub mod validate;

use crate::registry::{LoadPolicy, PluginRegistry, Probe, Trust, plugin_dirs};
use std::path::PathBuf;

/// Discovers plugins along the search path built from `cli_dirs`, probing
/// each library in a child process of this executable.
pub fn discover_plugins(cli_dirs: &[PathBuf], trust: Trust) -> PluginRegistry {
    let dirs = plugin_dirs(cli_dirs);
    tracing::debug!(?dirs, "plugin search path");
    PluginRegistry::discover(&dirs, &load_policy(trust))
}

/// How libraries are checked before they are loaded: trust as given, and a
/// probe in a child process of this executable when it can be found.
pub fn load_policy(trust: Trust) -> LoadPolicy {
    LoadPolicy {
        probe: probe(),
        trust,
    }
}

fn probe() -> Probe {
    match std::env::current_exe() {
        Ok(exe) => Probe::child(exe),
        Err(error) => {
            tracing::warn!(
                "cannot find the host executable to probe plugins in a child process ({error}); loading without a probe"
            );
            Probe::None
        }
    }
}
