//! Does a parsed pipeline hold up against the loaded plugins? This file
//! runs the checks in order and, when none fails, has the
//! [`PipelineGraph`] built; each check lives in the file of its question.
//!
//! Every check runs and every problem is reported, in file order; a stage
//! that failed a check is left out of the checks that build on it (format
//! negotiation, for it and everything downstream), so one mistake gives one
//! message, not a cascade.

use super::build::{build_graph, capacity_of};
use super::formats::{StageFormats, negotiate};
use super::ids::{Ids, index_ids};
use super::inputs::check_inputs;
use super::limits::{self, MAX_STAGES, MemoryPlaces, StageShape};
use super::memory_limit::MemoryLimit;
use super::model::{OnError, PipelineGraph, PipelineSettings, StageType};
use super::order::{check_depth, run_order};
use super::raw::{RawPipeline, RawStage};
use super::report::{Issue, LineIndex, Span, ValidationError, name_of, to_errors};
use super::stage::{Checked, check_stage, role_of};
use crate::registry::PluginRegistry;
use std::path::Path;
use toml::Spanned;

/// Checks `raw` (read from `file`, whose text is `text`) against `registry`.
pub(crate) fn validate(
    file: &Path,
    text: &str,
    mut raw: RawPipeline,
    registry: &PluginRegistry,
) -> Result<PipelineGraph, Vec<ValidationError>> {
    let mut issues = std::mem::take(&mut raw.issues);
    if !check_stage_count(&raw.stages, raw.has_stage_key, &mut issues) {
        return Err(to_errors(file, text, issues));
    }
    let memory_limit = memory_limit(&raw, &mut issues);
    let warnings = rename_deprecated_kinds(file, text, &mut raw.stages, registry);
    let stages = &raw.stages;
    let mut checked = check_stages(text, stages, registry, &mut issues);
    let order = run_order(stages, &mut checked, &mut issues);
    let formats = negotiate(&order, stages, &checked, registry, &mut issues);
    let shapes = shapes(stages, &checked, &formats);
    check_depth(stages, &shapes, &checked, &order, &mut issues);
    if let Some(limit) = memory_limit {
        check_memory(&raw, &shapes, &order, limit, &mut issues);
    }
    if !issues.is_empty() {
        return Err(to_errors(file, text, issues));
    }
    let mut graph = build_graph(file, text, raw, &checked, &order, &formats)
        .map_err(|issue| to_errors(file, text, vec![issue]))?;
    graph.warnings = warnings;
    Ok(graph)
}

/// Stage kinds that were merged into one that takes several packet kinds:
/// the old name, the kind it is now, and what changed.
const DEPRECATED_KINDS: &[(&str, &str, &str)] = &[
    ("iir_filtered", "iir", "which takes raw and filtered EEG"),
    (
        "csv_sink_filtered",
        "csv_sink",
        "which writes raw or filtered EEG and features",
    ),
    (
        "csv_features",
        "csv_sink",
        "which writes raw or filtered EEG and features",
    ),
];

/// Rewrites each deprecated stage kind to the kind it is now (unless a
/// loaded plugin still provides the old name), and says so: one warning
/// per stage, with its place in the file.
fn rename_deprecated_kinds(
    file: &Path,
    text: &str,
    stages: &mut [RawStage],
    registry: &PluginRegistry,
) -> Vec<String> {
    let lines = LineIndex::new(text);
    let mut warnings = Vec::new();
    for stage in stages {
        let Some(plugin) = &mut stage.plugin else {
            continue;
        };
        let Some(&(old, new, why)) = DEPRECATED_KINDS
            .iter()
            .find(|(old, _, _)| *old == plugin.get_ref())
        else {
            continue;
        };
        if registry.stage(old).is_some() {
            continue;
        }
        let at = lines.location(plugin.span().start);
        warnings.push(format!(
            "{}:{}:{}: warning: stage kind `{old}` is deprecated: use `{new}`, {why}",
            file.display(),
            at.line,
            at.column
        ));
        *plugin = Spanned::new(plugin.span(), new.to_string());
    }
    warnings
}

/// A file without stages, or with more than [`MAX_STAGES`]. False for too
/// many: nothing more is checked, as the other checks' cost and output grow
/// with the stage count, and the file cannot run anyway.
fn check_stage_count(stages: &[RawStage], has_stage_key: bool, issues: &mut Vec<Issue>) -> bool {
    if stages.is_empty() && !has_stage_key {
        issues.push(
            Issue::new(0..0, "the pipeline has no stages")
                .hint("add a `[[stage]]` table with `id` and `plugin` for each stage"),
        );
    }
    let Some(extra) = stages.get(MAX_STAGES) else {
        return true;
    };
    issues.push(
        Issue::new(
            extra.span.clone(),
            format!(
                "the pipeline has {} stages, more than the {MAX_STAGES} a pipeline may have",
                stages.len()
            ),
        )
        .hint("split it into several pipelines"),
    );
    false
}

/// The packet memory limit, from the file or else the environment; `None`
/// when it cannot be known (reported).
fn memory_limit(raw: &RawPipeline, issues: &mut Vec<Issue>) -> Option<MemoryLimit> {
    match MemoryLimit::resolve(raw.memory_limit_mb.as_ref().map(|m| *m.get_ref())) {
        Ok(limit) => Some(limit),
        Err(message) => {
            issues.push(Issue::new(0..0, message));
            None
        }
    }
}

/// Every stage's own checks, then every stage's `inputs` against the ids
/// of the file and the kinds they name.
fn check_stages<'r>(
    text: &str,
    stages: &[RawStage],
    registry: &'r PluginRegistry,
    issues: &mut Vec<Issue>,
) -> Vec<Checked<'r>> {
    let first_stage = index_ids(stages, text, issues);
    let mut ids = Ids::new(&first_stage);
    let mut checked: Vec<Checked<'_>> = stages
        .iter()
        .map(|stage| check_stage(stage, registry, issues))
        .collect();
    for (index, stage) in stages.iter().enumerate() {
        check_inputs(
            index,
            stage,
            &mut ids,
            stages,
            registry,
            &mut checked,
            issues,
        );
    }
    checked
}

/// What the limits need to know of each stage (file order).
fn shapes(
    stages: &[RawStage],
    checked: &[Checked<'_>],
    formats: &[Option<StageFormats>],
) -> Vec<StageShape> {
    stages
        .iter()
        .zip(checked)
        .zip(formats)
        .map(|((stage, this), format)| StageShape {
            control: role_of(stage, this) == StageType::Control,
            can_work_in_place: this.stage.is_some_and(|(_, d)| d.in_place)
                && stage.on_error.as_ref().map(|e| *e.get_ref()) != Some(OnError::Bypass),
            input: format
                .as_ref()
                .map(|(input, _)| input.clone())
                .unwrap_or_default(),
            output: format
                .as_ref()
                .map(|(_, output)| output.clone())
                .unwrap_or_default(),
            inputs: this.inputs.iter().map(|up| (up.from, up.port)).collect(),
            capacity: capacity_of(stage),
        })
        .collect()
}

/// The packet memory the runtime would preallocate, against `limit`.
fn check_memory(
    raw: &RawPipeline,
    shapes: &[StageShape],
    order: &[usize],
    limit: MemoryLimit,
    issues: &mut Vec<Issue>,
) {
    let stages = &raw.stages;
    let pool_size = raw
        .pool_size
        .as_ref()
        .map_or(PipelineSettings::default().pool_size, |p| *p.get_ref());
    let memory = limits::estimate(shapes, order, pool_size);
    let headers: Vec<Span> = stages.iter().map(|s| s.span.clone()).collect();
    let names: Vec<String> = stages
        .iter()
        .map(|s| match &s.plugin {
            Some(kind) => format!("{} (`{}`)", name_of(s), kind.get_ref()),
            None => name_of(s),
        })
        .collect();
    let places = MemoryPlaces {
        headers: &headers,
        names: &names,
        pool_size: raw.pool_size.as_ref().map(|p| p.span()),
    };
    issues.extend(limits::check_memory(&memory, limit, &places));
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::graph::parse::parse;

    /// Validates `text` against a registry with no plugins: every kind is
    /// unknown, but ids, edges and cycles are still checked.
    pub(in crate::graph) fn errors(text: &str) -> Vec<String> {
        let raw = parse(text).expect("valid TOML");
        let registry = PluginRegistry::default();
        match validate(Path::new("p.toml"), text, raw, &registry) {
            Ok(graph) => panic!("validated: {graph:?}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn without_plugins_kinds_are_unknown_and_structure_is_still_checked() {
        let errors = errors(
            r#"[[stage]]
id = "a"
plugin = "x"
inputs = ["b"]
[[stage]]
id = "b"
plugin = "x"
inputs = ["a"]
[[stage]]
id = "a"
plugin = "x"
inputs = ["nope"]
"#,
        );
        let no_plugins = "  hint: no plugins were found: build them (`cargo build --workspace`) or pass `--plugins DIR`";
        assert_eq!(
            errors,
            [
                format!("p.toml:3:10: error: unknown stage kind `x`\n{no_plugins}"),
                "p.toml:4:11: error: the stages form a cycle: `a` -> `b` -> `a`\n  hint: data must flow one way: remove one of these `inputs`".to_string(),
                format!("p.toml:7:10: error: unknown stage kind `x`\n{no_plugins}"),
                "p.toml:10:6: error: duplicate stage id `a`\n  hint: the first stage with this id is at line 2; ids must be unique".to_string(),
                format!("p.toml:11:10: error: unknown stage kind `x`\n{no_plugins}"),
                "p.toml:12:11: error: stage `a` reads from `nope`, which is not a stage in this file\n  hint: stage ids in this file: `a`, `b`".to_string(),
            ]
        );
    }

    /// A chain `s0 <- s1 <- ... <- s{n-1}` of stages of kind `x`.
    pub(in crate::graph) fn chain(n: usize) -> String {
        let mut text = String::from("[[stage]]\nid = \"s0\"\nplugin = \"x\"\n");
        for i in 1..n {
            text.push_str(&format!(
                "[[stage]]\nid = \"s{i}\"\nplugin = \"x\"\ninputs = [\"s{}\"]\n",
                i - 1
            ));
        }
        text
    }

    #[test]
    fn a_pipeline_of_more_stages_than_the_limit_gets_one_error_and_no_other_checks() {
        let refused = errors(&chain(MAX_STAGES + 1));
        assert_eq!(
            refused,
            [format!(
                "p.toml:{}:1: error: the pipeline has 1025 stages, more than the 1024 a pipeline may have\n  hint: split it into several pipelines",
                1 + 3 + 4 * (MAX_STAGES - 1)
            )]
        );
        // 4000 stages (the issue's chain) are refused as quickly.
        let refused = errors(&chain(4000));
        assert_eq!(refused.len(), 1, "{refused:#?}");
    }

    #[test]
    fn missing_id_and_plugin_are_reported_at_the_stage_header() {
        let errors = errors("[[stage]]\nstage_type = \"control\"\n");
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with("p.toml:1:1: error: stage has no `id`"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].starts_with("p.toml:1:1: error: stage (no id) has no `plugin`"),
            "{}",
            errors[1]
        );
    }
}
