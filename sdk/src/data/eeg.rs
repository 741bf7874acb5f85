use super::{ShapeError, checked_len};
use abi_stable::StableAbi;
use abi_stable::std_types::RVec;
use std::ops::{Deref, DerefMut};

/// A block of multichannel EEG: `channels × samples_per_channel` samples in
/// microvolts, planar (see the [module docs](crate::data)).
///
/// **Guarantees.** The buffer is allocated by [`with_capacity`] and never
/// reallocated: [`set_shape`] only changes how much of it is in use, and
/// refuses a shape that does not fit.
///
/// [`with_capacity`]: EegPacket::with_capacity
/// [`set_shape`]: EegPacket::set_shape
///
/// ```
/// use hsp_sdk::EegPacket;
///
/// let mut block = EegPacket::with_capacity(4, 32);
/// block.set_shape(2, 3).unwrap();
/// block.channel_mut(1).copy_from_slice(&[1.0, 2.0, 3.0]);
/// assert_eq!(block.samples(), &[0.0, 0.0, 0.0, 1.0, 2.0, 3.0]);
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

impl EegPacket {
    /// A zeroed packet that can hold up to `channels × samples_per_channel`
    /// samples; its shape starts at exactly that.
    pub fn with_capacity(channels: usize, samples_per_channel: usize) -> Self {
        let len = channels * samples_per_channel;
        let mut samples = RVec::with_capacity(len);
        samples.resize(len, 0.0);
        Self {
            channels: u32::try_from(channels).expect("channel count fits in u32"),
            samples_per_channel: u32::try_from(samples_per_channel)
                .expect("samples per channel fit in u32"),
            samples,
            ..Self::default()
        }
    }

    /// The most samples (all channels together) this packet can hold.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.samples.len()
    }

    /// Channels in the block.
    #[inline]
    pub fn channels(&self) -> usize {
        self.channels as usize
    }

    /// Samples per channel in the block.
    #[inline]
    pub fn samples_per_channel(&self) -> usize {
        self.samples_per_channel as usize
    }

    /// Sets the block's shape, if it fits the buffer. Sample values are left
    /// as they were: write them next.
    #[inline]
    pub fn set_shape(
        &mut self,
        channels: usize,
        samples_per_channel: usize,
    ) -> Result<(), ShapeError> {
        checked_len(channels, samples_per_channel, self.capacity())?;
        self.channels = channels as u32;
        self.samples_per_channel = samples_per_channel as u32;
        Ok(())
    }

    /// All samples of the block, planar.
    #[inline]
    pub fn samples(&self) -> &[f32] {
        &self.samples[..self.channels() * self.samples_per_channel()]
    }

    /// All samples of the block, planar, for writing.
    #[inline]
    pub fn samples_mut(&mut self) -> &mut [f32] {
        let len = self.channels() * self.samples_per_channel();
        &mut self.samples[..len]
    }

    /// The samples of one channel.
    ///
    /// # Panics
    ///
    /// If `channel >= self.channels()`.
    #[inline]
    pub fn channel(&self, channel: usize) -> &[f32] {
        assert!(
            channel < self.channels(),
            "channel {channel} of {}",
            self.channels()
        );
        let n = self.samples_per_channel();
        &self.samples[channel * n..(channel + 1) * n]
    }

    /// The samples of one channel, for writing.
    ///
    /// # Panics
    ///
    /// If `channel >= self.channels()`.
    #[inline]
    pub fn channel_mut(&mut self, channel: usize) -> &mut [f32] {
        assert!(
            channel < self.channels(),
            "channel {channel} of {}",
            self.channels()
        );
        let n = self.samples_per_channel();
        &mut self.samples[channel * n..(channel + 1) * n]
    }

    /// Copies stream id, sequence, timestamp and rate from `other` (not shape
    /// or samples): what a stage that transforms samples keeps of its input.
    #[inline]
    pub fn copy_metadata_from(&mut self, other: &EegPacket) {
        self.stream_id = other.stream_id;
        self.sequence = other.sequence;
        self.timestamp_ns = other.timestamp_ns;
        self.sample_rate_hz = other.sample_rate_hz;
    }

    /// Makes `self` a copy of `other` (metadata, shape and samples) without
    /// allocating.
    #[inline]
    pub fn copy_from(&mut self, other: &EegPacket) -> Result<(), ShapeError> {
        self.set_shape(other.channels(), other.samples_per_channel())?;
        self.copy_metadata_from(other);
        self.samples_mut().copy_from_slice(other.samples());
        Ok(())
    }
}

/// An [`EegPacket`] that has been through a filter. A distinct type so that
/// the graph checker can tell raw and filtered streams apart; it derefs to
/// [`EegPacket`] for everything else.
///
/// ```
/// use hsp_sdk::FilteredEegPacket;
///
/// let block = FilteredEegPacket::with_capacity(2, 8);
/// assert_eq!(block.channels(), 2);
/// ```
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, PartialEq, Default)]
pub struct FilteredEegPacket(pub EegPacket);

impl FilteredEegPacket {
    /// See [`EegPacket::with_capacity`].
    pub fn with_capacity(channels: usize, samples_per_channel: usize) -> Self {
        Self(EegPacket::with_capacity(channels, samples_per_channel))
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
