use super::planar::{PlanarBlock, planar_fields};
use abi_stable::StableAbi;
use abi_stable::std_types::RVec;

/// Scalar features per channel (band powers, say): `channels` channels of
/// `values_per_channel` features, planar, read and written through
/// [`PlanarBlock`]. What the features *are* (band names, units) is stated by
/// the producing stage's manifest, not repeated in every packet.
///
/// ```
/// use hsp_sdk::{FeaturePacket, PlanarBlock};
///
/// let mut powers = FeaturePacket::with_capacity(2, 5);
/// powers.channel_mut(1)[2] = 12.5; // channel 1, third feature
/// assert_eq!(powers.values()[7], 12.5);
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Default)]
pub struct FeaturePacket {
    /// Which acquisition stream the features come from.
    pub stream_id: u32,
    channels: u32,
    features_per_channel: u32,
    _reserved: u32,
    /// Counter of feature sets, from 0.
    pub sequence: u64,
    /// Time of the first sample the features describe, ns since the UNIX epoch.
    pub timestamp_ns: u64,
    values: RVec<f32>,
}

impl PlanarBlock for FeaturePacket {
    planar_fields!(channels, features_per_channel, values);

    /// Copies stream id, sequence and timestamp.
    #[inline]
    fn copy_metadata_from(&mut self, other: &FeaturePacket) {
        self.stream_id = other.stream_id;
        self.sequence = other.sequence;
        self.timestamp_ns = other.timestamp_ns;
    }
}
