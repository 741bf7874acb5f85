//! `StageQueue<T>`: the bounded single-producer single-consumer edge between
//! two stages, and the async `Input` / `Output` traits stages see.

use crate::sync::{Arc, AtomicBool, Ordering, RingBuffer, RingConsumer, RingProducer, Signal};
use std::fmt;

/// A bounded SPSC queue (over `rtrb`) with close-and-drain semantics.
///
/// **Guarantees.** At most `capacity` items are queued; a full queue is
/// backpressure, never growth. Pushing and popping never allocate. Once the
/// producer half is dropped, the consumer still receives everything pushed
/// before, then `None`. When the consumer half is dropped, the items still
/// queued are dropped at once (packets go home to their pools) and later
/// pushes hand the item back as [`PushError::Closed`].
///
/// Waiting (`send`, `recv`, and their blocking forms) is wake-up based, never
/// a busy loop; the non-waiting side pays one fence and one load.
///
/// ```
/// use hsp_sdk::runtime::{StageQueue, PushError};
///
/// let mut queue = StageQueue::new(2);
/// queue.push(1).unwrap();
/// queue.push(2).unwrap();
/// assert!(matches!(queue.push(3), Err(PushError::Full(3))));
/// assert_eq!(queue.pop(), Some(1));
///
/// let (mut producer, mut consumer) = queue.split();
/// producer.push(4).unwrap();
/// drop(producer);
/// assert_eq!(consumer.pop(), Some(2));
/// assert_eq!(consumer.pop(), Some(4));
/// assert!(consumer.is_finished());
/// ```
pub struct StageQueue<T> {
    producer: QueueProducer<T>,
    consumer: QueueConsumer<T>,
}

impl<T> StageQueue<T> {
    /// A queue holding at most `capacity` items.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    pub fn new(capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "a StageQueue needs room for at least one item"
        );
        let (ring_producer, ring_consumer) = RingBuffer::new(capacity);
        let shared = Arc::new(QueueShared {
            producer_gone: AtomicBool::new(false),
            consumer_gone: AtomicBool::new(false),
            data: Signal::new(),
            space: Signal::new(),
            capacity,
        });
        Self {
            producer: QueueProducer {
                ring: ring_producer,
                shared: Arc::clone(&shared),
            },
            consumer: QueueConsumer {
                ring: ring_consumer,
                shared,
            },
        }
    }

    /// Pushes without waiting; see [`QueueProducer::push`].
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), PushError<T>> {
        self.producer.push(item)
    }

    /// Pops without waiting; see [`QueueConsumer::pop`].
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.consumer.pop()
    }

    /// The two halves, to be moved to the two stages (or threads) they serve.
    pub fn split(self) -> (QueueProducer<T>, QueueConsumer<T>) {
        (self.producer, self.consumer)
    }
}

struct QueueShared {
    producer_gone: AtomicBool,
    consumer_gone: AtomicBool,
    /// Raised after a push and when the producer goes.
    data: Signal,
    /// Raised after a pop and when the consumer goes.
    space: Signal,
    capacity: usize,
}

/// The writing half of a [`StageQueue`].
pub struct QueueProducer<T> {
    ring: RingProducer<T>,
    shared: Arc<QueueShared>,
}

/// The reading half of a [`StageQueue`].
pub struct QueueConsumer<T> {
    ring: RingConsumer<T>,
    shared: Arc<QueueShared>,
}

/// Why a push did not happen; the item is handed back.
#[derive(PartialEq, Eq)]
pub enum PushError<T> {
    /// The queue holds `capacity` items: backpressure.
    Full(T),
    /// The consumer is gone; nobody will ever read this.
    Closed(T),
}

impl<T> PushError<T> {
    /// The item that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(item) | Self::Closed(item) => item,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "Full(..)",
            Self::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "the queue is full",
            Self::Closed(_) => "the consumer of this queue is gone",
        })
    }
}

impl<T> std::error::Error for PushError<T> {}

/// The consumer of a queue is gone; the item that could not be sent.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the receiving stage is gone")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> QueueProducer<T> {
    /// Pushes `item` if there is room, without waiting.
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), PushError<T>> {
        Self::push_into(&mut self.ring, &self.shared, item)
    }

    #[inline]
    fn push_into(
        ring: &mut RingProducer<T>,
        shared: &QueueShared,
        item: T,
    ) -> Result<(), PushError<T>> {
        if shared.consumer_gone.load(Ordering::Acquire) {
            return Err(PushError::Closed(item));
        }
        match ring.push(item) {
            Ok(()) => {
                shared.data.notify_one();
                Ok(())
            }
            Err(rtrb::PushError::Full(item)) => Err(PushError::Full(item)),
        }
    }

    /// Pushes `item`, parking the thread while the queue is full.
    pub fn push_blocking(&mut self, item: T) -> Result<(), SendError<T>> {
        let mut pending = Some(item);
        let Self { ring, shared } = self;
        shared
            .space
            .wait_until_blocking(|| Self::attempt_send(ring, shared, &mut pending))
    }

    /// Free places right now.
    pub fn slots(&self) -> usize {
        self.ring.slots()
    }

    /// The most items the queue holds.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// `true` once the consumer half is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.consumer_gone.load(Ordering::Acquire)
    }

    fn attempt_send(
        ring: &mut RingProducer<T>,
        shared: &QueueShared,
        pending: &mut Option<T>,
    ) -> Option<Result<(), SendError<T>>> {
        let item = pending.take().expect("attempted after completion");
        match Self::push_into(ring, shared, item) {
            Ok(()) => Some(Ok(())),
            Err(PushError::Closed(item)) => Some(Err(SendError(item))),
            Err(PushError::Full(item)) => {
                *pending = Some(item);
                None
            }
        }
    }
}

impl<T> QueueConsumer<T> {
    /// Pops the oldest item, without waiting.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        Self::pop_from(&mut self.ring, &self.shared)
    }

    #[inline]
    fn pop_from(ring: &mut RingConsumer<T>, shared: &QueueShared) -> Option<T> {
        let item = ring.pop().ok()?;
        shared.space.notify_one();
        Some(item)
    }

    /// Pops, parking the thread while the queue is empty; `None` once the
    /// producer is gone and everything it pushed has been received.
    pub fn pop_blocking(&mut self) -> Option<T> {
        let Self { ring, shared } = self;
        shared
            .data
            .wait_until_blocking(|| Self::attempt_recv(ring, shared))
    }

    /// Items queued right now.
    pub fn len(&self) -> usize {
        self.ring.slots()
    }

    /// `true` if nothing is queued right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most items the queue holds.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// `true` once the producer is gone *and* the queue is drained: nothing
    /// will ever arrive again.
    pub fn is_finished(&self) -> bool {
        // Acquire pairs with the producer's Release in drop: once we see it
        // gone, every push it made is visible to `is_empty`.
        self.shared.producer_gone.load(Ordering::Acquire) && self.is_empty()
    }

    fn attempt_recv(ring: &mut RingConsumer<T>, shared: &QueueShared) -> Option<Option<T>> {
        if let Some(item) = Self::pop_from(ring, shared) {
            return Some(Some(item));
        }
        if shared.producer_gone.load(Ordering::Acquire) {
            // A push may have landed between the pop above and the load.
            return Some(Self::pop_from(ring, shared));
        }
        None
    }
}

impl<T> Drop for QueueProducer<T> {
    fn drop(&mut self) {
        self.shared.producer_gone.store(true, Ordering::Release);
        self.shared.data.notify_all();
    }
}

impl<T> Drop for QueueConsumer<T> {
    fn drop(&mut self) {
        self.shared.consumer_gone.store(true, Ordering::Release);
        // Return queued packets to their pools now, not when the producer
        // eventually goes too. A push racing with this drop is dropped with
        // the ring when the producer goes.
        while self.ring.pop().is_ok() {}
        self.shared.space.notify_all();
    }
}

/// The receiving side of a stage: where its packets come from.
///
/// Implemented by [`QueueConsumer`]; a stage written against `Input` runs on
/// any edge the runtime wires it to. Native `async fn` in traits (not
/// `async-trait`): the future is not boxed, so a `recv` per packet allocates
/// nothing.
pub trait Input<T> {
    /// The next item, waiting without spinning; `None` once the upstream
    /// stage is gone and everything it sent has been received.
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send;
}

/// The sending side of a stage: where its packets go.
pub trait Output<T> {
    /// Sends `item`, waiting without spinning while the downstream queue is
    /// full (backpressure); hands it back if the downstream stage is gone.
    fn send(&mut self, item: T) -> impl Future<Output = Result<(), SendError<T>>> + Send;
}

impl<T: Send> Input<T> for QueueConsumer<T> {
    async fn recv(&mut self) -> Option<T> {
        let Self { ring, shared } = self;
        shared
            .data
            .wait_until(|| Self::attempt_recv(ring, shared))
            .await
    }
}

impl<T: Send> Output<T> for QueueProducer<T> {
    async fn send(&mut self, item: T) -> Result<(), SendError<T>> {
        let mut pending = Some(item);
        let Self { ring, shared } = self;
        shared
            .space
            .wait_until(|| Self::attempt_send(ring, shared, &mut pending))
            .await
    }
}
