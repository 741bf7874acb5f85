//! The control plane's stages: one tokio task per control stage, a router
//! that carries packets from bridges and events from control stages to the
//! control stages that read them, and the parameter changes they ask for.
//!
//! Tasks are spawned on the current thread's `LocalSet`: a packet shared by
//! several control stages is an `Rc<PipelineData>` (pooled packets are
//! deliberately not `Sync`), so the control plane stays on one thread. It
//! handles low-rate data; the data plane has its own thread.
//!
//! Every hop into a control stage is a bounded channel written with
//! `try_send`: a control stage that falls behind loses messages (counted per
//! stage), it never slows its producer, and so never the data plane.

use super::bridge::TapReceiver;
use super::packets::as_input;
use crate::graph::OnError;
use hsp_sdk::abi::{ControlOutputs, FfiControlStageBox, ParamChange, PluginModuleRef};
use hsp_sdk::{Event, MemoryPool, PipelineData};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// One packet for a control stage: who produced it, and the packet, shared
/// by every control stage that reads the producer.
#[derive(Clone)]
pub struct ControlMessage {
    /// Pipeline id of the producing stage.
    pub from: Arc<str>,
    /// The packet.
    pub packet: Rc<PipelineData>,
}

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
    /// Messages dropped because its input channel was full.
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
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

struct Subscriber {
    to: String,
    tx: mpsc::Sender<ControlMessage>,
    counters: Arc<ControlCounters>,
    /// Pass one packet in this many.
    decimate: u64,
    /// Packets offered so far.
    offered: std::cell::Cell<u64>,
}

/// Who reads whom on the control plane.
#[derive(Default)]
pub struct Router {
    routes: RefCell<HashMap<String, Vec<Subscriber>>>,
}

impl Router {
    /// Hands `packet` from `from` to every control stage reading it; a full
    /// channel drops it for that reader (counted).
    pub fn deliver(&self, from: &Arc<str>, packet: PipelineData) {
        let routes = self.routes.borrow();
        let Some(subscribers) = routes.get(&**from) else {
            return;
        };
        let message = ControlMessage {
            from: Arc::clone(from),
            packet: Rc::new(packet),
        };
        for subscriber in subscribers {
            let offered = subscriber.offered.get();
            subscriber.offered.set(offered + 1);
            if offered % subscriber.decimate != 0 {
                continue;
            }
            if subscriber.tx.try_send(message.clone()).is_err() {
                bump(&subscriber.counters.dropped);
            }
        }
    }

    fn subscribe(&self, from: &str, subscriber: Subscriber) {
        let mut routes = self.routes.borrow_mut();
        routes.entry(from.to_string()).or_default().push(subscriber);
    }

    /// Removes every route into `to`.
    fn unsubscribe(&self, to: &str) {
        let mut routes = self.routes.borrow_mut();
        for subscribers in routes.values_mut() {
            subscribers.retain(|s| s.to != to);
        }
    }
}

/// What a control stage needs to be (re)built: its plugin and config.
#[derive(Clone)]
pub struct ControlSpec {
    /// Pipeline id.
    pub id: String,
    /// Stage kind.
    pub kind: String,
    /// Its plugin's entry points.
    pub module: PluginModuleRef,
    /// `[stage.config]` as JSON.
    pub config_json: String,
    /// Error policy.
    pub on_error: OnError,
    /// Ids of the stages it reads, each with its decimation (1: every packet).
    pub inputs: Vec<(String, usize)>,
    /// Its input channel's capacity.
    pub capacity: usize,
}

impl ControlSpec {
    /// Builds the stage object (on the calling thread; nothing runs yet).
    pub fn build(&self) -> Result<FfiControlStageBox, String> {
        (self.module.create_control_stage())(
            self.kind.as_str().into(),
            self.config_json.as_str().into(),
        )
        .into_result()
        .map_err(|e| e.into_string())
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

/// Every control stage of a running pipeline.
pub struct ControlPlane {
    router: Rc<Router>,
    events: Rc<MemoryPool<Event>>,
    tasks: Vec<ControlTask>,
    bridges: Vec<(String, JoinHandle<()>, Arc<super::bridge::TapCounters>)>,
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
                router: Rc::new(Router::default()),
                events: Rc::new(MemoryPool::with_init(EVENT_POOL, |_| Event::new(0, ""))),
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
        let router = Rc::clone(&self.router);
        let counters = Arc::clone(&receiver.counters);
        let from_id: Arc<str> = from.into();
        let handle = tokio::task::spawn_local(async move {
            while let Some(packet) = receiver.recv().await {
                router.deliver(&from_id, packet);
            }
        });
        self.bridges.push((from.to_string(), handle, counters));
    }

    /// Ids of the data-plane stages with a bridge.
    pub fn bridged(&self) -> impl Iterator<Item = &str> {
        self.bridges.iter().map(|(id, _, _)| id.as_str())
    }

    /// Starts control stage `spec` with the already built `stage`.
    pub fn start_stage(&mut self, spec: ControlSpec, stage: FfiControlStageBox) {
        let (tx, rx) = mpsc::channel(spec.capacity.max(1));
        let counters = Arc::new(ControlCounters::default());
        self.spawn_task(spec, stage, Begin::Start, tx, rx, counters);
    }

    fn spawn_task(
        &mut self,
        spec: ControlSpec,
        stage: FfiControlStageBox,
        begin: Begin,
        tx: mpsc::Sender<ControlMessage>,
        rx: mpsc::Receiver<ControlMessage>,
        counters: Arc<ControlCounters>,
    ) {
        self.router.unsubscribe(&spec.id);
        for (input, decimate) in &spec.inputs {
            self.router.subscribe(
                input,
                Subscriber {
                    to: spec.id.clone(),
                    tx: tx.clone(),
                    counters: Arc::clone(&counters),
                    decimate: (*decimate).max(1) as u64,
                    offered: std::cell::Cell::new(0),
                },
            );
        }
        let (cancel, cancelled) = oneshot::channel();
        let env = TaskEnv {
            spec: spec.clone(),
            router: Rc::clone(&self.router),
            events: Rc::clone(&self.events),
            params: self.params.clone(),
            fatal: self.fatal.clone(),
            counters: Arc::clone(&counters),
        };
        let handle = tokio::task::spawn_local(run_stage(env, stage, begin, rx, cancelled));
        self.tasks.push(ControlTask {
            spec,
            handle,
            cancel: Some(cancel),
            tx: Some(tx),
            counters,
        });
    }

    /// Replaces control stage `spec.id` by `stage` (already built): the old
    /// one finishes the message in hand and stops; the new one starts and
    /// takes over its input channel with every message still queued.
    pub async fn restart_stage(&mut self, spec: ControlSpec, stage: FfiControlStageBox) {
        let Some(position) = self.tasks.iter().position(|t| t.spec.id == spec.id) else {
            return self.start_stage(spec, stage);
        };
        let mut old = self.tasks.remove(position);
        if let Some(cancel) = old.cancel.take() {
            let _ = cancel.send(());
        }
        let tx = old
            .tx
            .take()
            .unwrap_or_else(|| mpsc::channel(spec.capacity.max(1)).0);
        match (&mut old.handle).await {
            // The old task has stopped its stage: the new one resumes after
            // it, with what is still queued (moved to a channel of the new
            // capacity if that changed).
            Ok(rx) if spec.capacity == old.spec.capacity => {
                self.spawn_task(spec, stage, Begin::Resume, tx, rx, old.counters)
            }
            Ok(mut rx) => {
                let (new_tx, new_rx) = mpsc::channel(spec.capacity.max(1));
                while let Ok(message) = rx.try_recv() {
                    if new_tx.try_send(message).is_err() {
                        bump(&old.counters.dropped);
                    }
                }
                self.spawn_task(spec, stage, Begin::Resume, new_tx, new_rx, old.counters)
            }
            Err(error) => {
                tracing::error!(stage = %spec.id, "the old task ended badly ({error}); starting afresh");
                self.start_stage(spec, stage);
            }
        }
    }

    /// Stops and removes control stage `id`; what is queued for it is dropped.
    pub async fn remove_stage(&mut self, id: &str) {
        let Some(position) = self.tasks.iter().position(|t| t.spec.id == id) else {
            return;
        };
        let mut task = self.tasks.remove(position);
        self.router.unsubscribe(id);
        if let Some(cancel) = task.cancel.take() {
            let _ = cancel.send(());
        }
        let _ = task.handle.await;
    }

    /// Ends the control plane after the data plane has ended: bridges
    /// deliver what they hold, then each control stage (upstream first)
    /// drains its channel and stops.
    pub async fn shut_down(mut self, order: &[String]) -> String {
        for (_, handle, _) in self.bridges.drain(..) {
            let _ = handle.await;
        }
        let mut tasks = std::mem::take(&mut self.tasks);
        tasks.sort_by_key(|t| order.iter().position(|id| *id == t.spec.id));
        let mut table = String::new();
        for mut task in tasks {
            self.router.unsubscribe(&task.spec.id);
            task.tx = None;
            let _ = (&mut task.handle).await;
            let c = &task.counters;
            table.push_str(&format!(
                "  control {} ({}): {} in, {} dropped, {} event(s) ({} lost), {} param change(s), {} error(s), {} restart(s)\n",
                task.spec.id,
                task.spec.kind,
                c.received.load(Ordering::Relaxed),
                c.dropped.load(Ordering::Relaxed),
                c.events.load(Ordering::Relaxed),
                c.events_lost.load(Ordering::Relaxed),
                c.params.load(Ordering::Relaxed),
                c.errors.load(Ordering::Relaxed),
                c.restarts.load(Ordering::Relaxed),
            ));
            drop(task.cancel);
        }
        table
    }

    /// Bridge counters: stage id, copies sent, copies dropped.
    pub fn bridge_counts(&self) -> Vec<(String, u64, u64)> {
        self.bridges
            .iter()
            .map(|(id, _, c)| {
                (
                    id.clone(),
                    c.sent.load(Ordering::Relaxed),
                    c.dropped.load(Ordering::Relaxed),
                )
            })
            .collect()
    }
}

struct TaskEnv {
    spec: ControlSpec,
    router: Rc<Router>,
    events: Rc<MemoryPool<Event>>,
    params: mpsc::UnboundedSender<ParamRequest>,
    fatal: mpsc::UnboundedSender<String>,
    counters: Arc<ControlCounters>,
}

impl TaskEnv {
    /// Routes what one call produced: events to the readers, parameter
    /// changes to the pipeline.
    fn route(&self, outputs: &mut ControlOutputs) {
        if !outputs.events.is_empty() {
            let from: Arc<str> = self.spec.id.as_str().into();
            for event in outputs.events.drain(..) {
                bump(&self.counters.events);
                match self.events.try_acquire() {
                    Some(mut pooled) => {
                        *pooled = event;
                        self.router.deliver(&from, PipelineData::Event(pooled));
                    }
                    None => bump(&self.counters.events_lost),
                }
            }
        }
        for change in outputs.params.drain(..) {
            bump(&self.counters.params);
            let _ = self.params.send(ParamRequest {
                from: self.spec.id.clone(),
                change,
            });
        }
    }

    /// Applies the stage's `on_error` policy; `Some(stage)` to carry on with.
    fn on_error(
        &self,
        stage: FfiControlStageBox,
        method: &str,
        message: &str,
    ) -> Option<FfiControlStageBox> {
        bump(&self.counters.errors);
        let id = &self.spec.id;
        tracing::error!(stage = %id, kind = %self.spec.kind, policy = ?self.spec.on_error, "{method}: {message}");
        match self.spec.on_error {
            OnError::Stop => {
                let _ = self.fatal.send(format!(
                    "control stage `{id}` ({}) failed: {message}",
                    self.spec.kind
                ));
                None
            }
            OnError::Bypass => Some(stage),
            OnError::Restart => {
                // The failed stage goes first (a sink flushes; on drop if it
                // refuses `stop` after a panic), then the fresh one resumes.
                let mut stage = stage;
                let mut outputs = ControlOutputs::default();
                let _ = stage.stop(&mut outputs);
                drop(stage);
                match self.spec.build().and_then(|mut fresh| {
                    let mut outputs = ControlOutputs::default();
                    // It carries on from the failed one (a sink appends).
                    let started = fresh.resume(&mut outputs).into_result();
                    self.route(&mut outputs);
                    started.map(|()| fresh).map_err(|e| e.into_string())
                }) {
                    Ok(fresh) => {
                        bump(&self.counters.restarts);
                        tracing::warn!(stage = %id, "control stage restarted from its config");
                        Some(fresh)
                    }
                    Err(error) => {
                        let _ = self.fatal.send(format!(
                            "control stage `{id}` failed ({message}); restarting it failed too: {error}"
                        ));
                        None
                    }
                }
            }
        }
    }
}

/// A control stage call longer than this holds up the whole control plane
/// noticeably: it is logged (once per stage).
const SLOW_CALL: std::time::Duration = std::time::Duration::from_millis(100);

/// How a control stage's task begins.
#[derive(Clone, Copy)]
enum Begin {
    /// A fresh stage: `start`.
    Start,
    /// Taking over from a stopped instance: `resume`.
    Resume,
}

/// A control stage's task: start, then one call per message until cancelled
/// (a restart or removal: the unread messages go back with the receiver) or
/// until its inputs are gone (shutdown); then stop.
async fn run_stage(
    env: TaskEnv,
    mut stage: FfiControlStageBox,
    begin: Begin,
    mut rx: mpsc::Receiver<ControlMessage>,
    mut cancelled: oneshot::Receiver<()>,
) -> mpsc::Receiver<ControlMessage> {
    let mut outputs = ControlOutputs::default();
    let started = match begin {
        Begin::Start => stage.start(&mut outputs),
        Begin::Resume => stage.resume(&mut outputs),
    }
    .into_result();
    env.route(&mut outputs);
    if let Err(message) = started {
        match env.on_error(stage, "start", message.as_str()) {
            Some(next) => stage = next,
            None => return rx,
        }
    }
    tracing::debug!(stage = %env.spec.id, "control stage running");
    let mut warned_slow = false;
    loop {
        let message = tokio::select! {
            biased;
            _ = &mut cancelled => break,
            message = rx.recv() => match message {
                Some(message) => message,
                None => break,
            },
        };
        bump(&env.counters.received);
        let began = std::time::Instant::now();
        let result = stage
            .on_packet(
                message.from.as_ref().into(),
                as_input(&message.packet),
                &mut outputs,
            )
            .into_result();
        let took = began.elapsed();
        if took > SLOW_CALL && !warned_slow {
            warned_slow = true;
            tracing::warn!(
                stage = %env.spec.id,
                "on_packet took {:.0} ms: the whole control plane (other control stages, parameter changes, hot reload) waited; move slow work off the call",
                took.as_secs_f64() * 1000.0
            );
        }
        env.route(&mut outputs);
        if let Err(error) = result {
            match env.on_error(stage, "on_packet", error.as_str()) {
                Some(next) => stage = next,
                None => return rx,
            }
        }
    }
    let stopped = stage.stop(&mut outputs).into_result();
    env.route(&mut outputs);
    if let Err(error) = stopped {
        bump(&env.counters.errors);
        tracing::error!(stage = %env.spec.id, "stop failed: {error}");
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(pool: &MemoryPool<Event>, code: u32) -> PipelineData {
        let mut pooled = pool.try_acquire().expect("a pooled event");
        *pooled = Event::new(code, "test");
        PipelineData::Event(pooled)
    }

    #[tokio::test]
    async fn a_full_channel_drops_for_that_reader_only_and_counts_it() {
        let router = Router::default();
        let slow = Arc::new(ControlCounters::default());
        let fast = Arc::new(ControlCounters::default());
        let (slow_tx, mut slow_rx) = mpsc::channel(1);
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        router.subscribe(
            "a",
            Subscriber {
                to: "slow".into(),
                tx: slow_tx,
                counters: Arc::clone(&slow),
                decimate: 1,
                offered: std::cell::Cell::new(0),
            },
        );
        router.subscribe(
            "a",
            Subscriber {
                to: "fast".into(),
                tx: fast_tx,
                counters: Arc::clone(&fast),
                decimate: 1,
                offered: std::cell::Cell::new(0),
            },
        );
        let from: Arc<str> = "a".into();
        let pool = MemoryPool::with_init(8, |_| Event::new(0, ""));
        for code in 0..3 {
            router.deliver(&from, event(&pool, code));
        }
        assert_eq!(slow.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(fast.dropped.load(Ordering::Relaxed), 0);
        assert!(slow_rx.recv().await.is_some());
        for _ in 0..3 {
            let message = fast_rx.recv().await.expect("a message");
            assert_eq!(&*message.from, "a");
        }
        router.unsubscribe("fast");
        router.deliver(&from, event(&pool, 9));
        assert!(fast_rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_decimated_reader_gets_one_packet_in_n_starting_with_the_first() {
        let router = Router::default();
        let counters = Arc::new(ControlCounters::default());
        let (tx, mut rx) = mpsc::channel(16);
        router.subscribe(
            "a",
            Subscriber {
                to: "thin".into(),
                tx,
                counters,
                decimate: 3,
                offered: std::cell::Cell::new(0),
            },
        );
        let from: Arc<str> = "a".into();
        let pool = MemoryPool::with_init(16, |_| Event::new(0, ""));
        for code in 0..7 {
            router.deliver(&from, event(&pool, code));
        }
        let mut codes = Vec::new();
        while let Ok(message) = rx.try_recv() {
            if let PipelineData::Event(event) = &*message.packet {
                codes.push(event.code);
            }
        }
        assert_eq!(codes, [0, 3, 6]);
    }
}
