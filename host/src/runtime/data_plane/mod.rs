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
use hsp_sdk::runtime::{DataPlaneStage, PolledConsumer, PolledProducer, QueueConsumer};
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
    retired: commands::RetiredSink,
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
    /// This plane is one stage that may block, on a thread of its own.
    own_thread: bool,
    /// Those planes, until [`spawn`](Self::spawn) starts their threads.
    io_planes: Vec<DataPlane>,
    /// Their threads, joined when this plane's stages have finished.
    io_threads: Vec<JoinHandle<Result<DataPlane, DataPlaneError>>>,
    /// Commands passed on to those threads, and what they hand back.
    own_threads: Vec<commands::OwnThreadLink>,
}

/// The control plane's handle on a data plane it did not spawn yet.
pub struct DataPlaneLink {
    /// Commands to the data plane.
    pub commands: PolledProducer<Command>,
    /// What the data plane hands back.
    pub retired: QueueConsumer<Retired>,
    /// The bridges built with it, by graph stage index and output port.
    pub taps: Vec<(usize, usize, TapReceiver)>,
    /// Data-plane stage index of each graph stage (`None`: a control
    /// stage). Stages that may block, each on a thread of its own, are
    /// numbered after the data-plane thread's.
    pub index_of: Vec<Option<usize>>,
    /// What the data-plane thread is doing, for the watchdog.
    pub progress: Arc<Progress>,
}

impl DataPlane {
    /// Runs the data plane on its own thread until every stage has finished
    /// (sources at their end, queues drained), `STOP` is raised (sources
    /// stop, the rest drains) or `ABORT` is (every stage stops now).
    ///
    /// Each stage that may block runs on a thread of its own, started
    /// first; the data-plane thread waits for them when its own stages have
    /// finished, and reports them with its own.
    pub fn spawn(
        mut self,
        flags: Arc<RunFlags>,
    ) -> std::io::Result<JoinHandle<Result<DataPlaneReport, DataPlaneError>>> {
        for plane in std::mem::take(&mut self.io_planes) {
            let flags_here = Arc::clone(&flags);
            let name = format!("hsp-io-{}", plane.stages[0].id);
            match thread::Builder::new()
                .name(name)
                .spawn(move || plane.run_own_thread(&flags_here))
            {
                Ok(handle) => {
                    // The i-th thread is the i-th link's.
                    if let Some(link) = self.own_threads.get_mut(self.io_threads.len()) {
                        link.thread = Some(handle.thread().clone());
                    }
                    self.io_threads.push(handle);
                }
                Err(error) => {
                    flags.raise(RunFlags::ABORT);
                    return Err(error);
                }
            }
        }
        let flags_here = Arc::clone(&flags);
        thread::Builder::new()
            .name("hsp-data-plane".into())
            .spawn(move || self.run(&flags_here))
            .inspect_err(|_| flags.raise(RunFlags::ABORT))
    }

    fn run(mut self, flags: &RunFlags) -> Result<DataPlaneReport, DataPlaneError> {
        let outcome = self.run_stages(flags);
        let patience = match &outcome {
            Err(_) => {
                // The other threads stop too, after writing what they were
                // sent: sources stop, and what fed them or read from them
                // here is closed.
                flags.raise(RunFlags::STOP);
                self.close_shared_edges();
                Some(DRAIN_AFTER_FAILURE)
            }
            Ok((_, _, true)) => Some(OWN_THREAD_WAIT),
            Ok(_) => None,
        };
        // What this thread allocated in its steady state, read before
        // waiting for the other threads (which allocates) and the report.
        let steady = outcome
            .as_ref()
            .ok()
            .map(|(_, warm, _)| warm.allocations_since(&self.allocations));
        // A normal end waits for them to drain what they were sent.
        let planes = self.join_own_threads(patience);
        self.collect_retired();
        let (started, warm, aborted) = outcome?;
        let planes = planes?;
        let steady = steady.unwrap_or_default();
        Ok(self.final_report(started, &warm, steady, aborted, planes))
    }

    /// Runs a plane of one stage that may block, on its own thread, until
    /// it finishes; hands the plane back for the report. If it fails, every
    /// other plane is told to stop at once.
    fn run_own_thread(mut self, flags: &RunFlags) -> Result<DataPlane, DataPlaneError> {
        for edge in &self.edges {
            edge.wake_this_thread();
        }
        let outcome = self.drive_own_thread(flags);
        if outcome.is_err() {
            // The run stops; the other stages drain what they hold. This
            // plane's queues close as it is dropped.
            flags.raise(RunFlags::STOP);
        }
        outcome.map(|()| self)
    }

    fn drive_own_thread(&mut self, flags: &RunFlags) -> Result<(), DataPlaneError> {
        self.start_stages()?;
        let mut signalled = Signalled::default();
        let mut idle_passes: u32 = 0;
        loop {
            let raised = flags.get();
            if raised & (RunFlags::STOP | RunFlags::ABORT) != 0 {
                self.on_stop_flags(raised, &mut signalled);
            }
            if !self.commands.is_empty() {
                self.apply_commands();
            }
            let mut worked = false;
            for index in 0..self.stages.len() {
                worked |= self.step(index)?;
            }
            if self.finished == self.stages.len() {
                // Changes that arrived too late to apply go back, refused.
                self.apply_commands();
                return Ok(());
            }
            if worked {
                idle_passes = 0;
            } else {
                idle_passes = idle_passes.saturating_add(1);
                // The threads it shares queues with unpark it when they
                // push or pop; the timeout catches a packet coming home to
                // an empty pool, which wakes no one.
                if idle_passes > 64 {
                    thread::park_timeout(Duration::from_millis(1));
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }

    /// Closes every queue this thread shares with another: the stages
    /// there see their input end, and their pushes come back closed.
    fn close_shared_edges(&mut self) {
        for edge in &mut self.edges {
            if matches!(edge.producer, Some(edge::Producer::Shared(_))) {
                edge.producer = None;
            }
            if matches!(edge.consumer, Some(edge::Consumer::Shared { .. })) {
                edge.let_go();
            }
        }
    }

    /// Waits for the threads of the stages that may block (at most
    /// `patience`, after a failure or an abort; for ever after a normal
    /// end, as they drain what they were sent) and takes their planes
    /// back; the first error among them, if any.
    fn join_own_threads(
        &mut self,
        patience: Option<Duration>,
    ) -> Result<Vec<DataPlane>, DataPlaneError> {
        let mut planes = Vec::new();
        let mut first_error = None;
        let deadline = patience.map(|patience| Instant::now() + patience);
        for handle in std::mem::take(&mut self.io_threads) {
            if let Some(deadline) = deadline {
                while !handle.is_finished() && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(1));
                }
                if !handle.is_finished() {
                    // Stuck in its plugin's code: left behind, named.
                    first_error.get_or_insert(DataPlaneError::RunFailed(format!(
                        "thread {:?} did not stop in time",
                        handle.thread().name().unwrap_or("?"),
                    )));
                    continue;
                }
            }
            match handle.join() {
                Ok(Ok(plane)) => planes.push(plane),
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(_) => {
                    first_error.get_or_insert(DataPlaneError::RunFailed(
                        "a stage's own thread panicked".into(),
                    ));
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(planes),
        }
    }

    /// Starts every stage of this plane, in order.
    fn start_stages(&mut self) -> Result<(), DataPlaneError> {
        for index in 0..self.stages.len() {
            let stage = &mut self.stages[index];
            self.progress.enter(index);
            let started = DataPlaneStage::start(&mut stage.stage);
            self.progress.leave();
            if let Err(error) = started {
                return Err(DataPlaneError::running(stage, error));
            }
        }
        Ok(())
    }

    /// The data plane's loop: until every stage of this plane has finished.
    fn run_stages(&mut self, flags: &RunFlags) -> Result<(Instant, WarmUp, bool), DataPlaneError> {
        for edge in &self.edges {
            edge.wake_this_thread();
        }
        self.start_stages()?;
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
            if !self.own_threads.is_empty() {
                self.collect_retired();
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
        Ok((started, warm, signalled.aborted))
    }

    /// Acts on the run flags raised since the last pass.
    fn on_flags(
        &mut self,
        raised: u8,
        flags: &RunFlags,
        signalled: &mut Signalled,
        started: Instant,
    ) {
        self.on_stop_flags(raised, signalled);
        if raised & RunFlags::REPORT != 0 {
            flags.lower(RunFlags::REPORT);
            crate::err!("{}", self.report_table(started));
        }
    }

    /// `STOP`: the sources stop, the rest drains. `ABORT`: every stage
    /// stops now.
    fn on_stop_flags(&mut self, raised: u8, signalled: &mut Signalled) {
        if !signalled.stopping && raised & RunFlags::STOP != 0 {
            signalled.stopping = true;
            for index in 0..self.stages.len() {
                if self.stages[index].is_source() {
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

/// How long an aborted data plane waits for the threads of its stages that
/// may block to stop (they were told to at once).
const OWN_THREAD_WAIT: Duration = Duration::from_secs(2);

/// How long a data plane that failed waits for those threads to write what
/// they were sent before it failed.
const DRAIN_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// The run flags acted on so far.
#[derive(Default)]
struct Signalled {
    /// Sources were stopped; the rest drains.
    stopping: bool,
    /// Every stage was stopped at once.
    aborted: bool,
}
