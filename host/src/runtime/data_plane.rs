//! `HybridRuntime`: the data plane. One dedicated OS thread runs every
//! data-plane stage in a tight loop over bounded queues: no tokio, no locks,
//! no allocation per packet, no logging per packet above `trace`.
//!
//! Each pass visits the stages upstream to downstream and lets each do at
//! most one packet's work. A stage runs when it has an input (or is a source),
//! a free output packet, and its previous output has left. Backpressure is
//! therefore natural: a full queue leaves its producer's packet pending, the
//! producer's pool drains, and the source stops being called.

use super::bridge::{self, Tap, TapReceiver};
use super::packets::{
    OutputPool, as_input, as_output, bypass_into, copy_into, shape_fits, shape_of,
};
use super::run_flags::{Progress, RunFlags};
use super::stats::{self, EdgeRow, SourcePace, StageRow, StageStats};
use crate::graph::{EdgePolicy, IdleStrategy, OnError, PipelineGraph, StageNode, StageType};
use crate::registry::PluginRegistry;
use hsp_sdk::abi::{FfiStageBox, PluginModuleRef};
use hsp_sdk::{
    DataPlaneStage, Outcome, PacketMut, PacketRef, PipelineData, PolledConsumer, PolledProducer,
    PolledQueue, QueueConsumer, QueueProducer, StageQueue, StreamFormat,
};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Why the data plane stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DataPlaneError {
    /// A stage failed and its policy is `on_error = "stop"`.
    #[error("stage `{id}` ({kind}) failed: {message}")]
    StageFailed {
        /// Stage id.
        id: String,
        /// Stage kind.
        kind: String,
        /// What it said.
        message: String,
    },
    /// The run failed for a reason that names its own culprit (a control
    /// stage, a stuck data plane, a thread that could not start).
    #[error("{0}")]
    RunFailed(String),
}

/// A pipeline's data plane, built and ready to spawn.
pub struct HybridRuntime {
    stages: Vec<RunningStage>,
    edges: Vec<Edge>,
    idle: IdleStrategy,
    stats_interval: Option<Duration>,
    name: String,
    commands: PolledConsumer<Command>,
    retired: QueueProducer<Retired>,
    /// Stages that have finished.
    finished: usize,
    /// What the watchdog reads.
    progress: Arc<Progress>,
    /// Direct hand-offs in progress on the stack (bounded: see [`emit`]).
    hand_off_depth: u32,
    /// Stages whose `stop` failed: what they held may be lost.
    stop_failures: Vec<String>,
}

/// Direct hand-offs nest one stack frame group per stage; past this depth a
/// packet goes through its queue instead, so a long chain cannot overflow
/// the data-plane thread's stack.
const MAX_HAND_OFF_DEPTH: u32 = 32;

/// A change for the running data plane, applied between two packets.
pub enum Command {
    /// Swap a stage's object for a new one (new parameters or new code).
    Replace(Box<Replacement>),
    /// Set (or remove) the bridge on a stage's output.
    SetTap {
        /// Data-plane stage index.
        stage: usize,
        /// The new tap.
        tap: Option<Tap>,
    },
}

/// A stage object to swap in. After the swap it travels back in
/// [`Retired::Replaced`] holding the *old* object (stopped at the swap) to
/// be dropped off the data-plane thread.
pub struct Replacement {
    /// Data-plane stage index.
    pub stage: usize,
    /// The stage object (built, not started: it resumes at the swap, after
    /// the old one stops, so a sink appends in order and a source's clock
    /// starts when it does).
    pub object: FfiStageBox,
    /// Its plugin (for `on_error = "restart"`).
    pub module: PluginModuleRef,
    /// Its config.
    pub config_json: String,
    /// Its error policy.
    pub on_error: OnError,
    /// Whether it runs in place (must match the running stage).
    pub in_place: bool,
    /// The sender's number for this change, to match its acknowledgement.
    pub ticket: u64,
    /// When the change was asked for.
    pub requested: Instant,
}

/// What the data plane hands back to the control plane.
pub enum Retired {
    /// A [`Command::Replace`] was applied (`error: None`; the box holds the
    /// old stage, stopped) or refused (the box holds the new stage, which
    /// failed to start; the old one runs on).
    Replaced {
        /// The replacement.
        replacement: Box<Replacement>,
        /// Packets the stage had taken in when the swap happened.
        at_packet: u64,
        /// When it was applied.
        applied: Instant,
        /// Why it was refused.
        error: Option<String>,
    },
    /// A tap taken off a stage.
    Tap(Tap),
}

/// The control plane's handle on a data plane it did not spawn yet.
pub struct DataPlaneLink {
    /// Commands to the data plane.
    pub commands: PolledProducer<Command>,
    /// What the data plane hands back.
    pub retired: QueueConsumer<Retired>,
    /// The bridges built with it, by data-plane stage index.
    pub taps: Vec<(usize, TapReceiver)>,
    /// Data-plane stage index of each graph stage (`None`: a control stage).
    pub index_of: Vec<Option<usize>>,
    /// What the data-plane thread is doing, for the watchdog.
    pub progress: Arc<Progress>,
}

/// Commands in flight at once; the control plane waits for room.
const COMMAND_CAPACITY: usize = 64;

/// An edge between two data-plane stages. Both ends are driven by this
/// thread, which polls, so the queue needs no wake-ups (`PolledQueue`).
struct Edge {
    producer: Option<PolledProducer<PipelineData>>,
    consumer: PolledConsumer<PipelineData>,
    policy: EdgePolicy,
    from: usize,
    to: usize,
    pushed: u64,
    dropped: u64,
    /// The consuming stage has finished: pushes are let go.
    downstream_gone: bool,
}

struct RunningStage {
    id: String,
    kind: String,
    on_error: OnError,
    stage: FfiStageBox,
    module: PluginModuleRef,
    config_json: String,
    input_format: Option<StreamFormat>,
    /// What it declared it emits: every emitted packet is checked against it.
    output_format: Option<StreamFormat>,
    input_edge: Option<usize>,
    output_edges: Vec<usize>,
    pool: Option<OutputPool>,
    /// An emitted packet not yet pushed to every output edge.
    pending: Option<PipelineData>,
    /// Output edges `pending` has already reached.
    pending_reached: usize,
    /// The stage said `MoreOutput`: call it again with no input.
    more_output: bool,
    /// It turns each input packet into its output in place: no output
    /// packet is taken and nothing is copied.
    in_place: bool,
    finished: bool,
    stats: StageStats,
    first_error_logged: bool,
    /// `process` calls so far, for sampling their timing ([`timed`]).
    calls: u64,
    /// The bridge to the control plane, if control stages read this one.
    tap: Option<Tap>,
    /// A replacement waiting for the stage to finish its `MoreOutput` run.
    replacement: Option<Box<Replacement>>,
}

impl RunningStage {
    /// Whether it can be handed an input packet now, bypassing its queue:
    /// it needs no output packet of its own (in place, or a sink) and has
    /// nothing in progress that must go first.
    #[inline]
    fn takes_directly(&self) -> bool {
        (self.in_place || self.pool.is_none() && self.output_edges.is_empty())
            && !self.finished
            && self.pending.is_none()
            && !self.more_output
            && self.replacement.is_none()
    }
}

impl RunningStage {
    /// A source emitted `packet`: remember where its data ends, and on
    /// sampled calls (`timed`) how far behind the wall clock it is.
    #[inline]
    fn track_pace(&mut self, packet: &PipelineData, timed: bool) {
        let timestamp = packet.timestamp_ns();
        let pace = match &mut self.stats.pace {
            Some(pace) => pace,
            None => {
                // The first block decides whether the source is live, and
                // the declared block gives the length of every block.
                let now = unix_now_ns();
                let block_ns = self.output_format.as_ref().map_or(0, |f| {
                    if f.sample_rate_hz > 0.0 {
                        (f.values_per_channel as f64 * 1e9 / f.sample_rate_hz) as u64
                    } else {
                        0
                    }
                });
                self.stats.pace.insert(SourcePace {
                    live: now.abs_diff(timestamp) < SourcePace::LIVE_WINDOW_NS,
                    wall_ns: now,
                    last_block: (timestamp, block_ns),
                    ..SourcePace::default()
                })
            }
        };
        pace.last_block.0 = timestamp;
        if timed && pace.live {
            let now = unix_now_ns();
            pace.wall_ns = now;
            let lag = now.saturating_sub(timestamp.saturating_add(pace.last_block.1));
            pace.worst_lag_ns = pace.worst_lag_ns.max(lag);
        }
    }
}

/// The wall clock, in ns since the Unix epoch.
#[inline]
fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `Some(message)` if `packet` does not have the shape `stage` declared.
#[inline]
fn misshapen(stage: &mut RunningStage, packet: &PipelineData) -> Option<String> {
    match &stage.output_format {
        Some(format) if !shape_fits(packet, format) => Some(misshapen_message(stage, packet)),
        _ => None,
    }
}

/// Counts a misshapen packet and says what is wrong (out of the hot path).
#[cold]
#[inline(never)]
fn misshapen_message(stage: &mut RunningStage, packet: &PipelineData) -> String {
    stage.stats.misshapen += 1;
    let (channels, values) = shape_of(packet).unwrap_or_default();
    let (declared_channels, declared_values) = stage
        .output_format
        .map_or((0, 0), |f| (f.channels, f.values_per_channel));
    format!(
        "emitted a packet of {channels} channel(s) x {values} value(s), but declared {declared_channels} x {declared_values}"
    )
}

/// Whether call number `calls` of a stage is timed (and, for a sink, its
/// latency sampled). Reading the clock twice costs about 50 ns here, more
/// than a cheap stage, so calls are sampled: one in 8 for a stage's first
/// 8192 calls (a short or slow run still gets a usable histogram), then one
/// in 64. Within each phase the sample is uniform, so a steady stream's
/// percentiles are unbiased.
#[inline]
fn timed(calls: u64) -> bool {
    let stride = if calls < 8192 { 8 } else { 64 };
    calls % stride == 1
}

/// What the data plane reports when it ends.
pub struct DataPlaneReport {
    /// The stats table.
    pub table: String,
    /// Per stage: id, packets in, packets out.
    pub counts: Vec<(String, u64, u64)>,
    /// `true` if every pool was full again at the end.
    pub pools_full: bool,
    /// Allocations the data-plane thread made after warm-up (host code only;
    /// plugin libraries allocate through their own allocator).
    pub steady_state_allocations: u64,
    /// Packets processed after warm-up.
    pub steady_state_packets: u64,
    /// Packets that reached the sinks, and how long the data plane ran.
    pub delivered: (u64, Duration),
    /// Stages whose `stop` failed (a sink that could not write what it
    /// held): the run must not end as a success.
    pub stop_failures: Vec<String>,
    /// Stopped at once by a second signal: queued packets were let go.
    pub aborted: bool,
}

impl HybridRuntime {
    /// Builds every data-plane stage of `graph` from its plugin, one pool per
    /// stage output, one queue per edge, and a bridge on every stage that a
    /// control stage reads.
    pub fn build(
        graph: &PipelineGraph,
        registry: &PluginRegistry,
        stats_interval: Option<Duration>,
    ) -> Result<(Self, DataPlaneLink), DataPlaneError> {
        let mut stages = Vec::with_capacity(graph.stages.len());
        let mut edges = Vec::new();
        let mut index_of = Vec::with_capacity(graph.stages.len());
        let mut taps = Vec::new();
        for (graph_index, node) in graph.stages.iter().enumerate() {
            let fail = |message: String| DataPlaneError::StageFailed {
                id: node.id.clone(),
                kind: node.kind.clone(),
                message,
            };
            if node.stage_type == StageType::Control {
                index_of.push(None);
                continue;
            }
            let index = stages.len();
            index_of.push(Some(index));
            let (plugin, descriptor) = registry
                .stage(&node.kind)
                .ok_or_else(|| fail("no loaded plugin provides this stage kind".into()))?;
            let in_place = runs_in_place(descriptor.in_place, node, node.on_error);
            let stage = plugin
                .create_stage(&node.kind, &node.config_json, node.input_format)
                .map_err(fail)?;
            let consumers = graph.consumers(graph_index);
            let data_plane_consumers = consumers
                .iter()
                .filter(|&&c| graph.stages[c].stage_type == StageType::DataPlane)
                .count();
            // An in-place stage forwards its input's packets; it needs packets
            // of its own only to copy into for a fan-out.
            let needs_pool = !in_place || data_plane_consumers > 1;
            let pool = node
                .output_format
                .as_ref()
                .filter(|_| needs_pool)
                .and_then(|format| {
                    // Room for every queue its packets can sit in to be full
                    // (through in-place stages downstream), plus packets in flight.
                    let queued = packets_in_flight(graph, registry, graph_index);
                    OutputPool::for_format(format, graph.settings.pool_size.max(queued + 4))
                });
            let mut running = RunningStage {
                id: node.id.clone(),
                kind: node.kind.clone(),
                on_error: node.on_error,
                stage,
                module: plugin.module,
                config_json: node.config_json.clone(),
                input_format: node.input_format,
                output_format: node.output_format,
                input_edge: None,
                output_edges: Vec::new(),
                pool,
                pending: None,
                pending_reached: 0,
                more_output: false,
                in_place,
                finished: false,
                stats: StageStats::new(node.output_format.is_none()),
                first_error_logged: false,
                calls: 0,
                tap: None,
                replacement: None,
            };
            let feeds_control = consumers
                .iter()
                .any(|&c| graph.stages[c].stage_type == StageType::Control);
            if let (true, Some(format)) = (feeds_control, &node.output_format) {
                let (tap, receiver) = bridge::tap(format);
                running.tap = Some(tap);
                taps.push((index, receiver));
            }
            for input in &node.inputs {
                // Validation allows data-plane stages to read data-plane stages only.
                let Some(from) = index_of[input.from] else {
                    return Err(fail("reads from a control stage".into()));
                };
                let (producer, consumer) = PolledQueue::new(input.capacity);
                let edge = edges.len();
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
                running.input_edge = Some(edge);
                let upstream: &mut RunningStage = &mut stages[from];
                upstream.output_edges.push(edge);
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

    /// Applies the commands the control plane sent since the last pass.
    fn apply_commands(&mut self) {
        while let Some(command) = self.commands.pop() {
            match command {
                Command::Replace(replacement) => {
                    let index = replacement.stage;
                    match self.stages.get_mut(index) {
                        Some(stage) if stage.finished => {
                            self.retire_refused(replacement, "the stage has already finished");
                        }
                        Some(stage) if stage.more_output || stage.replacement.is_some() => {
                            // Mid-run of `MoreOutput`: swap once it is done.
                            // A second replacement supersedes the first.
                            if let Some(superseded) = stage.replacement.replace(replacement) {
                                self.retire_refused(superseded, "superseded by a newer change");
                            }
                        }
                        Some(_) => self.replace(index, replacement),
                        None => self.retire_refused(replacement, "no such stage"),
                    }
                }
                Command::SetTap { stage, tap } => {
                    let old = match self.stages.get_mut(stage) {
                        Some(running) => std::mem::replace(&mut running.tap, tap),
                        None => tap,
                    };
                    if let Some(old) = old {
                        self.retire(Retired::Tap(old));
                    }
                }
            }
        }
    }

    /// Swaps stage `index` for `replacement`'s object, between two packets.
    fn replace(&mut self, index: usize, mut replacement: Box<Replacement>) {
        let stage = &mut self.stages[index];
        if stage.finished {
            return self.retire_refused(replacement, "the stage has already finished");
        }
        if replacement.in_place != stage.in_place {
            return self.retire_refused(
                replacement,
                "the new code changes whether the stage works in place; that needs a restart",
            );
        }
        // The old stage stops first (a sink flushes), then the new one
        // resumes after it (a sink appends), so output stays in order. If
        // the new one cannot resume, the old one resumes and runs on.
        if let Err(error) = DataPlaneStage::stop(&mut stage.stage) {
            tracing::warn!(stage = %stage.id, "stopping it for the swap: {error}");
        }
        if let Err(error) = DataPlaneStage::resume(&mut replacement.object) {
            let message = match DataPlaneStage::resume(&mut stage.stage) {
                Ok(()) => format!("the new stage failed to start: {error}"),
                Err(again) => format!(
                    "the new stage failed to start ({error}) and the old one did not resume ({again})"
                ),
            };
            return self.retire_refused(replacement, &message);
        }
        std::mem::swap(&mut stage.stage, &mut replacement.object);
        std::mem::swap(&mut stage.module, &mut replacement.module);
        std::mem::swap(&mut stage.config_json, &mut replacement.config_json);
        std::mem::swap(&mut stage.on_error, &mut replacement.on_error);
        stage.stats.replaced += 1;
        stage.first_error_logged = false;
        let at_packet = stage.stats.packets_in;
        self.retire(Retired::Replaced {
            replacement,
            at_packet,
            applied: Instant::now(),
            error: None,
        });
    }

    fn retire_refused(&mut self, replacement: Box<Replacement>, why: &str) {
        let at_packet = self
            .stages
            .get(replacement.stage)
            .map_or(0, |s| s.stats.packets_in);
        self.retire(Retired::Replaced {
            replacement,
            at_packet,
            applied: Instant::now(),
            error: Some(why.to_string()),
        });
    }

    /// Hands `item` to the control plane to drop.
    fn retire(&mut self, item: Retired) {
        // The queue has room for every command in flight; if the control
        // plane is gone, the item is dropped here.
        drop(self.retired.push(item));
    }

    /// Runs the data plane on its own thread until every stage has finished
    /// (sources at their end, queues drained), `STOP` is raised (sources
    /// stop, the rest drains) or `ABORT` is (every stage stops now).
    pub fn spawn(
        self,
        flags: Arc<RunFlags>,
    ) -> std::io::Result<JoinHandle<Result<DataPlaneReport, DataPlaneError>>> {
        thread::Builder::new()
            .name("hsp-data-plane".into())
            .spawn(move || self.run(&flags))
    }

    fn run(mut self, flags: &RunFlags) -> Result<DataPlaneReport, DataPlaneError> {
        for index in 0..self.stages.len() {
            let stage = &mut self.stages[index];
            self.progress.enter(index);
            let started = DataPlaneStage::start(&mut stage.stage);
            self.progress.leave();
            if let Err(error) = started {
                return Err(DataPlaneError::StageFailed {
                    id: stage.id.clone(),
                    kind: stage.kind.clone(),
                    message: error.to_string(),
                });
            }
        }
        let started = Instant::now();
        let mut last_report = started;
        let mut idle_passes: u32 = 0;
        let mut stopping = false;
        let mut aborted = false;
        let mut warm = WarmUp::new();
        loop {
            self.progress.pass();
            let raised = flags.get();
            if raised != 0 {
                if !stopping && raised & RunFlags::STOP != 0 {
                    stopping = true;
                    for index in 0..self.stages.len() {
                        if self.stages[index].input_edge.is_none() {
                            self.finish(index);
                        }
                    }
                }
                if !aborted && raised & RunFlags::ABORT != 0 {
                    // Upstream first, so each stage's queued input is let
                    // go (counted) before it stops and a sink flushes.
                    aborted = true;
                    for index in 0..self.stages.len() {
                        self.finish(index);
                    }
                }
                if raised & RunFlags::REPORT != 0 {
                    flags.lower(RunFlags::REPORT);
                    crate::err!("{}", self.report_table(started));
                }
            }
            if !self.commands.is_empty() {
                self.apply_commands();
            }
            let mut worked = false;
            for index in 0..self.stages.len() {
                worked |= self.step(index)?;
            }
            if self.finished == self.stages.len() {
                break;
            }
            warm.observe(&self.stages);
            if let Some(interval) = self.stats_interval {
                if last_report.elapsed() >= interval {
                    last_report = Instant::now();
                    crate::err!("{}", self.report_table(started));
                }
            }
            if worked {
                idle_passes = 0;
            } else {
                idle_passes = idle_passes.saturating_add(1);
                self.idle(idle_passes);
            }
        }
        // Changes that arrived too late to apply go back, refused.
        self.apply_commands();
        let elapsed = started.elapsed();
        let steady_state_allocations = warm.allocations_since();
        let steady_state_packets = warm.packets_since(&self.stages);
        let mut table = self.report_table(started);
        let delivered: u64 = self
            .stages
            .iter()
            .filter(|s| s.output_edges.is_empty())
            .map(|s| s.stats.packets_in)
            .sum();
        if delivered > 0 {
            let seconds = elapsed.as_secs_f64();
            table.push_str(&format!(
                "  throughput: {delivered} packets into sinks in {seconds:.3} s: {:.1} ns per packet, {:.0} packets/s\n",
                seconds * 1e9 / delivered as f64,
                delivered as f64 / seconds
            ));
        }
        // Queues are drained and stages dropped: every packet is home.
        let counts = self
            .stages
            .iter()
            .map(|s| (s.id.clone(), s.stats.packets_in, s.stats.packets_out))
            .collect();
        let pools: Vec<_> = self
            .stages
            .iter()
            .filter_map(|s| s.pool.as_ref().map(OutputPool::stats))
            .collect();
        let pools_full = pools.iter().all(|p| p.available == p.capacity);
        Ok(DataPlaneReport {
            table,
            counts,
            pools_full,
            steady_state_allocations,
            steady_state_packets,
            delivered: (delivered, elapsed),
            stop_failures: {
                // A sink that failed under `bypass` or `restart` ran on, but
                // what it was given then may not be written: not a success.
                let mut failures = std::mem::take(&mut self.stop_failures);
                failures.extend(
                    self.stages
                        .iter()
                        .filter(|s| s.output_format.is_none() && s.stats.errors > 0)
                        .map(|s| {
                            format!(
                                "sink `{}` ({}) failed {} time(s) under on_error = {:?}",
                                s.id, s.kind, s.stats.errors, s.on_error
                            )
                        }),
                );
                failures
            },
            aborted,
        })
    }

    fn idle(&self, passes: u32) {
        const SPINS: u32 = 64;
        const YIELDS: u32 = 16;
        match self.idle {
            IdleStrategy::Spin => std::hint::spin_loop(),
            IdleStrategy::Yield if passes > SPINS => thread::yield_now(),
            IdleStrategy::Park if passes > SPINS + YIELDS => {
                // Short naps: a paced source is polled again within 0.5 ms,
                // and an idle 250 Hz pipeline costs a few percent of a core.
                thread::park_timeout(Duration::from_micros(500));
            }
            IdleStrategy::Park if passes > SPINS => thread::yield_now(),
            _ => std::hint::spin_loop(),
        }
    }

    /// Lets stage `index` do at most one packet's work; `true` if it did any.
    fn step(&mut self, index: usize) -> Result<bool, DataPlaneError> {
        if self.stages[index].finished {
            return Ok(false);
        }
        let mut worked = false;
        if self.stages[index].pending.is_some() {
            if !self.distribute(index) {
                return Ok(false);
            }
            worked = true;
        }
        if !self.stages[index].more_output {
            if let Some(replacement) = self.stages[index].replacement.take() {
                self.replace(index, replacement);
            }
        }
        let stage = &mut self.stages[index];
        let draining = stage.more_output;
        if let (Some(edge), false) = (stage.input_edge, draining) {
            if stage.in_place {
                return match self.edges[edge].consumer.pop() {
                    Some(packet) => self.step_in_place(index, packet),
                    None => Ok(self.end_of_input(index, edge) || worked),
                };
            }
            if self.edges[edge].consumer.is_empty() {
                return Ok(self.end_of_input(index, edge) || worked);
            }
        }
        let stage = &mut self.stages[index];
        let output = match &stage.pool {
            Some(pool) => match pool.try_acquire() {
                Some(packet) => Some(packet),
                None => return Ok(worked),
            },
            None => None,
        };
        let input = match (stage.input_edge, draining) {
            (Some(edge), false) => self.edges[edge].consumer.pop(),
            _ => None,
        };
        self.call_stage(index, input, output, worked)
    }

    /// Calls stage `index` on `input` (if any) with `output` (if it has a
    /// pool) and acts on the outcome; `worked` is what to report for a
    /// source that had nothing ready.
    fn call_stage(
        &mut self,
        index: usize,
        input: Option<PipelineData>,
        mut output: Option<PipelineData>,
        worked: bool,
    ) -> Result<bool, DataPlaneError> {
        let stage = &mut self.stages[index];
        stage.stats.packets_in += u64::from(input.is_some());
        let input_ref = input.as_ref().map_or(PacketRef::None, as_input);
        let output_mut = output.as_mut().map_or(PacketMut::None, as_output);
        stage.calls = stage.calls.wrapping_add(1);
        let timed = timed(stage.calls);
        let began = timed.then(Instant::now);
        // No `leave` on the hot path: the next pass or call moves the
        // progress on, which is all the watchdog needs.
        self.progress.enter(index);
        let result = DataPlaneStage::process(&mut stage.stage, input_ref, output_mut);
        if let Some(began) = began {
            stage
                .stats
                .process_ns
                .saturating_record(began.elapsed().as_nanos() as u64);
        }
        if let (true, Some(latency), Some(item)) = (timed, &mut stage.stats.latency_ns, &input) {
            match unix_now_ns().checked_sub(item.timestamp_ns()) {
                Some(age) => latency.saturating_record(age),
                // A source faster than real time stamps data "in the future".
                None => stage.stats.ahead_of_clock += 1,
            }
        }
        match result {
            Ok(Outcome::Emitted) | Ok(Outcome::MoreOutput) => {
                stage.more_output = matches!(result, Ok(Outcome::MoreOutput));
                if let Some(output) = output {
                    if let Some(message) = misshapen(stage, &output) {
                        stage.more_output = false;
                        self.on_stage_error(index, &message, input, Some(output))?;
                        return Ok(true);
                    }
                    if stage.input_edge.is_none() {
                        stage.track_pace(&output, timed);
                    }
                    self.emit(index, output)?;
                }
            }
            Ok(Outcome::NoOutput) => {
                stage.more_output = false;
                // A source that had nothing ready yet is not work done.
                if stage.input_edge.is_none() {
                    return Ok(worked);
                }
            }
            Ok(Outcome::Finished) => {
                stage.more_output = false;
                drop(output);
                self.finish(index);
            }
            Err(error) => {
                stage.more_output = false;
                self.on_stage_error(index, error.message(), input, output)?;
            }
        }
        Ok(true)
    }

    /// Stage `index` found its input `edge` empty: if the producer is gone
    /// too, the stage's input has ended and it finishes (`true`).
    fn end_of_input(&mut self, index: usize, edge: usize) -> bool {
        // Both ends live on this thread: the producer half is dropped when
        // the upstream stage finishes, so no atomic needs reading before.
        let edge = &self.edges[edge];
        if edge.producer.is_none() && edge.consumer.is_finished() {
            self.finish(index);
            return true;
        }
        false
    }

    /// [`step`](Self::step) for an in-place stage given its next input: the
    /// packet is processed where it is and forwarded itself.
    fn step_in_place(
        &mut self,
        index: usize,
        mut packet: PipelineData,
    ) -> Result<bool, DataPlaneError> {
        let stage = &mut self.stages[index];
        stage.stats.packets_in += 1;
        stage.calls = stage.calls.wrapping_add(1);
        let began = timed(stage.calls).then(Instant::now);
        self.progress.enter(index);
        let result = DataPlaneStage::process_in_place(&mut stage.stage, as_output(&mut packet));
        if let Some(began) = began {
            stage
                .stats
                .process_ns
                .saturating_record(began.elapsed().as_nanos() as u64);
        }
        match result {
            Ok(Outcome::Emitted) => match misshapen(stage, &packet) {
                None => self.emit(index, packet)?,
                Some(message) => self.lost_in_place(index, packet, &message)?,
            },
            Ok(Outcome::NoOutput) => drop(packet),
            Ok(Outcome::Finished) => {
                drop(packet);
                self.finish(index);
            }
            Ok(Outcome::MoreOutput) => {
                let message = "returned MoreOutput from process_in_place, which cannot give more";
                self.lost_in_place(index, packet, message)?;
            }
            Err(error) => self.lost_in_place(index, packet, error.message())?,
        }
        Ok(true)
    }

    /// An in-place stage failed on `packet`: it was worked on where it is
    /// and may be half-transformed, so it can be neither bypassed nor fed
    /// again. It is lost, counted, and the stage's policy applies.
    #[cold]
    #[inline(never)]
    fn lost_in_place(
        &mut self,
        index: usize,
        packet: PipelineData,
        message: &str,
    ) -> Result<(), DataPlaneError> {
        drop(packet);
        self.stages[index].stats.lost += 1;
        self.on_stage_error(index, message, None, None)
    }

    /// Stage `index` emitted `packet`: counts it, offers it to the control
    /// plane, and sends it on (straight into the queue when there is one
    /// consumer; a packet that does not fit waits as the stage's pending one).
    ///
    /// With one consumer that could take the packet right now (its queue is
    /// empty, and it works in place or is a sink, so it needs no packet of
    /// its own), the packet is handed straight to it: depth first, the same
    /// order the queue would give, without the queue's push and pop.
    #[inline]
    fn emit(&mut self, index: usize, packet: PipelineData) -> Result<(), DataPlaneError> {
        let stage = &mut self.stages[index];
        stage.stats.packets_out += 1;
        if let Some(tap) = &mut stage.tap {
            tap.offer(&packet);
        }
        if let [edge_index] = stage.output_edges[..] {
            let edge = &mut self.edges[edge_index];
            let consumer = &self.stages[edge.to];
            let direct = edge.producer.is_some()
                && consumer.takes_directly()
                && edge.consumer.is_empty()
                && self.hand_off_depth < MAX_HAND_OFF_DEPTH;
            if direct {
                edge.pushed += 1;
                let to = edge.to;
                self.hand_off_depth += 1;
                let result = if self.stages[to].in_place {
                    self.step_in_place(to, packet).map(|_| ())
                } else {
                    self.call_stage(to, Some(packet), None, true).map(|_| ())
                };
                self.hand_off_depth -= 1;
                return result;
            }
            if let Err(packet) = push(edge, packet) {
                let stage = &mut self.stages[index];
                stage.pending = Some(packet);
                stage.pending_reached = 0;
            }
            return Ok(());
        }
        stage.pending = Some(packet);
        stage.pending_reached = 0;
        self.distribute(index);
        Ok(())
    }

    /// Pushes the stage's pending packet to every output edge (copies for all
    /// but the last); `false` if an edge is full under `block` and the packet
    /// stays pending.
    fn distribute(&mut self, index: usize) -> bool {
        let stage = &mut self.stages[index];
        let edge_count = stage.output_edges.len();
        if edge_count == 0 {
            stage.pending = None;
            return true;
        }
        while stage.pending_reached < edge_count {
            let edge_index = stage.output_edges[stage.pending_reached];
            let last = stage.pending_reached + 1 == edge_count;
            let item = if last {
                match stage.pending.take() {
                    Some(item) => item,
                    None => return true,
                }
            } else {
                let Some(pool) = &stage.pool else { return true };
                let Some(mut copy) = pool.try_acquire() else {
                    return false;
                };
                let Some(original) = &stage.pending else {
                    return true;
                };
                if !copy_into(original, &mut copy) {
                    // Cannot happen for packets of the stage's declared
                    // shape; a copy that does not fit is dropped, counted.
                    self.edges[edge_index].dropped += 1;
                    stage.pending_reached += 1;
                    continue;
                }
                copy
            };
            let edge = &mut self.edges[edge_index];
            match push(edge, item) {
                Ok(()) => stage.pending_reached += 1,
                Err(item) => {
                    if last {
                        stage.pending = Some(item);
                    }
                    return false;
                }
            }
        }
        stage.pending = None;
        true
    }

    fn finish(&mut self, index: usize) {
        let stage = &mut self.stages[index];
        if stage.finished {
            return;
        }
        stage.finished = true;
        self.finished += 1;
        if let Some(pace) = &mut stage.stats.pace {
            // How far behind a live source is, measured when it stops.
            pace.wall_ns = unix_now_ns();
        }
        stage.pending = None;
        stage.more_output = false;
        if let Some(edge) = stage.input_edge {
            // Upstream may still be running: what it sends now goes home,
            // and what was queued is let go, so it is never blocked on us.
            let edge = &mut self.edges[edge];
            edge.downstream_gone = true;
            while edge.consumer.pop().is_some() {
                edge.dropped += 1;
            }
        }
        self.progress.enter(index);
        let stopped = DataPlaneStage::stop(&mut stage.stage);
        self.progress.leave();
        if let Err(error) = stopped {
            tracing::error!(stage = %stage.id, "stop failed: {error}");
            let failure = format!(
                "stage `{}` ({}) failed to stop: {error}",
                stage.id, stage.kind
            );
            self.stop_failures.push(failure);
        }
        for &edge in &stage.output_edges {
            // Downstream sees the end once it has drained this edge.
            self.edges[edge].producer = None;
        }
        // The control stages reading it see the end too.
        stage.tap = None;
        if let Some(replacement) = stage.replacement.take() {
            self.retire_refused(replacement, "the stage finished first");
        }
    }

    /// Applies stage `index`'s `on_error` policy to a failed call on
    /// `input` (kept for `bypass` and `restart`) with `output`.
    ///
    /// - `stop`: the run fails, naming the stage.
    /// - `bypass`: this packet goes on unprocessed. A stage that panicked
    ///   refuses every later call, so it is first rebuilt from its config
    ///   (counted as a restart): only the packet that panicked is bypassed.
    /// - `restart`: the stage is rebuilt from its config, and the packet it
    ///   failed on is fed once to the fresh stage; if that fails too, the
    ///   packet is lost (counted). An in-place stage's packet was worked on
    ///   where it is and cannot be fed again: it is lost (counted).
    fn on_stage_error(
        &mut self,
        index: usize,
        message: &str,
        input: Option<PipelineData>,
        output: Option<PipelineData>,
    ) -> Result<(), DataPlaneError> {
        let stage = &mut self.stages[index];
        stage.stats.errors += 1;
        if !stage.first_error_logged {
            stage.first_error_logged = true;
            tracing::error!(stage = %stage.id, kind = %stage.kind, policy = ?stage.on_error, "{message}");
        } else {
            tracing::trace!(stage = %stage.id, "{message}");
        }
        let fail = |stage: &RunningStage, message: String| DataPlaneError::StageFailed {
            id: stage.id.clone(),
            kind: stage.kind.clone(),
            message,
        };
        match stage.on_error {
            OnError::Stop => Err(fail(stage, message.to_string())),
            OnError::Bypass => {
                if hsp_sdk::export::is_panic_message(message) {
                    self.rebuild(index).map_err(|error| {
                        fail(
                            &self.stages[index],
                            format!("{message}; rebuilding it after the panic failed: {error}"),
                        )
                    })?;
                }
                if let (Some(input), Some(mut output)) = (input, output) {
                    if bypass_into(&input, &mut output) {
                        self.stages[index].stats.bypassed += 1;
                        drop(input);
                        self.emit(index, output)?;
                    } else {
                        self.stages[index].stats.lost += 1;
                    }
                }
                Ok(())
            }
            OnError::Restart => {
                self.rebuild(index).map_err(|error| {
                    fail(
                        &self.stages[index],
                        format!("{message}; restarting it failed too: {error}"),
                    )
                })?;
                if let Some(input) = input {
                    self.feed_again(index, input, output)?;
                }
                Ok(())
            }
        }
    }

    /// Builds stage `index` afresh from its config: the failed object stops
    /// first (a sink flushes what it holds, on drop if it refuses `stop`
    /// after a panic), then the fresh one resumes after it (a sink appends).
    /// A rare error path: its drop may free memory on this thread.
    fn rebuild(&mut self, index: usize) -> Result<(), String> {
        let stage = &mut self.stages[index];
        let fresh = (stage.module.create_stage())(
            stage.kind.as_str().into(),
            stage.config_json.as_str().into(),
            stage.input_format.into(),
        )
        .into_result()
        .map_err(|e| e.into_string())?;
        let mut old = std::mem::replace(&mut stage.stage, fresh);
        self.progress.enter(index);
        let _ = DataPlaneStage::stop(&mut old);
        drop(old);
        let resumed = DataPlaneStage::resume(&mut stage.stage).map_err(|e| e.to_string());
        self.progress.leave();
        resumed?;
        stage.stats.restarts += 1;
        if stage.stats.restarts == 1 {
            tracing::warn!(stage = %stage.id, "rebuilt from its config");
        } else {
            tracing::debug!(stage = %stage.id, restarts = stage.stats.restarts, "rebuilt from its config");
        }
        Ok(())
    }

    /// Gives a restarted stage the packet its predecessor failed on, once.
    fn feed_again(
        &mut self,
        index: usize,
        input: PipelineData,
        mut output: Option<PipelineData>,
    ) -> Result<(), DataPlaneError> {
        let stage = &mut self.stages[index];
        let output_mut = output.as_mut().map_or(PacketMut::None, as_output);
        self.progress.enter(index);
        let result = DataPlaneStage::process(&mut stage.stage, as_input(&input), output_mut);
        self.progress.leave();
        match result {
            Ok(Outcome::Emitted) | Ok(Outcome::MoreOutput) => {
                stage.more_output = matches!(result, Ok(Outcome::MoreOutput));
                match output {
                    Some(output) if misshapen(stage, &output).is_none() => self.emit(index, output),
                    Some(_) => {
                        stage.stats.lost += 1;
                        Ok(())
                    }
                    None => Ok(()),
                }
            }
            Ok(Outcome::NoOutput) => Ok(()),
            Ok(Outcome::Finished) => {
                drop(output);
                self.finish(index);
                Ok(())
            }
            Err(error) => {
                stage.stats.errors += 1;
                stage.stats.lost += 1;
                tracing::debug!(stage = %stage.id, "the fresh stage failed on the same packet: {error}");
                Ok(())
            }
        }
    }

    fn report_table(&mut self, started: Instant) -> String {
        let now = unix_now_ns();
        for stage in self.stages.iter_mut().filter(|s| !s.finished) {
            if let Some(pace) = &mut stage.stats.pace {
                pace.wall_ns = now;
            }
        }
        let rows: Vec<StageRow<'_>> = self
            .stages
            .iter()
            .map(|s| StageRow {
                id: &s.id,
                kind: &s.kind,
                stats: &s.stats,
                pool: s.pool.as_ref().map(OutputPool::stats),
            })
            .collect();
        let edges: Vec<EdgeRow<'_>> = self
            .edges
            .iter()
            .map(|e| EdgeRow {
                from: &self.stages[e.from].id,
                to: &self.stages[e.to].id,
                pushed: e.pushed,
                dropped: e.dropped,
            })
            .collect();
        stats::render(
            &format!(
                "pipeline `{}` after {:.1} s",
                self.name,
                started.elapsed().as_secs_f64()
            ),
            &rows,
            &edges,
        )
    }
}

/// Pushes under the edge's policy; hands the item back if it must wait.
#[inline]
fn push(edge: &mut Edge, item: PipelineData) -> Result<(), PipelineData> {
    let Some(producer) = &mut edge.producer else {
        return Ok(()); // this end was closed: the packet just goes home
    };
    if edge.downstream_gone {
        edge.dropped += 1; // the consumer finished: the packet just goes home
        return Ok(());
    }
    match producer.push(item) {
        Ok(()) => {
            edge.pushed += 1;
            Ok(())
        }
        Err(hsp_sdk::PushError::Closed(_)) => Ok(()),
        Err(hsp_sdk::PushError::Full(item)) => match edge.policy {
            EdgePolicy::Block => Err(item),
            EdgePolicy::DropOldest => {
                // Both ends of a data-plane edge live on this thread, so the
                // producer side may take from the consumer side.
                drop(edge.consumer.pop());
                edge.dropped += 1;
                match producer.push(item) {
                    Ok(()) => {
                        edge.pushed += 1;
                        Ok(())
                    }
                    Err(error) => Err(error.into_inner()),
                }
            }
        },
    }
}

/// Marks the end of warm-up (every stage has moved 16 packets, or one
/// second passed) and counts the data-plane thread's allocations after it.
struct WarmUp {
    started: Instant,
    baseline: Option<(u64, u64)>,
}

impl WarmUp {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            baseline: None,
        }
    }

    fn observe(&mut self, stages: &[RunningStage]) {
        if self.baseline.is_some() {
            return;
        }
        let warmed = stages.iter().all(|s| {
            s.stats.packets_in >= 16 || s.input_edge.is_none() && s.stats.packets_out >= 16
        });
        if warmed || self.started.elapsed() > Duration::from_secs(1) {
            self.baseline = Some((
                crate::alloc_count::thread_allocations(),
                total_packets(stages),
            ));
        }
    }

    fn allocations_since(&self) -> u64 {
        self.baseline.map_or(0, |(allocations, _)| {
            crate::alloc_count::thread_allocations() - allocations
        })
    }

    fn packets_since(&self, stages: &[RunningStage]) -> u64 {
        self.baseline
            .map_or(0, |(_, packets)| total_packets(stages) - packets)
    }
}

fn total_packets(stages: &[RunningStage]) -> u64 {
    stages
        .iter()
        .map(|s| s.stats.packets_in + s.stats.packets_out)
        .sum()
}

/// Whether a stage whose plugin can work in place does: when its input
/// packet has exactly the shape of its output, and only under `stop`:
/// `bypass` must forward the input as it came, and `restart` must give it,
/// intact, to the fresh stage.
pub fn runs_in_place(plugin_in_place: bool, node: &StageNode, on_error: OnError) -> bool {
    plugin_in_place && on_error == OnError::Stop && node.input_format == node.output_format
}

/// Packets of stage `index`'s pool that can be away at once: every queue
/// they can sit in, following in-place stages (which forward the packets
/// they get) downstream.
fn packets_in_flight(graph: &PipelineGraph, registry: &PluginRegistry, index: usize) -> usize {
    graph
        .consumers(index)
        .into_iter()
        .filter(|&c| graph.stages[c].stage_type == StageType::DataPlane)
        .map(|c| {
            let node = &graph.stages[c];
            let edge: usize = node
                .inputs
                .iter()
                .filter(|e| e.from == index)
                .map(|e| e.capacity + 1)
                .sum();
            let in_place = registry
                .stage(&node.kind)
                .is_some_and(|(_, d)| runs_in_place(d.in_place, node, node.on_error));
            // An in-place stage forwards these very packets (on its last
            // edge, under a fan-out): they can sit in its queues too.
            if in_place {
                edge + packets_in_flight(graph, registry, c)
            } else {
                edge
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::{Event, MemoryPool};

    fn edge(capacity: usize, policy: EdgePolicy) -> Edge {
        let (producer, consumer) = PolledQueue::new(capacity);
        Edge {
            producer: Some(producer),
            consumer,
            policy,
            from: 0,
            to: 1,
            pushed: 0,
            dropped: 0,
            downstream_gone: false,
        }
    }

    fn events() -> MemoryPool<Event> {
        MemoryPool::with_init(8, |_| Event::new(0, ""))
    }

    fn event(pool: &MemoryPool<Event>, code: u32) -> PipelineData {
        let mut pooled = pool.try_acquire().expect("a pooled event");
        *pooled = Event::new(code, "");
        PipelineData::Event(pooled)
    }

    fn code(item: PipelineData) -> u32 {
        match item {
            PipelineData::Event(event) => event.code,
            other => panic!("expected an event, got {:?}", other.kind()),
        }
    }

    #[test]
    fn drop_oldest_makes_room_by_dropping_the_oldest_and_counts_it() {
        let mut edge = edge(2, EdgePolicy::DropOldest);
        let pool = events();
        for i in 1..=4 {
            assert!(push(&mut edge, event(&pool, i)).is_ok());
        }
        assert_eq!((edge.pushed, edge.dropped), (4, 2));
        let kept: Vec<u32> = std::iter::from_fn(|| edge.consumer.pop())
            .map(code)
            .collect();
        assert_eq!(kept, [3, 4]);
    }

    #[test]
    fn block_hands_the_packet_back_and_drops_nothing() {
        let mut edge = edge(1, EdgePolicy::Block);
        let pool = events();
        assert!(push(&mut edge, event(&pool, 1)).is_ok());
        let refused = push(&mut edge, event(&pool, 2)).err().map(code);
        assert_eq!(refused, Some(2));
        assert_eq!((edge.pushed, edge.dropped), (1, 0));
    }

    #[test]
    fn a_closed_edge_swallows_the_packet() {
        let mut edge = edge(1, EdgePolicy::Block);
        edge.producer = None;
        let pool = events();
        assert!(push(&mut edge, event(&pool, 1)).is_ok());
        assert_eq!(edge.pushed, 0);
    }
}
