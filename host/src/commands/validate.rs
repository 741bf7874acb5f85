//! `host validate FILE`: check a pipeline file against the plugins found,
//! without running it.

use crate::graph::{self, PipelineGraph, StageType, ValidationError, describe_format};
use crate::registry::PluginRegistry;
use std::fmt::Write as _;
use std::path::Path;

/// Checks the pipeline at `file`: the report to print on success (exit 0),
/// or every error (exit 2).
pub fn validate(registry: &PluginRegistry, file: &Path) -> Result<String, Vec<ValidationError>> {
    graph::load_pipeline(file, registry).map(|graph| report(file, &graph))
}

/// `FILE: ok (N stages: a -> b -> c)`, then one line per stage with its kind
/// and the format it emits.
pub fn report(file: &Path, graph: &PipelineGraph) -> String {
    let mut out = String::new();
    let ids: Vec<&str> = graph.stages.iter().map(|s| s.id.as_str()).collect();
    let _ = writeln!(
        out,
        "{}: ok ({} stage{}: {})",
        file.display(),
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        ids.join(" -> ")
    );
    let id_width = ids.iter().map(|id| id.len()).max().unwrap_or(0);
    let kind_width = graph.stages.iter().map(|s| s.kind.len()).max().unwrap_or(0);
    for stage in &graph.stages {
        let mut output = match &stage.output_format {
            Some(format) => describe_format(format),
            None => "sink".to_string(),
        };
        if stage.stage_type == StageType::Control {
            output.push_str(" (control plane)");
        }
        let _ = writeln!(
            out,
            "  {:iw$}  {:kw$}  -> {output}",
            stage.id,
            stage.kind,
            iw = id_width,
            kw = kind_width
        );
    }
    out
}
