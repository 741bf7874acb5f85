//! What changed between the running graph and a new version of its file,
//! stage by stage (as Vector diffs its topology), and whether the running
//! pipeline can take it without a restart.

use crate::graph::{PipelineGraph, StageNode, StageType, same_shapes};
use std::collections::HashSet;

/// The changes from one graph to the next.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GraphDiff {
    /// Why the change cannot be applied to the running pipeline; empty if it
    /// can. Structural data-plane changes (stages, edges, formats, pipeline
    /// settings) need a restart.
    pub needs_restart: Vec<String>,
    /// Data-plane stages to rebuild and swap between two packets (new
    /// config, new error policy, or new plugin code).
    pub data_plane: Vec<String>,
    /// Control stages to restart (new config, kind, inputs, policy or code).
    pub control_changed: Vec<String>,
    /// Control stages to start.
    pub control_added: Vec<String>,
    /// Control stages to stop.
    pub control_removed: Vec<String>,
}

impl GraphDiff {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.needs_restart.is_empty()
            && self.data_plane.is_empty()
            && self.control_changed.is_empty()
            && self.control_added.is_empty()
            && self.control_removed.is_empty()
    }
}

/// Diffs `old` against `new`; stages of a kind in `reloaded` (their plugin
/// was just loaded again) count as changed.
pub fn diff(old: &PipelineGraph, new: &PipelineGraph, reloaded: &HashSet<String>) -> GraphDiff {
    let mut diff = GraphDiff::default();
    if old.settings != new.settings {
        diff.needs_restart
            .push("the `[pipeline]` settings changed".into());
    }
    let find = |graph: &'_ PipelineGraph, id: &str| -> Option<usize> {
        graph.stages.iter().position(|n| n.id == id)
    };
    for (old_index, before) in old.stages.iter().enumerate() {
        let Some(new_index) = find(new, &before.id) else {
            match before.stage_type {
                StageType::DataPlane => diff
                    .needs_restart
                    .push(format!("data-plane stage `{}` was removed", before.id)),
                StageType::Control => diff.control_removed.push(before.id.clone()),
            }
            continue;
        };
        let after = &new.stages[new_index];
        let changed_code = reloaded.contains(after.kind());
        if before.stage_type != after.stage_type {
            diff.needs_restart.push(format!(
                "stage `{}` moved between the data plane and the control plane",
                before.id
            ));
            continue;
        }
        let same_inputs = input_ids(old, old_index) == input_ids(new, new_index);
        match after.stage_type {
            StageType::DataPlane => {
                let changed = changed_code
                    || before.recipe.config_json != after.recipe.config_json
                    || before.recipe.on_error != after.recipe.on_error;
                if before.kind() != after.kind() {
                    diff.needs_restart.push(format!(
                        "data-plane stage `{}` changed kind (`{}` to `{}`)",
                        before.id,
                        before.kind(),
                        after.kind()
                    ));
                } else if !same_inputs {
                    diff.needs_restart.push(format!(
                        "the edges into data-plane stage `{}` changed",
                        before.id
                    ));
                } else if !same_shapes(&before.recipe.input_formats, &after.recipe.input_formats)
                    || !same_shapes(&before.recipe.output_formats, &after.recipe.output_formats)
                {
                    diff.needs_restart.push(format!(
                        "data-plane stage `{}` would change the shape of its stream",
                        before.id
                    ));
                } else if before.recipe.may_block() != after.recipe.may_block() {
                    diff.needs_restart.push(format!(
                        "data-plane stage `{}` would move between the data-plane thread and a thread of its own",
                        before.id
                    ));
                } else if changed {
                    diff.data_plane.push(after.id.clone());
                }
            }
            StageType::Control => {
                if changed_code || control_differs(before, after) || !same_inputs {
                    diff.control_changed.push(after.id.clone());
                }
            }
        }
    }
    for after in &new.stages {
        if find(old, &after.id).is_none() {
            match after.stage_type {
                StageType::DataPlane => diff
                    .needs_restart
                    .push(format!("data-plane stage `{}` was added", after.id)),
                StageType::Control => diff.control_added.push(after.id.clone()),
            }
        }
    }
    diff
}

fn control_differs(before: &StageNode, after: &StageNode) -> bool {
    before.kind() != after.kind()
        || before.recipe.config_json != after.recipe.config_json
        || before.recipe.on_error != after.recipe.on_error
}

/// The ids a stage reads, with each edge's queue settings.
fn input_ids(
    graph: &PipelineGraph,
    index: usize,
) -> Vec<(String, usize, crate::graph::EdgePolicy)> {
    graph.stages[index]
        .inputs
        .iter()
        .map(|e| (graph.stages[e.from].id.clone(), e.capacity, e.policy))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::EdgePolicy;
    use crate::graph::{InputEdge, Location, PipelineSettings};

    fn node(
        id: &str,
        kind: &str,
        stage_type: StageType,
        from: Option<usize>,
        config: &str,
    ) -> StageNode {
        StageNode {
            id: id.into(),
            stage_type,
            inputs: from
                .map(|from| InputEdge {
                    from,
                    from_port: 0,
                    capacity: 16,
                    policy: EdgePolicy::Block,
                    decimate: 1,
                })
                .into_iter()
                .collect(),
            recipe: crate::graph::recipe_for_tests(kind, config),
            location: Location::default(),
        }
    }

    fn graph(stages: Vec<StageNode>) -> PipelineGraph {
        PipelineGraph {
            name: "test".into(),
            file: "test.toml".into(),
            settings: PipelineSettings::default(),
            stages,
            warnings: Vec::new(),
        }
    }

    fn base() -> Vec<StageNode> {
        vec![
            node("source", "synth", StageType::DataPlane, None, "{}"),
            node(
                "filter",
                "iir",
                StageType::DataPlane,
                Some(0),
                r#"{"cutoff_hz":[8,12]}"#,
            ),
            node(
                "level",
                "threshold",
                StageType::Control,
                Some(1),
                r#"{"level":1}"#,
            ),
            node(
                "log",
                "jsonl_sink",
                StageType::Control,
                Some(2),
                r#"{"path":"a"}"#,
            ),
        ]
    }

    #[test]
    fn only_the_changed_control_stage_restarts() {
        let mut new = base();
        new[2].recipe.config_json = r#"{"level":2}"#.into();
        let diff = diff(&graph(base()), &graph(new), &HashSet::new());
        assert_eq!(diff.control_changed, ["level"]);
        assert!(diff.data_plane.is_empty() && diff.needs_restart.is_empty());
    }

    #[test]
    fn a_data_plane_config_change_is_live_and_a_new_edge_needs_a_restart() {
        let mut new = base();
        new[1].recipe.config_json = r#"{"cutoff_hz":[30,40]}"#.into();
        let live = diff(&graph(base()), &graph(new.clone()), &HashSet::new());
        assert_eq!(live.data_plane, ["filter"]);
        assert!(live.needs_restart.is_empty());

        new.push(node(
            "sink",
            "null_sink",
            StageType::DataPlane,
            Some(1),
            "{}",
        ));
        let structural = diff(&graph(base()), &graph(new), &HashSet::new());
        assert_eq!(
            structural.needs_restart,
            ["data-plane stage `sink` was added"]
        );
    }

    #[test]
    fn control_stages_come_and_go_and_reloaded_code_counts_as_a_change() {
        let mut new = base();
        new.pop();
        new.push(node(
            "log2",
            "jsonl_sink",
            StageType::Control,
            Some(2),
            r#"{"path":"b"}"#,
        ));
        let reloaded: HashSet<String> = ["threshold".to_string()].into();
        let diff = diff(&graph(base()), &graph(new), &reloaded);
        assert_eq!(diff.control_removed, ["log"]);
        assert_eq!(diff.control_added, ["log2"]);
        assert_eq!(diff.control_changed, ["level"]);
    }

    #[test]
    fn the_same_graph_is_no_change() {
        assert!(diff(&graph(base()), &graph(base()), &HashSet::new()).is_empty());
    }
}
