use super::planar::{PlanarBlock, planar_fields};
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

/// One spectrum per channel, `values_per_channel` bins each, planar; bin `k`
/// is at `k × bin_hz` Hz. Its block is read and written through
/// [`PlanarBlock`] (see there for the guarantees).
///
/// ```
/// use hsp_sdk::{FftPacket, PlanarBlock, SpectrumScale};
///
/// let mut spectrum = FftPacket::with_capacity(2, 129);
/// spectrum.scale = SpectrumScale::Power;
/// spectrum.bin_hz = 250.0 / 256.0;
/// spectrum.channel_mut(0)[10] = 4.0;
/// assert_eq!(spectrum.values().len(), 2 * 129);
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

impl PlanarBlock for FftPacket {
    planar_fields!(channels, bins_per_channel, bins);

    /// Copies stream id, scale, sequence, timestamp and bin spacing.
    #[inline]
    fn copy_metadata_from(&mut self, other: &FftPacket) {
        self.stream_id = other.stream_id;
        self.scale = other.scale;
        self.sequence = other.sequence;
        self.timestamp_ns = other.timestamp_ns;
        self.bin_hz = other.bin_hz;
    }
}
