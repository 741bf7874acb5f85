//! `host plugins list` and `host plugins inspect`, in the habits of
//! `gst-inspect-1.0`: a table of everything, then one thing in full.

use crate::registry::PluginRegistry;
use hsp_sdk::abi::{ConfigField, PortDescriptor, StageDescriptor, StageRole};
use std::fmt::Write as _;

/// The `list` report: one line per plugin, then the files that failed.
pub fn list(registry: &PluginRegistry) -> String {
    let mut out = String::new();
    let rows: Vec<[String; 4]> = registry
        .plugins()
        .iter()
        .map(|plugin| {
            [
                plugin.manifest.name.to_string(),
                plugin.manifest.version.to_string(),
                plugin.path.display().to_string(),
                plugin
                    .manifest
                    .stages
                    .iter()
                    .map(|s| s.kind.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    let header = ["PLUGIN", "VERSION", "FILE", "STAGE KINDS"];
    let widths: Vec<usize> = (0..3)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
                // A manifest's names come from a plugin: a width past
                // u16::MAX would make the formatter panic.
                .min(120)
        })
        .collect();
    let mut line = |cells: [&str; 4]| {
        let _ = writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    };
    line(header);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
    let _ = writeln!(
        out,
        "\n{} plugin(s), {} stage kind(s)",
        registry.plugins().len(),
        registry.stage_kinds().count()
    );
    if !registry.failures().is_empty() {
        let _ = writeln!(
            out,
            "\n{} file(s) failed to load:",
            registry.failures().len()
        );
        for failure in registry.failures() {
            let _ = writeln!(out, "  {failure}");
        }
    }
    out
}

/// The `inspect` report for a plugin (by name or file stem) or a stage kind.
pub fn inspect(registry: &PluginRegistry, name: &str) -> Option<String> {
    let mut out = String::new();
    if let Some(plugin) = registry.plugin(name) {
        let m = &plugin.manifest;
        let _ = writeln!(out, "Plugin {} {}", m.name, m.version);
        let _ = writeln!(out, "  file:        {}", plugin.path.display());
        let _ = writeln!(
            out,
            "  built with:  hsp-sdk {} (plugin ABI {})",
            m.sdk_version, m.abi_version
        );
        let _ = writeln!(out, "  stage kinds: {}", m.stages.len());
        for stage in m.stages.iter() {
            out.push('\n');
            describe_stage(&mut out, stage);
        }
        return Some(out);
    }
    let (plugin, stage) = registry.stage(name)?;
    describe_stage(&mut out, stage);
    let _ = writeln!(
        out,
        "\n  provided by {} {} ({})",
        plugin.manifest.name,
        plugin.manifest.version,
        plugin.path.display()
    );
    Some(out)
}

fn describe_stage(out: &mut String, stage: &StageDescriptor) {
    let kinds = |port: &PortDescriptor| {
        port.kinds
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let ports = |label: &str, ports: &[PortDescriptor], none: &str, out: &mut String| match ports {
        [] => {
            let _ = writeln!(out, "  {label} {none}");
        }
        [port] if port.name == "in" || port.name == "out" || stage.role == StageRole::Control => {
            let _ = writeln!(out, "  {label} {}", kinds(port));
        }
        many => {
            for port in many {
                let optional = if port.optional { " (optional)" } else { "" };
                let _ = writeln!(out, "  {label} `{}`: {}{optional}", port.name, kinds(port));
            }
        }
    };
    let _ = writeln!(out, "Stage kind `{}`", stage.kind);
    let _ = writeln!(out, "  {}", stage.doc);
    if stage.role == StageRole::Control {
        let _ = writeln!(
            out,
            "  runs on: the control plane (stage_type = \"control\")"
        );
        ports("input: ", &stage.inputs, "none", out);
        ports("output:", &stage.outputs, "none", out);
    } else {
        if stage.may_block {
            let _ = writeln!(
                out,
                "  runs on: a thread of its own (it may block on files, sockets or devices)"
            );
        }
        ports("input: ", &stage.inputs, "none (source)", out);
        ports("output:", &stage.outputs, "none (sink)", out);
    }
    if stage.config.is_empty() {
        let _ = writeln!(out, "  config: no keys");
        return;
    }
    let _ = writeln!(out, "  config:");
    let fields: Vec<&ConfigField> = stage.config.iter().collect();
    let key_width = fields
        .iter()
        .map(|f| f.key.len())
        .max()
        .unwrap_or(0)
        .min(64);
    let type_width = fields
        .iter()
        .map(|f| f.ty.name().len())
        .max()
        .unwrap_or(0)
        .min(64);
    for field in fields {
        let default = match field.default.as_ref().into_option() {
            Some(default) => format!("default {default}"),
            None => "required".to_string(),
        };
        let unit = if field.unit.is_empty() {
            String::new()
        } else {
            format!(" [{}]", field.unit)
        };
        let _ = writeln!(
            out,
            "    {:kw$}  {:tw$}  {:16}  {}{}",
            field.key,
            field.ty.name(),
            default,
            field.doc,
            unit,
            kw = key_width,
            tw = type_width
        );
    }
}

/// The plugin name, file stem or stage kind closest to `name`, if one is
/// close enough to be a typo of it.
pub fn suggest(registry: &PluginRegistry, name: &str) -> Option<String> {
    let names: Vec<String> = registry
        .stage_kinds()
        .map(str::to_string)
        .chain(
            registry
                .plugins()
                .iter()
                .map(|p| p.manifest.name.to_string()),
        )
        .collect();
    crate::graph::closest(name, names.iter().map(String::as_str)).map(str::to_string)
}
