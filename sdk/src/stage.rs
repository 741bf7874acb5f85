//! The stage traits: [`Stage`], what a plugin author implements, and
//! [`DataPlaneStage`], what the runtime drives (plugin and built-in alike).

use crate::abi::{Outcome, PacketMut, PacketRef, Processed, StreamFormat};
use crate::config::StageConfig;
use crate::data::{
    EegPacket, Event, FeaturePacket, FftPacket, FilteredEegPacket, PacketKind, PlanarBlock,
    ShapeError,
};
use crate::ports::{InputPorts, OutputPorts};
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
/// **Guarantees the host gives.** `output_formats` is called before
/// anything runs, with the negotiated format of each input port, to check
/// the graph, size the output pools and tell downstream stages what they
/// get. Then `new`, then `start` (or `resume`, when it takes over from a
/// running instance that was just stopped), then `process` (or
/// `process_in_place`) any number of times, then `stop`, all on one thread
/// at a time. Every output packet handed to `process` has room for the
/// format the stage declared for its port. A panic in any of these is
/// caught at the library boundary and reported with its message.
///
/// **What the stage must do, for each port shape** (see [`InputPorts`] and
/// [`OutputPorts`] for the types):
/// - *Source* (`Input = NoPacket`): called with `None` whenever its output
///   has room; returns `NoOutput` when nothing is ready yet, `Finished` at
///   its end.
/// - *Filter* (one input, one output): called once per input packet;
///   returns `Emitted` to send the output, `NoOutput` while it buffers,
///   `MoreOutput` to be called again with no input and a fresh output.
/// - *Sink* (`Output = NoPacket`): called once per input packet.
/// - *Several inputs* (a derived enum): called once per packet, from
///   whichever port has the oldest one waiting.
/// - *Several outputs* (a derived struct): sends each port's packet with
///   [`Out::send`](crate::Out::send); unsent packets stay for the next call.
///
/// Unless it sets [`MAY_BLOCK`](Stage::MAY_BLOCK), a stage runs on the
/// data-plane thread and must not allocate, lock or block in `process`.
/// Fill every field of the output it sends (pooled packets come back with
/// old contents).
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
///     fn new(config: GainConfig, _inputs: &[StreamFormat]) -> Result<Self, StageError> {
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
///
/// A stage with two inputs and two outputs: it passes the signal on and
/// sends an event, with the marker's code, for every marker it is given.
///
/// ```
/// use hsp_sdk::prelude::*;
///
/// #[derive(InputPorts)]
/// pub enum MarkInput<'a> {
///     Signal(&'a EegPacket),
///     Markers(&'a Event),
/// }
///
/// #[derive(OutputPorts)]
/// pub struct MarkOutput<'a> {
///     signal: Out<'a, EegPacket>,
///     events: Out<'a, Event>,
/// }
///
/// pub struct Mark;
///
/// impl Stage for Mark {
///     const KIND: &'static str = "mark";
///     const DOC: &'static str = "Passes the signal on and echoes markers as events.";
///     type Config = NoConfig;
///     type Input = MarkInput<'static>;
///     type Output = MarkOutput<'static>;
///
///     fn output_formats(_: &NoConfig, inputs: &[StreamFormat]) -> Result<Vec<StreamFormat>, StageError> {
///         Ok(vec![inputs[0].clone(), inputs[1].clone()])
///     }
///
///     fn new(_: NoConfig, _: &[StreamFormat]) -> Result<Self, StageError> {
///         Ok(Mark)
///     }
///
///     fn process(&mut self, input: Option<MarkInput<'_>>, mut out: MarkOutput<'_>) -> Result<Outcome, StageError> {
///         match input {
///             Some(MarkInput::Signal(block)) => {
///                 out.signal.copy_from(block).map_err(|e| StageError::new(e.to_string()))?;
///                 out.signal.send();
///             }
///             Some(MarkInput::Markers(marker)) => {
///                 *out.events = Event::new(marker.code, "marker");
///                 out.events.timestamp_ns = marker.timestamp_ns;
///                 out.events.send();
///             }
///             None => {}
///         }
///         Ok(Outcome::Emitted)
///     }
/// }
/// ```
///
/// A sink that may block: it writes each block's first sample to a file,
/// so it runs on a thread of its own and may wait on the disk.
///
/// ```
/// use hsp_sdk::prelude::*;
/// use hsp_sdk::testing::StageHarness;
/// use std::io::Write;
///
/// #[derive(serde::Deserialize, StageConfig)]
/// #[serde(deny_unknown_fields)]
/// pub struct FirstSamplesConfig {
///     /// File to write.
///     path: String,
/// }
///
/// pub struct FirstSamples {
///     path: String,
///     file: Option<std::io::BufWriter<std::fs::File>>,
/// }
///
/// impl Stage for FirstSamples {
///     const KIND: &'static str = "first_samples";
///     const DOC: &'static str = "Writes each block's first sample to a file.";
///     type Config = FirstSamplesConfig;
///     type Input = EegPacket;
///     type Output = NoPacket;
///     const MAY_BLOCK: bool = true;
///
///     fn new(config: FirstSamplesConfig, _: &[StreamFormat]) -> Result<Self, StageError> {
///         Ok(FirstSamples { path: config.path, file: None })
///     }
///
///     fn start(&mut self) -> Result<(), StageError> {
///         let file = std::fs::File::create(&self.path).map_err(|e| StageError::new(e.to_string()))?;
///         self.file = Some(std::io::BufWriter::new(file));
///         Ok(())
///     }
///
///     fn process(&mut self, input: Option<&EegPacket>, _: &mut NoPacket) -> Result<Outcome, StageError> {
///         if let (Some(block), Some(file)) = (input, &mut self.file) {
///             let first = block.values().first().copied().unwrap_or(f32::NAN);
///             writeln!(file, "{} {first}", block.timestamp_ns).map_err(|e| StageError::new(e.to_string()))?;
///         }
///         Ok(Outcome::NoOutput)
///     }
///
///     fn stop(&mut self) -> Result<(), StageError> {
///         match self.file.take() {
///             Some(mut file) => file.flush().map_err(|e| StageError::new(e.to_string())),
///             None => Ok(()),
///         }
///     }
/// }
///
/// let path = std::env::temp_dir().join(format!("first-samples-{}.txt", std::process::id()));
/// let config = format!(r#"{{"path": {:?}}}"#, path.to_str().unwrap());
/// let format = StreamFormat::eeg(PacketKind::RawEeg, 1, 250.0, 2);
/// let mut block = EegPacket::with_capacity(1, 2);
/// block.values_mut().copy_from_slice(&[7.0, 8.0]);
/// StageHarness::<FirstSamples>::new(&config, &[format]).unwrap().run([&block]).unwrap();
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "0 7\n");
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub trait Stage: Send + Sized + 'static {
    /// The stage kind's name, as pipelines write it in `plugin = "..."`.
    const KIND: &'static str;
    /// One line on what the stage does, for `host plugins inspect`.
    const DOC: &'static str;
    /// Its typed config, declared once: `#[derive(serde::Deserialize,
    /// StageConfig)]` with `#[serde(deny_unknown_fields)]`, or [`NoConfig`](crate::NoConfig).
    type Config: StageConfig;
    /// Its input ports: [`NoPacket`] for a source, a packet type for one
    /// port, [`AnyPacket`](crate::AnyPacket), or a derived enum.
    type Input: InputPorts;
    /// Its output ports: [`NoPacket`] for a sink, a packet type for one
    /// port, or a derived struct.
    type Output: OutputPorts;

    /// Whether it may block: wait on a file, a socket or a device, or sleep
    /// until data is due. Such a stage runs on a thread of its own, joined
    /// to the data plane by the same bounded queues, so the data-plane
    /// thread never waits on it; it may then also allocate in `process`.
    const MAY_BLOCK: bool = false;

    /// What it outputs on each output port, in order, given what comes in on
    /// each input port, before it is built. The default, for one input and
    /// one output, keeps the input's stream (shape, rate, channels) and its
    /// kind when the output port can carry it (a filter); it has no output
    /// for a sink. Sources and stages that reshape override it.
    fn output_formats(
        config: &Self::Config,
        inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        let _ = config;
        match (<Self::Output as OutputPorts>::PORTS, inputs) {
            ([], _) => Ok(Vec::new()),
            ([port], [input]) => {
                let kind = if port.kinds.contains(&input.kind) {
                    input.kind
                } else {
                    port.kinds[0]
                };
                Ok(vec![StreamFormat {
                    kind,
                    ..input.clone()
                }])
            }
            _ => Err(StageError::new(format!(
                "stage `{}` must say what it outputs (override Stage::output_formats)",
                Self::KIND
            ))),
        }
    }

    /// Builds the stage for inputs of formats `inputs`, one per input port
    /// (none for a source).
    fn new(config: Self::Config, inputs: &[StreamFormat]) -> Result<Self, StageError>;

    /// Called once before the first `process`: open files, reset clocks.
    fn start(&mut self) -> Result<(), StageError> {
        Ok(())
    }

    /// Takes one input packet (`None` for a source, or when drained after
    /// [`Outcome::MoreOutput`]) and may fill the output.
    fn process(
        &mut self,
        input: Option<<Self::Input as InputPorts>::Ref<'_>>,
        output: <Self::Output as OutputPorts>::Mut<'_>,
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
    /// Honoured for a stage with one input and one output port when the
    /// negotiated input and output kinds are the same.
    const IN_PLACE: bool = false;

    /// Transforms one input packet into the output in the same packet, with
    /// no copy: `packet` holds the input when called and must hold the output
    /// when it returns. The host calls it instead of `process` when the stage
    /// sets [`IN_PLACE`](Stage::IN_PLACE) (and runs out of place under
    /// `on_error = "bypass"`, which must forward an untouched input). Return
    /// `Emitted` to forward the packet, `NoOutput` to drop it; `MoreOutput`
    /// is not allowed in place.
    fn process_in_place(
        &mut self,
        packet: <Self::Output as OutputPorts>::Mut<'_>,
    ) -> Result<Outcome, StageError> {
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

    /// What the user should know once the stage has stopped, one line
    /// each, which the host prints with the stage's id: samples a recorder
    /// clipped, padding it added. Asked after every successful `stop`.
    ///
    /// ```
    /// # use hsp_sdk::prelude::*;
    /// # struct Recorder { clipped: u64 }
    /// # impl Stage for Recorder {
    /// #     const KIND: &'static str = "recorder";
    /// #     const DOC: &'static str = "";
    /// #     type Config = NoConfig;
    /// #     type Input = EegPacket;
    /// #     type Output = NoPacket;
    /// #     fn new(_: NoConfig, _: &[StreamFormat]) -> Result<Self, StageError> { Ok(Self { clipped: 0 }) }
    /// #     fn process(&mut self, _: Option<&EegPacket>, _: &mut NoPacket) -> Result<Outcome, StageError> { Ok(Outcome::NoOutput) }
    /// fn notes(&self) -> Vec<String> {
    ///     match self.clipped {
    ///         0 => Vec::new(),
    ///         n => vec![format!("{n} samples were outside the range and clipped")],
    ///     }
    /// }
    /// # }
    /// ```
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The ABI side of a port's packet type: the [`PacketKind`]s a port of
/// this type takes or makes, and its variant of [`PacketRef`] and
/// [`PacketMut`]. Generated from
/// [`for_each_packet_kind!`](crate::for_each_packet_kind) for every packet
/// type, written out for [`NoPacket`]; not meant to be implemented elsewhere.
///
/// [`EegPacket`] stands for any EEG signal: a port of that type takes raw
/// and filtered EEG alike (a [`FilteredEegPacket`] is an `EegPacket`
/// underneath), and an output of that type carries the kind negotiated for
/// it. A [`FilteredEegPacket`] port takes filtered EEG only.
///
/// ```
/// use hsp_sdk::{EegPacket, FilteredEegPacket, PacketKind, PacketTag};
///
/// assert_eq!(EegPacket::KINDS, [PacketKind::RawEeg, PacketKind::FilteredEeg]);
/// assert_eq!(FilteredEegPacket::KINDS, [PacketKind::FilteredEeg]);
/// let filtered = FilteredEegPacket::default();
/// assert!(EegPacket::from_ref(filtered.as_packet_ref()).is_some());
/// ```
pub trait PacketTag: Sized + 'static {
    /// The kinds a port of this type takes or makes; empty for [`NoPacket`].
    const KINDS: &'static [PacketKind];
    /// The packet, if `packet` is one of this type (or, for [`EegPacket`],
    /// any EEG).
    fn from_ref(packet: PacketRef<'_>) -> Option<&Self>;
    /// The packet, if `packet` is one of this type (or, for [`EegPacket`],
    /// any EEG).
    fn from_mut<'a>(packet: &'a mut PacketMut<'_>) -> Option<&'a mut Self>;
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
    const KINDS: &'static [PacketKind] = &[];
    fn from_ref(packet: PacketRef<'_>) -> Option<&Self> {
        matches!(packet, PacketRef::None).then_some(&NoPacket)
    }
    fn from_mut<'a>(packet: &'a mut PacketMut<'_>) -> Option<&'a mut Self> {
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

/// The kinds a port of the packet type of kind `kind` covers: EEG covers
/// filtered EEG too.
const fn port_kinds(kind: PacketKind) -> &'static [PacketKind] {
    match kind {
        PacketKind::RawEeg => &[PacketKind::RawEeg, PacketKind::FilteredEeg],
        other => other.as_slice(),
    }
}

/// A filtered EEG packet seen as the [`EegPacket`] it wraps, when `T` is
/// `EegPacket`: how an EEG port takes filtered EEG. The type test is
/// resolved at compile time.
#[inline]
fn eeg_from_filtered<T: 'static>(packet: PacketRef<'_>) -> Option<&T> {
    match packet {
        PacketRef::FilteredEeg(filtered) => (&filtered.0 as &dyn std::any::Any).downcast_ref(),
        _ => None,
    }
}

/// See [`eeg_from_filtered`].
#[inline]
fn eeg_from_filtered_mut<'a, T: 'static>(packet: &'a mut PacketMut<'_>) -> Option<&'a mut T> {
    match packet {
        PacketMut::FilteredEeg(filtered) => {
            (&mut filtered.0 as &mut dyn std::any::Any).downcast_mut()
        }
        _ => None,
    }
}

macro_rules! packet_tags {
    ($($(#[doc = $doc:literal])* $variant:ident($type:ident) = $name:literal;)*) => {$(
        impl PacketTag for $type {
            const KINDS: &'static [PacketKind] = port_kinds(PacketKind::$variant);
            #[inline]
            fn from_ref(packet: PacketRef<'_>) -> Option<&Self> {
                match packet {
                    PacketRef::$variant(packet) => Some(packet),
                    other => eeg_from_filtered(other),
                }
            }
            #[inline]
            fn from_mut<'a>(packet: &'a mut PacketMut<'_>) -> Option<&'a mut Self> {
                match packet {
                    PacketMut::$variant(packet) => Some(&mut **packet),
                    other => eeg_from_filtered_mut(other),
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
    /// See [`Stage::process`]; packets travel as the ABI's tagged
    /// references: one input packet on input port `port` (or none), one
    /// output packet per output port.
    fn process(
        &mut self,
        port: u32,
        input: PacketRef<'_>,
        outputs: &mut [PacketMut<'_>],
    ) -> Result<Processed, StageError>;
    /// See [`Stage::process_in_place`].
    fn process_in_place(&mut self, packet: PacketMut<'_>) -> Result<Outcome, StageError>;
    /// See [`Stage::stop`]; then [`Stage::notes`].
    fn stop(&mut self) -> Result<Vec<String>, StageError>;
}
