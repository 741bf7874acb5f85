//! The stage traits: [`Stage`], what a plugin author implements, and
//! [`DataPlaneStage`], what the runtime drives (plugin and built-in alike).

use crate::abi::{Outcome, PacketMut, PacketRef, StreamFormat};
use crate::config::StageConfig;
use crate::data::{
    EegPacket, Event, FeaturePacket, FftPacket, FilteredEegPacket, PacketKind, PlanarBlock,
    ShapeError,
};
use std::fmt;

/// A stage's error: a message for the person running the pipeline. The host
/// adds which stage (id, kind, plugin file) it came from.
#[derive(Debug, Clone)]
pub struct StageError(Message);

/// The text of a [`StageError`]: made here, or handed over by a plugin
/// library in the ABI's string, kept as it came (copying it into this
/// library's allocator would allocate on the data-plane thread).
#[derive(Debug, Clone)]
enum Message {
    Owned(String),
    Foreign(abi_stable::std_types::RString),
}

impl StageError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(Message::Owned(message.into()))
    }

    /// An error with a message from across the library boundary.
    pub(crate) fn foreign(message: abi_stable::std_types::RString) -> Self {
        Self(Message::Foreign(message))
    }

    /// The message.
    pub fn message(&self) -> &str {
        match &self.0 {
            Message::Owned(text) => text,
            Message::Foreign(text) => text.as_str(),
        }
    }
}

impl PartialEq for StageError {
    fn eq(&self, other: &Self) -> bool {
        self.message() == other.message()
    }
}

impl Eq for StageError {}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for StageError {}

impl From<String> for StageError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for StageError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

/// A stage of a pipeline, as a plugin author writes it: built from config,
/// started, fed one packet per `process` call, stopped.
///
/// **Guarantees the host gives.** `output_format` is called before anything
/// runs, with the format of the upstream edge, to check the graph and size
/// the output pool. `new`, then `start` (or `resume`, when it takes over
/// from a running instance that was just stopped), then `process` (or
/// `process_in_place`) any number of times, then `stop`, all on one thread
/// at a time. Every output packet handed to
/// `process` has room for the format the stage declared. A panic in any of
/// these is caught at the library boundary and reported with its message.
///
/// **What the stage must do.** Not allocate, lock or block in `process`: it
/// runs on the data-plane thread. Fill every field of the output it emits
/// (pooled packets come back with old contents).
///
/// Sources use [`NoPacket`] as `Input` and are called with `None`; sinks use
/// [`NoPacket`] as `Output`.
///
/// ```
/// use hsp_sdk::{EegPacket, Outcome, PlanarBlock, Stage, StageConfig, StageError, StreamFormat};
///
/// /// Multiplies every sample by `gain`.
/// pub struct Gain { gain: f32 }
///
/// #[derive(serde::Deserialize, StageConfig)]
/// #[serde(deny_unknown_fields)]
/// pub struct GainConfig {
///     /// Factor applied to every sample.
///     #[config(default = 1.0)]
///     gain: f32,
/// }
///
/// impl Stage for Gain {
///     const KIND: &'static str = "gain";
///     const DOC: &'static str = "Multiplies every sample by a constant.";
///     type Config = GainConfig;
///     type Input = EegPacket;
///     type Output = EegPacket;
///
///     fn new(config: GainConfig, _input: Option<&StreamFormat>) -> Result<Self, StageError> {
///         Ok(Gain { gain: config.gain })
///     }
///
///     fn process(&mut self, input: Option<&EegPacket>, output: &mut EegPacket) -> Result<Outcome, StageError> {
///         let Some(input) = input else { return Ok(Outcome::NoOutput) };
///         output.copy_from(input).map_err(|e| StageError::new(e.to_string()))?;
///         output.values_mut().iter_mut().for_each(|s| *s *= self.gain);
///         Ok(Outcome::Emitted)
///     }
/// }
/// ```
pub trait Stage: Send + Sized + 'static {
    /// The stage kind's name, as pipelines write it in `plugin = "..."`.
    const KIND: &'static str;
    /// One line on what the stage does, for `host plugins inspect`.
    const DOC: &'static str;
    /// Its typed config, declared once: `#[derive(serde::Deserialize,
    /// StageConfig)]` with `#[serde(deny_unknown_fields)]`, or [`NoConfig`](crate::NoConfig).
    type Config: StageConfig;
    /// The packet type it takes ([`NoPacket`] for a source).
    type Input: PortPacket;
    /// The packet type it produces ([`NoPacket`] for a sink).
    type Output: PortPacket;

    /// What it outputs given what it gets, before it is built. The default
    /// keeps the input's shape and rate (a filter) and has no output for a
    /// sink; sources and reshaping stages override it.
    fn output_format(
        config: &Self::Config,
        input: Option<&StreamFormat>,
    ) -> Result<Option<StreamFormat>, StageError> {
        let _ = config;
        match (Self::Output::KIND, input) {
            (None, _) => Ok(None),
            (Some(kind), Some(input)) => Ok(Some(StreamFormat { kind, ..*input })),
            (Some(_), None) => Err(StageError::new(format!(
                "stage `{}` has no input, so it must say what it outputs (override Stage::output_format)",
                Self::KIND
            ))),
        }
    }

    /// Builds the stage for input of format `input` (`None` for a source).
    fn new(config: Self::Config, input: Option<&StreamFormat>) -> Result<Self, StageError>;

    /// Called once before the first `process`: open files, reset clocks.
    fn start(&mut self) -> Result<(), StageError> {
        Ok(())
    }

    /// Takes one input (`None` for a source, or when drained after
    /// [`Outcome::MoreOutput`]) and may fill `output`.
    fn process(
        &mut self,
        input: Option<&Self::Input>,
        output: &mut Self::Output,
    ) -> Result<Outcome, StageError>;

    /// Called instead of [`start`](Stage::start) when this stage takes over
    /// from a running instance of the same kind (new parameters, new code,
    /// a restart after an error): carry on rather than begin. The instance
    /// it replaces has been stopped just before. A sink appends to what its
    /// predecessor wrote instead of starting the file afresh. By default the
    /// same as `start`.
    fn resume(&mut self) -> Result<(), StageError> {
        self.start()
    }

    /// Whether the stage implements [`process_in_place`](Stage::process_in_place).
    /// Only honoured when its input and output are the same packet type.
    const IN_PLACE: bool = false;

    /// Transforms one input packet into the output in the same packet, with
    /// no copy: `packet` holds the input when called and must hold the output
    /// when it returns. The host calls it instead of `process` when the stage
    /// sets [`IN_PLACE`](Stage::IN_PLACE) (and runs out of place under
    /// `on_error = "bypass"`, which must forward an untouched input). Return
    /// `Emitted` to forward the packet, `NoOutput` to drop it; `MoreOutput`
    /// is not allowed in place.
    fn process_in_place(&mut self, packet: &mut Self::Output) -> Result<Outcome, StageError> {
        let _ = packet;
        Err(StageError::new(format!(
            "stage `{}` does not process in place (it does not set IN_PLACE)",
            Self::KIND
        )))
    }

    /// Called once after the last `process`: flush and close.
    fn stop(&mut self) -> Result<(), StageError> {
        Ok(())
    }
}

/// The ABI side of a port's packet type: its [`PacketKind`] and its variant
/// of [`PacketRef`] and [`PacketMut`]. Generated from
/// [`for_each_packet_kind!`](crate::for_each_packet_kind) for every packet
/// type, written out for [`NoPacket`]; not meant to be implemented elsewhere.
pub trait PacketTag: Sized + 'static {
    /// The packet kind on the wire; `None` for [`NoPacket`].
    const KIND: Option<PacketKind>;
    /// The packet, if `packet` is one of this type.
    fn from_ref(packet: PacketRef<'_>) -> Option<&Self>;
    /// The packet, if `packet` is one of this type.
    fn from_mut(packet: PacketMut<'_>) -> Option<&mut Self>;
    /// Borrows it as the ABI's tagged reference.
    fn as_packet_ref(&self) -> PacketRef<'_>;
    /// Borrows it as the ABI's tagged mutable reference.
    fn as_packet_mut(&mut self) -> PacketMut<'_>;
}

/// A packet type that can sit on a stage port, and what the harness and the
/// host need to handle one without knowing which it is. Implemented for
/// [`Event`] and [`NoPacket`], and for every [`PlanarBlock`] packet type
/// through that trait; not meant to be implemented elsewhere.
pub trait PortPacket: PacketTag {
    /// An empty packet with room for one packet of `format`.
    fn for_format(format: &StreamFormat) -> Self;
    /// Its shape, channels and values per channel; `None` for a packet that
    /// has none (an event).
    fn shape(&self) -> Option<(usize, usize)>;
    /// Makes `self` a copy of `other` without allocating; refuses a shape
    /// that does not fit `self`'s buffer.
    fn copy_packet_from(&mut self, other: &Self) -> Result<(), ShapeError>;
}

impl<T: PlanarBlock + PacketTag> PortPacket for T {
    fn for_format(format: &StreamFormat) -> Self {
        Self::with_capacity(format.channels(), format.values_per_channel())
    }
    #[inline]
    fn shape(&self) -> Option<(usize, usize)> {
        Some((self.channels(), self.values_per_channel()))
    }
    #[inline]
    fn copy_packet_from(&mut self, other: &Self) -> Result<(), ShapeError> {
        self.copy_from(other)
    }
}

/// The "packet" of a port that does not exist: a source's input, a sink's
/// output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoPacket;

impl PacketTag for NoPacket {
    const KIND: Option<PacketKind> = None;
    fn from_ref(packet: PacketRef<'_>) -> Option<&Self> {
        matches!(packet, PacketRef::None).then_some(&NoPacket)
    }
    fn from_mut(packet: PacketMut<'_>) -> Option<&mut Self> {
        // A zero-sized `Box` does not allocate, and leaking it leaks nothing.
        matches!(packet, PacketMut::None).then(|| Box::leak(Box::new(NoPacket)))
    }
    fn as_packet_ref(&self) -> PacketRef<'_> {
        PacketRef::None
    }
    fn as_packet_mut(&mut self) -> PacketMut<'_> {
        PacketMut::None
    }
}

impl PortPacket for NoPacket {
    fn for_format(_: &StreamFormat) -> Self {
        NoPacket
    }
    fn shape(&self) -> Option<(usize, usize)> {
        None
    }
    fn copy_packet_from(&mut self, _: &Self) -> Result<(), ShapeError> {
        Ok(())
    }
}

macro_rules! packet_tags {
    ($($(#[doc = $doc:literal])* $variant:ident($type:ident) = $name:literal;)*) => {$(
        impl PacketTag for $type {
            const KIND: Option<PacketKind> = Some(PacketKind::$variant);
            #[inline]
            fn from_ref(packet: PacketRef<'_>) -> Option<&Self> {
                match packet {
                    PacketRef::$variant(packet) => Some(packet),
                    _ => None,
                }
            }
            #[inline]
            fn from_mut(packet: PacketMut<'_>) -> Option<&mut Self> {
                match packet {
                    PacketMut::$variant(packet) => Some(packet),
                    _ => None,
                }
            }
            #[inline]
            fn as_packet_ref(&self) -> PacketRef<'_> {
                PacketRef::$variant(self)
            }
            #[inline]
            fn as_packet_mut(&mut self) -> PacketMut<'_> {
                PacketMut::$variant(self)
            }
        }
    )*};
}

crate::for_each_packet_kind!(packet_tags);

/// A stage as the data-plane runtime drives it, whether it came from a plugin
/// library ([`FfiStageBox`](crate::abi::FfiStageBox)) or was linked in: one
/// call per packet, errors as values, panics already caught.
pub trait DataPlaneStage: Send {
    /// See [`Stage::start`].
    fn start(&mut self) -> Result<(), StageError>;
    /// See [`Stage::resume`].
    fn resume(&mut self) -> Result<(), StageError>;
    /// See [`Stage::process`]; packets travel as the ABI's tagged references.
    fn process(
        &mut self,
        input: PacketRef<'_>,
        output: PacketMut<'_>,
    ) -> Result<Outcome, StageError>;
    /// See [`Stage::process_in_place`].
    fn process_in_place(&mut self, packet: PacketMut<'_>) -> Result<Outcome, StageError>;
    /// See [`Stage::stop`].
    fn stop(&mut self) -> Result<(), StageError>;
}
