//! The generator as it was before channels ran in SIMD lanes: one channel
//! after another, one sample at a time, each sine from the platform's
//! `sin`. Kept for the tests, which check that the lane generator gives
//! the same samples (to within one f32 rounding step; see `sin_turns`).

use super::{PINK_WARMUP, SynthConfig, mix, start_cycle, unit};
use rand_pcg::Pcg32;
use rand_pcg::rand_core::SeedableRng;
use std::f64::consts::{PI, TAU};

/// Sine with phase kept in cycles.
struct Osc {
    step: f64,
    cycle: f64,
    amp: f64,
}

impl Osc {
    fn new(freq_hz: f64, fs: f64, phase_rad: f64, amp: f64) -> Self {
        Osc {
            step: freq_hz / fs,
            cycle: start_cycle(phase_rad),
            amp,
        }
    }

    fn next(&mut self) -> f64 {
        let v = self.amp * (TAU * self.cycle).sin();
        self.cycle += self.step;
        if self.cycle >= 1.0 {
            self.cycle -= 1.0;
        }
        v
    }
}

/// Paul Kellet's refined pinking filter, one channel.
#[derive(Default)]
struct Pink {
    b: [f64; 7],
}

impl Pink {
    fn next(&mut self, white: f64) -> f64 {
        let b = &mut self.b;
        b[0] = 0.99886 * b[0] + white * 0.0555179;
        b[1] = 0.99332 * b[1] + white * 0.0750759;
        b[2] = 0.96900 * b[2] + white * 0.1538520;
        b[3] = 0.86650 * b[3] + white * 0.3104856;
        b[4] = 0.55000 * b[4] + white * 0.5329522;
        b[5] = -0.7616 * b[5] - white * 0.0168980;
        let pink = b[0] + b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + white * 0.5362;
        b[6] = white * 0.115926;
        pink
    }
}

struct Channel {
    steady: [Osc; 3],
    burst: Osc,
    pink: Pink,
    noise_rng: Pcg32,
    gate_rng: Pcg32,
    gate_on: bool,
    gate_left: u64,
    envelope: f64,
}

impl Channel {
    fn pink(&mut self) -> f64 {
        let white = 2.0 * unit(&mut self.noise_rng) - 1.0;
        self.pink.next(white)
    }
}

/// The previous generator: same config, same seed streams.
pub(super) struct Reference {
    cfg: SynthConfig,
    channels: Vec<Channel>,
}

impl Reference {
    pub(super) fn new(cfg: SynthConfig) -> Self {
        let fs = cfg.sample_rate_hz;
        let channels = (0..cfg.channels)
            .map(|c| {
                let cf = c as f64;
                let alpha_scale = 1.0 - 0.1 * (c % 4) as f64;
                let mut ch = Channel {
                    steady: [
                        Osc::new(6.0, fs, cf * PI / 3.0, cfg.theta_uv),
                        Osc::new(10.0, fs, cf * PI / 8.0, cfg.alpha_uv * alpha_scale),
                        Osc::new(20.0, fs, cf * PI / 5.0, cfg.beta_uv),
                    ],
                    burst: Osc::new(10.0, fs, cf * PI / 8.0, cfg.burst_uv),
                    pink: Pink::default(),
                    noise_rng: Pcg32::seed_from_u64(mix(cfg.seed, c, 1)),
                    gate_rng: Pcg32::seed_from_u64(mix(cfg.seed, c, 2)),
                    gate_on: false,
                    gate_left: 0,
                    envelope: 0.0,
                };
                for _ in 0..PINK_WARMUP {
                    ch.pink();
                }
                ch
            })
            .collect();
        Reference { cfg, channels }
    }

    /// Planar samples, as `EegSynth::fill`.
    pub(super) fn fill(&mut self, samples: &mut [f32], samples_per_channel: usize) {
        let fs = self.cfg.sample_rate_hz;
        let env_coef = 1.0 - (-1.0 / (0.150 * fs)).exp();
        let pink_gain = self.cfg.pink_rms_uv / super::KELLET_RMS;
        for (ch, out) in self
            .channels
            .iter_mut()
            .zip(samples.chunks_exact_mut(samples_per_channel))
        {
            for v in out.iter_mut() {
                if ch.gate_left == 0 {
                    ch.gate_on = !ch.gate_on;
                    let (min_s, max_s) = if ch.gate_on { (0.5, 2.0) } else { (1.0, 4.0) };
                    let secs = min_s + (max_s - min_s) * unit(&mut ch.gate_rng);
                    ch.gate_left = ((secs * fs) as u64).max(1);
                }
                ch.gate_left -= 1;
                let target = if ch.gate_on { 1.0 } else { 0.0 };
                ch.envelope += (target - ch.envelope) * env_coef;

                let mut x = ch.pink() * pink_gain;
                for osc in &mut ch.steady {
                    x += osc.next();
                }
                x += ch.envelope * ch.burst.next();
                *v = x as f32;
            }
        }
    }
}
