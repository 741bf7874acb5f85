//! `SharedQueue<T>`: the bounded edge between two threads that each poll
//! their own stages: the data plane and a stage that may block, on a thread
//! of its own.

use crate::queue::PushError;
use crossbeam_queue::ArrayQueue;
// Plain std, not `crate::sync`: crossbeam's queue is not loom-aware, and
// the protocol around it is two flags, as in `PolledQueue`.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;

/// A bounded queue between two polling threads, whose producer may drop the
/// oldest item to make room.
///
/// **Guarantees.** At most `capacity` items are queued, and they come out in
/// the order they went in; nothing allocates after `new`. A push that finds
/// the queue full hands the item back ([`PushError::Full`]), or, with
/// [`push_dropping_oldest`](SharedProducer::push_dropping_oldest), drops the
/// oldest item queued and returns it: the producer never waits. Once the
/// producer half is dropped the consumer drains what was pushed, then
/// [`is_finished`](SharedConsumer::is_finished); a dropped consumer drops
/// what is queued at once (packets go home to their pools) and later pushes
/// come back as [`PushError::Closed`].
///
/// Neither side waits inside the queue. A thread that has nothing to do
/// parks (with a timeout) and the other side wakes it: each push unparks
/// the thread registered with
/// [`SharedConsumer::wake_on_push`], each pop the one registered with
/// [`SharedProducer::wake_on_pop`]. An unpark of a thread that is not parked
/// costs one atomic swap.
///
/// ```
/// use hsp_sdk::runtime::SharedQueue;
///
/// let (mut tx, mut rx) = SharedQueue::new(2);
/// tx.push(1).unwrap();
/// tx.push(2).unwrap();
/// assert_eq!(tx.push_dropping_oldest(3).unwrap(), Some(1));
/// drop(tx);
/// assert_eq!(rx.pop(), Some(2));
/// assert_eq!(rx.pop(), Some(3));
/// assert!(rx.is_finished());
/// ```
pub struct SharedQueue;

impl SharedQueue {
    /// The two halves of a queue holding at most `capacity` items.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T>(capacity: usize) -> (SharedProducer<T>, SharedConsumer<T>) {
        assert!(
            capacity > 0,
            "a SharedQueue needs room for at least one item"
        );
        let shared = Arc::new(Shared {
            items: ArrayQueue::new(capacity),
            producer_gone: AtomicBool::new(false),
            consumer_gone: AtomicBool::new(false),
            producer_thread: OnceLock::new(),
            consumer_thread: OnceLock::new(),
        });
        (
            SharedProducer {
                shared: Arc::clone(&shared),
            },
            SharedConsumer { shared },
        )
    }
}

struct Shared<T> {
    items: ArrayQueue<T>,
    producer_gone: AtomicBool,
    consumer_gone: AtomicBool,
    /// Unparked after a pop (room to push).
    producer_thread: OnceLock<Thread>,
    /// Unparked after a push and when the producer goes.
    consumer_thread: OnceLock<Thread>,
}

fn wake(thread: &OnceLock<Thread>) {
    if let Some(thread) = thread.get() {
        thread.unpark();
    }
}

/// The writing half of a [`SharedQueue`].
pub struct SharedProducer<T> {
    shared: Arc<Shared<T>>,
}

/// The reading half of a [`SharedQueue`].
pub struct SharedConsumer<T> {
    shared: Arc<Shared<T>>,
}

impl<T> SharedProducer<T> {
    /// Pushes `item` if there is room.
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), PushError<T>> {
        if self.shared.consumer_gone.load(Ordering::Acquire) {
            return Err(PushError::Closed(item));
        }
        let pushed = self.shared.items.push(item).map_err(PushError::Full);
        if pushed.is_ok() {
            wake(&self.shared.consumer_thread);
        }
        pushed
    }

    /// Pushes `item`, dropping the oldest queued item to make room when
    /// the queue is full; returns the item dropped, if one was.
    #[inline]
    pub fn push_dropping_oldest(&mut self, item: T) -> Result<Option<T>, PushError<T>> {
        if self.shared.consumer_gone.load(Ordering::Acquire) {
            return Err(PushError::Closed(item));
        }
        let dropped = self.shared.items.force_push(item);
        wake(&self.shared.consumer_thread);
        Ok(dropped)
    }

    /// Unparks the calling thread after every pop, so that it can wait for
    /// room by parking. Only the first call counts.
    pub fn wake_on_pop(&self) {
        let _ = self.shared.producer_thread.set(std::thread::current());
    }

    /// `true` once the consumer half is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.consumer_gone.load(Ordering::Acquire)
    }
}

impl<T> SharedConsumer<T> {
    /// Pops the oldest item, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        let item = self.shared.items.pop()?;
        wake(&self.shared.producer_thread);
        Some(item)
    }

    /// Items queued right now.
    #[inline]
    pub fn len(&self) -> usize {
        self.shared.items.len()
    }

    /// `true` if nothing is queued right now.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.shared.items.is_empty()
    }

    /// `true` once the producer is gone and the queue is drained.
    #[inline]
    pub fn is_finished(&self) -> bool {
        // Acquire pairs with the producer's Release in drop: seeing it gone,
        // every push it made is visible to `is_empty`.
        self.shared.producer_gone.load(Ordering::Acquire) && self.is_empty()
    }

    /// Unparks the calling thread after every push and when the producer
    /// goes, so that it can wait for items by parking. Only the first call
    /// counts.
    pub fn wake_on_push(&self) {
        let _ = self.shared.consumer_thread.set(std::thread::current());
    }
}

impl<T> Drop for SharedProducer<T> {
    fn drop(&mut self) {
        self.shared.producer_gone.store(true, Ordering::Release);
        wake(&self.shared.consumer_thread);
    }
}

impl<T> Drop for SharedConsumer<T> {
    fn drop(&mut self) {
        self.shared.consumer_gone.store(true, Ordering::Release);
        // Return queued packets to their pools now. A push racing with this
        // drop lands in the queue, dropped with it when the producer goes.
        while self.shared.items.pop().is_some() {}
        wake(&self.shared.producer_thread);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn items_cross_threads_in_order_and_the_end_is_seen_after_the_last() {
        let (mut tx, mut rx) = SharedQueue::new(4);
        let consumer = std::thread::spawn(move || {
            rx.wake_on_push();
            let mut seen = Vec::new();
            loop {
                match rx.pop() {
                    Some(item) => seen.push(item),
                    None if rx.is_finished() => return seen,
                    None => std::thread::park_timeout(Duration::from_millis(50)),
                }
            }
        });
        tx.wake_on_pop();
        for item in 0..10_000u32 {
            let mut item = item;
            loop {
                match tx.push(item) {
                    Ok(()) => break,
                    Err(PushError::Full(back)) => {
                        item = back;
                        std::thread::park_timeout(Duration::from_millis(50));
                    }
                    Err(PushError::Closed(_)) => panic!("the consumer is alive"),
                }
            }
        }
        drop(tx);
        let seen = consumer.join().unwrap();
        assert_eq!(seen, (0..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn a_gone_consumer_lets_go_of_what_was_queued_and_refuses_more() {
        let item = Arc::new(());
        let (mut tx, rx) = SharedQueue::new(2);
        tx.push(Arc::clone(&item)).unwrap();
        assert_eq!(Arc::strong_count(&item), 2);
        drop(rx);
        assert_eq!(Arc::strong_count(&item), 1, "dropped with the consumer");
        assert!(tx.is_closed());
        assert!(matches!(
            tx.push(Arc::clone(&item)),
            Err(PushError::Closed(_))
        ));
        assert!(matches!(
            tx.push_dropping_oldest(Arc::clone(&item)),
            Err(PushError::Closed(_))
        ));
    }

    #[test]
    fn dropping_the_oldest_keeps_the_newest_in_order() {
        let (mut tx, mut rx) = SharedQueue::new(3);
        let dropped: Vec<u32> = (0..10)
            .filter_map(|i| tx.push_dropping_oldest(i).unwrap())
            .collect();
        assert_eq!(dropped, (0..7).collect::<Vec<_>>());
        assert_eq!(
            (rx.pop(), rx.pop(), rx.pop(), rx.pop()),
            (Some(7), Some(8), Some(9), None)
        );
    }
}
