//! Building a data plane from a validated graph: one stage object per
//! data-plane node (from its recipe), one pool per output port, one queue
//! per edge, a bridge on every output port a control stage reads, and a
//! plane of its own for every stage that may block.

use super::commands::{COMMAND_CAPACITY, OwnThreadLink, RetiredSink};
use super::edge::{Consumer, Edge, Producer};
use super::stage::RunningStage;
use super::{DataPlane, DataPlaneError, DataPlaneLink};
use crate::graph::{PipelineGraph, StageNode, StageType};
use crate::runtime::bridge::{self, TapReceiver};
use crate::runtime::packets::OutputPool;
use crate::runtime::run_flags::Progress;
use hsp_sdk::runtime::{PolledQueue, SharedQueue, StageQueue};
use std::sync::Arc;
use std::time::Duration;

/// One thread's share of the stages while they are built.
#[derive(Default)]
struct Plane {
    stages: Vec<RunningStage>,
    edges: Vec<Edge>,
}

impl DataPlane {
    /// Builds every data-plane stage of `graph` from its recipe, one pool
    /// per stage output, one queue per edge, and a bridge on every output
    /// port that a control stage reads. A stage that may block gets a
    /// plane of its own, run on its own thread, joined to the others by
    /// shared queues. Nothing runs until [`spawn`](Self::spawn).
    pub fn build(
        graph: &PipelineGraph,
        stats_interval: Option<Duration>,
    ) -> Result<(Self, DataPlaneLink), DataPlaneError> {
        // Plane 0 is the data-plane thread; each stage that may block has
        // the next one.
        let mut planes: Vec<Plane> = vec![Plane::default()];
        // Per graph stage: its plane and its index there (`None`: control).
        let mut placed: Vec<Option<(usize, usize)>> = Vec::with_capacity(graph.stages.len());
        let mut taps: Vec<(usize, usize, TapReceiver)> = Vec::new();
        for (graph_index, node) in graph.stages.iter().enumerate() {
            if node.stage_type == StageType::Control {
                placed.push(None);
                continue;
            }
            let plane = if node.recipe.may_block() {
                planes.push(Plane::default());
                planes.len() - 1
            } else {
                0
            };
            let index = planes[plane].stages.len();
            placed.push(Some((plane, index)));
            let mut running = build_stage(graph, graph_index)?;
            running.stats.own_thread = node.recipe.may_block();
            for (port, format) in node.recipe.output_formats.iter().enumerate() {
                if feeds_control(graph, graph_index, port) {
                    let (tap, receiver) = bridge::tap(format);
                    running.outputs[port].tap = Some(tap);
                    taps.push((graph_index, port, receiver));
                }
            }
            for input in &node.inputs {
                // Validation allows data-plane stages to read data-plane stages only.
                let Some((from_plane, from)) = placed[input.from] else {
                    return Err(DataPlaneError::stage(node, "reads from a control stage"));
                };
                let names = (
                    graph.stream_name(input.from, input.from_port),
                    node.id.clone(),
                );
                let edge = Edge {
                    producer: None,
                    consumer: None,
                    policy: input.policy,
                    from: Some(from),
                    to: Some(index),
                    names,
                    pushed: 0,
                    dropped: 0,
                    downstream_gone: false,
                };
                if from_plane == plane {
                    let (producer, consumer) = PolledQueue::new(input.capacity);
                    let here = &mut planes[plane];
                    running.inputs.push(here.edges.len());
                    here.stages[from].outputs[input.from_port]
                        .edges
                        .push(here.edges.len());
                    here.edges.push(Edge {
                        producer: Some(Producer::Local(producer)),
                        consumer: Some(Consumer::Local(consumer)),
                        ..edge
                    });
                } else {
                    // Each thread holds its own end; the producer's counts.
                    let (producer, consumer) = SharedQueue::new(input.capacity);
                    let upstream = &mut planes[from_plane];
                    upstream.stages[from].outputs[input.from_port]
                        .edges
                        .push(upstream.edges.len());
                    let names = edge.names.clone();
                    upstream.edges.push(Edge {
                        producer: Some(Producer::Shared(producer)),
                        to: None,
                        ..edge
                    });
                    let edges = &mut planes[plane].edges;
                    running.inputs.push(edges.len());
                    edges.push(Edge {
                        producer: None,
                        consumer: Some(Consumer::Shared {
                            queue: consumer,
                            next: None,
                        }),
                        policy: input.policy,
                        from: None,
                        to: Some(index),
                        names,
                        pushed: 0,
                        dropped: 0,
                        downstream_gone: false,
                    });
                }
            }
            planes[plane].stages.push(running);
        }
        let progress = Arc::new(Progress::default());
        let mut planes = planes.into_iter();
        let main = planes.next().unwrap_or_default();
        let (commands_tx, commands) = PolledQueue::new(COMMAND_CAPACITY);
        // Room for an acknowledgement of every command in flight, twice over.
        let (retired, retired_rx) = StageQueue::new(2 * COMMAND_CAPACITY).split();
        let mut data_plane = Self::assemble(
            main,
            graph,
            stats_interval,
            commands,
            RetiredSink::Control(retired),
            Arc::clone(&progress),
        );
        let here = data_plane.stages.len();
        for plane in planes {
            // A plane of one stage that may block: its commands come
            // through the data-plane thread, which numbers its stage after
            // its own; no watchdog reads it.
            let (commands_tx, commands) = PolledQueue::new(COMMAND_CAPACITY);
            let (retired_tx, retired) = PolledQueue::new(2 * COMMAND_CAPACITY);
            let mut io = Self::assemble(
                plane,
                graph,
                None,
                commands,
                RetiredSink::DataPlane(retired_tx),
                Default::default(),
            );
            io.own_thread = true;
            data_plane.io_planes.push(io);
            data_plane.own_threads.push(OwnThreadLink {
                commands: commands_tx,
                retired,
                thread: None,
            });
        }
        let index_of = placed
            .iter()
            .map(|place| match place {
                Some((0, index)) => Some(*index),
                Some((plane, _)) => Some(here + plane - 1),
                None => None,
            })
            .collect();
        Ok((
            data_plane,
            DataPlaneLink {
                commands: commands_tx,
                retired: retired_rx,
                taps,
                index_of,
                progress,
            },
        ))
    }

    fn assemble(
        plane: Plane,
        graph: &PipelineGraph,
        stats_interval: Option<Duration>,
        commands: hsp_sdk::runtime::PolledConsumer<super::Command>,
        retired: RetiredSink,
        progress: Arc<Progress>,
    ) -> Self {
        Self {
            stages: plane.stages,
            edges: plane.edges,
            idle: graph.settings.idle,
            stats_interval,
            name: graph.name.clone(),
            commands,
            retired,
            finished: 0,
            progress,
            hand_off_depth: 0,
            stop_failures: Vec::new(),
            allocations: Default::default(),
            control_path: Default::default(),
            own_thread: false,
            io_planes: Vec::new(),
            io_threads: Vec::new(),
            own_threads: Vec::new(),
        }
    }
}

/// Builds data-plane stage `graph_index` of `graph` with a pool per
/// output port.
fn build_stage(graph: &PipelineGraph, graph_index: usize) -> Result<RunningStage, DataPlaneError> {
    let node = &graph.stages[graph_index];
    let recipe = &node.recipe;
    let stage = recipe
        .build()
        .map_err(|error| DataPlaneError::stage(node, error))?;
    let pools = recipe
        .output_formats
        .iter()
        .enumerate()
        .map(|(port, format)| {
            let consumers = data_plane_consumers(graph, graph_index, port).len();
            // An in-place stage forwards its input's packets; it needs
            // packets of its own only to copy into for a fan-out.
            let needs_pool = !recipe.runs_in_place() || consumers > 1;
            needs_pool.then(|| {
                // Room for every queue its packets can sit in to be full
                // (through in-place stages downstream), plus packets in
                // flight; a port nothing reads needs one packet to fill.
                let capacity = if consumers == 0 {
                    1
                } else {
                    let queued = packets_in_flight(graph, graph_index, port);
                    graph.settings.pool_size.max(queued + 4)
                };
                OutputPool::for_format(format, capacity)
            })?
        })
        .collect();
    Ok(RunningStage::new(
        node.id.clone(),
        graph_index,
        recipe.clone(),
        stage,
        pools,
    ))
}

/// The data-plane stages that read output port `port` of stage `index`,
/// once per edge.
fn data_plane_consumers(graph: &PipelineGraph, index: usize, port: usize) -> Vec<usize> {
    graph
        .stages
        .iter()
        .enumerate()
        .filter(|(_, s)| s.stage_type == StageType::DataPlane)
        .flat_map(|(c, s)| {
            s.inputs
                .iter()
                .filter(move |e| e.from == index && e.from_port == port)
                .map(move |_| c)
        })
        .collect()
}

/// Whether a control stage reads output port `port` of stage `index`.
fn feeds_control(graph: &PipelineGraph, index: usize, port: usize) -> bool {
    graph.stages.iter().any(|s| {
        s.stage_type == StageType::Control
            && s.inputs
                .iter()
                .any(|e| e.from == index && e.from_port == port)
    })
}

/// Packets of the pool of output port `port` of stage `index` that can be
/// away at once: every queue they can sit in, following in-place stages
/// (which forward the packets they get) downstream.
fn packets_in_flight(graph: &PipelineGraph, index: usize, port: usize) -> usize {
    data_plane_consumers(graph, index, port)
        .into_iter()
        .map(|c| {
            let node: &StageNode = &graph.stages[c];
            let edge = node.inputs.iter().map(|e| e.capacity).max().unwrap_or(0) + 1;
            // An in-place stage forwards these very packets (on its last
            // edge, under a fan-out): they can sit in its queues too.
            if node.recipe.runs_in_place() {
                edge + packets_in_flight(graph, c, 0)
            } else {
                edge
            }
        })
        .sum()
}
