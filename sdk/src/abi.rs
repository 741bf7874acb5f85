//! The plugin ABI: what crosses the boundary between the host and a plugin
//! library, all `StableAbi` so the host checks its layout when it loads a file.
//!
//! **The ABI rule.** A plugin loads into a host when both were built against
//! the same `hsp-sdk` minor version (`0.1.x` with `0.1.y`) *and* every type
//! here has the same layout on both sides; the host checks both and also
//! [`HSP_ABI_VERSION`]. What breaks plugins: changing, reordering or removing
//! a field or variant of any type in this module or of a packet type, changing
//! a method of [`FfiStage`] or [`FfiControlStage`], changing `hsp-sdk`'s minor version (0.1 -> 0.2),
//! or bumping [`HSP_ABI_VERSION`]. What does not: anything in the plain-Rust
//! layer (`Stage`, `testing`, helpers), and patch releases of the SDK that
//! keep these types. A plugin built against another SDK is refused at load
//! with one line naming the file and what differed, e.g.
//! `libhsp_gain.so: built against hsp-sdk 0.2.0, this host has 0.1.0: rebuild the plugin`.
//!
//! Plugin authors never touch this module directly: they implement
//! [`Stage`](crate::Stage) and call [`export_plugin!`](crate::export_plugin).
//! abi_stable is kept behind these names so a later move to another ABI crate
//! touches this room only.

use crate::data::{EegPacket, Event, FeaturePacket, FftPacket, FilteredEegPacket, PacketKind};
use abi_stable::StableAbi;
use abi_stable::library::RootModule;
use abi_stable::package_version_strings;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec};

/// Bumped by hand on an intentional ABI break that layout checks cannot see
/// (a change of meaning), and on every change of layout. Checked by the host
/// after abi_stable's own checks; when those fail, the host reads the
/// version from [`ABI_MARKER`] to say which ABI the plugin speaks.
pub const HSP_ABI_VERSION: u32 = 3;

/// The symbol every plugin library defines (see
/// [`export_plugin!`](crate::export_plugin)), named after
/// [`HSP_ABI_VERSION`]: a host reads it from the file, without loading the
/// library.
///
/// ```
/// assert_eq!(
///     hsp_sdk::abi::ABI_MARKER,
///     format!("hsp_plugin_abi_v{}", hsp_sdk::abi::HSP_ABI_VERSION)
/// );
/// ```
pub const ABI_MARKER: &str = "hsp_plugin_abi_v3";

/// What flows on one edge: the packets' kind and shape, and what the
/// stream is (its rate, its channels, where and when it began). A stage
/// says what it outputs given what it gets; the host negotiates these
/// along the graph once, before anything runs, to size pools, reject
/// mismatched edges and tell sinks what they write. Nothing here travels
/// with the packets.
///
/// ```
/// use hsp_sdk::{ChannelInfo, ChannelType, PacketKind, StreamFormat};
///
/// let format = StreamFormat::eeg(PacketKind::RawEeg, 2, 250.0, 25)
///     .with_channels([ChannelInfo::eeg("Fz"), ChannelInfo::new("EOG1", "uV", ChannelType::Eog)]);
/// assert_eq!(format.packet_rate_hz, 10.0);
/// assert_eq!(format.channel(1).label.as_str(), "EOG1");
/// // A stream that does not name its channels gets `ch1`, `ch2`, ...
/// let plain = StreamFormat::eeg(PacketKind::RawEeg, 2, 250.0, 25);
/// assert_eq!(plain.channel(1).label.as_str(), "ch2");
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct StreamFormat {
    /// Packet type on the edge.
    pub kind: PacketKind,
    /// Channels (rows) per packet.
    pub channels: u32,
    /// Values per channel per packet: samples (EEG), bins (FFT), features.
    pub values_per_channel: u32,
    /// EEG: samples per second per channel. FFT / features: the sample rate
    /// of the EEG they were computed from.
    pub sample_rate_hz: f64,
    /// Packets per second on the edge (0 when unknown or irregular).
    pub packet_rate_hz: f64,
    /// One entry per channel (row), in order: empty when the source did not
    /// say (then [`channel`](Self::channel) gives `ch1`, `ch2`, ... in uV).
    pub channel_info: RVec<ChannelInfo>,
    /// When the stream's first sample was taken, in ns since the UNIX epoch;
    /// 0 when unknown.
    pub start_time_ns: u64,
    /// Where the stream comes from: a file name, a device, a stream name;
    /// empty when unknown.
    pub source: RString,
    /// What each of a channel's values is, when they are named: features
    /// (`alpha`, `beta`); empty for samples and bins.
    pub value_labels: RVec<RString>,
}

impl StreamFormat {
    /// An EEG stream of `channels` at `sample_rate_hz`, in blocks of
    /// `block_size` samples per channel, with no channel names yet.
    pub fn eeg(kind: PacketKind, channels: usize, sample_rate_hz: f64, block_size: usize) -> Self {
        Self {
            kind,
            channels: channels as u32,
            values_per_channel: block_size as u32,
            sample_rate_hz,
            packet_rate_hz: if block_size == 0 {
                0.0
            } else {
                sample_rate_hz / block_size as f64
            },
            channel_info: RVec::new(),
            start_time_ns: 0,
            source: RString::new(),
            value_labels: RVec::new(),
        }
    }

    /// The same stream with the packets' kind and shape changed (a stage
    /// that reshapes: an FFT, band power); the channels and the rest stay,
    /// the values are no longer named.
    pub fn reshaped(
        &self,
        kind: PacketKind,
        values_per_channel: usize,
        packet_rate_hz: f64,
    ) -> Self {
        Self {
            kind,
            values_per_channel: values_per_channel as u32,
            packet_rate_hz,
            value_labels: RVec::new(),
            ..self.clone()
        }
    }

    /// The same stream with each of a channel's values named, one label per
    /// value (the host checks the count): features by what they measure.
    pub fn with_value_labels<S: AsRef<str>>(mut self, labels: impl IntoIterator<Item = S>) -> Self {
        self.value_labels = labels
            .into_iter()
            .map(|label| RString::from(label.as_ref()))
            .collect();
        self
    }

    /// The same stream with these channels, one per row (their count must
    /// be [`channels`](Self::channels); the host checks).
    pub fn with_channels(mut self, channels: impl IntoIterator<Item = ChannelInfo>) -> Self {
        self.channel_info = channels.into_iter().collect();
        self
    }

    /// The same stream, begun at `start_time_ns` from `source`.
    pub fn with_origin(mut self, start_time_ns: u64, source: &str) -> Self {
        self.start_time_ns = start_time_ns;
        self.source = source.into();
        self
    }

    /// An event stream (markers, annotations): one event per packet, at no
    /// fixed rate.
    pub fn events() -> Self {
        Self {
            kind: PacketKind::Event,
            channels: 1,
            values_per_channel: 1,
            sample_rate_hz: 0.0,
            packet_rate_hz: 0.0,
            channel_info: RVec::new(),
            start_time_ns: 0,
            source: RString::new(),
            value_labels: RVec::new(),
        }
    }

    /// Whether `other` carries the same packets: the same kind, shape and
    /// rates, whatever the channels are called and wherever it came from.
    /// What a live change of a running stage must keep.
    pub fn same_shape(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.channels == other.channels
            && self.values_per_channel == other.values_per_channel
            && self.sample_rate_hz == other.sample_rate_hz
            && self.packet_rate_hz == other.packet_rate_hz
    }

    /// Channels, as `usize`.
    pub fn channels(&self) -> usize {
        self.channels as usize
    }

    /// Values per channel, as `usize`.
    pub fn values_per_channel(&self) -> usize {
        self.values_per_channel as usize
    }

    /// Channel `index`'s description: the source's, or `ch<index + 1>` in
    /// uV when the source named none.
    pub fn channel(&self, index: usize) -> ChannelInfo {
        match self.channel_info.get(index) {
            Some(info) => info.clone(),
            None => ChannelInfo::eeg(&format!("ch{}", index + 1)),
        }
    }

    /// Every channel's description, in row order (see [`channel`](Self::channel)).
    pub fn channel_list(&self) -> Vec<ChannelInfo> {
        (0..self.channels()).map(|i| self.channel(i)).collect()
    }

    /// The index of the channel labelled `label` (exact match first, then
    /// ignoring case).
    pub fn channel_index(&self, label: &str) -> Option<usize> {
        let labels = self.channel_list();
        labels
            .iter()
            .position(|c| c.label.as_str() == label)
            .or_else(|| {
                labels
                    .iter()
                    .position(|c| c.label.as_str().eq_ignore_ascii_case(label))
            })
    }
}

/// What one channel of a stream is: its label, unit and type, and for
/// recordings, the sensor and the filtering it went through.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct ChannelInfo {
    /// Its name: `Fz`, `Cz`, `EOG1`.
    pub label: RString,
    /// The unit of its values: `uV`, `mV`, `a.u.`.
    pub unit: RString,
    /// What it measures.
    pub kind: ChannelType,
    /// The sensor (EDF's transducer type), empty when unknown.
    pub transducer: RString,
    /// Filtering applied before or along the pipeline (EDF's prefiltering,
    /// e.g. `HP:0.1Hz LP:75Hz`), empty when none is known.
    pub prefilter: RString,
    /// The values the sensor can report, in `unit` (EDF's physical
    /// minimum and maximum), when known: a recording sink scales to it.
    pub range: ROption<PhysicalRange>,
}

/// The smallest and largest value a channel can take, in its unit.
///
/// ```
/// use hsp_sdk::{ChannelInfo, PhysicalRange};
///
/// let fz = ChannelInfo::eeg("Fz").with_range(-3276.8, 3276.7);
/// assert_eq!(fz.range.into_option(), Some(PhysicalRange { min: -3276.8, max: 3276.7 }));
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct PhysicalRange {
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl ChannelInfo {
    /// A channel labelled `label`, in `unit`, of type `kind`.
    pub fn new(label: &str, unit: &str, kind: ChannelType) -> Self {
        Self {
            label: label.into(),
            unit: unit.into(),
            kind,
            transducer: RString::new(),
            prefilter: RString::new(),
            range: ROption::RNone,
        }
    }

    /// An EEG channel labelled `label`, in uV.
    pub fn eeg(label: &str) -> Self {
        Self::new(label, "uV", ChannelType::Eeg)
    }

    /// The same channel, known to take values from `min` to `max`.
    pub fn with_range(mut self, min: f64, max: f64) -> Self {
        self.range = ROption::RSome(PhysicalRange { min, max });
        self
    }
}

/// What a channel measures.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelType {
    /// Electroencephalogram.
    Eeg,
    /// Electrooculogram.
    Eog,
    /// Electromyogram.
    Emg,
    /// Electrocardiogram.
    Ecg,
    /// Trigger or status lines.
    Stim,
    /// Anything else.
    Misc,
}

impl ChannelType {
    /// Its name in pipeline files and reports: `eeg`, `eog`, `emg`, `ecg`,
    /// `stim`, `misc`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Eeg => "eeg",
            Self::Eog => "eog",
            Self::Emg => "emg",
            Self::Ecg => "ecg",
            Self::Stim => "stim",
            Self::Misc => "misc",
        }
    }

    /// The type named `name` (as [`name`](Self::name) gives, any case).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Eeg,
            Self::Eog,
            Self::Emg,
            Self::Ecg,
            Self::Stim,
            Self::Misc,
        ]
        .into_iter()
        .find(|t| t.name().eq_ignore_ascii_case(name))
    }
}

macro_rules! packet_refs {
    ($($(#[doc = $doc:literal])* $variant:ident($type:ident) = $name:literal;)*) => {
        /// A borrowed input packet, for one call: one variant per row of
        /// [`for_each_packet_kind!`](crate::for_each_packet_kind), after `None`.
        #[repr(u8)]
        #[derive(StableAbi, Debug, Clone, Copy)]
        pub enum PacketRef<'a> {
            /// No input: a source, or a stage being drained after [`Outcome::MoreOutput`].
            None,
            $(
                #[doc = concat!("See [`", stringify!($type), "`].")]
                $variant(&'a $type),
            )*
        }

        impl PacketRef<'_> {
            /// The packet's kind; `None` for [`PacketRef::None`].
            pub fn kind(&self) -> Option<PacketKind> {
                match self {
                    Self::None => None,
                    $(Self::$variant(_) => Some(PacketKind::$variant),)*
                }
            }
        }

        /// A borrowed output packet to fill, for one call: one variant per
        /// row of [`for_each_packet_kind!`](crate::for_each_packet_kind),
        /// after `None`.
        #[repr(u8)]
        #[derive(StableAbi, Debug)]
        pub enum PacketMut<'a> {
            /// No output: a sink.
            None,
            $(
                #[doc = concat!("See [`", stringify!($type), "`].")]
                $variant(&'a mut $type),
            )*
        }
    };
}

crate::for_each_packet_kind!(packet_refs);

/// What a `process` call did.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The output was filled: forward it.
    Emitted,
    /// The input was taken in; nothing to forward yet (still buffering).
    NoOutput,
    /// The output was filled and more is ready: forward it, then call again
    /// with no input and a fresh output.
    MoreOutput,
    /// The stage has nothing more to give, ever (a finite source at its end).
    Finished,
}

/// What one `process` call did, as it crosses the boundary: the
/// [`Outcome`], and which output ports have a packet to send (bit `i` for
/// port `i`).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processed {
    /// Whether to call again, or the stage has finished.
    pub outcome: Outcome,
    /// The output ports whose packet was filled, one bit per port.
    pub sent: u32,
}

/// The type of a config value, as the host checks it before a stage is built.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` / `false`.
    Bool,
    /// A whole number.
    Integer,
    /// A number (a whole number is accepted too).
    Float,
    /// A string.
    String,
    /// A list of numbers.
    FloatList,
    /// A list of whole numbers (channel indices).
    IntegerList,
    /// A list of strings (channel labels, montages).
    StringList,
}

impl ConfigType {
    /// The name shown in `host plugins inspect` and in error messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::Integer => "integer",
            Self::Float => "float",
            Self::String => "string",
            Self::FloatList => "list of floats",
            Self::IntegerList => "list of integers",
            Self::StringList => "list of strings",
        }
    }
}

/// One config key of a stage kind, as published in its manifest.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct ConfigField {
    /// The key in `[stage.config]`.
    pub key: RString,
    /// The value's type.
    pub ty: ConfigType,
    /// The default as a JSON literal; `None` when the key is required.
    pub default: ROption<RString>,
    /// Unit of the value ("Hz", "s"), empty when it has none.
    pub unit: RString,
    /// One line on what the key does.
    pub doc: RString,
}

/// Where a stage kind runs.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageRole {
    /// On the data-plane thread, one call per packet ([`Stage`](crate::Stage)).
    DataPlane,
    /// On the tokio control plane, fed low-rate data
    /// ([`ControlStage`](crate::ControlStage)).
    Control,
}

/// One input or output port of a stage kind.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct PortDescriptor {
    /// Its name: what a pipeline writes after the dot in `inputs = ["stage.port"]`.
    pub name: RString,
    /// The packet kinds it takes (input) or can produce (output); the edge's
    /// kind is settled when formats are negotiated.
    pub kinds: RVec<PacketKind>,
    /// An input port a pipeline may leave unconnected; optional ports come
    /// after the required ones.
    pub optional: bool,
}

/// One stage kind a plugin provides.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct StageDescriptor {
    /// The name pipelines use in `plugin = "..."`.
    pub kind: RString,
    /// One line on what the stage does.
    pub doc: RString,
    /// Where it runs.
    pub role: StageRole,
    /// Its input ports, in order (none for a source). A control stage has
    /// one, which any number of stages may feed.
    pub inputs: RVec<PortDescriptor>,
    /// Its output ports, in order (none for a sink).
    pub outputs: RVec<PortDescriptor>,
    /// It can turn its input packet into its output without a copy
    /// ([`Stage::process_in_place`](crate::Stage::process_in_place)).
    pub in_place: bool,
    /// It may block (files, sockets, devices): the host runs it on a thread
    /// of its own ([`Stage::MAY_BLOCK`](crate::Stage::MAY_BLOCK)).
    pub may_block: bool,
    /// Its config keys.
    pub config: RVec<ConfigField>,
}

impl StageDescriptor {
    /// Input port `name`'s index.
    pub fn input_port(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|p| p.name.as_str() == name)
    }

    /// Output port `name`'s index.
    pub fn output_port(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|p| p.name.as_str() == name)
    }
}

/// What a plugin library declares about itself.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Plugin name (usually the crate name).
    pub name: RString,
    /// Plugin version (usually the crate version).
    pub version: RString,
    /// The [`HSP_ABI_VERSION`] the plugin was built with.
    pub abi_version: u32,
    /// The `hsp-sdk` version the plugin was built against.
    pub sdk_version: RString,
    /// The stage kinds it provides.
    pub stages: RVec<StageDescriptor>,
}

pub use ffi_stage::{FfiControlStage, FfiControlStage_TO, FfiStage, FfiStage_TO};

/// A stage built by a plugin, owned by the host: one indirect call per method.
pub type FfiStageBox = FfiStage_TO<'static, RBox<()>>;

/// A control stage built by a plugin, owned by the host's control plane.
pub type FfiControlStageBox = FfiControlStage_TO<'static, RBox<()>>;

// The host moves stages onto its data-plane thread, and control stages into
// tokio tasks.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<FfiStageBox>();
    assert_send::<FfiControlStageBox>();
};

/// A parameter change a control stage asks for: set `key` of the running
/// data-plane stage `target` (its pipeline id) to `value_json`. The host
/// checks it against the target's schema and applies it at a packet boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct ParamChange {
    /// The target stage's `id` in the pipeline.
    pub target: RString,
    /// The config key to change.
    pub key: RString,
    /// The new value, as JSON.
    pub value_json: RString,
}

/// What a control stage produced during one call; the host drains it after
/// the call. Plugins fill it through [`ControlContext`](crate::ControlContext).
#[repr(C)]
#[derive(StableAbi, Debug, Default)]
pub struct ControlOutputs {
    /// Events for the control stages that read this one.
    pub events: RVec<Event>,
    /// Parameter changes for data-plane stages.
    pub params: RVec<ParamChange>,
}

// `#[sabi_trait]` generates an `impl` inside a `const _` block, which rustc
// flags as `non_local_definitions`; allowed on this module only.
#[allow(non_local_definitions)]
mod ffi_stage {
    use super::{ControlOutputs, Outcome, PacketMut, PacketRef, Processed};
    use abi_stable::sabi_trait;
    use abi_stable::std_types::{RResult, RSliceMut, RStr, RString, RVec};

    /// The stage object as the host sees it. Every method runs the plugin's
    /// code under `catch_unwind` (see `export.rs`): a panic comes back as
    /// `RErr` with its message, and the stage refuses later calls.
    #[sabi_trait]
    pub trait FfiStage: Send {
        /// Called once before the first `process`.
        fn start(&mut self) -> RResult<(), RString>;

        /// Called instead of `start` when taking over from a running instance.
        fn resume(&mut self) -> RResult<(), RString>;

        /// Takes one input packet on input port `port` (or none) and may
        /// fill any of `outputs`, one packet per output port.
        fn process(
            &mut self,
            port: u32,
            input: PacketRef<'_>,
            outputs: RSliceMut<'_, PacketMut<'_>>,
        ) -> RResult<Processed, RString>;

        /// Turns the input in `packet` into the output, in place.
        fn process_in_place(&mut self, packet: PacketMut<'_>) -> RResult<Outcome, RString>;

        /// Called once after the last `process`: flush and close; returns
        /// what the user should know (see `Stage::notes`).
        #[sabi(last_prefix_field)]
        fn stop(&mut self) -> RResult<RVec<RString>, RString>;
    }

    /// The control stage object as the host sees it; every method runs
    /// under `catch_unwind`, like [`FfiStage`]'s.
    #[sabi_trait]
    pub trait FfiControlStage: Send {
        /// Called once before the first message.
        fn start(&mut self, outputs: &mut ControlOutputs) -> RResult<(), RString>;

        /// Called instead of `start` when taking over from a running instance.
        fn resume(&mut self, outputs: &mut ControlOutputs) -> RResult<(), RString>;

        /// One packet from input stage `from`.
        fn on_packet(
            &mut self,
            from: RStr<'_>,
            packet: PacketRef<'_>,
            outputs: &mut ControlOutputs,
        ) -> RResult<(), RString>;

        /// Milliseconds between ticks, asked after `start`/`resume`; 0: none.
        fn tick_interval_ms(&self) -> u64;

        /// One tick of the stage's timer.
        fn on_tick(&mut self, outputs: &mut ControlOutputs) -> RResult<(), RString>;

        /// Called once after the last message.
        #[sabi(last_prefix_field)]
        fn stop(&mut self, outputs: &mut ControlOutputs) -> RResult<(), RString>;
    }
}

/// The root module every plugin exports (built by [`export_plugin!`](crate::export_plugin)).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// The plugin's manifest.
    pub manifest: extern "C" fn() -> Manifest,
    /// What stage `kind` with `config_json` outputs on each output port
    /// given what comes in on each input port; an error names the key or
    /// value at fault.
    pub output_format: extern "C" fn(
        kind: RStr<'_>,
        config_json: RStr<'_>,
        inputs: RSlice<'_, StreamFormat>,
    ) -> RResult<RVec<StreamFormat>, RString>,
    /// Builds a stage of `kind` from its config, for inputs of `inputs`.
    pub create_stage: extern "C" fn(
        kind: RStr<'_>,
        config_json: RStr<'_>,
        inputs: RSlice<'_, StreamFormat>,
    ) -> RResult<FfiStageBox, RString>,
    /// Builds a control stage of `kind` from its config.
    #[sabi(last_prefix_field)]
    pub create_control_stage: extern "C" fn(
        kind: RStr<'_>,
        config_json: RStr<'_>,
    ) -> RResult<FfiControlStageBox, RString>,
    /// Allocations this library's code has made on the calling thread (its
    /// own allocator counts them; the host's cannot see them).
    pub thread_allocations: extern "C" fn() -> u64,
}

impl RootModule for PluginModuleRef {
    abi_stable::declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "hsp_plugin";
    const NAME: &'static str = "hsp_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The `hsp-sdk` version this crate is, as plugins report it.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
