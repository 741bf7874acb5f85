//! Deterministic synthetic EEG.
//!
//! Each channel `c` is the sum of (amplitudes in microvolts, configurable):
//! - steady sinusoids: theta 6 Hz, alpha 10 Hz, beta 20 Hz, with phases
//!   `c*pi/3`, `c*pi/8`, `c*pi/5` and alpha scaled by `1 - 0.1*(c % 4)`, so
//!   channels differ but stay correlated like neighbouring electrodes;
//! - pink (1/f power) noise: Paul Kellet's "refined" pinking filter fed by
//!   uniform white noise, normalised to `pink_rms_uv`;
//! - alpha bursts: a 10 Hz sine (phase `c*pi/8`) whose envelope follows a
//!   random on/off gate (on 0.5-2 s, off 1-4 s) through a 150 ms one-pole
//!   smoother, so bursts wax and wane instead of switching.
//!
//! Randomness comes from `rand_pcg::Pcg32` (PCG XSH RR 64/32, an algorithm
//! whose output is fixed by its definition, not by a crate version), two
//! streams per channel seeded from `(seed, channel)`. Output depends only on
//! the seed, the configuration and the number of samples generated so far,
//! never on how generation is split into `fill` calls.

use std::f64::consts::{PI, TAU};

use rand_pcg::Pcg32;
use rand_pcg::rand_core::{Rng, SeedableRng};
use thiserror::Error;

/// Lowest accepted sample rate: keeps every component (max 20 Hz) well
/// below Nyquist.
pub const MIN_SAMPLE_RATE_HZ: f64 = 64.0;

/// RMS of Kellet's refined filter driven by uniform noise on [-1, 1),
/// measured over 2e6 samples (numpy); dividing by it gives unit-RMS pink.
const KELLET_RMS: f64 = 1.7503;

/// Pinking-filter samples run at construction so output starts stationary:
/// the slowest pole (0.99886) decays by e^-4.7 over 4096 samples.
const PINK_WARMUP: usize = 4096;

/// Generator settings; amplitudes are peak values in microvolts except
/// `pink_rms_uv`.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Number of channels.
    pub channels: usize,
    /// Sample rate in Hz, at least [`MIN_SAMPLE_RATE_HZ`].
    pub sample_rate_hz: f64,
    /// Seed; equal seeds and settings give identical output.
    pub seed: u64,
    /// Steady 6 Hz theta amplitude.
    pub theta_uv: f64,
    /// Steady 10 Hz alpha amplitude (channel 0; others scaled down).
    pub alpha_uv: f64,
    /// Steady 20 Hz beta amplitude.
    pub beta_uv: f64,
    /// Peak amplitude of gated 10 Hz alpha bursts.
    pub burst_uv: f64,
    /// RMS of the pink background.
    pub pink_rms_uv: f64,
}

impl SynthConfig {
    /// Realistic resting-state defaults: theta 4, alpha 10, beta 4, bursts
    /// 25 uV, pink background 10 uV RMS (total around 15-20 uV RMS).
    pub fn new(channels: usize, sample_rate_hz: f64, seed: u64) -> Self {
        SynthConfig {
            channels,
            sample_rate_hz,
            seed,
            theta_uv: 4.0,
            alpha_uv: 10.0,
            beta_uv: 4.0,
            burst_uv: 25.0,
            pink_rms_uv: 10.0,
        }
    }
}

/// Why the generator rejected a configuration or a buffer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SynthError {
    /// Sample rate below [`MIN_SAMPLE_RATE_HZ`] or not finite.
    #[error("sample rate {0} Hz must be finite and >= {MIN_SAMPLE_RATE_HZ} Hz")]
    SampleRate(f64),
    /// An amplitude is negative or not finite.
    #[error("amplitude {name} = {value} uV must be finite and >= 0")]
    Amplitude {
        /// Field name.
        name: &'static str,
        /// Value supplied.
        value: f64,
    },
    /// `fill` called with a channel count other than the configured one.
    #[error("generator has {expected} channels, fill asked for {got}")]
    Channels {
        /// Configured channels.
        expected: usize,
        /// Channels requested.
        got: usize,
    },
    /// Buffer length is not `channels * samples_per_channel`.
    #[error("buffer holds {len} samples, expected {channels} x {samples_per_channel}")]
    BufferLength {
        /// Buffer length supplied.
        len: usize,
        /// Channels requested.
        channels: usize,
        /// Samples per channel requested.
        samples_per_channel: usize,
    },
}

/// Sine with phase kept in cycles, so long runs neither drift nor lose
/// precision the way `sin(2 pi f n / fs)` with a growing `n` would.
#[derive(Debug, Clone)]
struct Osc {
    step: f64,
    cycle: f64,
    amp: f64,
}

impl Osc {
    fn new(freq_hz: f64, fs: f64, phase_rad: f64, amp: f64) -> Self {
        Osc {
            step: freq_hz / fs,
            cycle: (phase_rad / TAU).rem_euclid(1.0),
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

/// Paul Kellet's refined pinking filter (accurate to about +-0.05 dB over
/// the top 9.2 octaves below Nyquist).
#[derive(Debug, Clone, Default)]
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

#[derive(Debug, Clone)]
struct Channel {
    steady: [Osc; 3],
    burst: Osc,
    pink: Pink,
    pink_gain: f64,
    noise_rng: Pcg32,
    gate_rng: Pcg32,
    gate_on: bool,
    gate_left: u64,
    envelope: f64,
}

/// Uniform in [0, 1) from the top 53 bits: fixed by definition, unlike
/// `rand`'s distributions which may change between major versions.
fn unit(rng: &mut Pcg32) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// SplitMix64 finaliser: spreads (seed, channel, stream) over the seed space.
fn mix(seed: u64, channel: usize, stream: u64) -> u64 {
    let mut z = seed
        .wrapping_add((channel as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Multi-channel synthetic EEG source.
///
/// Guarantees: identical output for identical [`SynthConfig`] and sample
/// count, independent of call chunking; `fill` never allocates.
#[derive(Debug, Clone)]
pub struct EegSynth {
    config: SynthConfig,
    channels: Vec<Channel>,
    /// One-pole smoothing coefficient of the burst envelope.
    env_coef: f64,
}

impl EegSynth {
    /// Validates `config` and builds per-channel state (allocates here only).
    pub fn new(config: SynthConfig) -> Result<Self, SynthError> {
        let fs = config.sample_rate_hz;
        if !(fs.is_finite() && fs >= MIN_SAMPLE_RATE_HZ) {
            return Err(SynthError::SampleRate(fs));
        }
        for (name, value) in [
            ("theta_uv", config.theta_uv),
            ("alpha_uv", config.alpha_uv),
            ("beta_uv", config.beta_uv),
            ("burst_uv", config.burst_uv),
            ("pink_rms_uv", config.pink_rms_uv),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(SynthError::Amplitude { name, value });
            }
        }
        let env_coef = 1.0 - (-1.0 / (0.150 * fs)).exp();
        let mut synth = EegSynth {
            channels: Vec::with_capacity(config.channels),
            config,
            env_coef,
        };
        synth.reset();
        Ok(synth)
    }

    /// Restarts the output from the beginning of the seeded sequence.
    pub fn reset(&mut self) {
        let cfg = &self.config;
        let fs = cfg.sample_rate_hz;
        self.channels.clear();
        for c in 0..cfg.channels {
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
                pink_gain: cfg.pink_rms_uv / KELLET_RMS,
                noise_rng: Pcg32::seed_from_u64(mix(cfg.seed, c, 1)),
                gate_rng: Pcg32::seed_from_u64(mix(cfg.seed, c, 2)),
                gate_on: false,
                gate_left: 0,
                envelope: 0.0,
            };
            for _ in 0..PINK_WARMUP {
                let white = 2.0 * unit(&mut ch.noise_rng) - 1.0;
                ch.pink.next(white);
            }
            self.channels.push(ch);
        }
    }

    /// The configuration this generator was built with.
    #[cfg(test)]
    pub fn config(&self) -> &SynthConfig {
        &self.config
    }

    /// Generates the next `samples_per_channel` samples of every channel
    /// into `samples` in planar layout (`samples[ch * samples_per_channel + i]`).
    pub fn fill(
        &mut self,
        samples: &mut [f32],
        channels: usize,
        samples_per_channel: usize,
    ) -> Result<(), SynthError> {
        if channels != self.channels.len() {
            return Err(SynthError::Channels {
                expected: self.channels.len(),
                got: channels,
            });
        }
        if Some(samples.len()) != channels.checked_mul(samples_per_channel) {
            return Err(SynthError::BufferLength {
                len: samples.len(),
                channels,
                samples_per_channel,
            });
        }
        if samples_per_channel == 0 {
            return Ok(());
        }
        let fs = self.config.sample_rate_hz;
        let env_coef = self.env_coef;
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

                let white = 2.0 * unit(&mut ch.noise_rng) - 1.0;
                let mut x = ch.pink.next(white) * ch.pink_gain;
                for osc in &mut ch.steady {
                    x += osc.next();
                }
                x += ch.envelope * ch.burst.next();
                *v = x as f32;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FS: f64 = 250.0;

    fn generate(config: SynthConfig, n: usize) -> Vec<f32> {
        let channels = config.channels;
        let mut s = EegSynth::new(config).expect("valid config");
        let mut buf = vec![0.0; channels * n];
        s.fill(&mut buf, channels, n).expect("matching buffer");
        buf
    }

    fn quiet(channels: usize, seed: u64) -> SynthConfig {
        SynthConfig {
            theta_uv: 0.0,
            alpha_uv: 0.0,
            beta_uv: 0.0,
            burst_uv: 0.0,
            pink_rms_uv: 0.0,
            ..SynthConfig::new(channels, FS, seed)
        }
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Hann-windowed periodogram power at `freq_hz`, averaged over
    /// consecutive segments (direct DFT sum: no FFT dependency here).
    fn welch_at(x: &[f32], freq_hz: f64, seg: usize) -> f64 {
        let mut acc = 0.0;
        let mut count = 0;
        for chunk in x.chunks_exact(seg) {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &v) in chunk.iter().enumerate() {
                let w = 0.5 - 0.5 * (TAU * i as f64 / seg as f64).cos();
                let ph = TAU * freq_hz * i as f64 / FS;
                re += f64::from(v) * w * ph.cos();
                im -= f64::from(v) * w * ph.sin();
            }
            acc += re * re + im * im;
            count += 1;
        }
        acc / count as f64
    }

    #[test]
    fn same_seed_same_output_regardless_of_chunking() {
        let a = generate(SynthConfig::new(4, FS, 7), 1000);
        let b = generate(SynthConfig::new(4, FS, 7), 1000);
        assert_eq!(a, b);

        let mut s = EegSynth::new(SynthConfig::new(4, FS, 7)).expect("valid");
        let mut chunked = vec![0.0f32; 4 * 1000];
        let mut done = 0;
        for n in [1usize, 13, 250, 336, 400] {
            let mut block = vec![0.0f32; 4 * n];
            s.fill(&mut block, 4, n).expect("valid");
            for ch in 0..4 {
                chunked[ch * 1000 + done..ch * 1000 + done + n]
                    .copy_from_slice(&block[ch * n..(ch + 1) * n]);
            }
            done += n;
        }
        assert_eq!(done, 1000);
        assert_eq!(a, chunked);

        s.reset();
        let mut again = vec![0.0f32; 4 * 1000];
        s.fill(&mut again, 4, 1000).expect("valid");
        assert_eq!(a, again);
    }

    #[test]
    fn different_seeds_and_channels_differ() {
        let a = generate(SynthConfig::new(2, FS, 1), 500);
        let b = generate(SynthConfig::new(2, FS, 2), 500);
        assert_ne!(a, b);
        assert_ne!(a[..500], a[500..]);
    }

    #[test]
    fn amplitude_is_realistic() {
        let x = generate(SynthConfig::new(8, FS, 3), 60 * 250);
        for ch in x.chunks_exact(60 * 250) {
            let r = rms(ch);
            println!("channel RMS {r:.1} uV");
            assert!((8.0..50.0).contains(&r), "channel RMS {r} uV");
            let peak = ch.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(peak < 150.0, "peak {peak} uV");
        }
        let pink = generate(
            SynthConfig {
                pink_rms_uv: 10.0,
                ..quiet(1, 3)
            },
            60 * 250,
        );
        let r = rms(&pink);
        println!("pink RMS {r:.2} uV (configured 10)");
        assert!((r - 10.0).abs() < 1.5, "pink RMS {r}, configured 10");
    }

    #[test]
    fn pink_noise_slope_is_about_minus_one() {
        let x = generate(
            SynthConfig {
                pink_rms_uv: 10.0,
                ..quiet(1, 11)
            },
            1 << 16,
        );
        let freqs = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
        let pts: Vec<(f64, f64)> = freqs
            .iter()
            .map(|&f| (f64::log10(f), welch_at(&x, f, 1024).log10()))
            .collect();
        let n = pts.len() as f64;
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let slope = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>()
            / pts.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
        println!("pink log-log PSD slope over 1-64 Hz: {slope:.3}");
        assert!((-1.25..-0.75).contains(&slope), "slope {slope}");
    }

    #[test]
    fn alpha_bursts_wax_and_wane() {
        let x = generate(
            SynthConfig {
                burst_uv: 20.0,
                ..quiet(1, 5)
            },
            120 * 250,
        );
        let win: Vec<f64> = x.chunks_exact(125).map(rms).collect();
        let full = 20.0 / 2f64.sqrt();
        let max = win.iter().cloned().fold(0.0, f64::max);
        let min = win.iter().cloned().fold(f64::INFINITY, f64::min);
        println!("burst 0.5 s RMS: max {max:.2}, min {min:.3}, full-on {full:.2} uV");
        assert!(max > 0.8 * full, "bursts reach near full amplitude: {max}");
        assert!(min < 0.1 * full, "gaps between bursts: {min}");
        // Bursts are 10 Hz: power there dwarfs 20 Hz.
        assert!(welch_at(&x, 10.0, 250) > 100.0 * welch_at(&x, 20.0, 250));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            EegSynth::new(SynthConfig::new(1, 10.0, 0)),
            Err(SynthError::SampleRate(_))
        ));
        assert!(matches!(
            EegSynth::new(SynthConfig {
                alpha_uv: -1.0,
                ..SynthConfig::new(1, FS, 0)
            }),
            Err(SynthError::Amplitude {
                name: "alpha_uv",
                ..
            })
        ));
        let mut s = EegSynth::new(SynthConfig::new(2, FS, 0)).expect("valid");
        let mut buf = [0.0f32; 6];
        assert!(matches!(
            s.fill(&mut buf, 3, 2),
            Err(SynthError::Channels { .. })
        ));
        assert!(matches!(
            s.fill(&mut buf, 2, 2),
            Err(SynthError::BufferLength { .. })
        ));
        s.fill(&mut buf, 2, 3).expect("valid");
        assert_eq!(s.config().channels, 2);
    }
}
