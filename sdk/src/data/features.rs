use super::{ShapeError, checked_len};
use abi_stable::StableAbi;
use abi_stable::std_types::RVec;

/// Scalar features per channel (band powers, say): `channels` rows of
/// `features_per_channel` values, row-major. What the features *are* (band
/// names, units) is stated by the producing stage's manifest, not repeated in
/// every packet.
///
/// ```
/// use hsp_sdk::FeaturePacket;
///
/// let mut powers = FeaturePacket::with_capacity(2, 5);
/// powers.row_mut(1)[2] = 12.5; // channel 1, third feature
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

impl FeaturePacket {
    /// A zeroed packet for up to `channels × features_per_channel` values.
    pub fn with_capacity(channels: usize, features_per_channel: usize) -> Self {
        let len = channels * features_per_channel;
        let mut values = RVec::with_capacity(len);
        values.resize(len, 0.0);
        Self {
            channels: u32::try_from(channels).expect("channel count fits in u32"),
            features_per_channel: u32::try_from(features_per_channel)
                .expect("feature count fits in u32"),
            values,
            ..Self::default()
        }
    }

    /// The most values this packet can hold.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.values.len()
    }

    /// Rows (channels).
    #[inline]
    pub fn channels(&self) -> usize {
        self.channels as usize
    }

    /// Values per row.
    #[inline]
    pub fn features_per_channel(&self) -> usize {
        self.features_per_channel as usize
    }

    /// Sets the shape, if it fits the buffer.
    #[inline]
    pub fn set_shape(
        &mut self,
        channels: usize,
        features_per_channel: usize,
    ) -> Result<(), ShapeError> {
        checked_len(channels, features_per_channel, self.capacity())?;
        self.channels = channels as u32;
        self.features_per_channel = features_per_channel as u32;
        Ok(())
    }

    /// All values, row-major.
    #[inline]
    pub fn values(&self) -> &[f32] {
        &self.values[..self.channels() * self.features_per_channel()]
    }

    /// All values, row-major, for writing.
    #[inline]
    pub fn values_mut(&mut self) -> &mut [f32] {
        let len = self.channels() * self.features_per_channel();
        &mut self.values[..len]
    }

    /// One channel's features.
    ///
    /// # Panics
    ///
    /// If `channel >= self.channels()`.
    #[inline]
    pub fn row(&self, channel: usize) -> &[f32] {
        assert!(
            channel < self.channels(),
            "channel {channel} of {}",
            self.channels()
        );
        let n = self.features_per_channel();
        &self.values[channel * n..(channel + 1) * n]
    }

    /// One channel's features, for writing.
    ///
    /// # Panics
    ///
    /// If `channel >= self.channels()`.
    #[inline]
    pub fn row_mut(&mut self, channel: usize) -> &mut [f32] {
        assert!(
            channel < self.channels(),
            "channel {channel} of {}",
            self.channels()
        );
        let n = self.features_per_channel();
        &mut self.values[channel * n..(channel + 1) * n]
    }

    /// Makes `self` a copy of `other` (metadata, shape and values) without
    /// allocating.
    #[inline]
    pub fn copy_from(&mut self, other: &FeaturePacket) -> Result<(), ShapeError> {
        self.set_shape(other.channels(), other.features_per_channel())?;
        self.stream_id = other.stream_id;
        self.sequence = other.sequence;
        self.timestamp_ns = other.timestamp_ns;
        self.values_mut().copy_from_slice(other.values());
        Ok(())
    }
}
