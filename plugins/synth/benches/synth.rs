//! The `synth` source on the workload: 64 channels at 1 kHz in
//! blocks of 32 samples, unpaced.
//!
//! `cargo bench -p hsp-synth --bench synth`. Divan reports time per block
//! and channel-samples per second; ns per sample is the median over 2048.
//! Only the stage API is used, so the same file measures an older build
//! (copy it into a checkout of that commit) for a before/after ratio.

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use hsp_sdk::{EegPacket, PlanarBlock, Stage};
use hsp_synth::{Synth, SynthStageConfig};

fn main() {
    divan::main();
}

#[divan::bench(args = [8, 64])]
fn block_of_32(bencher: Bencher, channels: usize) {
    let config = SynthStageConfig {
        channels: channels as i64,
        sample_rate_hz: 1000.0,
        block_size: 32,
        seed: 1,
        duration_s: 0.0,
        samples: 0,
        realtime: false,
        stream_id: 0,
        stimulus_every_s: 0.0,
        evoked_uv: 0.0,
    };
    let mut synth = Synth::new(config, &[]).unwrap();
    let mut output = EegPacket::with_capacity(channels, 32);
    bencher
        .counter(ItemsCount::new(channels * 32))
        .bench_local(|| {
            synth.next_block(&mut output).unwrap();
            black_box(output.values());
        });
}
