//! Bridges from the data plane to the control plane: a tap on a data-plane
//! stage's output that copies each emitted packet into a packet of its own
//! pool and pushes it to a wake-up queue the control plane awaits.
//!
//! A tap never blocks and never allocates on the data plane: when its pool is
//! empty or its queue full (the control plane is behind), the copy is not
//! made and the drop is counted. The stage's own packets never leave the data
//! plane, so a slow control stage cannot starve the data plane of packets.

use super::packets::{OutputPool, copy_into};
use hsp_sdk::StreamFormat;
use hsp_sdk::runtime::{Input, PipelineData, QueueConsumer, QueueProducer, StageQueue};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Packets a tap may have in flight towards the control plane.
const TAP_CAPACITY: usize = 32;

/// The tap's counters, shared by both ends.
#[derive(Debug, Default)]
pub struct TapCounters {
    /// Copies handed to the control plane.
    pub sent: AtomicU64,
    /// Packets not copied because the control plane was behind.
    pub dropped: AtomicU64,
}

/// The data-plane end of a bridge.
pub struct Tap {
    pool: Option<OutputPool>,
    producer: QueueProducer<PipelineData>,
    counters: Arc<TapCounters>,
}

/// The control-plane end of a bridge.
pub struct TapReceiver {
    consumer: QueueConsumer<PipelineData>,
    /// Its counters (also updated by the data plane).
    pub counters: Arc<TapCounters>,
}

/// A bridge for a stage emitting `format`.
pub fn tap(format: &StreamFormat) -> (Tap, TapReceiver) {
    // Room for a full queue and the packet being delivered (readers copy
    // it into packets of their own).
    let pool = OutputPool::for_format(format, TAP_CAPACITY + 2);
    let (producer, consumer) = StageQueue::new(TAP_CAPACITY).split();
    let counters = Arc::new(TapCounters::default());
    (
        Tap {
            pool,
            producer,
            counters: Arc::clone(&counters),
        },
        TapReceiver { consumer, counters },
    )
}

impl Tap {
    /// Offers a copy of `packet` to the control plane; counts a drop if it
    /// cannot take it now.
    #[inline]
    pub fn offer(&mut self, packet: &PipelineData) {
        let copy = self.pool.as_ref().and_then(|pool| {
            pool.try_acquire().and_then(|mut copy| {
                // Same format by construction; a mismatch is a dropped copy.
                copy_into(packet, &mut copy).then_some(copy)
            })
        });
        let delivered = copy.is_some_and(|copy| self.producer.push(copy).is_ok());
        let counter = if delivered {
            &self.counters.sent
        } else {
            &self.counters.dropped
        };
        // Only the data-plane thread writes: a plain load and store, no RMW.
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

impl TapReceiver {
    /// The next packet, or `None` once the tap is gone and drained.
    pub async fn recv(&mut self) -> Option<PipelineData> {
        self.consumer.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::runtime::MemoryPool;
    use hsp_sdk::{EegPacket, PacketKind, PlanarBlock};

    #[test]
    fn a_tap_copies_until_the_control_plane_falls_behind_then_counts_drops() {
        let format = StreamFormat::eeg(PacketKind::RawEeg, 2, 250.0, 4);
        let (mut tap, mut receiver) = tap(&format);
        let source = MemoryPool::with_init(1, |_| EegPacket::with_capacity(2, 4));
        let mut block = source.try_acquire().expect("a packet");
        block.values_mut().fill(3.0);
        let block = PipelineData::RawEeg(block);
        for _ in 0..TAP_CAPACITY + 5 {
            tap.offer(&block);
        }
        let sent = receiver.counters.sent.load(Ordering::Relaxed);
        let dropped = receiver.counters.dropped.load(Ordering::Relaxed);
        assert_eq!((sent, dropped), (TAP_CAPACITY as u64, 5));
        let copy = receiver.consumer.pop().expect("a copy");
        match copy {
            PipelineData::RawEeg(copy) => assert_eq!(copy.values(), &[3.0; 8]),
            other => panic!("expected raw EEG, got {:?}", other.kind()),
        }
        drop(tap);
        let rest = std::iter::from_fn(|| receiver.consumer.pop()).count();
        assert_eq!(rest, TAP_CAPACITY - 1);
        assert!(receiver.consumer.is_finished());
    }
}
