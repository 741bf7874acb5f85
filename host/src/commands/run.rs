//! `host run FILE`: validate, build, run to the end, print the stats.

use crate::graph::{PipelineGraph, load_pipeline};
use crate::registry::PluginRegistry;
use crate::reload::{self, WatchSetup};
use crate::runtime::{RunOptions, SignalWatch};
use std::path::Path;

/// Exit code for a run that failed while running.
pub const EXIT_RUNTIME_FAILURE: u8 = 1;
/// Exit code for invalid input (pipeline file, config, plugins).
pub const EXIT_INVALID_INPUT: u8 = 2;

/// Loads and validates `file`, printing every error; `None` if invalid.
pub fn load_or_report(file: &Path, registry: &PluginRegistry) -> Option<PipelineGraph> {
    match load_pipeline(file, registry) {
        Ok(graph) => {
            for warning in &graph.warnings {
                crate::errln!("{warning}");
            }
            Some(graph)
        }
        Err(errors) => {
            for error in &errors {
                crate::errln!("{error}");
            }
            crate::errln!(
                "{}: {} error(s); nothing was run",
                file.display(),
                errors.len()
            );
            None
        }
    }
}

/// Runs `file`, applying changes to it and to the plugins while it runs when
/// `watch` is given; returns the process exit code.
pub fn run(
    file: &Path,
    registry: PluginRegistry,
    watch: Option<WatchSetup>,
    options: &RunOptions,
    signals: SignalWatch,
) -> u8 {
    for failure in registry.failures() {
        tracing::warn!("{failure}");
    }
    let Some(graph) = load_or_report(file, &registry) else {
        return EXIT_INVALID_INPUT;
    };
    tracing::info!(
        pipeline = %graph.name,
        stages = graph.stages.len(),
        "running {}",
        file.display()
    );
    match reload::run(file, graph, registry, watch, options, signals) {
        Ok(outcome) => {
            crate::err!("{}", outcome.report.table);
            crate::err!("{}", outcome.control_table);
            let report = &outcome.report;
            crate::errln!(
                "  data-plane allocations after warm-up: {} over {} packet moves ({} by plugin code); {} while swapping stages or handling errors",
                report.steady_state_allocations,
                report.steady_state_packets,
                report.steady_state_plugin_allocations,
                report.control_path_allocations,
            );
            if !report.pools_full {
                crate::errln!("  warning: some packets did not return to their pools");
            }
            for failure in &report.stop_failures {
                crate::errln!(
                    "error: {}: {failure}; what it held may be lost",
                    file.display()
                );
            }
            if report.aborted {
                crate::errln!(
                    "  stopped at once by a second signal: packets still queued were let go (see the edges' dropped counts)"
                );
            }
            if report.aborted || crate::runtime::interrupted_twice() {
                return crate::runtime::EXIT_INTERRUPTED as u8;
            }
            if report.stop_failures.is_empty() {
                0
            } else {
                EXIT_RUNTIME_FAILURE
            }
        }
        Err(error) => {
            crate::errln!("error: {}: {error}", file.display());
            EXIT_RUNTIME_FAILURE
        }
    }
}
