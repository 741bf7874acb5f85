//! `host run FILE`: validate, build, run to the end, print the stats.

use crate::graph::{PipelineGraph, load_pipeline};
use crate::registry::PluginRegistry;
use crate::reload::{self, WatchSetup};
use crate::runtime::RunOptions;
use std::path::Path;

/// Exit code for a run that failed while running.
pub const EXIT_RUNTIME_FAILURE: u8 = 1;
/// Exit code for invalid input (pipeline file, config, plugins).
pub const EXIT_INVALID_INPUT: u8 = 2;

/// Loads and validates `file`, printing every error; `None` if invalid.
pub fn load_or_report(file: &Path, registry: &PluginRegistry) -> Option<PipelineGraph> {
    match load_pipeline(file, registry) {
        Ok(graph) => Some(graph),
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!(
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
    match reload::run(file, graph, registry, watch, options) {
        Ok(outcome) => {
            eprint!("{}", outcome.report.table);
            eprint!("{}", outcome.control_table);
            let report = &outcome.report;
            eprintln!(
                "  data-plane allocations after warm-up: {} over {} packet moves",
                report.steady_state_allocations, report.steady_state_packets
            );
            if !report.pools_full {
                eprintln!("  warning: some packets did not return to their pools");
            }
            0
        }
        Err(error) => {
            eprintln!("error: {}: {error}", file.display());
            EXIT_RUNTIME_FAILURE
        }
    }
}
