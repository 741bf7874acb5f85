//! The control plane's stages: one tokio task per control stage, a router
//! that carries packets from bridges and events from control stages to the
//! control stages that read them, and the parameter changes they ask for.
//!
//! A control stage's calls run on tokio's blocking pool, one at a time per
//! stage, so a stage that blocks (slow I/O, a stuck device) holds up only
//! itself: the other control stages, parameter changes, hot reload and
//! signals go on (a restart, removal or shutdown waits [`STOP_WAIT`] for
//! it, then leaves it). Each reader gets a copy of its own, from a pool of
//! its own, since pooled packets are deliberately not `Sync`: a slow reader
//! runs out of its own packets, never another's.
//!
//! Every hop into a control stage is a bounded channel written with
//! `try_send`: a control stage that falls behind loses messages (counted per
//! stage), it never slows its producer, and so never the data plane.

mod router;
mod task;

pub use router::{ControlMessage, Router};
use task::{Begin, TaskEnv, run_stage};

use super::bridge::TapReceiver;
use super::packets::OutputPool;
use crate::graph::{BuildError, PipelineGraph, StageNode, StageRecipe};
use hsp_sdk::StreamFormat;
use hsp_sdk::abi::{FfiControlStageBox, ParamChange};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// A parameter change asked for by a control stage.
#[derive(Debug)]
pub struct ParamRequest {
    /// The control stage that asked.
    pub from: String,
    /// The change.
    pub change: ParamChange,
}

/// Counters of one control stage, shared with its task.
#[derive(Debug, Default)]
pub struct ControlCounters {
    /// Messages handled.
    pub received: AtomicU64,
    /// Messages dropped: its input channel was full, or every packet of its
    /// own pool was still queued for it.
    pub dropped: AtomicU64,
    /// Events emitted.
    pub events: AtomicU64,
    /// Events lost because every pooled event was still being read.
    pub events_lost: AtomicU64,
    /// Parameter changes asked for.
    pub params: AtomicU64,
    /// Errors and panics.
    pub errors: AtomicU64,
    /// Rebuilds after an error (`on_error = "restart"`).
    pub restarts: AtomicU64,
    /// Replacements by a new build while running (a saved pipeline file,
    /// new plugin code).
    pub reloads: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What a control stage needs to be (re)built, and where its inputs come from.
#[derive(Clone)]
pub struct ControlSpec {
    /// Pipeline id.
    pub id: String,
    /// How to build it.
    pub recipe: StageRecipe,
    /// The streams it reads (a stage's id, or `id.port` for another output
    /// port than its first), each with its decimation (1: every packet).
    pub inputs: Vec<(String, usize)>,
    /// Its input channel's capacity.
    pub capacity: usize,
}

impl ControlSpec {
    /// The spec of control stage `node` of `graph`.
    pub fn of(graph: &PipelineGraph, node: &StageNode) -> Self {
        Self {
            id: node.id.clone(),
            recipe: node.recipe.clone(),
            inputs: node
                .inputs
                .iter()
                .map(|e| (graph.stream_name(e.from, e.from_port), e.decimate))
                .collect(),
            capacity: node.inputs.first().map_or(16, |e| e.capacity),
        }
    }

    /// Builds the stage object (on the calling thread; nothing runs yet).
    pub fn build(&self) -> Result<FfiControlStageBox, BuildError> {
        self.recipe.build_control()
    }
}

/// A control stage's input channel and counters (kept across a restart).
struct Inbox {
    tx: mpsc::Sender<ControlMessage>,
    rx: mpsc::Receiver<ControlMessage>,
    counters: Arc<ControlCounters>,
}

impl Inbox {
    fn new(capacity: usize, counters: Arc<ControlCounters>) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Self { tx, rx, counters }
    }
}

struct ControlTask {
    spec: ControlSpec,
    handle: JoinHandle<mpsc::Receiver<ControlMessage>>,
    cancel: Option<oneshot::Sender<()>>,
    tx: Option<mpsc::Sender<ControlMessage>>,
    counters: Arc<ControlCounters>,
}

/// Events the control stages can have in flight at once (they travel pooled,
/// like every packet).
const EVENT_POOL: usize = 1024;

/// How long a restart, a removal or the shutdown waits for a control stage
/// to stop before leaving it (stuck in a plugin call) to finish on its own.
pub const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn event_pool() -> OutputPool {
    OutputPool::for_format(&StreamFormat::events(), EVENT_POOL).expect("events are pooled")
}

/// A bridge's control-plane end: the task that delivers its packets.
struct Bridge {
    /// The data-plane stage it copies.
    from: String,
    task: JoinHandle<()>,
    counters: Arc<super::bridge::TapCounters>,
}

/// What one bridge carried to the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeCount {
    /// The data-plane stage it copies.
    pub from: String,
    /// Copies handed to the control plane.
    pub sent: u64,
    /// Packets not copied because the control plane was behind.
    pub dropped: u64,
}

/// Every control stage of a running pipeline.
pub struct ControlPlane {
    router: Arc<Router>,
    events: Arc<OutputPool>,
    tasks: Vec<ControlTask>,
    bridges: Vec<Bridge>,
    params: mpsc::UnboundedSender<ParamRequest>,
    fatal: mpsc::UnboundedSender<String>,
}

impl ControlPlane {
    /// An empty control plane; parameter requests and fatal errors of its
    /// stages arrive on the returned receivers.
    pub fn new() -> (
        Self,
        mpsc::UnboundedReceiver<ParamRequest>,
        mpsc::UnboundedReceiver<String>,
    ) {
        let (params, params_rx) = mpsc::unbounded_channel();
        let (fatal, fatal_rx) = mpsc::unbounded_channel();
        (
            Self {
                router: Arc::new(Router::default()),
                events: Arc::new(event_pool()),
                tasks: Vec::new(),
                bridges: Vec::new(),
                params,
                fatal,
            },
            params_rx,
            fatal_rx,
        )
    }

    /// Forwards what the bridge on data-plane stage `from` carries to the
    /// router, until the bridge closes.
    pub fn add_bridge(&mut self, from: &str, mut receiver: TapReceiver) {
        let router = Arc::clone(&self.router);
        let counters = Arc::clone(&receiver.counters);
        let from_id: Arc<str> = from.into();
        let handle = tokio::spawn(async move {
            while let Some(packet) = receiver.recv().await {
                router.deliver(&from_id, &packet);
            }
        });
        self.bridges.push(Bridge {
            from: from.to_string(),
            task: handle,
            counters,
        });
    }

    /// Ids of the data-plane stages with a bridge.
    pub fn bridged(&self) -> impl Iterator<Item = &str> {
        self.bridges.iter().map(|b| b.from.as_str())
    }

    /// Starts control stage `spec` with the already built `stage`.
    pub fn start_stage(&mut self, spec: ControlSpec, stage: FfiControlStageBox) {
        let inbox = Inbox::new(spec.capacity, Arc::new(ControlCounters::default()));
        self.spawn_task(spec, stage, Begin::Start, inbox, None);
    }

    fn spawn_task(
        &mut self,
        spec: ControlSpec,
        stage: FfiControlStageBox,
        begin: Begin,
        inbox: Inbox,
        carry: Option<&mut mpsc::Receiver<ControlMessage>>,
    ) {
        let Inbox { tx, rx, counters } = inbox;
        self.router
            .set_routes(&spec.id, &spec.inputs, &tx, &counters, spec.capacity, carry);
        let (cancel, cancelled) = oneshot::channel();
        let env = TaskEnv {
            spec: spec.clone(),
            router: Arc::clone(&self.router),
            events: Arc::clone(&self.events),
            params: self.params.clone(),
            fatal: self.fatal.clone(),
            counters: Arc::clone(&counters),
        };
        let handle = tokio::spawn(run_stage(env, stage, begin, rx, cancelled));
        self.tasks.push(ControlTask {
            spec,
            handle,
            cancel: Some(cancel),
            tx: Some(tx),
            counters,
        });
    }

    /// Replaces control stage `spec.id` by `stage` (already built): the old
    /// one finishes the message in hand and stops; the new one resumes and
    /// takes over its input channel with every message still queued. An
    /// old stage stuck in a call for [`STOP_WAIT`] is left to finish on its
    /// own, and the new one starts beside it.
    pub async fn restart_stage(&mut self, spec: ControlSpec, stage: FfiControlStageBox) {
        let Some(position) = self.tasks.iter().position(|t| t.spec.id == spec.id) else {
            return self.start_stage(spec, stage);
        };
        let mut old = self.tasks.remove(position);
        bump(&old.counters.reloads);
        if let Some(cancel) = old.cancel.take() {
            let _ = cancel.send(());
        }
        let tx = old
            .tx
            .take()
            .unwrap_or_else(|| mpsc::channel(spec.capacity.max(1)).0);
        match tokio::time::timeout(STOP_WAIT, &mut old.handle).await {
            Ok(Ok(rx)) if spec.capacity == old.spec.capacity => {
                let counters = old.counters;
                let inbox = Inbox { tx, rx, counters };
                self.spawn_task(spec, stage, Begin::Resume, inbox, None)
            }
            // A new capacity: a new channel, with what was queued moved over.
            Ok(Ok(mut rx)) => {
                let inbox = Inbox::new(spec.capacity, old.counters);
                self.spawn_task(spec, stage, Begin::Resume, inbox, Some(&mut rx))
            }
            Ok(Err(error)) => {
                tracing::error!(stage = %spec.id, "the old task ended badly ({error}); starting afresh");
                self.start_stage(spec, stage);
            }
            Err(_) => {
                tracing::error!(
                    stage = %spec.id,
                    "the old stage is stuck in a call after {} s; starting the new one beside it",
                    STOP_WAIT.as_secs()
                );
                let inbox = Inbox::new(spec.capacity, old.counters);
                self.spawn_task(spec, stage, Begin::Resume, inbox, None);
            }
        }
    }

    /// Stops and removes control stage `id`; what is queued for it is
    /// dropped. A stage stuck in a call for [`STOP_WAIT`] is left to finish
    /// on its own.
    pub async fn remove_stage(&mut self, id: &str) {
        let Some(position) = self.tasks.iter().position(|t| t.spec.id == id) else {
            return;
        };
        let mut task = self.tasks.remove(position);
        self.router.unsubscribe(id);
        if let Some(cancel) = task.cancel.take() {
            let _ = cancel.send(());
        }
        if tokio::time::timeout(STOP_WAIT, task.handle).await.is_err() {
            tracing::error!(stage = %id, "stuck in a call; removed without waiting for it");
        }
    }

    /// Ends the control plane after the data plane has ended: bridges
    /// deliver what they hold, then each control stage (upstream first)
    /// drains its channel and stops.
    pub async fn shut_down(mut self, order: &[String]) -> String {
        for Bridge { task: handle, .. } in self.bridges.drain(..) {
            let _ = handle.await;
        }
        let mut tasks = std::mem::take(&mut self.tasks);
        tasks.sort_by_key(|t| order.iter().position(|id| *id == t.spec.id));
        let mut table = String::new();
        for mut task in tasks {
            self.router.unsubscribe(&task.spec.id);
            task.tx = None;
            if tokio::time::timeout(STOP_WAIT, &mut task.handle)
                .await
                .is_err()
            {
                tracing::error!(
                    stage = %task.spec.id,
                    "stuck in a call for {} s; not waiting for it to stop",
                    STOP_WAIT.as_secs()
                );
            }
            let c = &task.counters;
            table.push_str(&format!(
                "  control {} ({}): {} in, {} dropped, {} event(s) ({} lost), {} param change(s), {} error(s), {} restart(s) after errors, {} reload(s)\n",
                task.spec.id,
                task.spec.recipe.kind,
                c.received.load(Ordering::Relaxed),
                c.dropped.load(Ordering::Relaxed),
                c.events.load(Ordering::Relaxed),
                c.events_lost.load(Ordering::Relaxed),
                c.params.load(Ordering::Relaxed),
                c.errors.load(Ordering::Relaxed),
                c.restarts.load(Ordering::Relaxed),
                c.reloads.load(Ordering::Relaxed),
            ));
            drop(task.cancel);
        }
        table
    }

    /// What each bridge carried.
    pub fn bridge_counts(&self) -> Vec<BridgeCount> {
        self.bridges
            .iter()
            .map(|b| BridgeCount {
                from: b.from.clone(),
                sent: b.counters.sent.load(Ordering::Relaxed),
                dropped: b.counters.dropped.load(Ordering::Relaxed),
            })
            .collect()
    }
}
