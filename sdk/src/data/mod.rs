//! The packet types that flow through a pipeline.
//!
//! All are `#[repr(C)]` and `StableAbi`: a plugin
//! stage borrows them (`&T` / `&mut T`) across the library boundary for one
//! call. Their payload buffers are sized once, when the pool that owns them is
//! made; a packet's *shape* (channels × samples) may change per packet within
//! that capacity, its allocation never does.
//!
//! Sample buffers are **planar** (channel-major): channel `c`'s samples are
//! `samples()[c * n .. (c + 1) * n]` with `n` samples per channel. Per-channel
//! filters and FFTs then read contiguous memory.

mod eeg;
mod event;
mod features;
mod spectrum;

pub use eeg::{EegPacket, FilteredEegPacket};
pub use event::{EVENT_LABEL_CAPACITY, Event};
pub use features::FeaturePacket;
pub use spectrum::{FftPacket, SpectrumScale};

use abi_stable::StableAbi;

/// A packet shape that does not fit the buffer the packet was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {rows}×{columns} block needs {} values but the packet holds at most {capacity}", rows * columns)]
pub struct ShapeError {
    /// Requested rows (channels).
    pub rows: usize,
    /// Requested values per row.
    pub columns: usize,
    /// Values the packet's buffer holds.
    pub capacity: usize,
}

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

/// Checks `rows × columns` against `capacity`, returning the value count.
pub(crate) fn checked_len(
    rows: usize,
    columns: usize,
    capacity: usize,
) -> Result<usize, ShapeError> {
    rows.checked_mul(columns)
        .filter(|&len| {
            len <= capacity && u32::try_from(rows).is_ok() && u32::try_from(columns).is_ok()
        })
        .ok_or(ShapeError {
            rows,
            columns,
            capacity,
        })
}
