//! The data plane's view of packets: one pool per stage output, and the
//! glue between `PipelineData` (what travels edges) and the ABI's borrowed
//! `PacketRef` / `PacketMut` (what a stage sees for one call).

use hsp_sdk::{
    EegPacket, Event, FeaturePacket, FftPacket, FilteredEegPacket, MemoryPool, PacketKind,
    PacketMut, PacketRef, PipelineData, PlanarBlock, PoolStats, PortPacket, StreamFormat,
};

/// The pool of one stage's output packets, sized for its declared format.
pub enum OutputPool {
    /// Raw EEG blocks.
    RawEeg(MemoryPool<EegPacket>),
    /// Filtered EEG blocks.
    FilteredEeg(MemoryPool<FilteredEegPacket>),
    /// Spectra.
    Fft(MemoryPool<FftPacket>),
    /// Feature sets.
    Features(MemoryPool<FeaturePacket>),
    /// Events.
    Event(MemoryPool<Event>),
}

impl OutputPool {
    /// A pool of `capacity` packets with room for `format`.
    pub fn for_format(format: &StreamFormat, capacity: usize) -> Option<Self> {
        Some(match format.kind {
            PacketKind::RawEeg => Self::RawEeg(MemoryPool::with_init(capacity, |_| {
                EegPacket::for_format(format)
            })),
            PacketKind::FilteredEeg => Self::FilteredEeg(MemoryPool::with_init(capacity, |_| {
                FilteredEegPacket::for_format(format)
            })),
            PacketKind::Fft => Self::Fft(MemoryPool::with_init(capacity, |_| {
                FftPacket::for_format(format)
            })),
            PacketKind::Features => Self::Features(MemoryPool::with_init(capacity, |_| {
                FeaturePacket::for_format(format)
            })),
            PacketKind::Event => Self::Event(MemoryPool::with_init(capacity, |_| {
                Event::for_format(format)
            })),
        })
    }

    /// A free packet, or `None` when all are out (backpressure).
    #[inline]
    pub fn try_acquire(&self) -> Option<PipelineData> {
        Some(match self {
            Self::RawEeg(pool) => PipelineData::RawEeg(pool.try_acquire()?),
            Self::FilteredEeg(pool) => PipelineData::FilteredEeg(pool.try_acquire()?),
            Self::Fft(pool) => PipelineData::Fft(pool.try_acquire()?),
            Self::Features(pool) => PipelineData::Features(pool.try_acquire()?),
            Self::Event(pool) => PipelineData::Event(pool.try_acquire()?),
        })
    }

    /// The pool's counters.
    pub fn stats(&self) -> PoolStats {
        match self {
            Self::RawEeg(pool) => pool.stats(),
            Self::FilteredEeg(pool) => pool.stats(),
            Self::Fft(pool) => pool.stats(),
            Self::Features(pool) => pool.stats(),
            Self::Event(pool) => pool.stats(),
        }
    }
}

/// Borrows an edge item as a stage input.
#[inline]
pub fn as_input(item: &PipelineData) -> PacketRef<'_> {
    match item {
        PipelineData::RawEeg(p) => PacketRef::RawEeg(p),
        PipelineData::FilteredEeg(p) => PacketRef::FilteredEeg(p),
        PipelineData::Fft(p) => PacketRef::Fft(p),
        PipelineData::Features(p) => PacketRef::Features(p),
        PipelineData::Event(e) => PacketRef::Event(e),
    }
}

/// Borrows an edge item as a stage output to fill.
#[inline]
pub fn as_output(item: &mut PipelineData) -> PacketMut<'_> {
    match item {
        PipelineData::RawEeg(p) => PacketMut::RawEeg(p),
        PipelineData::FilteredEeg(p) => PacketMut::FilteredEeg(p),
        PipelineData::Fft(p) => PacketMut::Fft(p),
        PipelineData::Features(p) => PacketMut::Features(p),
        PipelineData::Event(e) => PacketMut::Event(e),
    }
}

/// Copies `source` into `target` (same kind) without allocating; `false` if
/// the kinds differ or the shape does not fit.
#[inline]
pub fn copy_into(source: &PipelineData, target: &mut PipelineData) -> bool {
    match (source, target) {
        (PipelineData::RawEeg(s), PipelineData::RawEeg(t)) => t.copy_from(s).is_ok(),
        (PipelineData::FilteredEeg(s), PipelineData::FilteredEeg(t)) => t.copy_from(s).is_ok(),
        (PipelineData::Fft(s), PipelineData::Fft(t)) => t.copy_from(s).is_ok(),
        (PipelineData::Features(s), PipelineData::Features(t)) => t.copy_from(s).is_ok(),
        (PipelineData::Event(s), PipelineData::Event(t)) => {
            **t = **s;
            true
        }
        _ => false,
    }
}

/// Copies an input into an output of another kind where the layouts are the
/// same (raw and filtered EEG), for `on_error = "bypass"`.
pub fn bypass_into(source: &PipelineData, target: &mut PipelineData) -> bool {
    match (source, target) {
        (PipelineData::RawEeg(s), PipelineData::FilteredEeg(t)) => t.0.copy_from(s).is_ok(),
        (PipelineData::FilteredEeg(s), PipelineData::RawEeg(t)) => t.copy_from(s).is_ok(),
        (source, target) => copy_into(source, target),
    }
}

/// An item's shape: channels and values per channel (`None` for events,
/// which have none).
#[inline]
pub fn shape_of(item: &PipelineData) -> Option<(usize, usize)> {
    match item {
        PipelineData::RawEeg(p) => Some((p.channels(), p.values_per_channel())),
        PipelineData::FilteredEeg(p) => Some((p.channels(), p.values_per_channel())),
        PipelineData::Fft(p) => Some((p.channels(), p.values_per_channel())),
        PipelineData::Features(p) => Some((p.channels(), p.values_per_channel())),
        PipelineData::Event(_) => None,
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
        && match item {
            PipelineData::RawEeg(_) | PipelineData::FilteredEeg(_) => values <= declared,
            _ => values == declared,
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
