//! Building a data plane from a validated graph: one stage object per
//! data-plane node (from its recipe), one pool per stage output, one queue
//! per edge, and a bridge on every stage a control stage reads.

use super::commands::COMMAND_CAPACITY;
use super::edge::Edge;
use super::stage::RunningStage;
use super::{DataPlane, DataPlaneError, DataPlaneLink};
use crate::graph::{PipelineGraph, StageNode, StageType};
use crate::runtime::bridge::{self, TapReceiver};
use crate::runtime::packets::OutputPool;
use crate::runtime::run_flags::Progress;
use hsp_sdk::runtime::{PolledQueue, StageQueue};
use std::sync::Arc;
use std::time::Duration;

impl DataPlane {
    /// Builds every data-plane stage of `graph` from its recipe, one pool
    /// per stage output, one queue per edge, and a bridge on every stage
    /// that a control stage reads. Nothing runs until [`spawn`](Self::spawn).
    pub fn build(
        graph: &PipelineGraph,
        stats_interval: Option<Duration>,
    ) -> Result<(Self, DataPlaneLink), DataPlaneError> {
        let mut stages: Vec<RunningStage> = Vec::with_capacity(graph.stages.len());
        let mut edges = Vec::new();
        let mut index_of = Vec::with_capacity(graph.stages.len());
        let mut taps: Vec<(usize, TapReceiver)> = Vec::new();
        for (graph_index, node) in graph.stages.iter().enumerate() {
            if node.stage_type == StageType::Control {
                index_of.push(None);
                continue;
            }
            let index = stages.len();
            index_of.push(Some(index));
            let mut running = build_stage(graph, graph_index)?;
            if let Some(format) = node
                .recipe
                .output_format
                .filter(|_| feeds_control(graph, graph_index))
            {
                let (tap, receiver) = bridge::tap(&format);
                running.tap = Some(tap);
                taps.push((index, receiver));
            }
            for input in &node.inputs {
                // Validation allows data-plane stages to read data-plane stages only.
                let Some(from) = index_of[input.from] else {
                    return Err(DataPlaneError::stage(node, "reads from a control stage"));
                };
                let (producer, consumer) = PolledQueue::new(input.capacity);
                running.input_edge = Some(edges.len());
                stages[from].output_edges.push(edges.len());
                edges.push(Edge {
                    producer: Some(producer),
                    consumer,
                    policy: input.policy,
                    from,
                    to: index,
                    pushed: 0,
                    dropped: 0,
                    downstream_gone: false,
                });
            }
            stages.push(running);
        }
        let (commands_tx, commands) = PolledQueue::new(COMMAND_CAPACITY);
        // Room for an acknowledgement of every command in flight, twice over.
        let (retired, retired_rx) = StageQueue::new(2 * COMMAND_CAPACITY).split();
        let progress = Arc::new(Progress::default());
        Ok((
            Self {
                stages,
                edges,
                idle: graph.settings.idle,
                stats_interval,
                name: graph.name.clone(),
                commands,
                retired,
                finished: 0,
                progress: Arc::clone(&progress),
                hand_off_depth: 0,
                stop_failures: Vec::new(),
                allocations: Default::default(),
                control_path: Default::default(),
            },
            DataPlaneLink {
                commands: commands_tx,
                retired: retired_rx,
                taps,
                index_of,
                progress,
            },
        ))
    }
}

/// Builds data-plane stage `graph_index` of `graph` with its output pool.
fn build_stage(graph: &PipelineGraph, graph_index: usize) -> Result<RunningStage, DataPlaneError> {
    let node = &graph.stages[graph_index];
    let recipe = &node.recipe;
    let stage = recipe
        .build()
        .map_err(|error| DataPlaneError::stage(node, error))?;
    let data_plane_consumers = graph
        .consumers(graph_index)
        .into_iter()
        .filter(|&c| graph.stages[c].stage_type == StageType::DataPlane)
        .count();
    // An in-place stage forwards its input's packets; it needs packets of
    // its own only to copy into for a fan-out.
    let needs_pool = !recipe.runs_in_place() || data_plane_consumers > 1;
    let pool = recipe
        .output_format
        .as_ref()
        .filter(|_| needs_pool)
        .and_then(|format| {
            // Room for every queue its packets can sit in to be full
            // (through in-place stages downstream), plus packets in flight.
            let queued = packets_in_flight(graph, graph_index);
            OutputPool::for_format(format, graph.settings.pool_size.max(queued + 4))
        });
    Ok(RunningStage::new(
        node.id.clone(),
        recipe.clone(),
        stage,
        pool,
    ))
}

/// Whether a control stage reads stage `index`.
fn feeds_control(graph: &PipelineGraph, index: usize) -> bool {
    graph
        .consumers(index)
        .into_iter()
        .any(|c| graph.stages[c].stage_type == StageType::Control)
}

/// Packets of stage `index`'s pool that can be away at once: every queue
/// they can sit in, following in-place stages (which forward the packets
/// they get) downstream.
fn packets_in_flight(graph: &PipelineGraph, index: usize) -> usize {
    graph
        .consumers(index)
        .into_iter()
        .filter(|&c| graph.stages[c].stage_type == StageType::DataPlane)
        .map(|c| {
            let node: &StageNode = &graph.stages[c];
            let edge: usize = node
                .inputs
                .iter()
                .filter(|e| e.from == index)
                .map(|e| e.capacity + 1)
                .sum();
            // An in-place stage forwards these very packets (on its last
            // edge, under a fan-out): they can sit in its queues too.
            if node.recipe.runs_in_place() {
                edge + packets_in_flight(graph, c)
            } else {
                edge
            }
        })
        .sum()
}
