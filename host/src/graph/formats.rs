//! What stream formats flow along the edges? Each stage's plugin is asked,
//! upstream first, what it emits for its config and its input's format;
//! a refusal is reported at the config key it names.

use super::model::describe_format;
use super::packet_types::{accepted, converters};
use super::raw::RawStage;
use super::report::{Issue, Span, name_of};
use super::stage::{Checked, Upstream};
use crate::registry::{LoadedPlugin, PluginRegistry};
use hsp_sdk::abi::{StageDescriptor, StageRole};
use hsp_sdk::{PacketKind, StreamFormat};

/// A stage's negotiated formats: each input port's (none for a source),
/// each output port's (none for a sink).
pub(super) type StageFormats = (Vec<StreamFormat>, Vec<StreamFormat>);

/// Negotiated (input, output) formats per stage (file order); `None` for a
/// stage that failed or sits below one that did.
pub(super) fn negotiate(
    order: &[usize],
    stages: &[RawStage],
    checked: &[Checked<'_>],
    registry: &PluginRegistry,
    issues: &mut Vec<Issue>,
) -> Vec<Option<StageFormats>> {
    let mut formats: Vec<Option<StageFormats>> = vec![None; stages.len()];
    for &i in order {
        let this = &checked[i];
        let (Some(found), Some(config_json), true) = (this.stage, &this.config_json, this.ok)
        else {
            continue;
        };
        // A data-plane stage gets one format per input port; a control
        // stage with several inputs gets the first one's (their types were
        // checked to match what it accepts).
        let listed = if found.1.role == StageRole::Control {
            &this.inputs[..this.inputs.len().min(1)]
        } else {
            &this.inputs[..]
        };
        let inputs: Option<Vec<StreamFormat>> = listed
            .iter()
            .map(|up| {
                formats[up.from]
                    .as_ref()
                    .and_then(|(_, outputs)| outputs.get(up.port).cloned())
            })
            .collect();
        let Some(inputs) = inputs else {
            continue; // upstream failed: reported there
        };
        if !kinds_fit(
            &stages[i], found.1, &inputs, listed, stages, registry, issues,
        ) {
            continue;
        }
        let upstreams: Vec<&RawStage> = listed.iter().map(|up| &stages[up.from]).collect();
        if let Some(outputs) =
            outputs_of(&stages[i], found, config_json, &inputs, &upstreams, issues)
        {
            formats[i] = Some((inputs, outputs));
        }
    }
    formats
}

/// Whether each negotiated input kind is one its port takes (an upstream
/// port that can emit several kinds settled on one); reported at the
/// `inputs` entry when not.
fn kinds_fit(
    stage: &RawStage,
    descriptor: &StageDescriptor,
    inputs: &[StreamFormat],
    listed: &[Upstream],
    stages: &[RawStage],
    registry: &PluginRegistry,
    issues: &mut Vec<Issue>,
) -> bool {
    let mut ok = true;
    for ((format, port), up) in inputs.iter().zip(descriptor.inputs.iter()).zip(listed) {
        if !port.kinds.contains(&format.kind) {
            let kinds: Vec<PacketKind> = port.kinds.iter().copied().collect();
            let on_port = if descriptor.inputs.len() > 1 {
                format!(" on input `{}`", port.name)
            } else {
                String::new()
            };
            let upstream = &stages[up.from];
            let upstream_kind = upstream
                .plugin
                .as_ref()
                .map_or("?", |p| p.get_ref().as_str());
            issues.push(
                Issue::new(
                    up.span.clone(),
                    format!(
                        "packet types do not match: stage {} (`{}`) takes {}{on_port}, but its input {} (`{upstream_kind}`) emits {}",
                        name_of(stage),
                        descriptor.kind,
                        accepted(&kinds),
                        name_of(upstream),
                        format.kind
                    ),
                )
                .hint(converters(registry, &[format.kind], &kinds)),
            );
            ok = false;
        }
    }
    ok
}

/// What `plugin` says `stage` emits on each output port when fed `inputs`
/// (from `upstreams`); `None`, reported, when it refuses, or answers with
/// packets too large to pool, with channels that do not match its shape,
/// or with outputs its descriptor does not declare.
fn outputs_of(
    stage: &RawStage,
    (plugin, descriptor): (&LoadedPlugin, &StageDescriptor),
    config_json: &str,
    inputs: &[StreamFormat],
    upstreams: &[&RawStage],
    issues: &mut Vec<Issue>,
) -> Option<Vec<StreamFormat>> {
    let kind = descriptor.kind.as_str();
    let outputs = match plugin
        .entry_points()
        .output_formats(kind, config_json, inputs)
    {
        Ok(outputs) => outputs,
        Err(text) => {
            let span = error_span(stage, &text);
            let hint = (!inputs.is_empty()).then(|| {
                inputs
                    .iter()
                    .zip(upstreams)
                    .map(|(format, upstream)| {
                        format!(
                            "its input from {}: {}",
                            name_of(upstream),
                            describe_format(format)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            issues.push(
                Issue::new(
                    span,
                    format!("stage {} (`{kind}`): {}", name_of(stage), text.trim()),
                )
                .maybe_hint(hint),
            );
            return None;
        }
    };
    let declared = outputs.len() == descriptor.outputs.len()
        && outputs
            .iter()
            .zip(descriptor.outputs.iter())
            .all(|(format, port)| port.kinds.contains(&format.kind));
    if !declared {
        let names = |kinds: Vec<&str>| {
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join(", ")
            }
        };
        issues.push(Issue::new(
            stage.plugin_span(),
            format!(
                "plugin `{}` is inconsistent: `{kind}` declares outputs {} but negotiated {} (a bug in the plugin)",
                plugin.manifest.name,
                names(descriptor.outputs.iter().map(|p| p.name.as_str()).collect()),
                names(outputs.iter().map(|f| f.kind.name()).collect()),
            ),
        ));
        return None;
    }
    for format in &outputs {
        if packet_values(format) > MAX_PACKET_VALUES {
            issues.push(Issue::new(
                stage.config_span(),
                format!(
                    "stage {} (`{kind}`) would emit packets of {} channels x {} values: more than the {MAX_PACKET_VALUES} values a packet may hold",
                    name_of(stage),
                    format.channels,
                    format.values_per_channel
                ),
            ).maybe_hint(Some("use fewer channels or a smaller block size; every output pool preallocates its packets".to_string())));
            return None;
        }
        if !format.channel_info.is_empty() && format.channel_info.len() != format.channels() {
            issues.push(Issue::new(
                stage.plugin_span(),
                format!(
                    "plugin `{}` is inconsistent: `{kind}` names {} channels for a stream of {} (a bug in the plugin)",
                    plugin.manifest.name,
                    format.channel_info.len(),
                    format.channels
                ),
            ));
            return None;
        }
        if !format.value_labels.is_empty()
            && format.value_labels.len() != format.values_per_channel()
        {
            issues.push(Issue::new(
                stage.plugin_span(),
                format!(
                    "plugin `{}` is inconsistent: `{kind}` names {} values per channel for a stream of {} (a bug in the plugin)",
                    plugin.manifest.name,
                    format.value_labels.len(),
                    format.values_per_channel
                ),
            ));
            return None;
        }
    }
    Some(outputs)
}

/// The most values (channels x values per channel) one packet may hold:
/// 4 Mi f32 = 16 MiB. Pools preallocate every packet, so a larger shape from
/// a config typo would abort the host on allocation instead of being an error.
const MAX_PACKET_VALUES: u64 = 4 << 20;

/// How many values one packet of `format` holds.
fn packet_values(format: &StreamFormat) -> u64 {
    u64::from(format.channels) * u64::from(format.values_per_channel)
}

/// Where to point for a plugin's error: the config key it names in
/// backticks when there is one, else `[stage.config]`, else `plugin`.
fn error_span(stage: &RawStage, text: &str) -> Span {
    if let Some(config) = &stage.config {
        let named = config
            .entries
            .iter()
            .filter_map(|(key, _)| {
                text.find(&format!("`{}`", key.get_ref()))
                    .map(|at| (at, key.span()))
            })
            .min_by_key(|(at, _)| *at);
        if let Some((_, span)) = named {
            return span;
        }
        return config.span.clone();
    }
    stage.plugin_span()
}
