//! `PipelineRuntime`: owns a whole pipeline on a tokio control plane. It
//! starts the data plane and the control stages, carries parameter changes
//! and stage swaps to the data plane, stops it on request, and waits for it
//! to drain.

use super::control_plane::{ControlPlane, ControlSpec, ParamRequest};
use super::data_plane::{
    Command, DataPlaneError, DataPlaneLink, DataPlaneReport, HybridRuntime, Replacement, Retired,
    runs_in_place,
};
use super::run_flags::{Progress, RunFlags, Watchdog};
use crate::graph::{OnError, PipelineGraph, StageNode, StageType};
use crate::registry::{LoadedPlugin, PluginRegistry};
use hsp_sdk::Input;
use hsp_sdk::abi::FfiControlStageBox;
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};
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

/// A change sent to the data plane, awaiting its acknowledgement.
struct InFlight {
    id: String,
    what: String,
    since: Option<Instant>,
    /// What the stage runs with once the data plane takes it.
    running: Running,
}

/// What a data-plane stage runs with, as the data plane has acknowledged.
#[derive(Debug, Clone)]
struct Running {
    config_json: String,
    on_error: OnError,
    in_place: bool,
}

/// A pipeline being run: data plane on its thread, control stages as tasks.
/// Use it from inside the tokio runtime that drives it.
pub struct PipelineRuntime {
    graph: PipelineGraph,
    /// Config of each data-plane stage with every change sent so far (the
    /// base a parameter change is merged into).
    live_configs: HashMap<String, String>,
    /// What each data-plane stage runs with, as acknowledged by the data
    /// plane; a refused change rolls back to it.
    running: HashMap<String, Running>,
    link: DataPlaneLink,
    /// Data-plane index of each data-plane stage, by id (fixed for the run).
    dp_index: HashMap<String, usize>,
    control: ControlPlane,
    params: mpsc::UnboundedReceiver<ParamRequest>,
    fatal: mpsc::UnboundedReceiver<String>,
    flags: Arc<RunFlags>,
    progress: Arc<Progress>,
    watchdog: Watchdog,
    data_plane_thread: Thread,
    joiner: Option<
        std::thread::JoinHandle<std::thread::Result<Result<DataPlaneReport, DataPlaneError>>>,
    >,
    done: oneshot::Receiver<()>,
    data_plane_ended: bool,
    in_flight: HashMap<u64, InFlight>,
    next_ticket: u64,
}

fn failed(message: String) -> DataPlaneError {
    DataPlaneError::RunFailed(message)
}

impl PipelineRuntime {
    /// Builds and starts `graph`: every stage is built before anything runs,
    /// so a stage that cannot be built fails the start and nothing is left
    /// running.
    pub fn start(
        graph: PipelineGraph,
        registry: &PluginRegistry,
        options: &RunOptions,
    ) -> Result<Self, DataPlaneError> {
        let mut control_stages = Vec::new();
        for node in graph
            .stages
            .iter()
            .filter(|n| n.stage_type == StageType::Control)
        {
            let spec = control_spec(&graph, node, registry).map_err(|message| {
                DataPlaneError::StageFailed {
                    id: node.id.clone(),
                    kind: node.kind.clone(),
                    message,
                }
            })?;
            let stage = spec
                .build()
                .map_err(|message| DataPlaneError::StageFailed {
                    id: node.id.clone(),
                    kind: node.kind.clone(),
                    message,
                })?;
            control_stages.push((spec, stage));
        }
        let (data_plane, mut link) =
            HybridRuntime::build(&graph, registry, options.stats_interval)?;
        let (mut control, params, fatal) = ControlPlane::new();
        let dp_ids = data_plane_ids(&graph, &link);
        for (index, receiver) in std::mem::take(&mut link.taps) {
            control.add_bridge(&dp_ids[index], receiver);
        }
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
        let dp_index = dp_ids
            .iter()
            .enumerate()
            .map(|(index, id)| (id.clone(), index))
            .collect();
        let data_plane_nodes = || {
            graph
                .stages
                .iter()
                .filter(|n| n.stage_type == StageType::DataPlane)
        };
        let live_configs = data_plane_nodes()
            .map(|n| (n.id.clone(), n.config_json.clone()))
            .collect();
        let running = data_plane_nodes()
            .map(|n| {
                let plugin_in_place = registry.stage(&n.kind).is_some_and(|(_, d)| d.in_place);
                let running = Running {
                    config_json: n.config_json.clone(),
                    on_error: n.on_error,
                    in_place: runs_in_place(plugin_in_place, n, n.on_error),
                };
                (n.id.clone(), running)
            })
            .collect();
        Ok(Self {
            graph,
            live_configs,
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
            |n| (n.id.clone(), n.kind.clone()),
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

    /// Acts on a parameter change asked for by a control stage: the target's
    /// config with the new value must pass its plugin's checks and keep its
    /// output format; then a stage built from it is swapped in between two
    /// packets. A refused change is logged; the target runs on unchanged.
    pub fn apply_param(&mut self, request: ParamRequest, registry: &PluginRegistry) {
        let ParamRequest { from, change } = request;
        let (target, key) = (change.target.as_str(), change.key.as_str());
        let result = (|| {
            let node = self
                .graph
                .stages
                .iter()
                .find(|n| n.id == target)
                .ok_or_else(|| format!("no stage `{target}` in the pipeline"))?;
            if node.stage_type != StageType::DataPlane {
                return Err(format!(
                    "`{target}` is a control stage; only data-plane stages take parameter changes"
                ));
            }
            let value: serde_json::Value = serde_json::from_str(change.value_json.as_str())
                .map_err(|e| format!("value is not JSON: {e}"))?;
            let value = coerce_to_schema(registry, &node.kind, key, value);
            let current = self.live_configs.get(target).map_or("{}", String::as_str);
            let mut config: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(current).map_err(|e| format!("current config: {e}"))?;
            if config.get(key) == Some(&value) {
                return Ok(None);
            }
            config.insert(key.to_string(), value);
            let config_json = serde_json::Value::Object(config).to_string();
            let node = node.clone();
            let replacement =
                self.prepare_replacement(&node, &config_json, node.on_error, registry)?;
            self.send_replacement(
                replacement,
                &node.id,
                format!("{key} = {}", change.value_json),
                None,
            )
            .map(Some)
        })();
        match result {
            Ok(Some(())) => tracing::info!(
                "parameter change from `{from}`: `{target}`.{key} = {} sent to the data plane",
                change.value_json
            ),
            Ok(None) => {
                tracing::debug!("parameter change from `{from}`: `{target}`.{key} unchanged")
            }
            Err(error) => tracing::warn!(
                "parameter change from `{from}` refused: `{target}`.{key} = {}: {error}",
                change.value_json
            ),
        }
    }

    /// Builds data-plane stage `node` anew with `config_json` and `on_error`
    /// from the plugin now registered for its kind, after checking that it
    /// emits what the running one does. Nothing is sent yet.
    pub fn prepare_replacement(
        &self,
        node: &StageNode,
        config_json: &str,
        on_error: OnError,
        registry: &PluginRegistry,
    ) -> Result<Box<Replacement>, String> {
        let index = *self
            .dp_index
            .get(&node.id)
            .ok_or_else(|| format!("`{}` is not a running data-plane stage", node.id))?;
        let (plugin, descriptor) = registry
            .stage(&node.kind)
            .ok_or_else(|| format!("no loaded plugin provides `{}`", node.kind))?;
        let format = plugin.output_format(&node.kind, config_json, node.input_format)?;
        if format != node.output_format {
            return Err(format!(
                "it would change the stage's output ({} instead of {}); that needs a restart",
                format.map_or("nothing".into(), |f| crate::graph::describe_format(&f)),
                node.output_format
                    .map_or("nothing".into(), |f| crate::graph::describe_format(&f)),
            ));
        }
        let in_place = runs_in_place(descriptor.in_place, node, on_error);
        if self
            .running
            .get(&node.id)
            .is_some_and(|r| r.in_place != in_place)
        {
            return Err(format!(
                "`{}` would switch between working in place and not (only `on_error = \"stop\"` works in place, and the plugin's code decides the rest); that needs a restart",
                node.id
            ));
        }
        let object = plugin.create_stage(&node.kind, config_json, node.input_format)?;
        Ok(Box::new(Replacement {
            stage: index,
            object,
            module: plugin.module,
            config_json: config_json.to_string(),
            on_error,
            in_place,
            ticket: 0,
            requested: Instant::now(),
        }))
    }

    /// Sends a prepared replacement of stage `id` to the data plane, which
    /// swaps it in between two packets. `what` and `saved` (when the change
    /// was saved to disk) are for the log line when it is done.
    pub fn send_replacement(
        &mut self,
        replacement: Box<Replacement>,
        id: &str,
        what: String,
        saved: Option<Instant>,
    ) -> Result<(), String> {
        let mut replacement = replacement;
        self.next_ticket += 1;
        replacement.ticket = self.next_ticket;
        let running = Running {
            config_json: replacement.config_json.clone(),
            on_error: replacement.on_error,
            in_place: replacement.in_place,
        };
        self.send(Command::Replace(replacement))?;
        self.live_configs
            .insert(id.to_string(), running.config_json.clone());
        self.in_flight.insert(
            self.next_ticket,
            InFlight {
                id: id.to_string(),
                what,
                since: saved,
                running,
            },
        );
        Ok(())
    }

    fn send(&mut self, command: Command) -> Result<(), String> {
        if self.data_plane_ended {
            return Err("the data plane has ended".into());
        }
        self.link
            .commands
            .push(command)
            .map_err(|_| "the data plane's command queue is full".to_string())?;
        self.data_plane_thread.unpark();
        Ok(())
    }

    /// Logs what the data plane handed back and drops old stages here, off
    /// the data-plane thread.
    pub fn on_retired(&mut self, item: Retired) {
        match item {
            Retired::Replaced {
                replacement,
                at_packet,
                applied,
                error,
            } => {
                let flight = self.in_flight.remove(&replacement.ticket);
                let id = flight
                    .as_ref()
                    .map_or_else(|| format!("#{}", replacement.stage), |f| f.id.clone());
                match error {
                    None => {
                        let waited = applied.duration_since(replacement.requested);
                        let since_save = flight
                            .as_ref()
                            .and_then(|f| f.since)
                            .map(|saved| format!(", {:.1} ms after the save", ms(applied - saved)))
                            .unwrap_or_default();
                        tracing::info!(
                            "stage `{id}` swapped at packet {at_packet} ({}): the data plane took it {:.2} ms after it was sent{since_save}",
                            flight.as_ref().map_or("new stage", |f| f.what.as_str()),
                            ms(waited),
                        );
                        // The old stage, stopped at the swap, is dropped here,
                        // off the data-plane thread.
                        drop(replacement);
                        if let Some(flight) = flight {
                            self.running.insert(flight.id, flight.running);
                        }
                    }
                    Some(error) => {
                        tracing::warn!(
                            "stage `{id}` was not swapped: {error}; it runs on as it was"
                        );
                        // A newer change still on its way supersedes this one
                        // and is the base to keep; without one, roll back.
                        if !self.in_flight.values().any(|f| f.id == id) {
                            self.roll_back(&id);
                        }
                    }
                }
            }
            Retired::Tap(tap) => drop(tap),
        }
    }

    /// After a refused swap of stage `id`: what it runs with is again the
    /// base for parameter changes and what the running graph says, so the
    /// next edit of the file is compared with the truth.
    pub fn roll_back(&mut self, id: &str) {
        let Some(running) = self.running.get(id) else {
            return;
        };
        self.live_configs
            .insert(id.to_string(), running.config_json.clone());
        if let Some(node) = self.graph.stages.iter_mut().find(|n| n.id == id) {
            node.config_json.clone_from(&running.config_json);
            node.on_error = running.on_error;
        }
    }

    /// Starts (or restarts, if it runs) control stage `spec` with `stage`.
    pub async fn run_control_stage(&mut self, spec: ControlSpec, stage: FfiControlStageBox) {
        self.control.restart_stage(spec, stage).await;
    }

    /// Stops and removes control stage `id`.
    pub async fn remove_control_stage(&mut self, id: &str) {
        self.control.remove_stage(id).await;
    }

    /// Puts a bridge on data-plane stage `id` if none is there.
    pub fn ensure_bridge(&mut self, id: &str) -> Result<(), String> {
        if self.control.bridged().any(|b| b == id) {
            return Ok(());
        }
        let node = self.graph.stages.iter().find(|n| n.id == id);
        let Some(node) = node else {
            return Err(format!("no stage `{id}`"));
        };
        let (Some(&index), Some(format)) = (self.dp_index.get(id), node.output_format) else {
            return Err(format!("`{id}` is not a data-plane stage with an output"));
        };
        let (tap, receiver) = super::bridge::tap(&format);
        self.send(Command::SetTap {
            stage: index,
            tap: Some(tap),
        })?;
        self.control.add_bridge(id, receiver);
        Ok(())
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
        for (id, sent, dropped) in bridges {
            control_table.push_str(&format!(
                "  bridge {id} -> control plane: {sent} sent, {dropped} dropped\n"
            ));
        }
        Ok((report, control_table))
    }
}

/// A whole number sent as a float (`4.0`: control stages often compute in
/// floats) for an integer key becomes an integer; anything else is left for
/// the plugin's own checks.
fn coerce_to_schema(
    registry: &PluginRegistry,
    kind: &str,
    key: &str,
    value: serde_json::Value,
) -> serde_json::Value {
    let integer_key = registry.stage(kind).is_some_and(|(_, descriptor)| {
        descriptor
            .config
            .iter()
            .any(|field| field.key.as_str() == key && field.ty == hsp_sdk::ConfigType::Integer)
    });
    match value.as_f64() {
        Some(number) if integer_key && number.fract() == 0.0 && number.abs() < 9.0e15 => {
            serde_json::Value::from(number as i64)
        }
        _ => value,
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Data-plane index -> stage id.
fn data_plane_ids(graph: &PipelineGraph, link: &DataPlaneLink) -> Vec<String> {
    let mut ids = Vec::new();
    for (graph_index, index) in link.index_of.iter().enumerate() {
        if let Some(index) = index {
            if ids.len() <= *index {
                ids.resize(index + 1, String::new());
            }
            ids[*index] = graph.stages[graph_index].id.clone();
        }
    }
    ids
}

/// The spec of control stage `node` of `graph`, from `registry`.
pub fn control_spec(
    graph: &PipelineGraph,
    node: &StageNode,
    registry: &PluginRegistry,
) -> Result<ControlSpec, String> {
    let (plugin, _): (&LoadedPlugin, _) = registry
        .stage(&node.kind)
        .ok_or_else(|| "no loaded plugin provides this stage kind".to_string())?;
    Ok(ControlSpec {
        id: node.id.clone(),
        kind: node.kind.clone(),
        module: plugin.module,
        config_json: node.config_json.clone(),
        on_error: node.on_error,
        inputs: node
            .inputs
            .iter()
            .map(|e| (graph.stages[e.from].id.clone(), e.decimate))
            .collect(),
        capacity: node.inputs.first().map_or(16, |e| e.capacity),
    })
}

/// Resolves once `duration` has passed (never without one).
pub async fn duration_elapsed(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}
