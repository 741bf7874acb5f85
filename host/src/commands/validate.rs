//! `host validate FILE`: check a pipeline file against the plugins found,
//! without running it.

use crate::graph::{self, PipelineGraph, StageType, ValidationError, describe_format};
use crate::registry::PluginRegistry;
use std::fmt::Write as _;
use std::path::Path;

/// Checks the pipeline at `file`: the report to print on success (exit 0),
/// or every error (exit 2).
pub fn validate(registry: &PluginRegistry, file: &Path) -> Result<String, Vec<ValidationError>> {
    graph::load_pipeline(file, registry).map(|graph| {
        let mut out = report(file, &graph);
        out.push_str(&plugins_used(registry, &graph));
        out
    })
}

/// Which library file each stage kind of `graph` was loaded from: plugin
/// files are code, so the user sees whose code a pipeline would run.
pub fn plugins_used(registry: &PluginRegistry, graph: &PipelineGraph) -> String {
    let mut files: Vec<(String, Vec<&str>)> = Vec::new();
    for stage in &graph.stages {
        let Some((plugin, _)) = registry.stage(stage.kind()) else {
            continue;
        };
        let path = plugin.path.display().to_string();
        match files.iter_mut().find(|(p, _)| *p == path) {
            Some((_, kinds)) if kinds.contains(&stage.kind()) => {}
            Some((_, kinds)) => kinds.push(stage.kind()),
            None => files.push((path, vec![stage.kind()])),
        }
    }
    let mut out = String::from("  plugin files loaded for it:\n");
    for (path, kinds) in files {
        let _ = writeln!(out, "    {path} ({})", kinds.join(", "));
    }
    out
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
    // Capped: a width past u16::MAX makes the formatter panic.
    let id_width = ids.iter().map(|id| id.len()).max().unwrap_or(0).min(64);
    let kind_width = graph
        .stages
        .iter()
        .map(|s| s.kind().len())
        .max()
        .unwrap_or(0)
        .min(64);
    for stage in &graph.stages {
        let mut output = match &stage.recipe.output_format {
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
            stage.kind(),
            iw = id_width,
            kw = kind_width
        );
    }
    out
}
