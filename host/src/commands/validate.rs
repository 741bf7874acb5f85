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
        for warning in &graph.warnings {
            let _ = writeln!(out, "{warning}");
        }
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
        let outputs = &stage.recipe.output_formats;
        let mut output = match &outputs[..] {
            [] => "sink".to_string(),
            [format] => describe_format(format),
            _ => format!(
                "{} outputs: {}",
                outputs.len(),
                (0..outputs.len())
                    .map(|port| stage.recipe.output_port_name(port))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        if stage.stage_type == StageType::Control {
            output.push_str(" (control plane)");
        } else if stage.recipe.may_block() {
            output.push_str(" (own thread)");
        }
        let _ = writeln!(
            out,
            "  {:iw$}  {:kw$}  -> {output}",
            stage.id,
            stage.kind(),
            iw = id_width,
            kw = kind_width
        );
        let pad = " ".repeat(id_width + kind_width + 6);
        for (port, format) in outputs.iter().enumerate() {
            if outputs.len() > 1 {
                let name = stage.recipe.output_port_name(port);
                let _ = writeln!(out, "{pad}.{name} -> {}", describe_format(format));
            }
            if let Some(channels) = describe_channels(format) {
                let _ = writeln!(out, "{pad}   {channels}");
            }
        }
    }
    out
}

/// `channels: Fz, Cz, Pz (uV)`, or with a unit per channel when they
/// differ; `None` for a stream without channels (events).
fn describe_channels(format: &hsp_sdk::StreamFormat) -> Option<String> {
    if format.kind == hsp_sdk::PacketKind::Event || format.channels == 0 {
        return None;
    }
    let channels = format.channel_list();
    let same_unit = channels.windows(2).all(|w| w[0].unit == w[1].unit);
    let listed: Vec<String> = channels
        .iter()
        .map(|c| {
            let kind = if c.kind == hsp_sdk::ChannelType::Eeg {
                String::new()
            } else {
                format!(" {}", c.kind.name())
            };
            if same_unit {
                format!("{}{kind}", c.label)
            } else {
                format!("{} ({}{kind})", c.label, c.unit)
            }
        })
        .collect();
    let mut text = format!("channels: {}", listed.join(", "));
    if same_unit && !channels[0].unit.is_empty() {
        text.push_str(&format!(" ({})", channels[0].unit));
    }
    let prefilter = &channels[0].prefilter;
    if !prefilter.is_empty() && channels.iter().all(|c| c.prefilter == *prefilter) {
        text.push_str(&format!(", filtered {prefilter}"));
    }
    if format.source.as_str() != "" {
        text.push_str(&format!(", from {}", format.source));
    }
    Some(text)
}
