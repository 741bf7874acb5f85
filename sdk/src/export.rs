//! The export layer: adapts a [`Stage`] to the ABI's [`FfiStage`] object with
//! every call under `catch_unwind`, and [`export_plugin!`](crate::export_plugin) to publish them.
//!
//! Everything generic here is instantiated inside the plugin crate, so the
//! `catch_unwind` runs in the plugin's own copy of std, on the plugin's side
//! of the boundary: a panic never unwinds into the host (which would abort it).

use crate::abi::{
    ControlOutputs, FfiControlStage, FfiControlStage_TO, FfiControlStageBox, FfiStage, FfiStage_TO,
    FfiStageBox, HSP_ABI_VERSION, Manifest, Outcome, PacketMut, PacketRef, PortDescriptor,
    Processed, SDK_VERSION, StageDescriptor, StageRole, StreamFormat,
};
use crate::config::{StageConfig, parse_config};
use crate::control::{ControlContext, ControlStage};
use crate::data::PacketKind;
use crate::ports::{InputPorts, OutputPorts, Port};
use crate::stage::{DataPlaneStage, Stage, StageError};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RErr, ROk, RResult, RSlice, RSliceMut, RStr, RString, RVec};
use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The message of a panic payload (`&str` or `String`, as `panic!` makes).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Whether a stage error `message` reports a panic (caught at the library
/// boundary) or a call refused because of an earlier panic: the stage's
/// state may be broken, and the host rebuilds it rather than call it again.
///
/// ```
/// assert!(hsp_sdk::export::is_panic_message("process panicked: index out of bounds"));
/// assert!(!hsp_sdk::export::is_panic_message("bad sample rate"));
/// ```
pub fn is_panic_message(message: &str) -> bool {
    message.starts_with("panicked: ")
        || message.contains(" panicked: ")
        || message.ends_with(PANICKED_EARLIER)
}

/// The end of the message of a call refused after a panic.
const PANICKED_EARLIER: &str = "refused, the stage panicked earlier";

/// Runs `f`, turning an error or a panic into a message.
fn guarded<T>(f: impl FnOnce() -> Result<T, StageError>) -> Result<T, StageError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(StageError::new(format!(
            "panicked: {}",
            panic_message(&*payload)
        ))),
    }
}

/// A [`Stage`] behind the ABI: type-checks the packets, catches panics, and
/// refuses every call after a panic (its state may be broken).
pub struct StageAdapter<S: Stage> {
    stage: S,
    poisoned: bool,
}

impl<S: Stage> StageAdapter<S> {
    /// Wraps `stage`.
    pub fn new(stage: S) -> Self {
        Self {
            stage,
            poisoned: false,
        }
    }

    /// The wrapped stage.
    pub fn stage(&self) -> &S {
        &self.stage
    }

    fn call<T>(
        &mut self,
        method: &str,
        f: impl FnOnce(&mut S) -> Result<T, StageError>,
    ) -> Result<T, StageError> {
        if self.poisoned {
            return Err(StageError::new(format!("{method}: {PANICKED_EARLIER}")));
        }
        let stage = &mut self.stage;
        match catch_unwind(AssertUnwindSafe(|| f(stage))) {
            Ok(result) => result,
            Err(payload) => {
                self.poisoned = true;
                Err(StageError::new(format!(
                    "{method} panicked: {}",
                    panic_message(&*payload)
                )))
            }
        }
    }
}

impl<S: Stage> DataPlaneStage for StageAdapter<S> {
    fn start(&mut self) -> Result<(), StageError> {
        self.call("start", S::start)
    }

    fn resume(&mut self) -> Result<(), StageError> {
        self.call("resume", S::resume)
    }

    #[inline]
    fn process(
        &mut self,
        port: u32,
        input: PacketRef<'_>,
        outputs: &mut [PacketMut<'_>],
    ) -> Result<Processed, StageError> {
        let input = match input {
            PacketRef::None => None,
            packet => Some(
                <S::Input as InputPorts>::from_ref(port as usize, packet)
                    .ok_or_else(|| wrong_input::<S>(port, packet))?,
            ),
        };
        let sent = Cell::new(0);
        let output = <S::Output as OutputPorts>::from_muts(outputs, &sent).ok_or_else(|| {
            StageError::new(format!(
                "process: the output packets do not fit `{}`'s output ports",
                S::KIND
            ))
        })?;
        let outcome = self.call("process", |stage| stage.process(input, output))?;
        let sent = if <S::Output as OutputPorts>::SENDS_EACH {
            sent.get()
        } else {
            match outcome {
                Outcome::Emitted | Outcome::MoreOutput => {
                    u32::from(!<S::Output as OutputPorts>::PORTS.is_empty())
                }
                Outcome::NoOutput | Outcome::Finished => 0,
            }
        };
        Ok(Processed { outcome, sent })
    }

    #[inline]
    fn process_in_place(&mut self, packet: PacketMut<'_>) -> Result<Outcome, StageError> {
        let mut packets = [packet];
        let sent = Cell::new(0);
        let packet =
            <S::Output as OutputPorts>::from_muts(&mut packets, &sent).ok_or_else(|| {
                StageError::new(format!(
                    "process_in_place: wrong packet type for `{}`",
                    S::KIND
                ))
            })?;
        self.call("process_in_place", |stage| stage.process_in_place(packet))
    }

    fn stop(&mut self) -> Result<Vec<String>, StageError> {
        self.call("stop", |stage| stage.stop().map(|()| stage.notes()))
    }
}

/// Why input `packet` on `port` was refused (off the hot path).
#[cold]
fn wrong_input<S: Stage>(port: u32, packet: PacketRef<'_>) -> StageError {
    let ports = <S::Input as InputPorts>::PORTS;
    match ports.get(port as usize) {
        Some(found) => StageError::new(format!(
            "process: got a {} packet on port `{}`, which takes {}",
            packet.kind().map_or("no", PacketKind::name),
            found.name,
            kind_list(found.kinds)
        )),
        None => StageError::new(format!(
            "process: got a packet on input port {port}, but `{}` has {} input port(s)",
            S::KIND,
            ports.len()
        )),
    }
}

/// `raw_eeg or filtered_eeg`.
fn kind_list(kinds: &[PacketKind]) -> String {
    kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(" or ")
}

impl<S: Stage> FfiStage for StageAdapter<S> {
    fn start(&mut self) -> RResult<(), RString> {
        into_rresult(DataPlaneStage::start(self))
    }

    fn resume(&mut self) -> RResult<(), RString> {
        into_rresult(DataPlaneStage::resume(self))
    }

    #[inline]
    fn process(
        &mut self,
        port: u32,
        input: PacketRef<'_>,
        mut outputs: RSliceMut<'_, PacketMut<'_>>,
    ) -> RResult<Processed, RString> {
        into_rresult(DataPlaneStage::process(self, port, input, &mut outputs))
    }

    #[inline]
    fn process_in_place(&mut self, packet: PacketMut<'_>) -> RResult<Outcome, RString> {
        into_rresult(DataPlaneStage::process_in_place(self, packet))
    }

    fn stop(&mut self) -> RResult<RVec<RString>, RString> {
        into_rresult(
            DataPlaneStage::stop(self).map(|notes| notes.into_iter().map(RString::from).collect()),
        )
    }
}

/// The host drives plugin stages through the same trait as linked-in ones.
impl DataPlaneStage for FfiStageBox {
    fn start(&mut self) -> Result<(), StageError> {
        from_rresult(FfiStage_TO::start(self))
    }

    fn resume(&mut self) -> Result<(), StageError> {
        from_rresult(FfiStage_TO::resume(self))
    }

    #[inline]
    fn process(
        &mut self,
        port: u32,
        input: PacketRef<'_>,
        outputs: &mut [PacketMut<'_>],
    ) -> Result<Processed, StageError> {
        from_rresult(FfiStage_TO::process(self, port, input, outputs.into()))
    }

    #[inline]
    fn process_in_place(&mut self, packet: PacketMut<'_>) -> Result<Outcome, StageError> {
        from_rresult(FfiStage_TO::process_in_place(self, packet))
    }

    fn stop(&mut self) -> Result<Vec<String>, StageError> {
        from_rresult(FfiStage_TO::stop(self))
            .map(|notes| notes.into_iter().map(String::from).collect())
    }
}

#[inline]
fn into_rresult<T>(result: Result<T, StageError>) -> RResult<T, RString> {
    match result {
        Ok(value) => ROk(value),
        Err(error) => RErr(RString::from(error.message())),
    }
}

#[inline]
fn from_rresult<T>(result: RResult<T, RString>) -> Result<T, StageError> {
    result.into_result().map_err(StageError::foreign)
}

fn parse<S: Stage>(config_json: &str) -> Result<S::Config, StageError> {
    parse_config::<S::Config>(config_json)
}

/// Builds stage `S` behind the ABI. Used by [`export_plugin!`](crate::export_plugin).
pub fn create<S: Stage>(
    config_json: &str,
    inputs: RSlice<'_, StreamFormat>,
) -> RResult<FfiStageBox, RString> {
    into_rresult(guarded(|| {
        let config = parse::<S>(config_json)?;
        let stage = S::new(config, inputs.as_slice())?;
        Ok(FfiStage_TO::from_value(StageAdapter::new(stage), TD_Opaque))
    }))
}

/// Stage `S`'s output formats for `config_json` and `inputs`, after checking
/// that the inputs fit its ports and the outputs its output ports. Used by
/// [`export_plugin!`](crate::export_plugin).
pub fn output_format<S: Stage>(
    config_json: &str,
    inputs: RSlice<'_, StreamFormat>,
) -> RResult<RVec<StreamFormat>, RString> {
    into_rresult(guarded(|| {
        let formats = output_formats::<S>(config_json, inputs.as_slice())?;
        Ok(formats.into())
    }))
}

/// See [`output_format`]; plain Rust, for the harness.
pub(crate) fn output_formats<S: Stage>(
    config_json: &str,
    inputs: &[StreamFormat],
) -> Result<Vec<StreamFormat>, StageError> {
    let ports = <S::Input as InputPorts>::PORTS;
    // Optional ports come last: the inputs given fill the first ports.
    let required = ports.iter().filter(|p| !p.optional).count();
    if !(required..=ports.len()).contains(&inputs.len()) {
        let count = if required == ports.len() {
            ports.len().to_string()
        } else {
            format!("{required} to {}", ports.len())
        };
        return Err(StageError::new(format!(
            "takes {count} input(s) ({}), given {}",
            port_names(ports),
            inputs.len()
        )));
    }
    for (port, input) in ports.iter().zip(inputs) {
        if !port.kinds.contains(&input.kind) {
            return Err(StageError::new(format!(
                "input `{}` takes {} packets but gets {}",
                port.name,
                kind_list(port.kinds),
                input.kind
            )));
        }
    }
    let config = parse::<S>(config_json)?;
    let outputs = S::output_formats(&config, inputs)?;
    let ports = <S::Output as OutputPorts>::PORTS;
    if outputs.len() != ports.len() {
        return Err(StageError::new(format!(
            "`{}` declared {} output format(s) for its {} output port(s) (a bug in the stage)",
            S::KIND,
            outputs.len(),
            ports.len()
        )));
    }
    for (port, output) in ports.iter().zip(&outputs) {
        if !port.kinds.contains(&output.kind) {
            return Err(StageError::new(format!(
                "`{}` declared {} for output `{}`, which makes {} (a bug in the stage)",
                S::KIND,
                output.kind,
                port.name,
                kind_list(port.kinds)
            )));
        }
    }
    Ok(outputs)
}

/// `signal, markers`.
fn port_names(ports: &[Port]) -> String {
    if ports.is_empty() {
        return "none".to_string();
    }
    ports.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

fn describe_ports(ports: &[Port]) -> RVec<PortDescriptor> {
    ports
        .iter()
        .map(|port| PortDescriptor {
            name: port.name.into(),
            kinds: port.kinds.iter().copied().collect(),
            optional: port.optional,
        })
        .collect()
}

/// Stage `S`'s entry in the manifest. Used by [`export_plugin!`](crate::export_plugin).
pub fn describe<S: Stage>() -> StageDescriptor {
    let inputs = <S::Input as InputPorts>::PORTS;
    let outputs = <S::Output as OutputPorts>::PORTS;
    StageDescriptor {
        kind: S::KIND.into(),
        doc: S::DOC.into(),
        role: StageRole::DataPlane,
        inputs: describe_ports(inputs),
        outputs: describe_ports(outputs),
        in_place: S::IN_PLACE && inputs.len() == 1 && outputs.len() == 1,
        may_block: S::MAY_BLOCK,
        config: <S::Config as StageConfig>::FIELDS
            .iter()
            .map(|spec| spec.to_field())
            .collect(),
    }
}

/// Control stage `C`'s entry in the manifest. Used by [`export_plugin!`](crate::export_plugin).
pub fn describe_control<C: ControlStage>() -> StageDescriptor {
    StageDescriptor {
        kind: C::KIND.into(),
        doc: C::DOC.into(),
        role: StageRole::Control,
        inputs: if C::ACCEPTS.is_empty() {
            RVec::new()
        } else {
            RVec::from(vec![PortDescriptor {
                name: "in".into(),
                kinds: C::ACCEPTS.iter().copied().collect(),
                optional: false,
            }])
        },
        outputs: if C::EMITS_EVENTS {
            RVec::from(vec![PortDescriptor {
                name: "events".into(),
                kinds: RVec::from(vec![PacketKind::Event]),
                optional: false,
            }])
        } else {
            RVec::new()
        },
        in_place: false,
        may_block: false,
        config: <C::Config as StageConfig>::FIELDS
            .iter()
            .map(|spec| spec.to_field())
            .collect(),
    }
}

/// A [`ControlStage`] behind the ABI: catches panics and refuses every call
/// after one, like [`StageAdapter`].
pub struct ControlAdapter<C: ControlStage> {
    stage: C,
    poisoned: bool,
}

impl<C: ControlStage> ControlAdapter<C> {
    /// Wraps `stage`.
    pub fn new(stage: C) -> Self {
        Self {
            stage,
            poisoned: false,
        }
    }

    /// The wrapped stage.
    pub fn stage(&self) -> &C {
        &self.stage
    }

    /// Runs one method of the stage, collecting what it emits into `outputs`.
    pub fn call(
        &mut self,
        method: &str,
        outputs: &mut ControlOutputs,
        f: impl FnOnce(&mut C, &mut ControlContext<'_>) -> Result<(), StageError>,
    ) -> Result<(), StageError> {
        if self.poisoned {
            return Err(StageError::new(format!("{method}: {PANICKED_EARLIER}")));
        }
        let stage = &mut self.stage;
        let mut ctx = ControlContext::new(outputs);
        match catch_unwind(AssertUnwindSafe(|| f(stage, &mut ctx))) {
            Ok(result) => result,
            Err(payload) => {
                self.poisoned = true;
                Err(StageError::new(format!(
                    "{method} panicked: {}",
                    panic_message(&*payload)
                )))
            }
        }
    }
}

impl<C: ControlStage> ControlAdapter<C> {
    /// Hands the stage one packet, refusing a kind it does not accept.
    pub fn on_packet(
        &mut self,
        from: &str,
        packet: PacketRef<'_>,
        outputs: &mut ControlOutputs,
    ) -> Result<(), StageError> {
        if let Some(kind) = packet.kind() {
            if !C::ACCEPTS.contains(&kind) {
                return Err(StageError::new(format!(
                    "on_packet: `{}` does not take {kind} packets (it takes {:?})",
                    C::KIND,
                    C::ACCEPTS
                )));
            }
        }
        self.call("on_packet", outputs, |stage, ctx| {
            stage.on_packet(from, packet, ctx)
        })
    }
}

impl<C: ControlStage> FfiControlStage for ControlAdapter<C> {
    fn start(&mut self, outputs: &mut ControlOutputs) -> RResult<(), RString> {
        into_rresult(self.call("start", outputs, C::start))
    }

    fn resume(&mut self, outputs: &mut ControlOutputs) -> RResult<(), RString> {
        into_rresult(self.call("resume", outputs, C::resume))
    }

    fn on_packet(
        &mut self,
        from: RStr<'_>,
        packet: PacketRef<'_>,
        outputs: &mut ControlOutputs,
    ) -> RResult<(), RString> {
        into_rresult(ControlAdapter::on_packet(
            self,
            from.as_str(),
            packet,
            outputs,
        ))
    }

    fn tick_interval_ms(&self) -> u64 {
        if self.poisoned {
            return 0;
        }
        // A panic here would unwind into the host: caught, it means no ticks.
        catch_unwind(AssertUnwindSafe(|| self.stage.tick_interval()))
            .ok()
            .flatten()
            .map_or(0, |every| {
                u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1)
            })
    }

    fn on_tick(&mut self, outputs: &mut ControlOutputs) -> RResult<(), RString> {
        into_rresult(self.call("on_tick", outputs, C::on_tick))
    }

    fn stop(&mut self, outputs: &mut ControlOutputs) -> RResult<(), RString> {
        into_rresult(self.call("stop", outputs, C::stop))
    }
}

/// Builds control stage `C` behind the ABI. Used by [`export_plugin!`](crate::export_plugin).
pub fn create_control<C: ControlStage>(config_json: &str) -> RResult<FfiControlStageBox, RString> {
    into_rresult(guarded(|| {
        let config = parse_config::<C::Config>(config_json)?;
        let stage = C::new(config)?;
        Ok(FfiControlStage_TO::from_value(
            ControlAdapter::new(stage),
            TD_Opaque,
        ))
    }))
}

/// Checks control stage `C`'s config by building it (`new` must not open
/// files or start anything: that is `start`'s job); its "output format" is
/// an event stream when it emits events. Used by [`export_plugin!`](crate::export_plugin).
pub fn control_output_format<C: ControlStage>(
    config_json: &str,
) -> RResult<RVec<StreamFormat>, RString> {
    into_rresult(guarded(|| {
        let config = parse_config::<C::Config>(config_json)?;
        drop(C::new(config)?);
        Ok(if C::EMITS_EVENTS {
            RVec::from(vec![StreamFormat::events()])
        } else {
            RVec::new()
        })
    }))
}

/// The plugin's manifest. Used by [`export_plugin!`](crate::export_plugin).
pub fn manifest(name: &str, version: &str, stages: Vec<StageDescriptor>) -> Manifest {
    Manifest {
        name: name.into(),
        version: version.into(),
        abi_version: HSP_ABI_VERSION,
        sdk_version: SDK_VERSION.into(),
        stages: RVec::from(stages),
    }
}

/// A panic in the export glue itself would unwind into `extern "C"` and abort
/// the host; this turns it into an error value. Used by [`export_plugin!`](crate::export_plugin).
pub fn guard_ffi<T>(what: &str, f: impl FnOnce() -> RResult<T, RString>) -> RResult<T, RString> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => RErr(format!("{what} panicked: {}", panic_message(&*payload)).into()),
    }
}
