//! The data plane's view of packets: one pool per stage output, and the
//! glue between `PipelineData` (what travels edges) and the ABI's borrowed
//! `PacketRef` / `PacketMut` (what a stage sees for one call).

use hsp_sdk::runtime::{MemoryPool, PacketMut, PipelineData, PoolStats};
use hsp_sdk::{PacketKind, PacketRef, PacketTag, PlanarBlock, PortPacket, StreamFormat};

/// Everything here that goes kind by kind, from the SDK's kind table.
macro_rules! per_kind {
    ($($(#[doc = $doc:literal])* $variant:ident($type:ident) = $name:literal;)*) => {
        /// The pool of one stage's output packets, sized for its declared
        /// format: one variant per packet kind.
        pub enum OutputPool {
            $(
                $(#[doc = $doc])*
                $variant(MemoryPool<hsp_sdk::$type>),
            )*
        }

        impl OutputPool {
            /// A pool of `capacity` packets with room for `format`.
            pub fn for_format(format: &StreamFormat, capacity: usize) -> Option<Self> {
                Some(match format.kind {
                    $(PacketKind::$variant => Self::$variant(MemoryPool::with_init(capacity, |_| {
                        hsp_sdk::$type::for_format(format)
                    })),)*
                })
            }

            /// A pool of `count` packets that can each hold a copy of
            /// `packet`: clones of it, so with its capacity.
            pub fn for_copies_of(packet: &PipelineData, count: usize) -> Self {
                match packet {
                    $(PipelineData::$variant(packet) => {
                        Self::$variant(MemoryPool::with_init(count, |_| (**packet).clone()))
                    })*
                }
            }

            /// A free packet, or `None` when all are out (backpressure).
            #[inline]
            pub fn try_acquire(&self) -> Option<PipelineData> {
                Some(match self {
                    $(Self::$variant(pool) => PipelineData::$variant(pool.try_acquire()?),)*
                })
            }

            /// The pool's counters.
            pub fn stats(&self) -> PoolStats {
                match self {
                    $(Self::$variant(pool) => pool.stats(),)*
                }
            }
        }

        /// Borrows an edge item as a stage input.
        #[inline]
        pub fn as_input(item: &PipelineData) -> PacketRef<'_> {
            match item {
                $(PipelineData::$variant(packet) => packet.as_packet_ref(),)*
            }
        }

        /// Borrows an edge item as a stage output to fill.
        #[inline]
        pub fn as_output(item: &mut PipelineData) -> PacketMut<'_> {
            match item {
                $(PipelineData::$variant(packet) => packet.as_packet_mut(),)*
            }
        }

        /// Copies `source` into `target` (same kind) without allocating;
        /// `false` if the kinds differ or the shape does not fit.
        #[inline]
        pub fn copy_into(source: &PipelineData, target: &mut PipelineData) -> bool {
            match (source, target) {
                $((PipelineData::$variant(source), PipelineData::$variant(target)) => {
                    target.copy_packet_from(source).is_ok()
                })*
                _ => false,
            }
        }

        /// An item's shape: channels and values per channel (`None` for
        /// events, which have none).
        #[inline]
        pub fn shape_of(item: &PipelineData) -> Option<(usize, usize)> {
            match item {
                $(PipelineData::$variant(packet) => packet.shape(),)*
            }
        }
    };
}

hsp_sdk::for_each_packet_kind!(per_kind);

/// Copies an input into an output of another kind where the layouts are the
/// same (raw and filtered EEG), for `on_error = "bypass"`.
pub fn bypass_into(source: &PipelineData, target: &mut PipelineData) -> bool {
    match (source, target) {
        (PipelineData::RawEeg(s), PipelineData::FilteredEeg(t)) => t.0.copy_from(s).is_ok(),
        (PipelineData::FilteredEeg(s), PipelineData::RawEeg(t)) => t.copy_from(&s.0).is_ok(),
        (source, target) => copy_into(source, target),
    }
}

/// Whether `item` has the shape its stage declared in `format`: exactly the
/// declared channels; for EEG at most the declared samples per channel (a
/// source's last block may be short, and a row per sample stays a whole
/// row), for spectra and features exactly the declared values.
#[inline]
pub fn shape_fits(item: &PipelineData, format: &StreamFormat) -> bool {
    let Some((channels, values)) = shape_of(item) else {
        return true;
    };
    let declared = format.values_per_channel();
    channels == format.channels()
        && if item.kind().is_eeg() {
            values <= declared
        } else {
            values == declared
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_is_checked_against_its_declared_shape() {
        let format = StreamFormat::eeg(PacketKind::RawEeg, 4, 250.0, 25);
        let pool = OutputPool::for_format(&format, 1).expect("pool");
        let mut item = pool.try_acquire().expect("packet");
        let PipelineData::RawEeg(packet) = &mut item else {
            unreachable!("a raw EEG pool")
        };
        packet.set_shape(4, 25).unwrap();
        assert!(shape_fits(&item, &format));
        let PipelineData::RawEeg(packet) = &mut item else {
            unreachable!("a raw EEG pool")
        };
        packet.set_shape(4, 12).unwrap();
        assert!(shape_fits(&item, &format), "a short last block is fine");
        let PipelineData::RawEeg(packet) = &mut item else {
            unreachable!("a raw EEG pool")
        };
        packet.set_shape(3, 12).unwrap();
        assert!(!shape_fits(&item, &format), "a channel went missing");
        assert_eq!(shape_of(&item), Some((3, 12)));
    }
}
