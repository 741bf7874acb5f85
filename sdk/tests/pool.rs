//! Every packet comes home, on every path; waiters are all served.

use hsp_sdk::runtime::{MemoryPool, PipelineData, StageQueue};
use hsp_sdk::{EegPacket, PlanarBlock};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

fn eeg_pool(capacity: usize) -> MemoryPool<EegPacket> {
    MemoryPool::with_init(capacity, |_| EegPacket::with_capacity(4, 8))
}

#[test]
fn emptied_pool_is_full_again_after_every_packet_is_dropped() {
    let pool = eeg_pool(16);
    let taken: Vec<_> = std::iter::from_fn(|| pool.try_acquire()).collect();
    assert_eq!(taken.len(), 16);
    assert_eq!(pool.available(), 0);
    assert!(pool.try_acquire().is_none());
    assert_eq!(pool.low_water_mark(), 0);
    drop(taken);
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn slots_are_distinct_and_keep_their_data() {
    let pool: MemoryPool<u32> = MemoryPool::with_init(4, |i| i as u32 * 10);
    let held: Vec<_> = std::iter::from_fn(|| pool.try_acquire()).collect();
    let mut seen: Vec<u32> = held.iter().map(|p| **p).collect();
    seen.sort_unstable();
    assert_eq!(seen, [0, 10, 20, 30]);
}

#[test]
fn packet_returns_when_its_holder_panics() {
    let pool = Arc::new(eeg_pool(2));
    let worker_pool = Arc::clone(&pool);
    let outcome = thread::spawn(move || {
        let _held = worker_pool.try_acquire().unwrap();
        let _also = worker_pool.try_acquire().unwrap();
        panic!("stage failed while holding two packets");
    })
    .join();
    assert!(outcome.is_err());
    assert_eq!(pool.available(), 2);
}

#[test]
fn packets_inside_a_dropped_consumer_come_home_at_once() {
    let pool = eeg_pool(8);
    let (mut tx, rx) = StageQueue::new(8).split();
    for _ in 0..8 {
        tx.push(PipelineData::RawEeg(pool.try_acquire().unwrap()))
            .unwrap();
    }
    assert_eq!(pool.available(), 0);
    drop(rx);
    // The producer is still alive: the consumer's drop drained the queue.
    assert_eq!(pool.available(), 8);
    let refused = tx.push(PipelineData::RawEeg(pool.try_acquire().unwrap()));
    assert!(matches!(
        refused,
        Err(hsp_sdk::runtime::PushError::Closed(_))
    ));
    drop(refused);
    assert_eq!(pool.available(), 8);
}

#[test]
fn packets_left_in_a_queue_at_shutdown_come_home() {
    let pool = eeg_pool(4);
    let (mut tx, rx) = StageQueue::new(4).split();
    for _ in 0..3 {
        tx.push(pool.try_acquire().unwrap()).unwrap();
    }
    drop(tx);
    drop(rx);
    assert_eq!(pool.available(), 4);
}

#[test]
fn packets_may_outlive_their_pool() {
    let pool = eeg_pool(2);
    let mut survivor = pool.try_acquire().unwrap();
    drop(pool);
    survivor.set_shape(2, 2).unwrap();
    survivor.values_mut().fill(3.0);
    assert_eq!(survivor.values(), &[3.0; 4]);
    drop(survivor); // returns into orphaned storage, freed now
}

#[test]
fn blocking_acquire_waits_for_a_release_from_another_thread() {
    let pool = Arc::new(eeg_pool(1));
    let held = pool.try_acquire().unwrap();
    let waiter_pool = Arc::clone(&pool);
    let waiter = thread::spawn(move || {
        let packet = waiter_pool.acquire_blocking();
        packet.capacity()
    });
    thread::sleep(Duration::from_millis(50));
    assert!(
        !waiter.is_finished(),
        "acquire must wait while the pool is empty"
    );
    drop(held);
    assert_eq!(waiter.join().unwrap(), 32);
    assert_eq!(pool.waits(), 1);
    assert_eq!(pool.available(), 1);
}

#[test]
fn many_blocking_waiters_are_all_served() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 2_000;
    let pool = Arc::new(eeg_pool(2));
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let pool = Arc::clone(&pool);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for _ in 0..ROUNDS {
                    let mut packet = pool.acquire_blocking();
                    packet.sequence += 1;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(pool.available(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_async_waiters_are_all_served() {
    const TASKS: usize = 32;
    const ROUNDS: usize = 500;
    let pool = Arc::new(eeg_pool(3));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    let packet = pool.acquire().await;
                    tokio::task::yield_now().await;
                    drop(packet);
                }
            })
        })
        .collect();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("a waiter was never woken")
            .unwrap();
    }
    assert_eq!(pool.available(), 3);
    assert!(pool.waits() > 0, "the test must exercise waiting");
}

#[tokio::test]
async fn a_cancelled_acquire_loses_no_packet() {
    let pool = eeg_pool(1);
    let held = pool.try_acquire().unwrap();
    let timed_out = tokio::time::timeout(Duration::from_millis(20), pool.acquire()).await;
    assert!(timed_out.is_err());
    drop(held);
    let again = tokio::time::timeout(Duration::from_secs(5), pool.acquire()).await;
    assert!(again.is_ok());
}

#[test]
fn async_acquire_works_under_a_plain_thread_executor() {
    let pool = Arc::new(eeg_pool(1));
    let held = pool.try_acquire().unwrap();
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        drop(held);
    });
    // No tokio here: a minimal executor parks the thread between polls.
    let packet = block_on(pool.acquire());
    releaser.join().unwrap();
    assert_eq!(packet.capacity(), 32);
}

fn block_on<F: Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}
