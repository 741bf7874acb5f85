//! `PipelineData`: any packet, tagged with its kind, as it travels an edge.

use crate::data::{EegPacket, Event, FeaturePacket, FftPacket, FilteredEegPacket, PacketKind};
use crate::packet::Packet;

/// One item on a pipeline edge: a pooled packet of one of the packet types.
///
/// **Guarantees.** Moving a `PipelineData` moves a packet handle (32 bytes),
/// never its contents, whatever the kind: events are pooled too, so that a
/// queue slot stays small. Dropping it returns the packet to its pool.
///
/// ```
/// use hsp_sdk::{EegPacket, MemoryPool, PacketKind, PipelineData, PlanarBlock};
///
/// let pool = MemoryPool::with_init(1, |_| EegPacket::with_capacity(4, 16));
/// let item = PipelineData::RawEeg(pool.try_acquire().unwrap());
/// assert_eq!(item.kind(), PacketKind::RawEeg);
/// assert_eq!(pool.available(), 0);
/// drop(item);
/// assert_eq!(pool.available(), 1);
/// assert_eq!(std::mem::size_of::<PipelineData>(), 32);
/// ```
#[derive(Debug)]
pub enum PipelineData {
    /// Unfiltered EEG.
    RawEeg(Packet<EegPacket>),
    /// Filtered EEG.
    FilteredEeg(Packet<FilteredEegPacket>),
    /// Spectra.
    Fft(Packet<FftPacket>),
    /// Scalar features, the control plane's usual input.
    Features(Packet<FeaturePacket>),
    /// An event or marker.
    Event(Packet<Event>),
}

impl PipelineData {
    /// Which kind of packet this is.
    pub fn kind(&self) -> PacketKind {
        match self {
            Self::RawEeg(_) => PacketKind::RawEeg,
            Self::FilteredEeg(_) => PacketKind::FilteredEeg,
            Self::Fft(_) => PacketKind::Fft,
            Self::Features(_) => PacketKind::Features,
            Self::Event(_) => PacketKind::Event,
        }
    }

    /// The source timestamp (ns since the UNIX epoch) the data descends from.
    pub fn timestamp_ns(&self) -> u64 {
        match self {
            Self::RawEeg(p) => p.timestamp_ns,
            Self::FilteredEeg(p) => p.timestamp_ns,
            Self::Fft(p) => p.timestamp_ns,
            Self::Features(p) => p.timestamp_ns,
            Self::Event(e) => e.timestamp_ns,
        }
    }
}
