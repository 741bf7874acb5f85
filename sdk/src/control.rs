//! Control stages: low-rate logic on the host's tokio control plane, fed by
//! lossy bridges from the data plane.

use crate::abi::{ControlOutputs, PacketRef, ParamChange};
use crate::config::StageConfig;
use crate::data::{Event, PacketKind};
use crate::stage::StageError;
use serde::Serialize;

/// A control stage, as a plugin author writes it: built from config, started,
/// handed each packet its inputs produce, stopped. It may emit [`Event`]s
/// (read by the control stages downstream of it) and ask for parameter
/// changes of running data-plane stages.
///
/// **Guarantees the host gives.** Each control stage runs in its own tokio
/// task on the control plane, never on the data-plane thread, and its calls
/// run on tokio's blocking pool: `on_packet` may allocate, log and block on
/// I/O, and a slow call delays only this stage's own messages. It is called
/// for one message at a time, in the order each input produced them.
/// Its inputs reach it through bridges that never block the data plane: when
/// the stage falls behind, the newest packets are dropped and counted, so
/// a slow control stage costs data, never latency upstream. A panic is
/// caught at the library boundary, like a data-plane stage's.
///
/// **Why its methods are not `async`.** A future cannot cross the plugin's C
/// ABI without both sides agreeing on an executor; the host's task does the
/// awaiting (on its inputs, on shutdown) and calls these methods when there is
/// something to do.
///
/// ```
/// use hsp_sdk::{ControlContext, ControlStage, Event, PacketKind, PacketRef, PlanarBlock, StageConfig, StageError};
///
/// /// Emits an event whenever the first feature of a packet exceeds `level`.
/// pub struct Above { level: f32 }
///
/// #[derive(serde::Deserialize, StageConfig)]
/// #[serde(deny_unknown_fields)]
/// pub struct AboveConfig {
///     /// The level a feature must exceed.
///     level: f32,
/// }
///
/// impl ControlStage for Above {
///     const KIND: &'static str = "above";
///     const DOC: &'static str = "An event when the first feature exceeds a level.";
///     const ACCEPTS: &'static [PacketKind] = &[PacketKind::Features];
///     const EMITS_EVENTS: bool = true;
///     type Config = AboveConfig;
///
///     fn new(config: AboveConfig) -> Result<Self, StageError> {
///         Ok(Above { level: config.level })
///     }
///
///     fn on_packet(&mut self, _from: &str, packet: PacketRef<'_>, ctx: &mut ControlContext<'_>) -> Result<(), StageError> {
///         if let PacketRef::Features(features) = packet {
///             if features.values().first().is_some_and(|&v| v > self.level) {
///                 ctx.emit(Event::new(1, "above").at(features.timestamp_ns));
///             }
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait ControlStage: Send + Sized + 'static {
    /// The stage kind's name, as pipelines write it in `plugin = "..."`.
    const KIND: &'static str;
    /// One line on what the stage does, for `host plugins inspect`.
    const DOC: &'static str;
    /// The packet kinds its inputs may carry; empty if it takes no input.
    const ACCEPTS: &'static [PacketKind];
    /// Whether it emits events that other control stages can read.
    const EMITS_EVENTS: bool = false;
    /// Its typed config, declared once: `#[derive(serde::Deserialize,
    /// StageConfig)]` with `#[serde(deny_unknown_fields)]`, or [`NoConfig`](crate::NoConfig).
    type Config: StageConfig;

    /// Builds the stage from its config. The host also calls it to check a
    /// pipeline (`host validate`, before a reload), so reject bad values
    /// here and leave opening files and the like to `start`.
    fn new(config: Self::Config) -> Result<Self, StageError>;

    /// Called once before the first packet: open files, emit an initial state.
    fn start(&mut self, ctx: &mut ControlContext<'_>) -> Result<(), StageError> {
        let _ = ctx;
        Ok(())
    }

    /// Called instead of [`start`](ControlStage::start) when this stage
    /// takes over from a running instance (its config or code changed, or
    /// a restart after an error); the old one was stopped just before. A
    /// sink appends rather than starting afresh. By default the same as
    /// `start`.
    fn resume(&mut self, ctx: &mut ControlContext<'_>) -> Result<(), StageError> {
        self.start(ctx)
    }

    /// One packet from the input stage whose pipeline id is `from`.
    fn on_packet(
        &mut self,
        from: &str,
        packet: PacketRef<'_>,
        ctx: &mut ControlContext<'_>,
    ) -> Result<(), StageError>;

    /// How often [`on_tick`](ControlStage::on_tick) is called, asked once
    /// after `start` (or `resume`): for a stage that acts on time as well as
    /// on data (a watchdog, a periodic decision). `None` (the default): never.
    fn tick_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Called every [`tick_interval`](ControlStage::tick_interval), between
    /// messages (never at the same time as `on_packet`). Ticks missed while
    /// a call ran long are skipped, not bunched up.
    ///
    /// ```
    /// use hsp_sdk::testing::ControlHarness;
    /// use hsp_sdk::{ControlContext, ControlStage, Event, PacketKind, PacketRef, StageError};
    /// use std::time::Duration;
    ///
    /// /// An event when no packet came for a whole second: a watchdog.
    /// struct Watchdog { seen: bool }
    ///
    /// impl ControlStage for Watchdog {
    ///     const KIND: &'static str = "watchdog";
    ///     const DOC: &'static str = "An event when the input falls silent for a second.";
    ///     const ACCEPTS: &'static [PacketKind] = &[PacketKind::Features];
    ///     const EMITS_EVENTS: bool = true;
    ///     type Config = serde_json::Value;
    ///     fn new(_: serde_json::Value) -> Result<Self, StageError> { Ok(Watchdog { seen: false }) }
    ///     fn tick_interval(&self) -> Option<Duration> { Some(Duration::from_secs(1)) }
    ///     fn on_packet(&mut self, _: &str, _: PacketRef<'_>, _: &mut ControlContext<'_>) -> Result<(), StageError> {
    ///         self.seen = true;
    ///         Ok(())
    ///     }
    ///     fn on_tick(&mut self, ctx: &mut ControlContext<'_>) -> Result<(), StageError> {
    ///         if !std::mem::take(&mut self.seen) {
    ///             ctx.emit(Event::new(9, "silent"));
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut harness = ControlHarness::<Watchdog>::new("{}").unwrap();
    /// assert_eq!(harness.tick_interval(), Some(Duration::from_secs(1)));
    /// assert_eq!(harness.on_tick().unwrap().events[0].code, 9);
    /// ```
    fn on_tick(&mut self, ctx: &mut ControlContext<'_>) -> Result<(), StageError> {
        let _ = ctx;
        Ok(())
    }

    /// Called once after the last packet: flush and close.
    fn stop(&mut self, ctx: &mut ControlContext<'_>) -> Result<(), StageError> {
        let _ = ctx;
        Ok(())
    }
}

/// What a control stage can do besides compute: emit events and ask for
/// parameter changes. The host acts on them when the call returns.
///
/// ```
/// use hsp_sdk::{ControlContext, Event};
/// use hsp_sdk::abi::ControlOutputs;
///
/// let mut outputs = ControlOutputs::default();
/// let mut ctx = ControlContext::new(&mut outputs);
/// ctx.emit(Event::new(1, "alpha/high"));
/// ctx.set_param("bandpass", "cutoff_hz", &[8.0, 12.0]).unwrap();
/// assert_eq!(outputs.events.len(), 1);
/// assert_eq!(outputs.params[0].value_json.as_str(), "[8.0,12.0]");
/// ```
pub struct ControlContext<'a> {
    outputs: &'a mut ControlOutputs,
}

impl<'a> ControlContext<'a> {
    /// A context that collects into `outputs`.
    pub fn new(outputs: &'a mut ControlOutputs) -> Self {
        Self { outputs }
    }

    /// Sends `event` to every control stage that reads this one.
    pub fn emit(&mut self, event: Event) {
        self.outputs.events.push(event);
    }

    /// Asks the host to set config `key` of the running data-plane stage
    /// `target` (its pipeline id) to `value`. The host validates the result
    /// against the target's schema; a change it refuses is logged, and the
    /// target keeps running as it was.
    pub fn set_param(
        &mut self,
        target: &str,
        key: &str,
        value: &impl Serialize,
    ) -> Result<(), StageError> {
        let value_json = serde_json::to_string(value)
            .map_err(|e| StageError::new(format!("set_param `{key}`: {e}")))?;
        self.outputs.params.push(ParamChange {
            target: target.into(),
            key: key.into(),
            value_json: value_json.into(),
        });
        Ok(())
    }
}
