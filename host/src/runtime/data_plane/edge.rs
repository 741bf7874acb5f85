//! An edge between two stages and the push that applies its full-queue
//! policy. Both ends on this thread: a polled queue. One end on another
//! thread (a stage that may block runs on its own): a shared queue, whose
//! pushes wake the other thread.

use crate::graph::EdgePolicy;
use hsp_sdk::runtime::{
    PipelineData, PolledConsumer, PolledProducer, PushError, SharedConsumer, SharedProducer,
};

/// The writing end of an edge.
pub(super) enum Producer {
    /// Into a stage on this thread.
    Local(PolledProducer<PipelineData>),
    /// Into a stage on another thread.
    Shared(SharedProducer<PipelineData>),
}

/// The reading end of an edge.
pub(super) enum Consumer {
    /// From a stage on this thread.
    Local(PolledConsumer<PipelineData>),
    /// From a stage on another thread, with the next item taken out to be
    /// looked at (the queue cannot be peeked).
    Shared {
        queue: SharedConsumer<PipelineData>,
        next: Option<PipelineData>,
    },
}

/// An edge as one thread sees it: both ends, or the one on this thread.
pub(super) struct Edge {
    /// `None` once the upstream stage finished, or when it is on another
    /// thread.
    pub(super) producer: Option<Producer>,
    /// `None` when the downstream stage is on another thread.
    pub(super) consumer: Option<Consumer>,
    pub(super) policy: EdgePolicy,
    /// The upstream stage, when on this thread.
    pub(super) from: Option<usize>,
    /// The downstream stage, when on this thread.
    pub(super) to: Option<usize>,
    /// `stage` or `stage.port`, and the downstream stage's id, for reports.
    pub(super) names: (String, String),
    pub(super) pushed: u64,
    pub(super) dropped: u64,
    /// The consuming stage has finished: pushes are let go.
    pub(super) downstream_gone: bool,
}

impl Edge {
    /// Whether this thread pushes into it (and so counts it).
    pub(super) fn pushed_here(&self) -> bool {
        self.from.is_some()
    }

    /// The next item, if one is waiting.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<PipelineData> {
        match self.consumer.as_mut()? {
            Consumer::Local(queue) => queue.pop(),
            Consumer::Shared { queue, next } => next.take().or_else(|| queue.pop()),
        }
    }

    /// The timestamp of the next item, if one is waiting.
    #[inline]
    pub(super) fn next_timestamp(&mut self) -> Option<u64> {
        match self.consumer.as_mut()? {
            Consumer::Local(queue) => queue.peek().map(PipelineData::timestamp_ns),
            Consumer::Shared { queue, next } => {
                if next.is_none() {
                    *next = queue.pop();
                }
                next.as_ref().map(PipelineData::timestamp_ns)
            }
        }
    }

    /// `true` if no item is waiting right now.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        match &self.consumer {
            Some(Consumer::Local(queue)) => queue.is_empty(),
            Some(Consumer::Shared { queue, next }) => next.is_none() && queue.is_empty(),
            None => true,
        }
    }

    /// `true` once the upstream stage is gone and everything it sent has
    /// been taken.
    #[inline]
    pub(super) fn is_finished(&self) -> bool {
        match &self.consumer {
            // Both ends live on this thread: the producer half is dropped
            // when the upstream stage finishes, so no atomic needs reading
            // before.
            Some(Consumer::Local(queue)) => self.producer.is_none() && queue.is_finished(),
            Some(Consumer::Shared { queue, next }) => next.is_none() && queue.is_finished(),
            None => true,
        }
    }

    /// Registers the calling thread to be woken when the other thread
    /// pushes into or pops from a shared end of this edge.
    pub(super) fn wake_this_thread(&self) {
        if let Some(Producer::Shared(queue)) = &self.producer {
            queue.wake_on_pop();
        }
        if let Some(Consumer::Shared { queue, .. }) = &self.consumer {
            queue.wake_on_push();
        }
    }

    /// The consuming stage finished: what is queued is let go (counted),
    /// and so is whatever comes later.
    pub(super) fn let_go(&mut self) {
        self.downstream_gone = true;
        while self.pop().is_some() {
            self.dropped += 1;
        }
        if let Some(Consumer::Shared { .. }) = &self.consumer {
            // The producer on the other thread sees the end at once.
            self.consumer = None;
        }
    }
}

/// Pushes under the edge's policy; hands the item back if it must wait.
#[inline]
pub(super) fn push(edge: &mut Edge, item: PipelineData) -> Result<(), PipelineData> {
    let Some(producer) = &mut edge.producer else {
        return Ok(()); // this end was closed: the packet just goes home
    };
    if edge.downstream_gone {
        edge.dropped += 1; // the consumer finished: the packet just goes home
        return Ok(());
    }
    let pushed = match (producer, edge.policy) {
        (Producer::Local(queue), _) => queue.push(item),
        (Producer::Shared(queue), EdgePolicy::Block) => queue.push(item),
        (Producer::Shared(queue), EdgePolicy::DropOldest) => {
            queue.push_dropping_oldest(item).map(|dropped| {
                edge.dropped += u64::from(dropped.is_some());
            })
        }
    };
    match pushed {
        Ok(()) => {
            edge.pushed += 1;
            Ok(())
        }
        Err(PushError::Closed(_)) => Ok(()),
        Err(PushError::Full(item)) => match edge.policy {
            EdgePolicy::Block => Err(item),
            EdgePolicy::DropOldest => {
                // Only a polled queue comes back full under this policy:
                // both its ends live on this thread, so the producer side
                // may take from the consumer side.
                drop(edge.pop());
                edge.dropped += 1;
                let Some(Producer::Local(queue)) = &mut edge.producer else {
                    return Err(item);
                };
                match queue.push(item) {
                    Ok(()) => {
                        edge.pushed += 1;
                        Ok(())
                    }
                    Err(error) => Err(error.into_inner()),
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::Event;
    use hsp_sdk::runtime::{MemoryPool, PolledQueue};

    fn edge(capacity: usize, policy: EdgePolicy) -> Edge {
        let (producer, consumer) = PolledQueue::new(capacity);
        Edge {
            producer: Some(Producer::Local(producer)),
            consumer: Some(Consumer::Local(consumer)),
            policy,
            from: Some(0),
            to: Some(1),
            names: ("a".into(), "b".into()),
            pushed: 0,
            dropped: 0,
            downstream_gone: false,
        }
    }

    fn events() -> MemoryPool<Event> {
        MemoryPool::with_init(8, |_| Event::new(0, ""))
    }

    fn event(pool: &MemoryPool<Event>, code: u32) -> PipelineData {
        let mut pooled = pool.try_acquire().expect("a pooled event");
        *pooled = Event::new(code, "");
        PipelineData::Event(pooled)
    }

    fn code(item: PipelineData) -> u32 {
        match item {
            PipelineData::Event(event) => event.code,
            other => panic!("expected an event, got {:?}", other.kind()),
        }
    }

    #[test]
    fn drop_oldest_makes_room_by_dropping_the_oldest_and_counts_it() {
        let mut edge = edge(2, EdgePolicy::DropOldest);
        let pool = events();
        for i in 1..=4 {
            assert!(push(&mut edge, event(&pool, i)).is_ok());
        }
        assert_eq!((edge.pushed, edge.dropped), (4, 2));
        let kept: Vec<u32> = std::iter::from_fn(|| edge.pop()).map(code).collect();
        assert_eq!(kept, [3, 4]);
    }

    #[test]
    fn block_hands_the_packet_back_and_drops_nothing() {
        let mut edge = edge(1, EdgePolicy::Block);
        let pool = events();
        assert!(push(&mut edge, event(&pool, 1)).is_ok());
        let refused = push(&mut edge, event(&pool, 2)).err().map(code);
        assert_eq!(refused, Some(2));
        assert_eq!((edge.pushed, edge.dropped), (1, 0));
    }

    #[test]
    fn drop_oldest_into_another_thread_drops_the_oldest_there_too() {
        let (producer, consumer) = hsp_sdk::runtime::SharedQueue::new(2);
        let mut into = Edge {
            producer: Some(Producer::Shared(producer)),
            consumer: None,
            ..edge(1, EdgePolicy::DropOldest)
        };
        let mut out_of = Edge {
            producer: None,
            consumer: Some(Consumer::Shared {
                queue: consumer,
                next: None,
            }),
            ..edge(1, EdgePolicy::DropOldest)
        };
        let pool = events();
        for i in 1..=5 {
            assert!(push(&mut into, event(&pool, i)).is_ok());
        }
        assert_eq!((into.pushed, into.dropped), (5, 3));
        assert_eq!(out_of.next_timestamp(), Some(0));
        let kept: Vec<u32> = std::iter::from_fn(|| out_of.pop()).map(code).collect();
        assert_eq!(kept, [4, 5]);
        drop(into);
        assert!(out_of.is_finished());
    }

    #[test]
    fn a_closed_edge_swallows_the_packet() {
        let mut edge = edge(1, EdgePolicy::Block);
        edge.producer = None;
        let pool = events();
        assert!(push(&mut edge, event(&pool, 1)).is_ok());
        assert_eq!(edge.pushed, 0);
    }
}
