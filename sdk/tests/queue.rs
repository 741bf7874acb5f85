//! Queue semantics: backpressure, close-and-drain, async and blocking waits.

use hsp_sdk::runtime::{Input, Output, PushError, StageQueue};
use std::thread;
use std::time::Duration;

#[test]
fn a_full_queue_refuses_and_hands_the_item_back() {
    let mut queue = StageQueue::new(2);
    queue.push("a").unwrap();
    queue.push("b").unwrap();
    assert_eq!(queue.push("c"), Err(PushError::Full("c")));
    assert_eq!(queue.pop(), Some("a"));
    queue.push("c").unwrap();
}

#[test]
fn receiver_drains_everything_then_sees_the_end() {
    let (mut tx, mut rx) = StageQueue::new(16).split();
    let producer = thread::spawn(move || {
        for i in 0..10_000u32 {
            tx.push_blocking(i).unwrap();
        }
    });
    let mut expected = 0;
    while let Some(value) = rx.pop_blocking() {
        assert_eq!(value, expected);
        expected += 1;
    }
    producer.join().unwrap();
    assert_eq!(expected, 10_000);
    assert!(rx.is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_send_and_recv_preserve_order_under_backpressure() {
    let (mut tx, mut rx) = StageQueue::new(4).split();
    let producer = tokio::spawn(async move {
        for i in 0..20_000u64 {
            tx.send(i).await.unwrap();
        }
    });
    let mut sum = 0u64;
    let mut count = 0u64;
    while let Some(value) = rx.recv().await {
        assert_eq!(value, count);
        sum += value;
        count += 1;
    }
    producer.await.unwrap();
    assert_eq!(count, 20_000);
    assert_eq!(sum, 20_000 * 19_999 / 2);
}

#[tokio::test]
async fn send_to_a_gone_consumer_returns_the_item() {
    let (mut tx, rx) = StageQueue::new(1).split();
    tx.send(1).await.unwrap();
    let waiting = tokio::spawn(async move { tx.send(2).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(rx);
    let result = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("a blocked sender must wake when the consumer goes")
        .unwrap();
    assert_eq!(result.unwrap_err().0, 2);
}

#[tokio::test]
async fn recv_wakes_when_the_producer_goes() {
    let (tx, mut rx) = StageQueue::<u8>::new(1).split();
    let waiting = tokio::spawn(async move { rx.recv().await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(tx);
    let result = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("recv must wake at close")
        .unwrap();
    assert_eq!(result, None);
}

mod polled {
    use hsp_sdk::runtime::{MemoryPool, PolledQueue, PushError};
    use hsp_sdk::{EegPacket, PlanarBlock};

    #[test]
    fn full_then_drained_then_finished() {
        let (mut tx, mut rx) = PolledQueue::new(2);
        tx.push(1).unwrap();
        tx.push(2).unwrap();
        assert_eq!(tx.push(3), Err(PushError::Full(3)));
        assert_eq!(rx.pop(), Some(1));
        tx.push(3).unwrap();
        assert!(!rx.is_finished());
        drop(tx);
        assert!(!rx.is_finished(), "items are still queued");
        assert_eq!((rx.pop(), rx.pop(), rx.pop()), (Some(2), Some(3), None));
        assert!(rx.is_finished());
    }

    #[test]
    fn a_dropped_consumer_sends_packets_home_and_refuses_more() {
        let pool = MemoryPool::with_init(3, |_| EegPacket::with_capacity(1, 1));
        let (mut tx, rx) = PolledQueue::new(4);
        tx.push(pool.try_acquire().unwrap()).unwrap();
        tx.push(pool.try_acquire().unwrap()).unwrap();
        drop(rx);
        assert_eq!(pool.available(), 3);
        let refused = tx.push(pool.try_acquire().unwrap());
        assert!(matches!(refused, Err(PushError::Closed(_))));
        drop(refused);
        assert_eq!(pool.available(), 3);
    }
}
