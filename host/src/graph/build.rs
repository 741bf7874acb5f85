//! How does a pipeline that passed every check become a [`PipelineGraph`]?
//! Stages in their run order, each edge and setting with its default
//! filled in, each stage with what the checks resolved for it.

use super::formats::StageFormats;
use super::model::{
    EdgePolicy, InputEdge, Location, OnError, PipelineGraph, PipelineSettings, StageNode,
};
use super::raw::{RawPipeline, RawStage};
use super::recipe::{KindFacts, StageRecipe};
use super::report::{Issue, LineIndex, name_of};
use super::stage::{Checked, role_of};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Default `queue.capacity`.
const DEFAULT_QUEUE_CAPACITY: usize = 16;

/// A stage's `queue.capacity`, or the default.
pub(super) fn capacity_of(stage: &RawStage) -> usize {
    stage
        .queue
        .as_ref()
        .and_then(|q| q.capacity.as_ref())
        .map_or(DEFAULT_QUEUE_CAPACITY, |c| *c.get_ref())
}

/// The graph of `raw` (read from `file`, whose text is `text`), its stages
/// in `order`. `Err` is a stage that was not negotiated, which passing
/// every check rules out.
pub(super) fn build_graph(
    file: &Path,
    text: &str,
    raw: RawPipeline,
    checked: &[Checked<'_>],
    order: &[usize],
    formats: &[Option<StageFormats>],
) -> Result<PipelineGraph, Issue> {
    let position: HashMap<usize, usize> =
        order.iter().enumerate().map(|(pos, &i)| (i, pos)).collect();
    let index = LineIndex::new(text);
    let mut nodes = Vec::with_capacity(order.len());
    for &i in order {
        let stage = &raw.stages[i];
        // Every check passed, so every stage was ordered and negotiated.
        let Some(formats) = formats[i].clone() else {
            return Err(Issue::new(
                stage.span.clone(),
                format!(
                    "internal error: stage {} was not negotiated",
                    name_of(stage)
                ),
            ));
        };
        let inputs = input_edges(stage, &checked[i], &position);
        let location = index.location(stage.span.start);
        let node = stage_node(stage, &checked[i], inputs, formats, location);
        nodes.push(node.ok_or_else(|| {
            Issue::new(
                stage.span.clone(),
                format!("internal error: stage {} has no plugin", name_of(stage)),
            )
        })?);
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
        warnings: Vec::new(),
    })
}

/// The edges into `stage`, each from its upstream stage's place in the run
/// order (`position`), all sized and paced by the stage's `queue`.
fn input_edges(
    stage: &RawStage,
    this: &Checked<'_>,
    position: &HashMap<usize, usize>,
) -> Vec<InputEdge> {
    let queue = stage.queue.as_ref();
    let capacity = capacity_of(stage);
    let policy = queue
        .and_then(|q| q.policy.as_ref())
        .map_or(EdgePolicy::Block, |p| *p.get_ref());
    let decimate = queue
        .and_then(|q| q.decimate.as_ref())
        .map_or(1, |d| *d.get_ref());
    this.inputs
        .iter()
        .map(|up| InputEdge {
            from: position[&up.from],
            from_port: up.port,
            capacity,
            policy,
            decimate,
        })
        .collect()
}

/// One stage's node: the only place a [`StageNode`] is made, so that a new
/// field of it is filled in here and nowhere else.
fn stage_node(
    stage: &RawStage,
    this: &Checked<'_>,
    inputs: Vec<InputEdge>,
    formats: StageFormats,
    location: Location,
) -> Option<StageNode> {
    let (plugin, descriptor) = this.stage?;
    let recipe = StageRecipe::new(
        descriptor.kind.to_string(),
        this.config_json.clone().unwrap_or_else(|| "{}".into()),
        stage
            .on_error
            .as_ref()
            .map_or(OnError::Stop, |e| *e.get_ref()),
        formats,
        Arc::new(plugin.entry_points()),
        KindFacts::of(descriptor),
    );
    Some(StageNode {
        id: stage
            .id
            .as_ref()
            .map(|id| id.get_ref().clone())
            .unwrap_or_default(),
        stage_type: role_of(stage, this),
        inputs,
        recipe,
        location,
    })
}
