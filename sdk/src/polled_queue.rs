//! `PolledQueue<T>`: the bounded SPSC edge for two stages driven by one
//! thread that polls, such as the runtime's data-plane loop.

use crate::queue::PushError;
use crate::sync::{Arc, AtomicBool, Ordering, RingBuffer, RingConsumer, RingProducer};

/// A bounded SPSC queue (over `rtrb`) without wake-ups: nobody ever waits on
/// it, so pushing and popping cost what `rtrb` costs, with no atomic
/// read-modify-write to announce them.
///
/// **Guarantees.** As [`StageQueue`](crate::runtime::StageQueue) for capacity,
/// ordering and close-and-drain: once the producer is gone the consumer
/// drains what was pushed, then [`is_finished`](PolledConsumer::is_finished);
/// a dropped consumer drops what is queued at once (packets go home) and
/// later pushes come back as [`PushError::Closed`]. Its halves have no
/// waiting methods at all, so a polled edge cannot be awaited by mistake.
///
/// ```
/// use hsp_sdk::runtime::PolledQueue;
///
/// let (mut tx, mut rx) = PolledQueue::new(2);
/// tx.push(1).unwrap();
/// drop(tx);
/// assert_eq!(rx.pop(), Some(1));
/// assert!(rx.is_finished());
/// ```
pub struct PolledQueue;

impl PolledQueue {
    /// The two halves of a queue holding at most `capacity` items.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T>(capacity: usize) -> (PolledProducer<T>, PolledConsumer<T>) {
        assert!(
            capacity > 0,
            "a PolledQueue needs room for at least one item"
        );
        let (ring_producer, ring_consumer) = RingBuffer::new(capacity);
        let ends = Arc::new(Ends {
            producer_gone: AtomicBool::new(false),
            consumer_gone: AtomicBool::new(false),
        });
        (
            PolledProducer {
                ring: ring_producer,
                ends: Arc::clone(&ends),
            },
            PolledConsumer {
                ring: ring_consumer,
                ends,
            },
        )
    }
}

struct Ends {
    producer_gone: AtomicBool,
    consumer_gone: AtomicBool,
}

/// The writing half of a [`PolledQueue`].
pub struct PolledProducer<T> {
    ring: RingProducer<T>,
    ends: Arc<Ends>,
}

/// The reading half of a [`PolledQueue`].
pub struct PolledConsumer<T> {
    ring: RingConsumer<T>,
    ends: Arc<Ends>,
}

impl<T> PolledProducer<T> {
    /// Pushes `item` if there is room.
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), PushError<T>> {
        if self.ends.consumer_gone.load(Ordering::Relaxed) {
            return Err(PushError::Closed(item));
        }
        self.ring
            .push(item)
            .map_err(|rtrb::PushError::Full(item)| PushError::Full(item))
    }
}

impl<T> PolledConsumer<T> {
    /// Pops the oldest item, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.ring.pop().ok()
    }

    /// The oldest item, left in the queue, if any. (Not in the loom build:
    /// its model of the ring cannot lend a reference into it.)
    #[cfg(not(loom))]
    #[inline]
    pub fn peek(&self) -> Option<&T> {
        self.ring.peek().ok()
    }

    /// `true` if nothing is queued right now.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ring.slots() == 0
    }

    /// `true` once the producer is gone and the queue is drained.
    #[inline]
    pub fn is_finished(&self) -> bool {
        // Acquire pairs with the producer's Release in drop: seeing it gone,
        // every push it made is visible to `is_empty`.
        self.ends.producer_gone.load(Ordering::Acquire) && self.is_empty()
    }
}

impl<T> Drop for PolledProducer<T> {
    fn drop(&mut self) {
        self.ends.producer_gone.store(true, Ordering::Release);
    }
}

impl<T> Drop for PolledConsumer<T> {
    fn drop(&mut self) {
        self.ends.consumer_gone.store(true, Ordering::Relaxed);
        while self.ring.pop().is_ok() {}
    }
}
