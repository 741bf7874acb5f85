//! The `fft` stage on the workload: 64 channels at 1 kHz in blocks
//! of 32 samples, a 256-point Hann frame every 128 samples, power bins.
//!
//! `cargo bench -p hsp-fft --bench fft`. One iteration pushes the four
//! blocks that complete one frame and takes the frame, so the time is per
//! frame (64 channels). Only the stage API is used, so the same file
//! measures an older build (copy it into a checkout of that commit).

use divan::{Bencher, black_box};
use hsp_fft::{Fft, FftConfig};
use hsp_sdk::{
    EegPacket, FftPacket, FilteredEegPacket, Outcome, PacketKind, PlanarBlock, Stage, StreamFormat,
};

fn main() {
    divan::main();
}

const CHANNELS: usize = 64;
const BLOCK: usize = 32;
const FS: f64 = 1000.0;

#[divan::bench(args = ["power", "magnitude"])]
fn frame_of_64_channels(bencher: Bencher, scale: &str) {
    let format = StreamFormat::eeg(PacketKind::FilteredEeg, CHANNELS, FS, BLOCK);
    let config = FftConfig {
        size: 256,
        hop: 128,
        window: "hann".into(),
        scale: scale.into(),
    };
    let mut stage = Fft::new(config, std::slice::from_ref(&format)).unwrap();
    let mut block = EegPacket::with_capacity(CHANNELS, BLOCK);
    block.sample_rate_hz = FS;
    for (i, v) in block.values_mut().iter_mut().enumerate() {
        *v = ((i * 7919) % 1000) as f32 / 10.0 - 50.0;
    }
    let block = FilteredEegPacket(block);
    let mut output = FftPacket::with_capacity(CHANNELS, 129);
    // Reach the steady state: from here every fourth block completes a frame.
    for _ in 0..8 {
        stage.process(Some(&block), &mut output).unwrap();
    }
    bencher.bench_local(|| {
        let mut frames = 0;
        for _ in 0..4 {
            let outcome = stage.process(Some(black_box(&block)), &mut output).unwrap();
            frames += usize::from(outcome == Outcome::Emitted);
        }
        assert_eq!(frames, 1);
        black_box(output.values());
    });
}
