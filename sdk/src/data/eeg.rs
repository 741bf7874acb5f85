use super::planar::{PlanarBlock, planar_fields};
use abi_stable::StableAbi;
use abi_stable::std_types::RVec;
use std::ops::{Deref, DerefMut};

/// A block of multichannel EEG: `channels × values_per_channel` samples in
/// microvolts, planar. Its block is read and written through [`PlanarBlock`]
/// (see there for the guarantees).
///
/// ```
/// use hsp_sdk::{EegPacket, PlanarBlock};
///
/// let mut block = EegPacket::with_capacity(4, 32);
/// block.set_shape(2, 3).unwrap();
/// block.channel_mut(1).copy_from_slice(&[1.0, 2.0, 3.0]);
/// assert_eq!(block.values(), &[0.0, 0.0, 0.0, 1.0, 2.0, 3.0]);
/// assert!(block.set_shape(8, 32).is_err());
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Default)]
pub struct EegPacket {
    /// Which acquisition stream the block comes from.
    pub stream_id: u32,
    channels: u32,
    samples_per_channel: u32,
    _reserved: u32,
    /// Block counter of the stream, from 0, without gaps unless blocks were dropped.
    pub sequence: u64,
    /// Time of the block's first sample, in nanoseconds since the UNIX epoch.
    pub timestamp_ns: u64,
    /// Samples per second per channel.
    pub sample_rate_hz: f64,
    samples: RVec<f32>,
}

impl PlanarBlock for EegPacket {
    planar_fields!(channels, samples_per_channel, samples);

    /// Copies stream id, sequence, timestamp and rate.
    #[inline]
    fn copy_metadata_from(&mut self, other: &EegPacket) {
        self.stream_id = other.stream_id;
        self.sequence = other.sequence;
        self.timestamp_ns = other.timestamp_ns;
        self.sample_rate_hz = other.sample_rate_hz;
    }
}

/// An [`EegPacket`] that has been through a filter. A distinct type so that
/// the graph checker can tell raw and filtered streams apart; it derefs to
/// [`EegPacket`] for everything else.
///
/// ```
/// use hsp_sdk::{FilteredEegPacket, PlanarBlock};
///
/// let block = FilteredEegPacket::with_capacity(2, 8);
/// assert_eq!(block.channels(), 2);
/// ```
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, PartialEq, Default)]
pub struct FilteredEegPacket(pub EegPacket);

impl PlanarBlock for FilteredEegPacket {
    #[inline]
    fn planar_fields(&self) -> (u32, u32, &[f32]) {
        self.0.planar_fields()
    }

    #[inline]
    fn planar_fields_mut(&mut self) -> (&mut u32, &mut u32, &mut RVec<f32>) {
        self.0.planar_fields_mut()
    }

    /// See [`EegPacket`]'s.
    #[inline]
    fn copy_metadata_from(&mut self, other: &FilteredEegPacket) {
        self.0.copy_metadata_from(&other.0);
    }
}

impl Deref for FilteredEegPacket {
    type Target = EegPacket;
    #[inline]
    fn deref(&self) -> &EegPacket {
        &self.0
    }
}

impl DerefMut for FilteredEegPacket {
    #[inline]
    fn deref_mut(&mut self) -> &mut EegPacket {
        &mut self.0
    }
}
