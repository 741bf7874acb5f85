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

use super::bridge::TapReceiver;
use super::packets::{OutputPool, as_input, copy_into};
use crate::graph::OnError;
use hsp_sdk::abi::{ControlOutputs, FfiControlStageBox, ParamChange, PluginModuleRef};
use hsp_sdk::{PacketKind, PipelineData, StreamFormat};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// One packet for a control stage: who produced it, and the packet (its
/// own: a reader may hold it across threads).
pub struct ControlMessage {
    /// Pipeline id of the producing stage.
    pub from: Arc<str>,
    /// The packet.
    pub packet: PipelineData,
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
    offered: u64,
    /// This reader's own packets, which its copies are made into: as many
    /// as its queue holds plus the one in its call. A slow reader exhausts
    /// only its own pool; made at the first delivery, sized for the packet.
    pool: Option<OutputPool>,
    capacity: usize,
}

/// Who reads whom on the control plane.
#[derive(Default)]
pub struct Router {
    routes: Mutex<HashMap<String, Vec<Subscriber>>>,
}

impl Router {
    /// Hands a copy of `packet` from `from` to every control stage reading
    /// it, each copy from that reader's own pool; the packet itself goes
    /// back to its pool when the caller drops it. A full channel, or a
    /// reader whose packets are all queued, drops the copy (counted).
    pub fn deliver(&self, from: &Arc<str>, packet: &PipelineData) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(subscribers) = routes.get_mut(&**from) else {
            return;
        };
        for subscriber in subscribers {
            let offered = subscriber.offered;
            subscriber.offered += 1;
            if offered % subscriber.decimate != 0 {
                continue;
            }
            if subscriber.pool.is_none() {
                subscriber.pool = Some(OutputPool::for_copies_of(packet, subscriber.capacity + 1));
            }
            let copy = subscriber.pool.as_ref().and_then(|pool| {
                pool.try_acquire()
                    .and_then(|mut copy| copy_into(packet, &mut copy).then_some(copy))
            });
            let sent = copy.is_some_and(|packet| {
                let message = ControlMessage {
                    from: Arc::clone(from),
                    packet,
                };
                subscriber.tx.try_send(message).is_ok()
            });
            if !sent {
                bump(&subscriber.counters.dropped);
            }
        }
    }

    /// Makes `to` read `inputs` through `tx`, replacing its routes in one
    /// step (nothing is delivered in between); with `carry`, first moves
    /// what is queued there into `tx`, under the same lock, so that nothing
    /// is lost or reordered when a channel is replaced.
    fn set_routes(
        &self,
        to: &str,
        inputs: &[(String, usize)],
        tx: &mpsc::Sender<ControlMessage>,
        counters: &Arc<ControlCounters>,
        capacity: usize,
        carry: Option<&mut mpsc::Receiver<ControlMessage>>,
    ) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = carry {
            while let Ok(message) = old.try_recv() {
                if tx.try_send(message).is_err() {
                    bump(&counters.dropped);
                }
            }
        }
        for subscribers in routes.values_mut() {
            subscribers.retain(|s| s.to != to);
        }
        for (input, decimate) in inputs {
            routes.entry(input.clone()).or_default().push(Subscriber {
                to: to.to_string(),
                tx: tx.clone(),
                counters: Arc::clone(counters),
                decimate: (*decimate).max(1) as u64,
                offered: 0,
                pool: None,
                capacity,
            });
        }
    }

    /// Removes every route into `to`.
    fn unsubscribe(&self, to: &str) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
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
    let events = StreamFormat {
        kind: PacketKind::Event,
        channels: 1,
        values_per_channel: 1,
        sample_rate_hz: 0.0,
        packet_rate_hz: 0.0,
    };
    OutputPool::for_format(&events, EVENT_POOL).expect("events are pooled")
}

/// Every control stage of a running pipeline.
pub struct ControlPlane {
    router: Arc<Router>,
    events: Arc<OutputPool>,
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
        self.bridges.push((from.to_string(), handle, counters));
    }

    /// Ids of the data-plane stages with a bridge.
    pub fn bridged(&self) -> impl Iterator<Item = &str> {
        self.bridges.iter().map(|(id, _, _)| id.as_str())
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
        for (_, handle, _) in self.bridges.drain(..) {
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
    router: Arc<Router>,
    events: Arc<OutputPool>,
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
                    Some(PipelineData::Event(mut pooled)) => {
                        *pooled = event;
                        self.router.deliver(&from, &PipelineData::Event(pooled));
                    }
                    _ => bump(&self.counters.events_lost),
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
    async fn on_error(
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
                self.fail(format!(
                    "control stage `{id}` ({}) failed: {message}",
                    self.spec.kind
                ));
                None
            }
            OnError::Bypass => Some(stage),
            OnError::Restart => {
                // The failed stage goes first (a sink flushes; on drop if it
                // refuses `stop` after a panic), then the fresh one carries on
                // after it (a sink appends).
                let spec = self.spec.clone();
                let restarted = call(stage, move |old, outputs| {
                    let _ = old.stop(outputs);
                    let mut fresh = spec.build()?;
                    fresh
                        .resume(outputs)
                        .into_result()
                        .map_err(|e| e.into_string())?;
                    Ok::<_, String>(fresh)
                })
                .await;
                match restarted {
                    Some((old, mut outputs, Ok(fresh))) => {
                        drop(old);
                        self.route(&mut outputs);
                        bump(&self.counters.restarts);
                        tracing::warn!(stage = %id, "control stage restarted from its config");
                        Some(fresh)
                    }
                    Some((_, mut outputs, Err(error))) => {
                        self.route(&mut outputs);
                        self.fail(format!(
                            "control stage `{id}` failed ({message}); restarting it failed too: {error}"
                        ));
                        None
                    }
                    None => {
                        self.fail(format!("control stage `{id}`: its call was lost"));
                        None
                    }
                }
            }
        }
    }

    fn fail(&self, message: String) {
        let _ = self.fatal.send(message);
    }
}

/// Runs `f` on `stage` on tokio's blocking pool, so that a slow plugin call
/// holds up only its own task; hands the stage back with what it emitted.
/// `None` if the call was lost (the host's closure panicked: a bug).
async fn call<R: Send + 'static>(
    stage: FfiControlStageBox,
    f: impl FnOnce(&mut FfiControlStageBox, &mut ControlOutputs) -> R + Send + 'static,
) -> Option<(FfiControlStageBox, ControlOutputs, R)> {
    tokio::task::spawn_blocking(move || {
        let mut stage = stage;
        let mut outputs = ControlOutputs::default();
        let result = f(&mut stage, &mut outputs);
        (stage, outputs, result)
    })
    .await
    .ok()
}

/// A control stage call longer than this is worth a warning (once per
/// stage): it delays everything queued for that stage.
const SLOW_CALL: std::time::Duration = std::time::Duration::from_millis(100);

/// What a control stage's task does next.
enum Work {
    /// Hand it a message.
    Message(ControlMessage),
    /// Its timer ticked.
    Tick,
}

/// The stage's timer, if it asks for ticks. Ticks missed during a long call
/// are skipped, not bunched up.
fn ticker(stage: &FfiControlStageBox) -> Option<tokio::time::Interval> {
    let every = std::time::Duration::from_millis(stage.tick_interval_ms());
    (!every.is_zero()).then(|| {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        interval
    })
}

/// The timer after `stage` was rebuilt: kept if the period is the same.
fn ticker_for(
    stage: &FfiControlStageBox,
    current: Option<tokio::time::Interval>,
) -> Option<tokio::time::Interval> {
    let every = std::time::Duration::from_millis(stage.tick_interval_ms());
    match current {
        Some(interval) if interval.period() == every => Some(interval),
        _ => ticker(stage),
    }
}

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
    stage: FfiControlStageBox,
    begin: Begin,
    mut rx: mpsc::Receiver<ControlMessage>,
    mut cancelled: oneshot::Receiver<()>,
) -> mpsc::Receiver<ControlMessage> {
    let started = call(stage, move |stage, outputs| {
        match begin {
            Begin::Start => stage.start(outputs),
            Begin::Resume => stage.resume(outputs),
        }
        .into_result()
    })
    .await;
    let Some((mut stage, mut outputs, started)) = started else {
        env.fail(format!(
            "control stage `{}`: its start was lost",
            env.spec.id
        ));
        return rx;
    };
    env.route(&mut outputs);
    if let Err(message) = started {
        match env.on_error(stage, "start", message.as_str()).await {
            Some(next) => stage = next,
            None => return rx,
        }
    }
    let mut ticker = ticker(&stage);
    tracing::debug!(stage = %env.spec.id, "control stage running");
    let mut warned_slow = false;
    loop {
        let work = tokio::select! {
            biased;
            _ = &mut cancelled => break,
            message = rx.recv() => match message {
                Some(message) => Work::Message(message),
                None => break,
            },
            Some(()) = async { ticker.as_mut()?.tick().await; Some(()) }, if ticker.is_some() => Work::Tick,
        };
        let method = match &work {
            Work::Message(_) => {
                bump(&env.counters.received);
                "on_packet"
            }
            Work::Tick => "on_tick",
        };
        let began = std::time::Instant::now();
        let handled = call(stage, move |stage, outputs| match work {
            Work::Message(ControlMessage { from, packet }) => stage
                .on_packet(from.as_ref().into(), as_input(&packet), outputs)
                .into_result(),
            Work::Tick => stage.on_tick(outputs).into_result(),
        })
        .await;
        let Some((returned, mut outputs, result)) = handled else {
            env.fail(format!("control stage `{}`: a call was lost", env.spec.id));
            return rx;
        };
        stage = returned;
        let took = began.elapsed();
        if took > SLOW_CALL && !warned_slow {
            warned_slow = true;
            tracing::warn!(
                stage = %env.spec.id,
                "{method} took {:.0} ms; messages for this stage wait meanwhile (and are dropped when its queue is full)",
                took.as_secs_f64() * 1000.0
            );
        }
        env.route(&mut outputs);
        if let Err(error) = result {
            match env.on_error(stage, method, error.as_str()).await {
                Some(next) => {
                    stage = next;
                    ticker = ticker_for(&stage, ticker);
                }
                None => return rx,
            }
        }
    }
    let stopped = call(stage, |stage, outputs| stage.stop(outputs).into_result()).await;
    if let Some((_, mut outputs, stopped)) = stopped {
        env.route(&mut outputs);
        if let Err(error) = stopped {
            bump(&env.counters.errors);
            tracing::error!(stage = %env.spec.id, "stop failed: {error}");
        }
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::Event;

    fn event(pool: &OutputPool, code: u32) -> PipelineData {
        match pool.try_acquire() {
            Some(PipelineData::Event(mut pooled)) => {
                *pooled = Event::new(code, "test");
                PipelineData::Event(pooled)
            }
            _ => panic!("a pooled event"),
        }
    }

    /// Makes `to` read stage "a" through a channel of `capacity`.
    fn reader(
        router: &Router,
        to: &str,
        capacity: usize,
        decimate: usize,
    ) -> (mpsc::Receiver<ControlMessage>, Arc<ControlCounters>) {
        let counters = Arc::new(ControlCounters::default());
        let (tx, rx) = mpsc::channel(capacity);
        let inputs = [("a".to_string(), decimate)];
        router.set_routes(to, &inputs, &tx, &counters, capacity, None);
        (rx, counters)
    }

    #[tokio::test]
    async fn a_slow_reader_drops_its_own_copies_only_and_counts_them() {
        let router = Router::default();
        let (mut slow_rx, slow) = reader(&router, "slow", 1, 1);
        let (mut fast_rx, fast) = reader(&router, "fast", 8, 1);
        let from: Arc<str> = "a".into();
        let pool = event_pool();
        for code in 0..3 {
            router.deliver(&from, &event(&pool, code));
        }
        // Every original went home at once: readers hold copies of their own.
        assert_eq!(pool.stats().available, EVENT_POOL);
        assert_eq!(slow.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(fast.dropped.load(Ordering::Relaxed), 0);
        assert!(slow_rx.recv().await.is_some());
        for code in 0..3 {
            let message = fast_rx.recv().await.expect("a message");
            assert_eq!(&*message.from, "a");
            match message.packet {
                PipelineData::Event(event) => assert_eq!(event.code, code),
                other => panic!("expected an event, got {:?}", other.kind()),
            }
        }
        router.unsubscribe("fast");
        router.deliver(&from, &event(&pool, 9));
        assert!(fast_rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_decimated_reader_gets_one_packet_in_n_starting_with_the_first() {
        let router = Router::default();
        let (mut rx, _) = reader(&router, "thin", 16, 3);
        let from: Arc<str> = "a".into();
        let pool = event_pool();
        for code in 0..7 {
            router.deliver(&from, &event(&pool, code));
        }
        let mut codes = Vec::new();
        while let Ok(message) = rx.try_recv() {
            if let PipelineData::Event(event) = &message.packet {
                codes.push(event.code);
            }
        }
        assert_eq!(codes, [0, 3, 6]);
    }

    #[tokio::test]
    async fn a_new_channel_takes_over_what_was_queued_in_order() {
        let router = Router::default();
        let (mut old_rx, counters) = reader(&router, "r", 4, 1);
        let from: Arc<str> = "a".into();
        let pool = event_pool();
        for code in 0..3 {
            router.deliver(&from, &event(&pool, code));
        }
        let (tx, mut rx) = mpsc::channel(8);
        let inputs = [("a".to_string(), 1)];
        router.set_routes("r", &inputs, &tx, &counters, 8, Some(&mut old_rx));
        router.deliver(&from, &event(&pool, 3));
        let codes: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|m| match m.packet {
                PipelineData::Event(event) => Some(event.code),
                _ => None,
            })
            .collect();
        assert_eq!(codes, [0, 1, 2, 3]);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 0);
    }
}
