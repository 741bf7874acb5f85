//! Three stages on three threads, joined by `StageQueue`s, sharing one pool:
//! a 10 Hz test source at 250 Hz, a gain stage, and a sink that checks what
//! arrives. Prints what crossed each edge and the pool's counters.
//!
//! `cargo run --release -p hsp-sdk --example three_stage_chain`

use hsp_sdk::runtime::{MemoryPool, PipelineData, StageQueue};
use hsp_sdk::{EegPacket, PlanarBlock};
use std::sync::Arc;
use std::thread;

const CHANNELS: usize = 8;
const BLOCK: usize = 25;
const RATE_HZ: f64 = 250.0;
const BLOCKS: u64 = 2_000;

fn main() {
    let pool = Arc::new(MemoryPool::with_init(16, |_| {
        EegPacket::with_capacity(CHANNELS, BLOCK)
    }));
    let (mut to_gain, mut gain_in) = StageQueue::<PipelineData>::new(4).split();
    let (mut to_sink, mut sink_in) = StageQueue::<PipelineData>::new(4).split();

    let source_pool = Arc::clone(&pool);
    let source = thread::spawn(move || {
        for sequence in 0..BLOCKS {
            let mut block = source_pool.acquire_blocking();
            block.sequence = sequence;
            block.sample_rate_hz = RATE_HZ;
            for channel in 0..CHANNELS {
                for (i, sample) in block.channel_mut(channel).iter_mut().enumerate() {
                    let t = (sequence as usize * BLOCK + i) as f64 / RATE_HZ;
                    *sample = (20.0 * (std::f64::consts::TAU * 10.0 * t).sin()) as f32;
                }
            }
            to_gain
                .push_blocking(PipelineData::RawEeg(block))
                .expect("gain stage alive");
        }
    });

    let gain = thread::spawn(move || {
        let mut forwarded = 0u64;
        while let Some(item) = gain_in.pop_blocking() {
            let PipelineData::RawEeg(mut block) = item else {
                unreachable!("the source only sends raw EEG")
            };
            block.values_mut().iter_mut().for_each(|s| *s *= 0.5);
            to_sink
                .push_blocking(PipelineData::RawEeg(block))
                .expect("sink alive");
            forwarded += 1;
        }
        forwarded
    });

    let mut received = 0u64;
    let mut peak = 0f32;
    while let Some(PipelineData::RawEeg(block)) = sink_in.pop_blocking() {
        assert_eq!(
            block.sequence, received,
            "blocks arrive in order, none lost"
        );
        peak = block.values().iter().fold(peak, |p, s| p.max(s.abs()));
        received += 1;
    }
    source.join().expect("source thread");
    let forwarded = gain.join().expect("gain thread");

    println!("source -> gain: {BLOCKS} blocks of {CHANNELS}x{BLOCK} samples");
    println!("gain -> sink:   {forwarded} blocks");
    println!("sink received:  {received} blocks, peak {peak:.2} uV (a 20 uV sine at gain 0.5)");
    println!("pool:           {:?}", pool.stats());
    assert_eq!(received, BLOCKS);
    assert_eq!(pool.available(), pool.capacity(), "every packet came home");
}
