//! An edge between two data-plane stages and the push that applies its
//! full-queue policy.

use crate::graph::EdgePolicy;
use hsp_sdk::runtime::{PipelineData, PolledConsumer, PolledProducer};

/// An edge between two data-plane stages. Both ends are driven by this
/// thread, which polls, so the queue needs no wake-ups (`PolledQueue`).
pub(super) struct Edge {
    pub(super) producer: Option<PolledProducer<PipelineData>>,
    pub(super) consumer: PolledConsumer<PipelineData>,
    pub(super) policy: EdgePolicy,
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) pushed: u64,
    pub(super) dropped: u64,
    /// The consuming stage has finished: pushes are let go.
    pub(super) downstream_gone: bool,
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
    match producer.push(item) {
        Ok(()) => {
            edge.pushed += 1;
            Ok(())
        }
        Err(hsp_sdk::runtime::PushError::Closed(_)) => Ok(()),
        Err(hsp_sdk::runtime::PushError::Full(item)) => match edge.policy {
            EdgePolicy::Block => Err(item),
            EdgePolicy::DropOldest => {
                // Both ends of a data-plane edge live on this thread, so the
                // producer side may take from the consumer side.
                drop(edge.consumer.pop());
                edge.dropped += 1;
                match producer.push(item) {
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
            producer: Some(producer),
            consumer,
            policy,
            from: 0,
            to: 1,
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
        let kept: Vec<u32> = std::iter::from_fn(|| edge.consumer.pop())
            .map(code)
            .collect();
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
    fn a_closed_edge_swallows_the_packet() {
        let mut edge = edge(1, EdgePolicy::Block);
        edge.producer = None;
        let pool = events();
        assert!(push(&mut edge, event(&pool, 1)).is_ok());
        assert_eq!(edge.pushed, 0);
    }
}
