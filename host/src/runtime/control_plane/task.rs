//! One control stage's task: it awaits its inputs, ticks and shutdown, and
//! calls its stage once per message on tokio's blocking pool, routing what
//! each call produced and applying `on_error`.

use super::router::{ControlMessage, Router};
use super::{ControlCounters, ControlSpec, ParamRequest, bump};
use crate::graph::OnError;
use crate::runtime::packets::{OutputPool, as_input};
use hsp_sdk::abi::{ControlOutputs, FfiControlStageBox};
use hsp_sdk::runtime::PipelineData;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub(super) struct TaskEnv {
    pub(super) spec: ControlSpec,
    pub(super) router: Arc<Router>,
    pub(super) events: Arc<OutputPool>,
    pub(super) params: mpsc::UnboundedSender<ParamRequest>,
    pub(super) fatal: mpsc::UnboundedSender<String>,
    pub(super) counters: Arc<ControlCounters>,
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
        tracing::error!(stage = %id, kind = %self.spec.recipe.kind, policy = ?self.spec.recipe.on_error, "{method}: {message}");
        match self.spec.recipe.on_error {
            OnError::Stop => {
                self.fail(format!(
                    "control stage `{id}` ({}) failed: {message}",
                    self.spec.recipe.kind
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
                    let mut fresh = spec.build().map_err(|e| e.to_string())?;
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
pub(super) enum Begin {
    /// A fresh stage: `start`.
    Start,
    /// Taking over from a stopped instance: `resume`.
    Resume,
}

/// A control stage's task: start, then one call per message until cancelled
/// (a restart or removal: the unread messages go back with the receiver) or
/// until its inputs are gone (shutdown); then stop.
pub(super) async fn run_stage(
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
