//! Checking a parsed pipeline against the loaded plugins, and building the
//! [`PipelineGraph`].
//!
//! Every check runs and every problem is reported, in file order; a stage
//! that failed a check is left out of the checks that build on it (format
//! negotiation, for it and everything downstream), so one mistake gives one
//! message, not a cascade.

use super::formats::negotiate;
use super::limits::{self, MAX_STAGES, MemoryLimit, MemoryPlaces, StageShape};
use super::model::{
    EdgePolicy, InputEdge, OnError, PipelineGraph, PipelineSettings, StageNode, StageType,
};
use super::order::{check_depth, partial_order, report_cycle, topological_order};
use super::raw::{RawPipeline, RawStage};
use super::report::{
    Issue, LineIndex, Span, ValidationError, did_you_mean, listing, name_of, shown_id, to_errors,
};
use super::stage::{Checked, check_stage, role_of};
use crate::registry::PluginRegistry;
use hsp_sdk::PacketKind;
use hsp_sdk::abi::StageRole;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use toml::Spanned;

/// Default `queue.capacity`.
const DEFAULT_QUEUE_CAPACITY: usize = 16;

/// How much looking for typos among the stage ids one file may cost, in
/// pairs of characters compared (about 0.1 s in a debug build). Enough for
/// hundreds of misspelt inputs in a file of ordinary size; past it, a hint
/// lists ids instead. Without it, 1024 stages with long ids, each reading
/// an id that is not there, took minutes.
const SUGGESTION_BUDGET: usize = 1 << 22;

/// The stage ids of a file, for resolving `inputs`.
struct Ids<'a> {
    /// Each id's first stage (file order).
    index: &'a HashMap<String, usize>,
    /// The ids, in file order.
    in_order: Vec<&'a str>,
    /// What is left of [`SUGGESTION_BUDGET`].
    suggestions: usize,
}

/// Checks `raw` (read from `file`, whose text is `text`) against `registry`.
pub(crate) fn validate(
    file: &Path,
    text: &str,
    raw: RawPipeline,
    registry: &PluginRegistry,
) -> Result<PipelineGraph, Vec<ValidationError>> {
    let mut issues = raw.issues;
    let stages = &raw.stages;
    if stages.is_empty() && !raw.has_stage_key {
        issues.push(
            Issue::new(0..0, "the pipeline has no stages")
                .hint("add a `[[stage]]` table with `id` and `plugin` for each stage"),
        );
    }
    if let Some(extra) = stages.get(MAX_STAGES) {
        // Nothing more is checked: the other checks' cost and output grow
        // with the stage count, and the file cannot run anyway.
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
        return Err(to_errors(file, text, issues));
    }
    let memory_limit =
        match MemoryLimit::resolve(raw.memory_limit_mb.as_ref().map(|m| *m.get_ref())) {
            Ok(limit) => Some(limit),
            Err(message) => {
                issues.push(Issue::new(0..0, message));
                None
            }
        };

    let first_stage = index_ids(stages, text, &mut issues);
    let mut in_order: Vec<(&str, usize)> = first_stage
        .iter()
        .map(|(id, &i)| (id.as_str(), i))
        .collect();
    in_order.sort_by_key(|(_, i)| *i);
    let mut ids = Ids {
        index: &first_stage,
        in_order: in_order.into_iter().map(|(id, _)| id).collect(),
        suggestions: SUGGESTION_BUDGET,
    };
    let mut checked: Vec<Checked<'_>> = stages
        .iter()
        .map(|stage| check_stage(stage, registry, &mut issues))
        .collect();
    for (index, stage) in stages.iter().enumerate() {
        check_inputs(
            index,
            stage,
            &mut ids,
            stages,
            registry,
            &mut checked,
            &mut issues,
        );
    }
    let order = match topological_order(&checked) {
        Ok(order) => order,
        Err(cycles) => {
            for cycle in cycles {
                report_cycle(&cycle, stages, &mut checked, &mut issues);
            }
            // Stages on or below a cycle stay out of the order, and so out
            // of negotiation; the graph is not built anyway.
            partial_order(&checked)
        }
    };
    let formats = negotiate(&order, stages, &checked, &mut issues);
    let shapes: Vec<StageShape> = stages
        .iter()
        .zip(&checked)
        .zip(&formats)
        .map(|((stage, this), format)| StageShape {
            control: role_of(stage, this) == StageType::Control,
            can_work_in_place: this.stage.is_some_and(|(_, d)| d.in_place)
                && stage.on_error.as_ref().map(|e| *e.get_ref()) != Some(OnError::Bypass),
            input: format.and_then(|(input, _)| input),
            output: format.and_then(|(_, output)| output),
            inputs: this.inputs.iter().map(|(from, _)| *from).collect(),
            capacity: capacity_of(stage),
        })
        .collect();
    check_depth(stages, &shapes, &checked, &order, &mut issues);
    if let Some(limit) = memory_limit {
        let pool_size = raw
            .pool_size
            .as_ref()
            .map_or(PipelineSettings::default().pool_size, |p| *p.get_ref());
        let memory = limits::estimate(&shapes, &order, pool_size);
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

    if !issues.is_empty() {
        return Err(to_errors(file, text, issues));
    }

    let position: HashMap<usize, usize> =
        order.iter().enumerate().map(|(pos, &i)| (i, pos)).collect();
    let index = LineIndex::new(text);
    let mut nodes = Vec::with_capacity(order.len());
    for &i in &order {
        let stage = &stages[i];
        // Every check passed, so every stage was ordered and negotiated.
        let Some((input_format, output_format)) = formats[i] else {
            let issue = Issue::new(
                stage.span.clone(),
                format!(
                    "internal error: stage {} was not negotiated",
                    name_of(stage)
                ),
            );
            return Err(to_errors(file, text, vec![issue]));
        };
        let queue = stage.queue.as_ref();
        let capacity = capacity_of(stage);
        let policy = queue
            .and_then(|q| q.policy.as_ref())
            .map_or(EdgePolicy::Block, |p| *p.get_ref());
        let decimate = queue
            .and_then(|q| q.decimate.as_ref())
            .map_or(1, |d| *d.get_ref());
        nodes.push(StageNode {
            id: stage
                .id
                .as_ref()
                .map(|id| id.get_ref().clone())
                .unwrap_or_default(),
            kind: stage
                .plugin
                .as_ref()
                .map(|p| p.get_ref().clone())
                .unwrap_or_default(),
            stage_type: role_of(stage, &checked[i]),
            inputs: checked[i]
                .inputs
                .iter()
                .map(|(from, _)| InputEdge {
                    from: position[from],
                    capacity,
                    policy,
                    decimate,
                })
                .collect(),
            on_error: stage
                .on_error
                .as_ref()
                .map_or(OnError::Stop, |e| *e.get_ref()),
            config_json: checked[i]
                .config_json
                .clone()
                .unwrap_or_else(|| "{}".into()),
            input_format,
            output_format,
            location: index.location(stage.span.start),
        });
    }
    let defaults = PipelineSettings::default();
    Ok(PipelineGraph {
        name: raw.name.map(|n| n.into_inner()).unwrap_or_else(|| {
            file.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pipeline".into())
        }),
        file: file.to_path_buf(),
        settings: PipelineSettings {
            pool_size: raw.pool_size.map_or(defaults.pool_size, |p| p.into_inner()),
            idle: raw.idle.map_or(defaults.idle, |i| i.into_inner()),
            data_plane_threads: raw
                .data_plane_threads
                .map_or(defaults.data_plane_threads, |t| t.into_inner()),
        },
        stages: nodes,
    })
}

/// A stage's `queue.capacity`, or the default.
fn capacity_of(stage: &RawStage) -> usize {
    stage
        .queue
        .as_ref()
        .and_then(|q| q.capacity.as_ref())
        .map_or(DEFAULT_QUEUE_CAPACITY, |c| *c.get_ref())
}

/// The first stage with each id; a repeated id is reported at the repeat.
fn index_ids(stages: &[RawStage], text: &str, issues: &mut Vec<Issue>) -> HashMap<String, usize> {
    let lines = LineIndex::new(text);
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (index, stage) in stages.iter().enumerate() {
        let Some(id) = &stage.id else {
            // A missing `id` (a wrong one was reported by the parser).
            if !stage.keys.iter().any(|k| k == "id") {
                issues.push(Issue::new(stage.span.clone(), "stage has no `id`").hint(
                    "give each stage a unique `id = \"...\"`; other stages name it in `inputs`",
                ));
            }
            continue;
        };
        match ids.get(id.get_ref()) {
            Some(&first) => {
                let first_line = stages[first]
                    .id
                    .as_ref()
                    .map_or(0, |f| lines.location(f.span().start).line);
                issues.push(
                    Issue::new(
                        id.span(),
                        format!("duplicate stage id `{}`", shown_id(id.get_ref())),
                    )
                    .hint(format!(
                        "the first stage with this id is at line {first_line}; ids must be unique"
                    )),
                );
            }
            None => {
                ids.insert(id.get_ref().clone(), index);
            }
        }
    }
    ids
}

/// Resolves `stage`'s `inputs` and checks them against its kind.
fn check_inputs(
    index: usize,
    stage: &RawStage,
    ids: &mut Ids<'_>,
    stages: &[RawStage],
    registry: &PluginRegistry,
    checked: &mut [Checked<'_>],
    issues: &mut Vec<Issue>,
) {
    let name = name_of(stage);
    let listed: &[Spanned<String>] = stage.inputs.as_ref().map_or(&[], |i| i.get_ref());
    let mut ok = true;
    let mut resolved = Vec::new();
    let mut seen = HashSet::new();
    for input in listed {
        match ids.index.get(input.get_ref()) {
            Some(&from) => {
                if !seen.insert(from) {
                    issues.push(Issue::new(
                        input.span(),
                        format!(
                            "stage {name} lists input `{}` twice",
                            shown_id(input.get_ref())
                        ),
                    ));
                    ok = false;
                } else {
                    resolved.push((from, input.span()));
                }
            }
            None => {
                let known = &ids.in_order;
                // Looking for a typo costs the product of the lengths, for
                // every id: within the budget only.
                let cost = input.get_ref().len() * known.iter().map(|k| k.len()).sum::<usize>();
                let suggestion = (cost <= ids.suggestions).then(|| {
                    ids.suggestions -= cost;
                    did_you_mean(input.get_ref(), known.iter().copied())
                });
                let hint = suggestion.flatten().unwrap_or_else(|| {
                    format!(
                        "stage ids in this file: {}",
                        listing(known.iter().map(|k| format!("`{}`", shown_id(k))))
                    )
                });
                issues.push(
                    Issue::new(
                        input.span(),
                        format!(
                            "stage {name} reads from `{}`, which is not a stage in this file",
                            shown_id(input.get_ref())
                        ),
                    )
                    .hint(hint),
                );
                ok = false;
            }
        }
    }

    let stage_type = role_of(stage, &checked[index]);
    if let Some(inputs) = &stage.inputs {
        if stage_type == StageType::DataPlane && listed.len() > 1 {
            issues.push(
                Issue::new(
                    inputs.span(),
                    format!(
                        "data-plane stage {name} takes one input, but `inputs` lists {}: {}",
                        listed.len(),
                        listing(listed.iter().map(|i| format!("`{}`", shown_id(i.get_ref()))))
                    ),
                )
                .hint("one stage may feed several (fan-out), but each data-plane stage reads one stream"),
            );
            ok = false;
        }
        if let Some(queue) = &stage.queue {
            if listed.is_empty() {
                issues.push(Issue::new(
                    queue.span.clone(),
                    format!("stage {name} has a `queue` but no inputs"),
                ));
            }
        }
    } else if let Some(queue) = &stage.queue {
        issues.push(
            Issue::new(
                queue.span.clone(),
                format!("stage {name} has a `queue` but no inputs"),
            )
            .hint("`queue` sizes the edge into a stage; a source has none"),
        );
    }

    if let (StageType::DataPlane, Some(decimate)) = (
        stage_type,
        stage.queue.as_ref().and_then(|q| q.decimate.as_ref()),
    ) {
        issues.push(
            Issue::new(
                decimate.span(),
                format!(
                    "stage {name} is a data-plane stage; `decimate` thins a control stage's inputs"
                ),
            )
            .hint("remove `decimate`, or decimate in a data-plane stage of your own"),
        );
    }

    // Control stages read data-plane stages through bridges, never the
    // other way round: the data plane must not wait on the control plane.
    if stage_type == StageType::DataPlane {
        for (from, span) in &resolved {
            if role_of(&stages[*from], &checked[*from]) == StageType::Control {
                issues.push(
                    Issue::new(
                        span.clone(),
                        format!(
                            "data-plane stage {name} reads from control stage {}",
                            name_of(&stages[*from])
                        ),
                    )
                    .hint("control stages feed only other control stages; they change data-plane stages through parameters (`set_param`)"),
                );
                ok = false;
            }
        }
    }

    if let Some((_, descriptor)) = checked[index]
        .stage
        .filter(|(_, d)| d.role == StageRole::Control)
    {
        let kind = descriptor.kind.as_str();
        let accepts: Vec<PacketKind> = descriptor.accepts.iter().copied().collect();
        let accepted = || {
            accepts
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(" or ")
        };
        if accepts.is_empty() && !listed.is_empty() {
            if let Some(inputs) = &stage.inputs {
                issues.push(
                    Issue::new(
                        inputs.span(),
                        format!(
                            "control stage {name} (`{kind}`) takes no input, but it lists inputs"
                        ),
                    )
                    .hint("remove `inputs` from this stage"),
                );
                ok = false;
            }
        } else if !accepts.is_empty() && listed.is_empty() {
            let span = stage
                .plugin
                .as_ref()
                .map_or(stage.span.clone(), |p| p.span());
            issues.push(
                Issue::new(
                    span,
                    format!(
                        "control stage {name} (`{kind}`) takes {} but has no `inputs`",
                        accepted()
                    ),
                )
                .hint("add `inputs = [\"ID\", ...]` naming the stages it reads"),
            );
            ok = false;
        }
        for (from, span) in &resolved {
            let Some((_, upstream)) = checked[*from].stage else {
                continue;
            };
            let from_name = name_of(&stages[*from]);
            match upstream.output.into_option() {
                Some(emitted) if accepts.contains(&emitted) => {}
                Some(emitted) => {
                    issues.push(
                        Issue::new(
                            span.clone(),
                            format!(
                                "packet types do not match: control stage {name} (`{kind}`) takes {}, but its input {from_name} (`{}`) emits {emitted}",
                                accepted(),
                                upstream.kind
                            ),
                        )
                        .hint(format!("read from a stage that emits {}", accepted())),
                    );
                    ok = false;
                }
                None => {
                    issues.push(
                        Issue::new(
                            span.clone(),
                            format!(
                                "stage {name} reads from {from_name}, but `{}` emits nothing",
                                upstream.kind
                            ),
                        )
                        .hint("read from the stage that feeds it instead"),
                    );
                    ok = false;
                }
            }
        }
    } else if let Some((_, descriptor)) = checked[index].stage {
        let kind = descriptor.kind.as_str();
        match (descriptor.input.into_option(), &stage.inputs) {
            (None, Some(inputs)) if !listed.is_empty() => {
                issues.push(
                    Issue::new(
                        inputs.span(),
                        format!("stage {name} is a `{kind}`, a source that takes no input, but it lists inputs"),
                    )
                    .hint("remove `inputs` from this stage"),
                );
                ok = false;
            }
            (Some(wanted), _) if listed.is_empty() => {
                let producers: Vec<String> = stages
                    .iter()
                    .zip(checked.iter())
                    .filter(|(_, c)| {
                        c.stage
                            .is_some_and(|(_, d)| d.output.into_option() == Some(wanted))
                    })
                    .filter_map(|(s, _)| {
                        s.id.as_ref()
                            .map(|id| format!("`{}`", shown_id(id.get_ref())))
                    })
                    .collect();
                let hint = if producers.is_empty() {
                    format!("add `inputs = [\"ID\"]` naming a stage that emits {wanted}")
                } else {
                    format!(
                        "add `inputs = [\"ID\"]`; stages here that emit {wanted}: {}",
                        listing(producers.into_iter())
                    )
                };
                let span = stage
                    .plugin
                    .as_ref()
                    .map_or(stage.span.clone(), |p| p.span());
                issues.push(
                    Issue::new(
                        span,
                        format!("stage {name} (`{kind}`) takes {wanted} but has no `inputs`"),
                    )
                    .hint(hint),
                );
                ok = false;
            }
            _ => {}
        }
        // Packet types along each edge.
        if let Some(wanted) = descriptor.input.into_option() {
            for (from, span) in &resolved {
                let Some((_, upstream)) = checked[*from].stage else {
                    continue; // its unknown kind is reported already
                };
                let from_name = name_of(&stages[*from]);
                match upstream.output.into_option() {
                    Some(emitted) if emitted == wanted => {}
                    Some(emitted) => {
                        issues.push(
                            Issue::new(
                                span.clone(),
                                format!(
                                    "packet types do not match: stage {name} (`{kind}`) takes {wanted}, but its input {from_name} (`{}`) emits {emitted}",
                                    upstream.kind
                                ),
                            )
                            .hint(converters(registry, emitted, wanted)),
                        );
                        ok = false;
                    }
                    None => {
                        issues.push(
                            Issue::new(
                                span.clone(),
                                format!("stage {name} reads from {from_name}, but `{}` is a sink and emits nothing", upstream.kind),
                            )
                            .hint("read from the stage that feeds the sink instead"),
                        );
                        ok = false;
                    }
                }
            }
        }
    }
    let this = &mut checked[index];
    this.inputs = resolved;
    this.ok &= ok;
}

/// A hint on which stage kinds could sit between `emitted` and `wanted`.
fn converters(registry: &PluginRegistry, emitted: PacketKind, wanted: PacketKind) -> String {
    let mut direct = Vec::new();
    let mut takers = Vec::new();
    for kind in registry.stage_kinds() {
        let Some((_, d)) = registry.stage(kind) else {
            continue;
        };
        if d.input.into_option() == Some(emitted) {
            takers.push(format!("`{kind}`"));
            if d.output.into_option() == Some(wanted) {
                direct.push(format!("`{kind}`"));
            }
        }
    }
    if !direct.is_empty() {
        format!(
            "put a stage that turns {emitted} into {wanted} between them: {}",
            direct.join(", ")
        )
    } else if !takers.is_empty() {
        format!("stage kinds that take {emitted}: {}", takers.join(", "))
    } else {
        format!("no loaded stage kind takes {emitted}")
    }
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
    fn typos_are_looked_for_within_a_budget_then_ids_are_listed() {
        // 300 stages with 64-character ids, each reading a misspelling of
        // its own id: each look costs 64 x 300 x 64 character pairs, so
        // the budget covers the first few, and the rest list ids.
        let id = |i: usize| format!("{i:03}{}", "x".repeat(61));
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&format!(
                "[[stage]]\nid = \"{}\"\nplugin = \"x\"\ninputs = [\"{}y\"]\n",
                id(i),
                &id(i)[..63]
            ));
        }
        let hints: Vec<String> = errors(&text)
            .into_iter()
            .filter(|e| e.contains("which is not a stage"))
            .map(|e| e.lines().nth(1).unwrap_or_default().to_string())
            .collect();
        assert_eq!(hints.len(), 300);
        let per_look = 64 * 300 * 64;
        let suggested = SUGGESTION_BUDGET / per_look;
        assert!(suggested >= 1);
        for (i, hint) in hints.iter().enumerate() {
            if i < suggested {
                assert_eq!(hint, &format!("  hint: did you mean `{}`?", id(i)));
            } else {
                assert!(
                    hint.starts_with("  hint: stage ids in this file: `000x"),
                    "{hint}"
                );
                assert!(hint.ends_with(" and 288 more"), "{hint}");
            }
        }
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
