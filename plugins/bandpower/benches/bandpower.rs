//! The `bandpower` stage on the workload: spectra of 64 channels,
//! 256-point FFT at 1 kHz (129 bins of 3.9 Hz), the five EEG bands.
//!
//! `cargo bench -p hsp-bandpower --bench bandpower`; the time per call is
//! the time per frame. Only the stage API is used, so the same file
//! measures an older build (copy it into a checkout of that commit).

use divan::{Bencher, black_box};
use hsp_bandpower::{Bandpower, BandpowerConfig};
use hsp_sdk::{
    FeaturePacket, FftPacket, PacketKind, PlanarBlock, SpectrumScale, Stage, StreamFormat,
};

fn main() {
    divan::main();
}

const CHANNELS: usize = 64;
const BINS: usize = 129;
const FS: f64 = 1000.0;

/// One frame of positive, uneven spectra.
fn frame(scale: SpectrumScale) -> FftPacket {
    let mut packet = FftPacket::with_capacity(CHANNELS, BINS);
    packet.bin_hz = FS / 256.0;
    packet.scale = scale;
    for (i, v) in packet.values_mut().iter_mut().enumerate() {
        *v = 1.0 + (i * 7919 % 1000) as f32;
    }
    packet
}

#[divan::bench(args = ["absolute", "relative", "relative_from_magnitude"])]
fn frame_of_64_channels(bencher: Bencher, mode: &str) {
    let format = StreamFormat {
        kind: PacketKind::Fft,
        channels: CHANNELS as u32,
        values_per_channel: BINS as u32,
        sample_rate_hz: FS,
        packet_rate_hz: FS / 128.0,
        ..StreamFormat::events()
    };
    let config = BandpowerConfig {
        edges_hz: Vec::new(),
        relative: mode != "absolute",
    };
    let mut stage = Bandpower::new(config, std::slice::from_ref(&format)).unwrap();
    let scale = if mode == "relative_from_magnitude" {
        SpectrumScale::Magnitude
    } else {
        SpectrumScale::Power
    };
    let input = frame(scale);
    let mut output = FeaturePacket::with_capacity(CHANNELS, stage.band_count());
    bencher.bench_local(|| {
        stage.process(Some(black_box(&input)), &mut output).unwrap();
        black_box(output.values());
    });
}
