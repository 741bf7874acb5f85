//! `HybridRuntime`: a whole pipeline, run as its two planes. The data plane
//! ([`DataPlane`]) runs on its own thread; the control stages run as tokio
//! tasks on the control plane, which this type owns and drives: it starts
//! both, carries parameter changes and stage swaps to the data plane
//! (`live_change.rs`), stops it on request, and waits for it to drain.

use super::control_plane::{BridgeCount, ControlPlane, ControlSpec, ParamRequest};
use super::data_plane::{DataPlane, DataPlaneError, DataPlaneLink, DataPlaneReport, Retired};
use super::run_flags::{Progress, RunFlags, Watchdog};
use crate::graph::{PipelineGraph, StageRecipe, StageType};
use hsp_sdk::abi::FfiControlStageBox;
use hsp_sdk::runtime::Input;
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop the sources after this long (then drain).
    pub duration: Option<Duration>,
    /// Print the stats table this often (and always at exit).
    pub stats_interval: Option<Duration>,
    /// A data-plane stage call lasting longer than this is reported as
    /// stuck; once the run is stopping, the host gives up on it after this.
    pub watchdog: Duration,
}

/// The watchdog's deadline when none is given.
pub const DEFAULT_WATCHDOG: Duration = Duration::from_secs(5);

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            duration: None,
            stats_interval: None,
            watchdog: DEFAULT_WATCHDOG,
        }
    }
}

/// How a run ended.
pub struct RunOutcome {
    /// The data plane's final report.
    pub report: DataPlaneReport,
    /// The control stages' counters, one line each.
    pub control_table: String,
    /// What stopped it early, if anything did (a signal, `--duration`).
    pub stopped_by: Option<&'static str>,
}

/// Tells a running data plane to stop, from any thread.
#[derive(Clone)]
pub struct StopHandle {
    flags: Arc<RunFlags>,
    data_plane: Thread,
}

impl StopHandle {
    /// Stops the sources; the rest drains.
    pub fn stop(&self) {
        self.raise(RunFlags::STOP);
    }

    /// Stops every stage now; queued packets are let go, sinks flush.
    pub fn abort(&self) {
        self.raise(RunFlags::STOP | RunFlags::ABORT);
    }

    /// Asks for the stats table once.
    pub fn request_report(&self) {
        self.raise(RunFlags::REPORT);
    }

    fn raise(&self, flags: u8) {
        self.flags.raise(flags);
        self.data_plane.unpark();
    }
}

/// Something the running pipeline needs its owner to look at.
pub enum PipelineEvent {
    /// The data plane has ended (sources finished, queues drained, or failure).
    DataPlaneEnded,
    /// A control stage failed under `on_error = "stop"`.
    Fatal(String),
    /// A control stage asks for a parameter change.
    Param(ParamRequest),
    /// The data plane handed something back.
    Retired(Retired),
}

/// A pipeline being run: data plane on its thread, control stages as tasks.
/// Use it from inside the tokio runtime that drives it.
pub struct HybridRuntime {
    pub(super) graph: PipelineGraph,
    /// The recipe of each data-plane stage with every change sent so far
    /// (the base a parameter change is merged into).
    pub(super) latest: HashMap<String, StageRecipe>,
    /// The recipe each data-plane stage runs, as acknowledged by the data
    /// plane; a refused change rolls back to it.
    pub(super) running: HashMap<String, StageRecipe>,
    pub(super) link: DataPlaneLink,
    /// Data-plane index of each data-plane stage, by id (fixed for the run).
    pub(super) dp_index: HashMap<String, usize>,
    pub(super) control: ControlPlane,
    params: mpsc::UnboundedReceiver<ParamRequest>,
    fatal: mpsc::UnboundedReceiver<String>,
    flags: Arc<RunFlags>,
    progress: Arc<Progress>,
    watchdog: Watchdog,
    pub(super) data_plane_thread: Thread,
    joiner: Option<
        std::thread::JoinHandle<std::thread::Result<Result<DataPlaneReport, DataPlaneError>>>,
    >,
    done: oneshot::Receiver<()>,
    pub(super) data_plane_ended: bool,
    pub(super) in_flight: HashMap<u64, super::live_change::InFlight>,
    pub(super) next_ticket: u64,
}

fn failed(message: String) -> DataPlaneError {
    DataPlaneError::RunFailed(message)
}

impl HybridRuntime {
    /// Builds and starts `graph`: every stage is built before anything runs,
    /// so a stage that cannot be built fails the start and nothing is left
    /// running.
    pub fn start(graph: PipelineGraph, options: &RunOptions) -> Result<Self, DataPlaneError> {
        let mut control_stages = Vec::new();
        for node in graph
            .stages
            .iter()
            .filter(|n| n.stage_type == StageType::Control)
        {
            let spec = ControlSpec::of(&graph, node);
            let stage = spec
                .build()
                .map_err(|error| DataPlaneError::stage(node, error))?;
            control_stages.push((spec, stage));
        }
        let (data_plane, mut link) = DataPlane::build(&graph, options.stats_interval)?;
        let (mut control, params, fatal) = ControlPlane::new();
        for (graph_index, port, receiver) in std::mem::take(&mut link.taps) {
            control.add_bridge(&graph.stream_name(graph_index, port), receiver);
        }
        let graph_index = graph_indices(&link);
        for (spec, stage) in control_stages {
            control.start_stage(spec, stage);
        }
        let flags = Arc::new(RunFlags::default());
        let progress = Arc::clone(&link.progress);
        let handle: JoinHandle<_> = data_plane
            .spawn(Arc::clone(&flags))
            .map_err(|e| failed(format!("cannot start the data-plane thread: {e}")))?;
        let data_plane_thread = handle.thread().clone();
        let (done_tx, done) = oneshot::channel();
        let joiner = std::thread::spawn(move || {
            let result = handle.join();
            let _ = done_tx.send(());
            result
        });
        let dp_index = graph_index
            .iter()
            .enumerate()
            .map(|(index, &node)| (graph.stages[node].id.clone(), index))
            .collect();
        let running: HashMap<String, StageRecipe> = graph
            .stages
            .iter()
            .filter(|n| n.stage_type == StageType::DataPlane)
            .map(|n| (n.id.clone(), n.recipe.clone()))
            .collect();
        Ok(Self {
            graph,
            latest: running.clone(),
            running,
            link,
            dp_index,
            control,
            params,
            fatal,
            flags,
            progress,
            watchdog: Watchdog::new(options.watchdog),
            data_plane_thread,
            joiner: Some(joiner),
            done,
            data_plane_ended: false,
            in_flight: HashMap::new(),
            next_ticket: 0,
        })
    }

    /// The graph as running (as its file said when it was last applied).
    pub fn graph(&self) -> &PipelineGraph {
        &self.graph
    }

    /// Waits for the next thing to look at.
    pub async fn next_event(&mut self) -> PipelineEvent {
        // Acknowledgements first: their queue must not fill up while
        // parameter changes keep coming.
        tokio::select! {
            biased;
            Some(item) = self.link.retired.recv() => PipelineEvent::Retired(item),
            Some(message) = self.fatal.recv() => PipelineEvent::Fatal(message),
            _ = &mut self.done, if !self.data_plane_ended => {
                self.data_plane_ended = true;
                PipelineEvent::DataPlaneEnded
            }
            Some(request) = self.params.recv() => PipelineEvent::Param(request),
        }
    }

    /// Stops the sources; the rest of the pipeline drains.
    pub fn stop_sources(&self) {
        self.stop_handle().stop();
    }

    /// A handle that stops the sources from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            flags: Arc::clone(&self.flags),
            data_plane: self.data_plane_thread.clone(),
        }
    }

    /// Looks at the data plane's progress: a stage call that has not
    /// returned within the watchdog's deadline is logged once, by name.
    /// Returns the stuck stage's id and kind while it stays stuck.
    pub fn check_watchdog(&mut self) -> Option<(String, String, Duration)> {
        if self.data_plane_ended {
            return None;
        }
        let stuck = self.watchdog.check(&self.progress)?;
        let node = self
            .dp_index
            .iter()
            .find(|(_, index)| **index == stuck.stage)
            .and_then(|(id, _)| self.graph.stages.iter().find(|n| &n.id == id));
        let (id, kind) = node.map_or_else(
            || (format!("#{}", stuck.stage), "?".to_string()),
            |n| (n.id.clone(), n.kind().to_string()),
        );
        if stuck.new {
            tracing::error!(
                "stage `{id}` ({kind}) has not returned from a call for {:.1} s: the data plane is stuck in it, and every data-plane stage waits",
                stuck.for_.as_secs_f64()
            );
        }
        Some((id, kind, stuck.for_))
    }

    /// Gives up on a data plane stuck in a stage call: the control stages
    /// are stopped (their sinks flush) and the data-plane thread is left to
    /// the process's exit. Returns the control stages' table.
    pub async fn abandon_data_plane(mut self) -> String {
        let order: Vec<String> = self.graph.stages.iter().map(|n| n.id.clone()).collect();
        // The thread is stuck: never join it (the joiner is dropped, detached).
        drop(self.joiner.take());
        self.control.shut_down(&order).await
    }

    /// Starts (or restarts, if it runs) control stage `spec` with `stage`.
    pub async fn run_control_stage(&mut self, spec: ControlSpec, stage: FfiControlStageBox) {
        self.control.restart_stage(spec, stage).await;
    }

    /// Stops and removes control stage `id`.
    pub async fn remove_control_stage(&mut self, id: &str) {
        self.control.remove_stage(id).await;
    }

    /// Adopts `graph` as the running graph (after its changes were applied).
    pub fn set_graph(&mut self, graph: PipelineGraph) {
        self.graph = graph;
    }

    /// Whether the data plane has ended.
    pub fn data_plane_ended(&self) -> bool {
        self.data_plane_ended
    }

    /// Waits for the data plane to end, then drains and stops the control
    /// stages, and returns the final report.
    pub async fn finish(mut self) -> Result<(DataPlaneReport, String), DataPlaneError> {
        if !self.data_plane_ended {
            let _ = (&mut self.done).await;
        }
        let joiner = self.joiner.take();
        let report = match joiner.map(|j| j.join()) {
            Some(Ok(Ok(result))) => result?,
            Some(Ok(Err(panic)) | Err(panic)) => {
                return Err(failed(format!(
                    "the data-plane thread panicked: {}",
                    hsp_sdk::export::panic_message(&*panic)
                )));
            }
            None => return Err(failed("the data plane was already collected".into())),
        };
        while let Some(item) = self.link.retired.pop() {
            self.on_retired(item);
        }
        let bridges = self.control.bridge_counts();
        let order: Vec<String> = self.graph.stages.iter().map(|n| n.id.clone()).collect();
        let mut control_table = self.control.shut_down(&order).await;
        // A control stage that failed under `stop` after the data plane
        // ended (while draining its queue) still fails the run.
        if let Ok(message) = self.fatal.try_recv() {
            crate::err!("{report_table}{control_table}", report_table = report.table);
            return Err(failed(message));
        }
        for BridgeCount {
            from: id,
            sent,
            dropped,
        } in bridges
        {
            control_table.push_str(&format!(
                "  bridge {id} -> control plane: {sent} sent, {dropped} dropped\n"
            ));
        }
        Ok((report, control_table))
    }
}

/// Data-plane index -> stage id.
/// The graph index of each data-plane stage.
fn graph_indices(link: &DataPlaneLink) -> Vec<usize> {
    let mut indices = Vec::new();
    for (graph_index, index) in link.index_of.iter().enumerate() {
        if let Some(index) = index {
            if indices.len() <= *index {
                indices.resize(index + 1, 0);
            }
            indices[*index] = graph_index;
        }
    }
    indices
}

/// Resolves once `duration` has passed (never without one).
pub async fn duration_elapsed(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}
