//! The router: who reads whom on the control plane. Each reader gets a copy
//! of every packet it reads, from a pool of its own, through a bounded
//! channel written with `try_send`.

use super::ControlCounters;
use super::bump;
use crate::runtime::packets::{OutputPool, copy_into};
use hsp_sdk::runtime::PipelineData;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc;

/// One packet for a control stage: who produced it, and the packet (its
/// own: a reader may hold it across threads).
pub struct ControlMessage {
    /// Pipeline id of the producing stage.
    pub from: Arc<str>,
    /// The packet.
    pub packet: PipelineData,
}

struct Subscriber {
    to: String,
    tx: mpsc::Sender<ControlMessage>,
    counters: Arc<ControlCounters>,
    /// Pass one packet in this many.
    decimate: u64,
    /// Packets offered so far.
    offered: u64,
    /// This reader's own packets, which its copies are made into: as many
    /// as its queue holds plus the one in its call. A slow reader exhausts
    /// only its own pool; made at the first delivery, sized for the packet.
    pool: Option<OutputPool>,
    capacity: usize,
}

/// Who reads whom on the control plane.
#[derive(Default)]
pub struct Router {
    routes: Mutex<HashMap<String, Vec<Subscriber>>>,
}

impl Router {
    /// Hands a copy of `packet` from `from` to every control stage reading
    /// it, each copy from that reader's own pool; the packet itself goes
    /// back to its pool when the caller drops it. A full channel, or a
    /// reader whose packets are all queued, drops the copy (counted).
    pub fn deliver(&self, from: &Arc<str>, packet: &PipelineData) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(subscribers) = routes.get_mut(&**from) else {
            return;
        };
        for subscriber in subscribers {
            let offered = subscriber.offered;
            subscriber.offered += 1;
            if offered % subscriber.decimate != 0 {
                continue;
            }
            if subscriber.pool.is_none() {
                subscriber.pool = Some(OutputPool::for_copies_of(packet, subscriber.capacity + 1));
            }
            let copy = subscriber.pool.as_ref().and_then(|pool| {
                pool.try_acquire()
                    .and_then(|mut copy| copy_into(packet, &mut copy).then_some(copy))
            });
            let sent = copy.is_some_and(|packet| {
                let message = ControlMessage {
                    from: Arc::clone(from),
                    packet,
                };
                subscriber.tx.try_send(message).is_ok()
            });
            if !sent {
                bump(&subscriber.counters.dropped);
            }
        }
    }

    /// Makes `to` read `inputs` through `tx`, replacing its routes in one
    /// step (nothing is delivered in between); with `carry`, first moves
    /// what is queued there into `tx`, under the same lock, so that nothing
    /// is lost or reordered when a channel is replaced.
    pub(super) fn set_routes(
        &self,
        to: &str,
        inputs: &[(String, usize)],
        tx: &mpsc::Sender<ControlMessage>,
        counters: &Arc<ControlCounters>,
        capacity: usize,
        carry: Option<&mut mpsc::Receiver<ControlMessage>>,
    ) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = carry {
            while let Ok(message) = old.try_recv() {
                if tx.try_send(message).is_err() {
                    bump(&counters.dropped);
                }
            }
        }
        for subscribers in routes.values_mut() {
            subscribers.retain(|s| s.to != to);
        }
        for (input, decimate) in inputs {
            routes.entry(input.clone()).or_default().push(Subscriber {
                to: to.to_string(),
                tx: tx.clone(),
                counters: Arc::clone(counters),
                decimate: (*decimate).max(1) as u64,
                offered: 0,
                pool: None,
                capacity,
            });
        }
    }

    /// Removes every route into `to`.
    pub(super) fn unsubscribe(&self, to: &str) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        for subscribers in routes.values_mut() {
            subscribers.retain(|s| s.to != to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::control_plane::{EVENT_POOL, event_pool};
    use hsp_sdk::Event;
    use std::sync::atomic::Ordering;

    fn event(pool: &OutputPool, code: u32) -> PipelineData {
        match pool.try_acquire() {
            Some(PipelineData::Event(mut pooled)) => {
                *pooled = Event::new(code, "test");
                PipelineData::Event(pooled)
            }
            _ => panic!("a pooled event"),
        }
    }

    /// Makes `to` read stage "a" through a channel of `capacity`.
    fn reader(
        router: &Router,
        to: &str,
        capacity: usize,
        decimate: usize,
    ) -> (mpsc::Receiver<ControlMessage>, Arc<ControlCounters>) {
        let counters = Arc::new(ControlCounters::default());
        let (tx, rx) = mpsc::channel(capacity);
        let inputs = [("a".to_string(), decimate)];
        router.set_routes(to, &inputs, &tx, &counters, capacity, None);
        (rx, counters)
    }

    #[tokio::test]
    async fn a_slow_reader_drops_its_own_copies_only_and_counts_them() {
        let router = Router::default();
        let (mut slow_rx, slow) = reader(&router, "slow", 1, 1);
        let (mut fast_rx, fast) = reader(&router, "fast", 8, 1);
        let from: Arc<str> = "a".into();
        let pool = event_pool();
        for code in 0..3 {
            router.deliver(&from, &event(&pool, code));
        }
        // Every original went home at once: readers hold copies of their own.
        assert_eq!(pool.stats().available, EVENT_POOL);
        assert_eq!(slow.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(fast.dropped.load(Ordering::Relaxed), 0);
        assert!(slow_rx.recv().await.is_some());
        for code in 0..3 {
            let message = fast_rx.recv().await.expect("a message");
            assert_eq!(&*message.from, "a");
            match message.packet {
                PipelineData::Event(event) => assert_eq!(event.code, code),
                other => panic!("expected an event, got {:?}", other.kind()),
            }
        }
        router.unsubscribe("fast");
        router.deliver(&from, &event(&pool, 9));
        assert!(fast_rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_decimated_reader_gets_one_packet_in_n_starting_with_the_first() {
        let router = Router::default();
        let (mut rx, _) = reader(&router, "thin", 16, 3);
        let from: Arc<str> = "a".into();
        let pool = event_pool();
        for code in 0..7 {
            router.deliver(&from, &event(&pool, code));
        }
        let mut codes = Vec::new();
        while let Ok(message) = rx.try_recv() {
            if let PipelineData::Event(event) = &message.packet {
                codes.push(event.code);
            }
        }
        assert_eq!(codes, [0, 3, 6]);
    }

    #[tokio::test]
    async fn a_new_channel_takes_over_what_was_queued_in_order() {
        let router = Router::default();
        let (mut old_rx, counters) = reader(&router, "r", 4, 1);
        let from: Arc<str> = "a".into();
        let pool = event_pool();
        for code in 0..3 {
            router.deliver(&from, &event(&pool, code));
        }
        let (tx, mut rx) = mpsc::channel(8);
        let inputs = [("a".to_string(), 1)];
        router.set_routes("r", &inputs, &tx, &counters, 8, Some(&mut old_rx));
        router.deliver(&from, &event(&pool, 3));
        let codes: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|m| match m.packet {
                PipelineData::Event(event) => Some(event.code),
                _ => None,
            })
            .collect();
        assert_eq!(codes, [0, 1, 2, 3]);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 0);
    }
}
