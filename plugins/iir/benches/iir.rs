//! The IIR stages on the EEG workload: 64 channels at 1 kHz in
//! blocks of 32 samples, a 4th-order band-pass (4 sections) then a 50 Hz
//! notch (1 section).
//!
//! `cargo bench -p hsp-iir --bench iir`. Divan reports time per block and
//! samples per second (`ItemsCount` = channel-samples); ns per sample is
//! the median over 2048. `stage::*` uses only the stage API, so the same
//! file measures an older build; `kernel::*` puts the lane kernel
//! (`process_planar`) beside the one-channel-at-a-time loop
//! (`process_channel`, the kernel before lanes) in the same run.

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use hsp_iir::{Iir, IirConfig};
use hsp_sdk::{EegPacket, FilteredEegPacket, PacketKind, PlanarBlock, Stage, StreamFormat};

fn main() {
    divan::main();
}

const CHANNELS: usize = 64;
const BLOCK: usize = 32;
const FS: f64 = 1000.0;

/// EEG-sized noise (about +-50 uV), different on every channel.
fn block() -> EegPacket {
    let mut packet = EegPacket::with_capacity(CHANNELS, BLOCK);
    packet.sample_rate_hz = FS;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for v in packet.values_mut() {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        *v = ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 100.0;
    }
    packet
}

fn config(filter_type: &str, cutoff_hz: &[f64]) -> IirConfig {
    IirConfig {
        filter_type: filter_type.into(),
        order: 4,
        cutoff_hz: cutoff_hz.to_vec(),
        quality: 30.0,
    }
}

mod stage {
    use super::*;

    /// Band-pass 1-40 Hz then notch 50 Hz, as two stages pass a block on.
    #[divan::bench]
    fn bandpass_then_notch(bencher: Bencher) {
        let raw = StreamFormat::eeg(PacketKind::RawEeg, CHANNELS, FS, BLOCK);
        let filtered = StreamFormat::eeg(PacketKind::FilteredEeg, CHANNELS, FS, BLOCK);
        let mut bandpass = Iir::new(config("bandpass", &[1.0, 40.0]), &[raw]).unwrap();
        // Filtered in, filtered out: the host runs the notch in place.
        let mut notch = Iir::new(config("notch", &[50.0]), &[filtered]).unwrap();
        let input = block();
        let mut middle = FilteredEegPacket::with_capacity(CHANNELS, BLOCK);
        bencher
            .counter(ItemsCount::new(CHANNELS * BLOCK))
            .bench_local(|| {
                bandpass
                    .process(Some(black_box(&input)), &mut middle)
                    .unwrap();
                notch.process_in_place(&mut middle).unwrap();
                black_box(&middle);
            });
    }
}

mod kernel {
    use super::*;
    use hsp_iir::design::{FilterKind, SosFilter, butterworth, iirnotch};

    /// Times `run` on the same five sections in one cascade, over one
    /// block of all channels.
    fn bench(bencher: Bencher, mut run: impl FnMut(&mut SosFilter, &mut [f32])) {
        let mut sections = butterworth(FilterKind::BandPass, 4, &[1.0, 40.0], FS).unwrap();
        sections.push(iirnotch(50.0, 30.0, FS).unwrap());
        let mut filter = SosFilter::new(sections, CHANNELS).unwrap();
        let mut data = block();
        bencher
            .counter(ItemsCount::new(CHANNELS * BLOCK))
            .bench_local(|| run(&mut filter, black_box(data.values_mut())));
    }

    /// Eight channels per pass, in SIMD lanes.
    #[divan::bench]
    fn lanes(bencher: Bencher) {
        bench(bencher, |filter, samples| {
            filter.process_planar(samples, BLOCK).unwrap();
        });
    }

    /// One channel after another: the scalar recurrence.
    #[divan::bench]
    fn per_channel(bencher: Bencher) {
        bench(bencher, |filter, samples| {
            for (channel, samples) in samples.chunks_exact_mut(BLOCK).enumerate() {
                filter.process_channel(channel, samples).unwrap();
            }
        });
    }
}
