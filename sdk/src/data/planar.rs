//! [`PlanarBlock`]: the one vocabulary of every packet that holds a
//! `channels × values_per_channel` block of `f32`s (EEG samples, spectrum
//! bins, features).

use abi_stable::std_types::RVec;

/// A packet shape that does not fit the buffer the packet was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a {channels}×{values_per_channel} block needs {} values but the packet holds at most {capacity}",
    channels * values_per_channel
)]
pub struct ShapeError {
    /// Requested channels.
    pub channels: usize,
    /// Requested values per channel.
    pub values_per_channel: usize,
    /// Values the packet's buffer holds.
    pub capacity: usize,
}

/// Checks `channels × values_per_channel` against `capacity`, returning the
/// value count.
fn checked_len(
    channels: usize,
    values_per_channel: usize,
    capacity: usize,
) -> Result<usize, ShapeError> {
    channels
        .checked_mul(values_per_channel)
        .filter(|&len| {
            len <= capacity
                && u32::try_from(channels).is_ok()
                && u32::try_from(values_per_channel).is_ok()
        })
        .ok_or(ShapeError {
            channels,
            values_per_channel,
            capacity,
        })
}

/// A packet holding a planar block of `f32`s: `channels()` channels of
/// `values_per_channel()` values each (samples for EEG, bins for a
/// spectrum, features), channel-major, so channel `c` is
/// `values()[c * n .. (c + 1) * n]` with `n = values_per_channel()`.
///
/// Implemented by [`EegPacket`](crate::EegPacket),
/// [`FilteredEegPacket`](crate::FilteredEegPacket),
/// [`FftPacket`](crate::FftPacket) and [`FeaturePacket`](crate::FeaturePacket);
/// bring it into scope (`use hsp_sdk::PlanarBlock;`) to use their blocks.
/// What a type adds to the block (sample rate, spectrum scale...) stays on
/// the type.
///
/// **Guarantees.** The buffer is allocated by [`with_capacity`] and never
/// reallocated: [`set_shape`] only changes how much of it is in use, and
/// refuses a shape that does not fit; [`copy_from`] copies without
/// allocating.
///
/// [`with_capacity`]: PlanarBlock::with_capacity
/// [`set_shape`]: PlanarBlock::set_shape
/// [`copy_from`]: PlanarBlock::copy_from
///
/// ```
/// use hsp_sdk::{EegPacket, PlanarBlock};
///
/// let mut block = EegPacket::with_capacity(4, 32);
/// assert_eq!((block.channels(), block.values_per_channel()), (4, 32));
/// block.set_shape(2, 3).unwrap();
/// block.channel_mut(1).copy_from_slice(&[1.0, 2.0, 3.0]);
/// assert_eq!(block.values(), &[0.0, 0.0, 0.0, 1.0, 2.0, 3.0]);
/// assert_eq!(block.channel(1), &[1.0, 2.0, 3.0]);
/// assert_eq!(block.capacity(), 4 * 32);
/// assert!(block.set_shape(8, 32).is_err());
///
/// block.sequence = 7;
/// let mut copy = EegPacket::with_capacity(2, 3);
/// copy.copy_from(&block).unwrap();
/// assert_eq!((copy.sequence, copy.channel(1)), (7, &[1.0, 2.0, 3.0][..]));
/// ```
pub trait PlanarBlock: Default {
    /// The block's fields, for the methods below: channels, values per
    /// channel, and the whole buffer (its length is the capacity).
    #[doc(hidden)]
    fn planar_fields(&self) -> (u32, u32, &[f32]);

    /// The block's fields, for writing: only [`with_capacity`] replaces the
    /// buffer.
    ///
    /// [`with_capacity`]: PlanarBlock::with_capacity
    #[doc(hidden)]
    fn planar_fields_mut(&mut self) -> (&mut u32, &mut u32, &mut RVec<f32>);

    /// Copies everything but the shape and the values from `other` (stream
    /// id, sequence, timestamp and what the type adds): what a stage that
    /// transforms values keeps of its input.
    fn copy_metadata_from(&mut self, other: &Self);

    /// A zeroed packet that can hold up to `channels × values_per_channel`
    /// values; its shape starts at exactly that.
    ///
    /// # Panics
    ///
    /// If either count does not fit in a `u32`.
    fn with_capacity(channels: usize, values_per_channel: usize) -> Self {
        let mut values = RVec::with_capacity(channels * values_per_channel);
        values.resize(channels * values_per_channel, 0.0);
        let mut packet = Self::default();
        let (c, n, buffer) = packet.planar_fields_mut();
        *c = u32::try_from(channels).expect("channel count fits in u32");
        *n = u32::try_from(values_per_channel).expect("values per channel fit in u32");
        *buffer = values;
        packet
    }

    /// The most values (all channels together) this packet can hold.
    #[inline]
    fn capacity(&self) -> usize {
        self.planar_fields().2.len()
    }

    /// Channels in the block.
    #[inline]
    fn channels(&self) -> usize {
        self.planar_fields().0 as usize
    }

    /// Values per channel in the block: samples, bins or features.
    #[inline]
    fn values_per_channel(&self) -> usize {
        self.planar_fields().1 as usize
    }

    /// Sets the block's shape, if it fits the buffer. Values are left as
    /// they were: write them next.
    #[inline]
    fn set_shape(&mut self, channels: usize, values_per_channel: usize) -> Result<(), ShapeError> {
        let (c, n, buffer) = self.planar_fields_mut();
        checked_len(channels, values_per_channel, buffer.len())?;
        *c = channels as u32;
        *n = values_per_channel as u32;
        Ok(())
    }

    /// All values of the block, planar.
    #[inline]
    fn values(&self) -> &[f32] {
        let (c, n, buffer) = self.planar_fields();
        &buffer[..c as usize * n as usize]
    }

    /// All values of the block, planar, for writing.
    #[inline]
    fn values_mut(&mut self) -> &mut [f32] {
        let (c, n, buffer) = self.planar_fields_mut();
        let len = *c as usize * *n as usize;
        &mut buffer[..len]
    }

    /// The values of one channel.
    ///
    /// # Panics
    ///
    /// If `channel >= self.channels()`.
    #[inline]
    fn channel(&self, channel: usize) -> &[f32] {
        let (c, n, buffer) = self.planar_fields();
        assert!(channel < c as usize, "channel {channel} of {c}");
        let n = n as usize;
        &buffer[channel * n..(channel + 1) * n]
    }

    /// The values of one channel, for writing.
    ///
    /// # Panics
    ///
    /// If `channel >= self.channels()`.
    #[inline]
    fn channel_mut(&mut self, channel: usize) -> &mut [f32] {
        let (c, n, buffer) = self.planar_fields_mut();
        assert!(channel < *c as usize, "channel {channel} of {c}");
        let n = *n as usize;
        &mut buffer[channel * n..(channel + 1) * n]
    }

    /// Makes `self` a copy of `other` (metadata, shape and values) without
    /// allocating; refuses a shape that does not fit `self`'s buffer.
    #[inline]
    fn copy_from(&mut self, other: &Self) -> Result<(), ShapeError> {
        self.set_shape(other.channels(), other.values_per_channel())?;
        self.copy_metadata_from(other);
        self.values_mut().copy_from_slice(other.values());
        Ok(())
    }
}

/// The two field accessors of a [`PlanarBlock`] implementation, over the
/// packet struct's own fields (whose names are part of its ABI layout, so
/// they stay as they are): `planar_fields!(channels, per_channel, buffer)`
/// inside the `impl`.
macro_rules! planar_fields {
    ($channels:ident, $per_channel:ident, $buffer:ident) => {
        #[inline]
        fn planar_fields(&self) -> (u32, u32, &[f32]) {
            (self.$channels, self.$per_channel, &self.$buffer)
        }

        #[inline]
        fn planar_fields_mut(&mut self) -> (&mut u32, &mut u32, &mut RVec<f32>) {
            (
                &mut self.$channels,
                &mut self.$per_channel,
                &mut self.$buffer,
            )
        }
    };
}

pub(crate) use planar_fields;
