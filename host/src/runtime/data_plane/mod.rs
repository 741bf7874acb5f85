//! `DataPlane`: one dedicated OS thread runs every data-plane stage in a
//! tight loop over bounded queues: no tokio, no locks, no allocation per
//! packet, no logging per packet above `trace`.
//!
//! Each pass visits the stages upstream to downstream and lets each do at
//! most one packet's work. A stage runs when it has an input (or is a source),
//! a free output packet, and its previous output has left. Backpressure is
//! therefore natural: a full queue leaves its producer's packet pending, the
//! producer's pool drains, and the source stops being called.
//!
//! The rooms: `build.rs` makes it from a graph, `step.rs` moves packets (the
//! hot path), `failure.rs` applies `on_error`, `commands.rs` takes changes
//! from the control plane, `report.rs` says what happened, `stage.rs` and
//! `edge.rs` are the two things the loop drives.

mod allocations;
mod build;
mod commands;
mod edge;
mod failure;
mod report;
mod stage;
mod step;

pub use commands::{Command, Replacement, Retired};
pub use report::DataPlaneReport;

use super::bridge::TapReceiver;
use super::run_flags::{Progress, RunFlags};
use crate::graph::{IdleStrategy, StageNode};
use edge::Edge;
use hsp_sdk::runtime::{
    DataPlaneStage, PolledConsumer, PolledProducer, QueueConsumer, QueueProducer,
};
use report::WarmUp;
use stage::RunningStage;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

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

impl DataPlaneError {
    /// Stage `node` failed, saying `message`.
    pub fn stage(node: &StageNode, message: impl ToString) -> Self {
        Self::StageFailed {
            id: node.id.clone(),
            kind: node.kind().to_string(),
            message: message.to_string(),
        }
    }

    fn running(stage: &RunningStage, message: impl ToString) -> Self {
        Self::StageFailed {
            id: stage.id.clone(),
            kind: stage.recipe.kind.clone(),
            message: message.to_string(),
        }
    }
}

/// A pipeline's data plane, built and ready to spawn.
pub struct DataPlane {
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
    /// Direct hand-offs in progress on the stack (bounded: see `emit`).
    hand_off_depth: u32,
    /// Stages whose `stop` failed: what they held may be lost.
    stop_failures: Vec<String>,
    /// The allocation counters of the host and of every plugin library
    /// whose code runs here.
    allocations: allocations::Allocations,
    /// Allocations made while swapping or rebuilding a stage (off the
    /// packet path, counted apart from the steady state).
    control_path: allocations::Tally,
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

impl DataPlane {
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
                return Err(DataPlaneError::running(stage, error));
            }
        }
        let started = Instant::now();
        let mut last_report = started;
        let mut idle_passes: u32 = 0;
        let mut signalled = Signalled::default();
        let mut warm = WarmUp::new();
        for stage in &mut self.stages {
            self.allocations.add(stage.allocation_counter);
            stage.allocations_seen = stage.library_allocations();
        }
        loop {
            self.progress.pass();
            let raised = flags.get();
            if raised != 0 {
                self.on_flags(raised, flags, &mut signalled, started);
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
            if warm.observe(&self.stages, &self.allocations) {
                // The steady state starts now; so does what is counted apart.
                self.control_path = Default::default();
            }
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
        Ok(self.final_report(started, &warm, signalled.aborted))
    }

    /// Acts on the run flags raised since the last pass.
    fn on_flags(
        &mut self,
        raised: u8,
        flags: &RunFlags,
        signalled: &mut Signalled,
        started: Instant,
    ) {
        if !signalled.stopping && raised & RunFlags::STOP != 0 {
            signalled.stopping = true;
            for index in 0..self.stages.len() {
                if self.stages[index].input_edge.is_none() {
                    self.finish(index);
                }
            }
        }
        if !signalled.aborted && raised & RunFlags::ABORT != 0 {
            // Upstream first, so each stage's queued input is let go
            // (counted) before it stops and a sink flushes.
            signalled.aborted = true;
            for index in 0..self.stages.len() {
                self.finish(index);
            }
        }
        if raised & RunFlags::REPORT != 0 {
            flags.lower(RunFlags::REPORT);
            crate::err!("{}", self.report_table(started));
        }
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
}

/// The run flags acted on so far.
#[derive(Default)]
struct Signalled {
    /// Sources were stopped; the rest drains.
    stopping: bool,
    /// Every stage was stopped at once.
    aborted: bool,
}
