//! The packet types that flow through a pipeline.
//!
//! All are `#[repr(C)]` and `StableAbi`: a plugin
//! stage borrows them (`&T` / `&mut T`) across the library boundary for one
//! call. Their payload buffers are sized once, when the pool that owns them is
//! made; a packet's *shape* (channels × samples) may change per packet within
//! that capacity, its allocation never does.
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

/// The kind of packet a stage port carries; what manifests and the graph
/// checker compare along every edge.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// Unfiltered EEG blocks: [`EegPacket`].
    RawEeg,
    /// Filtered EEG blocks: [`FilteredEegPacket`].
    FilteredEeg,
    /// Spectra: [`FftPacket`].
    Fft,
    /// Scalar features per channel: [`FeaturePacket`].
    Features,
    /// Events and markers: [`Event`].
    Event,
}

impl PacketKind {
    /// The name used in pipeline files and `host plugins inspect`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RawEeg => "raw_eeg",
            Self::FilteredEeg => "filtered_eeg",
            Self::Fft => "fft",
            Self::Features => "features",
            Self::Event => "event",
        }
    }
}

impl std::fmt::Display for PacketKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
