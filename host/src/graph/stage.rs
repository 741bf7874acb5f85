//! Is each stage right on its own? Its kind is a loaded one, its table has
//! only stage keys, `stage_type` and `on_error` suit the kind, and its
//! config fits the kind's schema. What is learnt here ([`Checked`]) is what
//! the checks of edges, order and formats build on.

use super::config_check::check_config;
use super::model::{OnError, StageType};
use super::parse::STAGE_KEYS;
use super::raw::RawStage;
use super::report::{Issue, Span, backticked, closest, did_you_mean, name_of};
use crate::registry::{LoadedPlugin, PluginRegistry};
use hsp_sdk::abi::{StageDescriptor, StageRole};
use toml::Spanned;

/// What is known about one stage as the checks go.
pub(super) struct Checked<'r> {
    /// Its plugin and descriptor, when the kind is known.
    pub(super) stage: Option<(&'r LoadedPlugin, &'r StageDescriptor)>,
    /// `[stage.config]` as JSON, when it passed the schema checks.
    pub(super) config_json: Option<String>,
    /// Its `inputs`, resolved: in the order listed, which for a data-plane
    /// stage is the order of its input ports.
    pub(super) inputs: Vec<Upstream>,
    /// False once any check about this stage failed.
    pub(super) ok: bool,
}

/// One `inputs` entry, resolved.
#[derive(Debug, Clone)]
pub(super) struct Upstream {
    /// The upstream stage (file order).
    pub(super) from: usize,
    /// Its output port.
    pub(super) port: usize,
    /// The span of the entry naming it.
    pub(super) span: Span,
}

/// Where a stage runs: its plugin's role when the kind is known (a
/// mismatching `stage_type` is reported by [`check_stage`]), else what the
/// file says.
pub(super) fn role_of(stage: &RawStage, checked: &Checked<'_>) -> StageType {
    match checked.stage {
        Some((_, descriptor)) => match descriptor.role {
            StageRole::DataPlane => StageType::DataPlane,
            StageRole::Control => StageType::Control,
        },
        None => stage
            .stage_type
            .as_ref()
            .map_or(StageType::DataPlane, |t| *t.get_ref()),
    }
}

fn role_name(role: StageType) -> &'static str {
    match role {
        StageType::DataPlane => "data_plane",
        StageType::Control => "control",
    }
}

/// A stage's own checks: its kind, its table's keys, `on_error`, its config.
pub(super) fn check_stage<'r>(
    stage: &RawStage,
    registry: &'r PluginRegistry,
    issues: &mut Vec<Issue>,
) -> Checked<'r> {
    let found = find_kind(stage, registry, issues);
    let mut checked = Checked {
        stage: found,
        config_json: None,
        inputs: Vec::new(),
        ok: found.is_some(),
    };
    let descriptor = found.map(|(_, d)| d);
    if let (Some(declared), Some(descriptor)) = (&stage.stage_type, descriptor) {
        check_stage_type(stage, declared, descriptor, &checked, issues);
    }
    check_unknown_keys(stage, descriptor, issues);
    if let (Some(on_error), Some(descriptor)) = (&stage.on_error, descriptor) {
        // Not `checked.ok = false` when it fails: formats do not depend on it.
        check_bypass(on_error, descriptor, issues);
    }
    if let Some(descriptor) = descriptor {
        match check_config(stage, descriptor, issues) {
            Some(json) => checked.config_json = Some(json),
            None => checked.ok = false,
        }
    } else if let Some(config) = &stage.config {
        // Unknown kind: nothing to check the keys against, but the values
        // must still be usable.
        if config
            .entries
            .iter()
            .any(|(_, v)| v.get_ref().has_invalid())
        {
            checked.ok = false;
        }
    }
    checked
}

/// The plugin and descriptor of the stage's kind, or `None` when it has no
/// usable `plugin` (reported, unless the parser reported a wrong one) or
/// no loaded plugin has the kind.
fn find_kind<'r>(
    stage: &RawStage,
    registry: &'r PluginRegistry,
    issues: &mut Vec<Issue>,
) -> Option<(&'r LoadedPlugin, &'r StageDescriptor)> {
    match &stage.plugin {
        None if stage.keys.iter().any(|k| k == "plugin") => None,
        None => {
            issues.push(
                Issue::new(stage.span.clone(), format!("stage {} has no `plugin`", name_of(stage)))
                    .hint("`plugin` names the stage kind, e.g. `plugin = \"synth\"`; `host plugins list` shows them"),
            );
            None
        }
        Some(kind) => {
            let found = registry.stage(kind.get_ref());
            if found.is_none() {
                issues.push(unknown_kind(kind, registry));
            }
            found
        }
    }
}

fn unknown_kind(kind: &Spanned<String>, registry: &PluginRegistry) -> Issue {
    let known: Vec<&str> = registry.stage_kinds().collect();
    let mut hint = match closest(kind.get_ref(), known.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None if known.is_empty() => {
            "no plugins were found: build them (`cargo build --workspace`) or pass `--plugins DIR`"
                .to_string()
        }
        None => format!("known stage kinds: {}", known.join(", ")),
    };
    if !registry.failures().is_empty() {
        hint.push_str(&format!(
            " ({} plugin file(s) failed to load; `host plugins list` says why)",
            registry.failures().len()
        ));
    }
    Issue::new(
        kind.span(),
        format!("unknown stage kind `{}`", kind.get_ref()),
    )
    .hint(hint)
}

/// A `stage_type` that is not the role of the stage's kind.
fn check_stage_type(
    stage: &RawStage,
    declared: &Spanned<StageType>,
    descriptor: &StageDescriptor,
    checked: &Checked<'_>,
    issues: &mut Vec<Issue>,
) {
    let role = role_of(stage, checked);
    if *declared.get_ref() != role {
        issues.push(
            Issue::new(
                declared.span(),
                format!(
                    "stage {} (`{}`) is a {} stage, but `stage_type` says \"{}\"",
                    name_of(stage),
                    descriptor.kind,
                    role_name(role).replace('_', "-"),
                    role_name(*declared.get_ref()),
                ),
            )
            .hint(format!(
                "remove `stage_type` (it defaults to the plugin's) or set `stage_type = \"{}\"`",
                role_name(role)
            )),
        );
    }
}

/// Keys of the `[[stage]]` table that are not stage settings. The parser
/// left them here because only the kind tells a config key put one level
/// too high from a typo.
fn check_unknown_keys(
    stage: &RawStage,
    descriptor: Option<&StageDescriptor>,
    issues: &mut Vec<Issue>,
) {
    for key in &stage.unknown_keys {
        let issue = Issue::new(
            key.span(),
            format!("unknown key `{}` in `[[stage]]`", key.get_ref()),
        );
        issues.push(issue.hint(unknown_key_hint(key.get_ref(), descriptor)));
    }
}

/// How to fix an unknown `[[stage]]` key: move a config key down, name the
/// kind in `plugin`, or a did-you-mean among the stage keys.
fn unknown_key_hint(key: &str, descriptor: Option<&StageDescriptor>) -> String {
    let is_config_key = descriptor.is_some_and(|d| d.config.iter().any(|f| f.key.as_str() == key));
    if is_config_key {
        format!(
            "`{}` is a config key of `{}`: put it under `[stage.config]`",
            key,
            descriptor.map_or("", |d| d.kind.as_str())
        )
    } else if matches!(key, "kind" | "type") {
        "the stage kind goes in `plugin = \"...\"`".to_string()
    } else {
        did_you_mean(key, STAGE_KEYS.iter().copied()).unwrap_or_else(|| {
            format!(
                "a stage takes {}; its own settings go under `[stage.config]`",
                backticked(STAGE_KEYS)
            )
        })
    }
}

/// `on_error = "bypass"` on a data-plane stage whose input cannot stand in
/// for its output.
fn check_bypass(
    on_error: &Spanned<OnError>,
    descriptor: &StageDescriptor,
    issues: &mut Vec<Issue>,
) {
    // A control stage's "bypass" skips the message that failed.
    if *on_error.get_ref() != OnError::Bypass || descriptor.role != StageRole::DataPlane {
        return;
    }
    let ports = |ports: &[hsp_sdk::abi::PortDescriptor], none: &str| {
        if ports.is_empty() {
            return none.to_string();
        }
        ports
            .iter()
            .map(|p| {
                p.kinds
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(" or ")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let bypassable = match (&descriptor.inputs[..], &descriptor.outputs[..]) {
        ([_], []) => true,
        ([input], [output]) => output.kinds.iter().any(|k| input.kinds.contains(k)),
        _ => false,
    };
    if !bypassable {
        issues.push(
            Issue::new(
                on_error.span(),
                format!(
                    "`on_error = \"bypass\"` forwards a stage's input in place of its output, but `{}` takes {} and emits {}",
                    descriptor.kind,
                    ports(&descriptor.inputs, "nothing (a source)"),
                    ports(&descriptor.outputs, "nothing"),
                ),
            )
            .hint("use \"stop\" or \"restart\" for this stage"),
        );
    }
}
