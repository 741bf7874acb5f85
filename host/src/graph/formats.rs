//! What stream formats flow along the edges? Each stage's plugin is asked,
//! upstream first, what it emits for its config and its input's format;
//! a refusal is reported at the config key it names.

use super::model::describe_format;
use super::raw::RawStage;
use super::report::{Issue, Span, name_of};
use super::stage::Checked;
use crate::registry::LoadedPlugin;
use hsp_sdk::abi::StageDescriptor;
use hsp_sdk::{PacketKind, StreamFormat};

/// A stage's negotiated formats: its input's (`None` for a source) and its
/// output's (`None` for a sink).
pub(super) type StageFormats = (Option<StreamFormat>, Option<StreamFormat>);

/// Negotiated (input, output) formats per stage (file order); `None` for a
/// stage that failed or sits below one that did.
pub(super) fn negotiate(
    order: &[usize],
    stages: &[RawStage],
    checked: &[Checked<'_>],
    issues: &mut Vec<Issue>,
) -> Vec<Option<StageFormats>> {
    let mut formats: Vec<Option<StageFormats>> = vec![None; stages.len()];
    for &i in order {
        let this = &checked[i];
        let (Some(found), Some(config_json), true) = (this.stage, &this.config_json, this.ok)
        else {
            continue;
        };
        // One input for a data-plane stage; a control stage with several
        // gets the first one's format (their types were checked to match).
        let input = match this.inputs.first() {
            None => None,
            Some((from, _)) => match formats[*from] {
                Some((_, Some(format))) => Some(format),
                _ => continue, // upstream failed: reported there
            },
        };
        let upstream = this.inputs.first().map(|(from, _)| &stages[*from]);
        if let Some(output) = output_of(&stages[i], found, config_json, input, upstream, issues) {
            formats[i] = Some((input, output));
        }
    }
    formats
}

/// What `plugin` says `stage` emits when fed `input` (from `upstream`);
/// `None`, reported, when it refuses, or answers with packets too large to
/// pool or of another kind than its descriptor declares.
fn output_of(
    stage: &RawStage,
    (plugin, descriptor): (&LoadedPlugin, &StageDescriptor),
    config_json: &str,
    input: Option<StreamFormat>,
    upstream: Option<&RawStage>,
    issues: &mut Vec<Issue>,
) -> Option<Option<StreamFormat>> {
    let kind = descriptor.kind.as_str();
    match plugin
        .entry_points()
        .output_format(kind, config_json, input)
    {
        Ok(Some(format)) if packet_values(&format) > MAX_PACKET_VALUES => {
            issues.push(Issue::new(
                stage.config_span(),
                format!(
                    "stage {} (`{kind}`) would emit packets of {} channels x {} values: more than the {MAX_PACKET_VALUES} values a packet may hold",
                    name_of(stage),
                    format.channels,
                    format.values_per_channel
                ),
            ).maybe_hint(Some("use fewer channels or a smaller block size; every output pool preallocates its packets".to_string())));
            None
        }
        Ok(output) if output.map(|f| f.kind) == descriptor.output.into_option() => Some(output),
        Ok(output) => {
            issues.push(Issue::new(
                stage.plugin_span(),
                format!(
                    "plugin `{}` is inconsistent: `{kind}` declares output {} but negotiated {} (a bug in the plugin)",
                    plugin.manifest.name,
                    descriptor.output.into_option().map_or("none", PacketKind::name),
                    output.map_or("none", |f| f.kind.name()),
                ),
            ));
            None
        }
        Err(text) => {
            let span = error_span(stage, &text);
            let hint = match (input, upstream) {
                (Some(format), Some(upstream)) => Some(format!(
                    "its input from {}: {}",
                    name_of(upstream),
                    describe_format(&format)
                )),
                _ => None,
            };
            issues.push(
                Issue::new(
                    span,
                    format!("stage {} (`{kind}`): {}", name_of(stage), text.trim()),
                )
                .maybe_hint(hint),
            );
            None
        }
    }
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
