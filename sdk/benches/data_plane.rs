//! Data-plane costs, each beside the baseline it should be compared with.
//!
//! `cargo bench -p hsp-sdk --bench data_plane`. Read ratios, not absolutes:
//! the machines are shared and noisy, so every baseline runs in the same
//! process as the thing it is compared with.

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use hsp_sdk::runtime::{MemoryPool, PipelineData, StageQueue};
use hsp_sdk::{EegPacket, PlanarBlock};

fn main() {
    divan::main();
}

const CHANNELS: usize = 8;
const BLOCK: usize = 32;

fn eeg_pool(capacity: usize) -> MemoryPool<EegPacket> {
    MemoryPool::with_init(capacity, |_| EegPacket::with_capacity(CHANNELS, BLOCK))
}

mod baseline {
    use super::*;

    /// `rtrb` alone: the floor under `StageQueue`.
    #[divan::bench]
    fn rtrb_push_pop(bencher: Bencher) {
        let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(64);
        bencher.bench_local(|| {
            tx.push(black_box(7)).unwrap();
            black_box(rx.pop().unwrap());
        });
    }

    /// `crossbeam`'s `ArrayQueue` alone: the floor under `MemoryPool`.
    #[divan::bench]
    fn array_queue_pop_push(bencher: Bencher) {
        let queue = crossbeam_queue::ArrayQueue::<u32>::new(64);
        for i in 0..64 {
            queue.push(i).unwrap();
        }
        bencher.bench_local(|| {
            let index = queue.pop().unwrap();
            queue.push(black_box(index)).unwrap();
        });
    }

    /// What the hybrid runtime replaces: three tokio tasks joined by
    /// `tokio::sync::mpsc`, source -> stage -> sink, per packet.
    #[divan::bench(args = [10_000])]
    fn tokio_mpsc_chain_of_three_tasks(bencher: Bencher, packets: usize) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let pool = std::sync::Arc::new(eeg_pool(64));
        bencher.counter(ItemsCount::new(packets)).bench_local(|| {
            let pool = std::sync::Arc::clone(&pool);
            runtime.block_on(async move {
                let (to_stage, mut stage_in) = tokio::sync::mpsc::channel::<PipelineData>(64);
                let (to_sink, mut sink_in) = tokio::sync::mpsc::channel::<PipelineData>(64);
                let source = tokio::spawn(async move {
                    for i in 0..packets {
                        let mut packet = pool.acquire().await;
                        packet.sequence = i as u64;
                        to_stage.send(PipelineData::RawEeg(packet)).await.unwrap();
                    }
                });
                let stage = tokio::spawn(async move {
                    while let Some(item) = stage_in.recv().await {
                        to_sink.send(item).await.unwrap();
                    }
                });
                let mut received = 0;
                while let Some(item) = sink_in.recv().await {
                    black_box(&item);
                    received += 1;
                }
                source.await.unwrap();
                stage.await.unwrap();
                assert_eq!(received, packets);
            });
        });
    }
}

mod hsp {
    use super::*;

    #[divan::bench]
    fn pool_acquire_release(bencher: Bencher) {
        let pool = eeg_pool(64);
        bencher.bench_local(|| {
            black_box(pool.try_acquire().unwrap());
        });
    }

    #[divan::bench]
    fn queue_push_pop(bencher: Bencher) {
        let mut queue = StageQueue::<u64>::new(64);
        bencher.bench_local(|| {
            queue.push(black_box(7)).unwrap();
            black_box(queue.pop().unwrap());
        });
    }

    /// An edge both of whose ends one polling thread drives: no wake-ups.
    #[divan::bench]
    fn polled_queue_push_pop(bencher: Bencher) {
        let (mut tx, mut rx) = hsp_sdk::runtime::PolledQueue::new::<u64>(64);
        bencher.bench_local(|| {
            tx.push(black_box(7)).unwrap();
            black_box(rx.pop().unwrap());
        });
    }

    /// The 3-stage chain over polled edges, as the runtime's data plane runs it.
    #[divan::bench]
    fn chain_of_three_stages_on_one_thread_polled(bencher: Bencher) {
        let pool = eeg_pool(64);
        let (mut to_stage, mut stage_in) = hsp_sdk::runtime::PolledQueue::new::<PipelineData>(64);
        let (mut to_sink, mut sink_in) = hsp_sdk::runtime::PolledQueue::new::<PipelineData>(64);
        let mut sequence = 0;
        bencher.bench_local(|| {
            let mut packet = pool.try_acquire().unwrap();
            packet.sequence = sequence;
            sequence += 1;
            to_stage.push(PipelineData::RawEeg(packet)).unwrap();
            let item = stage_in.pop().unwrap();
            to_sink.push(item).unwrap();
            black_box(sink_in.pop().unwrap());
        });
    }

    /// The data-plane thread's work per packet in a 3-stage chain: acquire at
    /// the source, two queue hops, drop at the sink.
    #[divan::bench]
    fn chain_of_three_stages_on_one_thread(bencher: Bencher) {
        let pool = eeg_pool(64);
        let mut source_to_stage = StageQueue::<PipelineData>::new(64);
        let mut stage_to_sink = StageQueue::<PipelineData>::new(64);
        let mut sequence = 0;
        bencher.bench_local(|| {
            let mut packet = pool.try_acquire().unwrap();
            packet.sequence = sequence;
            sequence += 1;
            source_to_stage.push(PipelineData::RawEeg(packet)).unwrap();
            let item = source_to_stage.pop().unwrap();
            stage_to_sink.push(item).unwrap();
            black_box(stage_to_sink.pop().unwrap());
        });
    }
}
