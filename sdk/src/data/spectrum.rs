use super::{ShapeError, checked_len};
use abi_stable::StableAbi;
use abi_stable::std_types::RVec;

/// What an [`FftPacket`]'s bins hold.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpectrumScale {
    /// `|X_k|` of the windowed frame.
    #[default]
    Magnitude,
    /// `|X_k|²` of the windowed frame.
    Power,
}

/// One spectrum per channel, `bins_per_channel` bins each, planar; bin `k` is
/// at `k × bin_hz` Hz.
///
/// **Guarantees.** As for [`EegPacket`](crate::EegPacket): the buffer is sized
/// once and [`set_shape`](FftPacket::set_shape) never reallocates.
///
/// ```
/// use hsp_sdk::{FftPacket, SpectrumScale};
///
/// let mut spectrum = FftPacket::with_capacity(2, 129);
/// spectrum.scale = SpectrumScale::Power;
/// spectrum.bin_hz = 250.0 / 256.0;
/// spectrum.channel_mut(0)[10] = 4.0;
/// assert_eq!(spectrum.bins().len(), 2 * 129);
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Default)]
pub struct FftPacket {
    /// Which acquisition stream the spectrum comes from.
    pub stream_id: u32,
    channels: u32,
    bins_per_channel: u32,
    /// Magnitude or power.
    pub scale: SpectrumScale,
    /// Frame counter, from 0.
    pub sequence: u64,
    /// Time of the frame's first sample, in nanoseconds since the UNIX epoch.
    pub timestamp_ns: u64,
    /// Frequency step between bins (sample rate / FFT size).
    pub bin_hz: f64,
    bins: RVec<f32>,
}

impl FftPacket {
    /// A zeroed spectrum packet for up to `channels × bins_per_channel` bins.
    pub fn with_capacity(channels: usize, bins_per_channel: usize) -> Self {
        let len = channels * bins_per_channel;
        let mut bins = RVec::with_capacity(len);
        bins.resize(len, 0.0);
        Self {
            channels: u32::try_from(channels).expect("channel count fits in u32"),
            bins_per_channel: u32::try_from(bins_per_channel).expect("bin count fits in u32"),
            bins,
            ..Self::default()
        }
    }

    /// The most bins (all channels together) this packet can hold.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.bins.len()
    }

    /// Channels in the spectrum.
    #[inline]
    pub fn channels(&self) -> usize {
        self.channels as usize
    }

    /// Bins per channel.
    #[inline]
    pub fn bins_per_channel(&self) -> usize {
        self.bins_per_channel as usize
    }

    /// Sets the shape, if it fits the buffer.
    #[inline]
    pub fn set_shape(
        &mut self,
        channels: usize,
        bins_per_channel: usize,
    ) -> Result<(), ShapeError> {
        checked_len(channels, bins_per_channel, self.capacity())?;
        self.channels = channels as u32;
        self.bins_per_channel = bins_per_channel as u32;
        Ok(())
    }

    /// All bins, planar.
    #[inline]
    pub fn bins(&self) -> &[f32] {
        &self.bins[..self.channels() * self.bins_per_channel()]
    }

    /// All bins, planar, for writing.
    #[inline]
    pub fn bins_mut(&mut self) -> &mut [f32] {
        let len = self.channels() * self.bins_per_channel();
        &mut self.bins[..len]
    }

    /// One channel's spectrum.
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
        let n = self.bins_per_channel();
        &self.bins[channel * n..(channel + 1) * n]
    }

    /// One channel's spectrum, for writing.
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
        let n = self.bins_per_channel();
        &mut self.bins[channel * n..(channel + 1) * n]
    }

    /// Makes `self` a copy of `other` (metadata, shape and bins) without
    /// allocating.
    #[inline]
    pub fn copy_from(&mut self, other: &FftPacket) -> Result<(), ShapeError> {
        self.set_shape(other.channels(), other.bins_per_channel())?;
        self.stream_id = other.stream_id;
        self.scale = other.scale;
        self.sequence = other.sequence;
        self.timestamp_ns = other.timestamp_ns;
        self.bin_hz = other.bin_hz;
        self.bins_mut().copy_from_slice(other.bins());
        Ok(())
    }
}
