//! The packet types that flow through a pipeline.
//!
//! All are `#[repr(C)]` and `StableAbi`: a plugin stage borrows them (`&T` /
//! `&mut T`) across the library boundary for one call. Their payload buffers
//! are sized once, when the pool that owns them is made; a packet's *shape*
//! (channels × values per channel) may change per packet within that
//! capacity, its allocation never does. Which kinds there are is listed once,
//! in [`for_each_packet_kind!`](crate::for_each_packet_kind).
//!
//! Value buffers are **planar** (channel-major): channel `c`'s values are
//! `values()[c * n .. (c + 1) * n]` with `n` values per channel. Per-channel
//! filters and FFTs then read contiguous memory. Every packet type with such
//! a block reads and writes it through one trait, [`PlanarBlock`].

mod eeg;
mod event;
mod features;
mod planar;
mod spectrum;

pub use eeg::{EegPacket, FilteredEegPacket};
pub use event::{EVENT_LABEL_CAPACITY, Event};
pub use features::FeaturePacket;
pub use planar::{PlanarBlock, ShapeError};
pub use spectrum::{FftPacket, SpectrumScale};

use abi_stable::StableAbi;

/// **The packet kind table**: every kind of packet that can travel a pipeline
/// edge, listed once. `for_each_packet_kind!(callback)` expands to
/// `callback! { ... }` with one row per kind,
/// `/// doc line` then `Variant(Type) = "name";`, in ABI order.
///
/// The SDK builds every per-kind listing from it: [`PacketKind`] and its
/// names, [`PipelineData`](crate::runtime::PipelineData), the ABI's
/// [`PacketRef`](crate::PacketRef) and [`PacketMut`](crate::runtime::PacketMut), and
/// each type's [`PacketTag`](crate::PacketTag); the host builds its
/// per-kind pools and copies from it. Adding a kind is one row here, plus its
/// packet type (`#[repr(C)]`, `StableAbi`, with a `timestamp_ns` field) and
/// its [`PortPacket`](crate::PortPacket) impl, which a planar type gets from
/// [`PlanarBlock`]. Rows are part of the plugin ABI: append, never reorder.
///
/// `Type` is the type's name at the crate root (`hsp_sdk::Type`).
///
/// ```
/// use hsp_sdk::PacketKind;
/// use hsp_sdk::runtime::PipelineData;
///
/// // A callback sees each row; this one lists the names, and counts the
/// // items of each kind.
/// macro_rules! kinds {
///     ($($(#[doc = $doc:literal])* $variant:ident($type:ident) = $name:literal;)*) => {
///         const NAMES: &[&str] = &[$($name),*];
///
///         fn count(items: &[PipelineData], kind: PacketKind) -> usize {
///             items.iter().filter(|item| match item {
///                 $(PipelineData::$variant(_) => kind == PacketKind::$variant,)*
///             }).count()
///         }
///     };
/// }
/// hsp_sdk::for_each_packet_kind!(kinds);
///
/// assert_eq!(NAMES, ["raw_eeg", "filtered_eeg", "fft", "features", "event"]);
/// assert_eq!(count(&[], PacketKind::Fft), 0);
/// ```
#[macro_export]
macro_rules! for_each_packet_kind {
    ($callback:ident) => {
        $callback! {
            /// Unfiltered EEG blocks.
            RawEeg(EegPacket) = "raw_eeg";
            /// Filtered EEG blocks.
            FilteredEeg(FilteredEegPacket) = "filtered_eeg";
            /// Spectra.
            Fft(FftPacket) = "fft";
            /// Scalar features per channel, the control plane's usual input.
            Features(FeaturePacket) = "features";
            /// Events and markers.
            Event(Event) = "event";
        }
    };
}

macro_rules! packet_kind {
    ($($(#[doc = $doc:literal])* $variant:ident($type:ident) = $name:literal;)*) => {
        /// The kind of packet a stage port carries; what manifests and the
        /// graph checker compare along every edge. One per row of
        /// [`for_each_packet_kind!`](crate::for_each_packet_kind).
        #[repr(u8)]
        #[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum PacketKind {
            $(
                $(#[doc = $doc])*
                #[doc = concat!("See [`", stringify!($type), "`].")]
                $variant,
            )*
        }

        impl PacketKind {
            /// The name used in pipeline files and `host plugins inspect`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// This kind alone, as a slice.
            pub const fn as_slice(self) -> &'static [PacketKind] {
                match self {
                    $(Self::$variant => &[Self::$variant],)*
                }
            }

            /// Every kind, in ABI order.
            pub const ALL: &'static [PacketKind] = &[$(Self::$variant),*];

            /// The kind named `name` (as [`name`](Self::name) gives).
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|kind| kind.name() == name)
            }

            /// Bytes of one packet of this kind: the size of its type, not
            /// counting the values its buffer (if any) points to.
            pub const fn packet_size(self) -> usize {
                match self {
                    $(Self::$variant => std::mem::size_of::<$type>(),)*
                }
            }
        }
    };
}

crate::for_each_packet_kind!(packet_kind);

impl PacketKind {
    /// Raw or filtered EEG: blocks of samples in time, so a source's last
    /// block may be shorter than the others.
    #[inline]
    pub const fn is_eeg(self) -> bool {
        matches!(self, Self::RawEeg | Self::FilteredEeg)
    }
}

impl std::fmt::Display for PacketKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
