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
//!
//! Speed: channels are generated [`LANES`] at a time, one per SIMD lane
//! (AVX2 when the CPU has it), with the noise generator re-stated in lane
//! form ([`NoiseLanes`], checked against `rand_pcg` step for step) and the
//! sines from [`sin_turns`], a polynomial, instead of the platform's `sin`.
//! The seed streams are unchanged; the sines may differ from libm's in the
//! last bit of an f64, which after rounding to f32 changed no sample of 64
//! channels x 20 s against the previous generator (`signal/reference.rs`,
//! the test allows one f32 step in 1e5 samples). Output no longer depends
//! on the machine's libm, and the first samples are pinned by a test.

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

#[cfg(test)]
mod reference;

/// Channels generated together, side by side: every per-sample step below
/// is a loop over `[f64; LANES]` arrays, which the compiler turns into
/// packed SIMD arithmetic on the stable toolchain.
const LANES: usize = 4;

/// `sin(2 pi t)` of every lane, for `t` in `[0, 1)`, within about one ulp
/// of the exact value: the turn is folded exactly into `[-1/4, 1/4]`
/// (sin(pi - x) = sin x) and the sine's Taylor series up to x^21 evaluated
/// there (the first term left out is below 1.2e-18). Plain IEEE arithmetic
/// without branches, one packed operation per line over the lanes, and the
/// same bits on every machine, unlike the platform's `sin`.
#[inline(always)]
fn sin_turns(t: &[f64; LANES]) -> [f64; LANES] {
    let mut x = [0.0; LANES];
    for (x, &t) in x.iter_mut().zip(t) {
        // Exact: t - 1 for t in [1/2, 1) and 1/2 - |r| for |r| in (1/4,
        // 1/2] are Sterbenz subtractions.
        let r = t - if t >= 0.5 { 1.0 } else { 0.0 };
        let folded = (0.5 - r.abs()).copysign(r);
        *x = if r.abs() > 0.25 { folded } else { r } * TAU;
    }
    let mut z = [0.0; LANES];
    for (z, &x) in z.iter_mut().zip(&x) {
        *z = x * x;
    }
    // (-1)^k / (2k+1)!, k = 10 down to 1, correctly rounded.
    let mut p = [1.957_294_106_339_126_3e-20; LANES];
    for c in [
        -8.220_635_246_624_33e-18,
        2.811_457_254_345_520_6e-15,
        -7.647_163_731_819_816e-13,
        1.605_904_383_682_161_3e-10,
        -2.505_210_838_544_172e-8,
        2.755_731_922_398_589_3e-6,
        -1.984_126_984_126_984e-4,
        8.333_333_333_333_333e-3,
        -0.166_666_666_666_666_66,
    ] {
        for (p, &z) in p.iter_mut().zip(&z) {
            *p = *p * z + c;
        }
    }
    let mut sin = [0.0; LANES];
    for (l, sin) in sin.iter_mut().enumerate() {
        *sin = x[l] + x[l] * z[l] * p[l];
    }
    sin
}

/// Paul Kellet's refined pinking filter (accurate to about +-0.05 dB over
/// the top 9.2 octaves below Nyquist), one channel per lane; returns the
/// pink sample of every lane.
#[inline(always)]
fn pink_step(b: &mut [[f64; LANES]; 7], white: &[f64; LANES]) -> [f64; LANES] {
    // One loop over the lanes per operation, the form the compiler packs.
    const POLES: [(f64, f64); 5] = [
        (0.99886, 0.0555179),
        (0.99332, 0.0750759),
        (0.96900, 0.1538520),
        (0.86650, 0.3104856),
        (0.55000, 0.5329522),
    ];
    for (b, (pole, gain)) in b.iter_mut().zip(POLES) {
        for (b, &w) in b.iter_mut().zip(white) {
            *b = pole * *b + w * gain;
        }
    }
    for (b, &w) in b[5].iter_mut().zip(white) {
        *b = -0.7616 * *b - w * 0.0168980;
    }
    let mut pink = b[0];
    for b in &b[1..] {
        for (p, &b) in pink.iter_mut().zip(b) {
            *p += b;
        }
    }
    for ((p, b), &w) in pink.iter_mut().zip(&mut b[6]).zip(white) {
        *p += w * 0.5362;
        *b = w * 0.115926;
    }
    pink
}

/// The random on/off gate of one channel's alpha bursts.
#[derive(Debug, Clone)]
struct Gate {
    rng: Pcg32,
    on: bool,
    /// Samples until the gate flips; `u64::MAX` in lanes past the last
    /// channel, which never flip.
    left: u64,
}

/// The state of [`LANES`] channels, one per lane; lanes past the last
/// channel run too, and their output is dropped.
#[derive(Debug, Clone)]
struct Lanes {
    /// Phase in cycles of the theta, alpha and beta sines. The bursts'
    /// 10 Hz carrier has the alpha sine's frequency and phase, so it
    /// reuses its value.
    cycle: [[f64; LANES]; 3],
    /// Peak amplitudes of theta, alpha, beta and the burst carrier.
    amp: [[f64; LANES]; 4],
    pink: [[f64; LANES]; 7],
    noise: NoiseLanes,
    gate: [Gate; LANES],
    envelope: [f64; LANES],
}

/// Per-stream constants every lane shares.
#[derive(Debug, Clone, Copy)]
struct Shared {
    /// Cycles per sample of theta (6 Hz), alpha (10 Hz), beta (20 Hz).
    step: [f64; 3],
    pink_gain: f64,
    /// One-pole smoothing coefficient of the burst envelope.
    env_coef: f64,
    sample_rate_hz: f64,
}

/// PCG XSH RR 64/32's multiplier.
const PCG_MULTIPLIER: u64 = 6_364_136_223_846_793_005;

/// PCG XSH RR's output: a xorshift of the high bits, randomly rotated.
#[inline(always)]
fn xsh_rr(state: u64) -> u32 {
    let xorshifted = (((state >> 18) ^ state) >> 27) as u32;
    xorshifted.rotate_right((state >> 59) as u32)
}

/// One `rand_pcg::Pcg32` per lane (the same generator, step for step),
/// with states and increments side by side so the steps run in SIMD lanes.
#[derive(Debug, Clone)]
struct NoiseLanes {
    state: [u64; LANES],
    increment: [u64; LANES],
}

impl NoiseLanes {
    /// `Pcg32::seed_from_u64(seeds[l])` in lane `l`: rand_core's seed
    /// expansion (four outputs of a fixed PCG32), then rand_pcg's
    /// `from_seed` (state and increment, the increment made odd, one step).
    fn seeded(seeds: [u64; LANES]) -> Self {
        let mut lanes = NoiseLanes {
            state: [0; LANES],
            increment: [0; LANES],
        };
        for (l, mut seed) in seeds.into_iter().enumerate() {
            let mut word = || {
                seed = seed
                    .wrapping_mul(0x5851_F42D_4C95_7F2D)
                    .wrapping_add(0xA176_54E4_6FBE_17F3);
                u64::from(xsh_rr(seed))
            };
            let state = word() | word() << 32;
            let increment = (word() | word() << 32) | 1;
            lanes.increment[l] = increment;
            lanes.state[l] = state
                .wrapping_add(increment)
                .wrapping_mul(PCG_MULTIPLIER)
                .wrapping_add(increment);
        }
        lanes
    }

    /// `2 * unit - 1` of every lane, `unit` as [`unit`] makes it from
    /// `next_u64` (two 32-bit outputs, the first in the low half), computed
    /// without an integer-to-float conversion (SIMD has none for 64 bits
    /// before AVX-512). With `m` the top 53 bits, that value is `m / 2^52 -
    /// 1`; the float with exponent 0 and mantissa `m mod 2^52` is `1 + (m mod
    /// 2^52) / 2^52`, and subtracting 2 (`m < 2^52`) or 1 (`m >= 2^52`) gives
    /// it exactly (Sterbenz), as the tests check against `unit`.
    #[inline(always)]
    fn white(&mut self) -> [f64; LANES] {
        const MANTISSA: u64 = (1 << 52) - 1;
        let mut white = [0.0; LANES];
        for (l, white) in white.iter_mut().enumerate() {
            let (s0, inc) = (self.state[l], self.increment[l]);
            let s1 = s0.wrapping_mul(PCG_MULTIPLIER).wrapping_add(inc);
            self.state[l] = s1.wrapping_mul(PCG_MULTIPLIER).wrapping_add(inc);
            let m = (u64::from(xsh_rr(s1)) << 32 | u64::from(xsh_rr(s0))) >> 11;
            let one_plus = f64::from_bits(1.0f64.to_bits() | (m & MANTISSA));
            *white = one_plus - if m > MANTISSA { 1.0 } else { 2.0 };
        }
        white
    }
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

/// Phase in cycles, in `[0, 1)`, of a sine starting at `phase_rad`.
fn start_cycle(phase_rad: f64) -> f64 {
    (phase_rad / TAU).rem_euclid(1.0)
}

impl Lanes {
    /// Lanes for channels `first..first + LANES`, those at or past
    /// `channels` silent; the pink filters are warmed up.
    fn new(cfg: &SynthConfig, first: usize) -> Self {
        let mut lanes = Lanes {
            cycle: [[0.0; LANES]; 3],
            amp: [[0.0; LANES]; 4],
            pink: [[0.0; LANES]; 7],
            noise: NoiseLanes::seeded(std::array::from_fn(|l| mix(cfg.seed, first + l, 1))),
            gate: std::array::from_fn(|l| Gate {
                rng: Pcg32::seed_from_u64(mix(cfg.seed, first + l, 2)),
                on: false,
                left: if first + l < cfg.channels {
                    0
                } else {
                    u64::MAX
                },
            }),
            envelope: [0.0; LANES],
        };
        for l in 0..LANES.min(cfg.channels.saturating_sub(first)) {
            let c = first + l;
            let cf = c as f64;
            lanes.cycle[0][l] = start_cycle(cf * PI / 3.0);
            lanes.cycle[1][l] = start_cycle(cf * PI / 8.0);
            lanes.cycle[2][l] = start_cycle(cf * PI / 5.0);
            let alpha_scale = 1.0 - 0.1 * (c % 4) as f64;
            lanes.amp[0][l] = cfg.theta_uv;
            lanes.amp[1][l] = cfg.alpha_uv * alpha_scale;
            lanes.amp[2][l] = cfg.beta_uv;
            lanes.amp[3][l] = cfg.burst_uv;
        }
        for _ in 0..PINK_WARMUP {
            let white = lanes.noise.white();
            pink_step(&mut lanes.pink, &white);
        }
        lanes
    }

    /// [`Self::fill`] compiled for AVX2: the same operations in the same
    /// order (no fused multiply-add: Rust never fuses on its own), four
    /// lanes per instruction instead of SSE2's two.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_avx2(&mut self, out: &mut [f32], len: usize, k: &Shared) {
        self.fill(out, len, k);
    }

    /// Generates `len` samples of the group's `out.len() / len` channels
    /// into `out` (planar), in runs between gate flips.
    #[inline(always)]
    fn fill(&mut self, out: &mut [f32], len: usize, k: &Shared) {
        let used = out.len() / len;
        let mut i = 0;
        while i < len {
            let mut run = len - i;
            let mut target = [0.0; LANES];
            for (gate, target) in self.gate.iter_mut().zip(&mut target) {
                if gate.left == 0 {
                    gate.on = !gate.on;
                    let (min_s, max_s) = if gate.on { (0.5, 2.0) } else { (1.0, 4.0) };
                    let secs = min_s + (max_s - min_s) * unit(&mut gate.rng);
                    gate.left = ((secs * k.sample_rate_hz) as u64).max(1);
                }
                run = run.min(usize::try_from(gate.left).unwrap_or(usize::MAX));
                *target = if gate.on { 1.0 } else { 0.0 };
            }
            // Samples go to a small buffer first: storing all lanes
            // unconditionally keeps `next` in SIMD registers.
            let mut start = i;
            while start < i + run {
                let mut buffer = [[0.0f32; LANES]; 32];
                let n = buffer.len().min(i + run - start);
                for x in &mut buffer[..n] {
                    *x = self.next(&target, k).map(|v| v as f32);
                }
                for lane in 0..used {
                    let row = &mut out[lane * len + start..lane * len + start + n];
                    for (dst, x) in row.iter_mut().zip(&buffer) {
                        *dst = x[lane];
                    }
                }
                start += n;
            }
            for gate in &mut self.gate {
                gate.left -= run as u64;
            }
            i += run;
        }
    }

    /// One sample of every lane, the gate targets fixed.
    #[inline(always)]
    fn next(&mut self, target: &[f64; LANES], k: &Shared) -> [f64; LANES] {
        for (e, &t) in self.envelope.iter_mut().zip(target) {
            *e += (t - *e) * k.env_coef;
        }
        let white = self.noise.white();
        let pink = pink_step(&mut self.pink, &white);
        let mut sine = [[0.0; LANES]; 3];
        for ((sine, cycle), &step) in sine.iter_mut().zip(&mut self.cycle).zip(&k.step) {
            *sine = sin_turns(cycle);
            for c in cycle {
                let next = *c + step;
                *c = if next >= 1.0 { next - 1.0 } else { next };
            }
        }
        let mut x = pink.map(|p| p * k.pink_gain);
        for (amp, sine) in self.amp.iter().zip(&sine) {
            for l in 0..LANES {
                x[l] += amp[l] * sine[l];
            }
        }
        // The bursts' carrier: the alpha sine at the burst amplitude.
        for l in 0..LANES {
            x[l] += self.envelope[l] * (self.amp[3][l] * sine[1][l]);
        }
        x
    }
}

/// Multi-channel synthetic EEG source.
///
/// Guarantees: identical output for identical [`SynthConfig`] and sample
/// count, independent of call chunking; `fill` never allocates.
#[derive(Debug, Clone)]
pub struct EegSynth {
    config: SynthConfig,
    lanes: Vec<Lanes>,
    shared: Shared,
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
        let shared = Shared {
            step: [6.0 / fs, 10.0 / fs, 20.0 / fs],
            pink_gain: config.pink_rms_uv / KELLET_RMS,
            env_coef: 1.0 - (-1.0 / (0.150 * fs)).exp(),
            sample_rate_hz: fs,
        };
        let mut synth = EegSynth {
            lanes: Vec::with_capacity(config.channels.div_ceil(LANES)),
            config,
            shared,
        };
        synth.reset();
        Ok(synth)
    }

    /// Restarts the output from the beginning of the seeded sequence.
    pub fn reset(&mut self) {
        self.lanes.clear();
        for first in (0..self.config.channels).step_by(LANES) {
            self.lanes.push(Lanes::new(&self.config, first));
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
        if channels != self.config.channels {
            return Err(SynthError::Channels {
                expected: self.config.channels,
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
        let groups = self
            .lanes
            .iter_mut()
            .zip(samples.chunks_mut(LANES * samples_per_channel));
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            for (lanes, out) in groups {
                // SAFETY: `fill_avx2` only requires the CPU to have AVX2,
                // which was detected just above.
                unsafe { lanes.fill_avx2(out, samples_per_channel, &self.shared) };
            }
            return Ok(());
        }
        for (lanes, out) in groups {
            lanes.fill(out, samples_per_channel, &self.shared);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FS: f64 = 250.0;
    /// `generate(SynthConfig::new(5, FS, 1), 3)` as f32 bits.
    const PINNED: [u32; 15] = [
        1099667020, 1102220466, 1103661546, 1095251128, 1087814793, 1094203106, 1101881997,
        1099784436, 1106238123, 1094992477, 1099871598, 1089267585, 1101179094, 1102517436,
        1102792404,
    ];

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

    /// The generator before SIMD lanes: same seed streams and operations,
    /// but each sine from the platform's `sin`, which rounds differently
    /// from `sin_turns` in the last bit now and then. After rounding to
    /// f32 that shows in about one sample in 10^8, as one f32 step.
    #[test]
    fn matches_the_previous_generator_to_one_f32_step() {
        let config = SynthConfig::new(64, 1000.0, 42);
        let (channels, n) = (config.channels, 20_000);
        let mut old = reference::Reference::new(config.clone());
        let mut new = EegSynth::new(config).expect("valid");
        let (mut a, mut b) = (vec![0.0f32; channels * 32], vec![0.0f32; channels * 32]);
        let mut differ = 0;
        for _ in 0..n / 32 {
            old.fill(&mut a, 32);
            new.fill(&mut b, channels, 32).expect("valid");
            for (&x, &y) in a.iter().zip(&b) {
                if x != y {
                    differ += 1;
                    let step = (x.to_bits() as i64 - y.to_bits() as i64).abs();
                    assert_eq!(step, 1, "{x} vs {y}");
                }
            }
        }
        println!(
            "{differ} of {} samples differ by one f32 step",
            channels * n
        );
        assert!(differ <= channels * n / 100_000, "{differ} samples differ");
    }

    /// `fill` takes the AVX2 build where the CPU has it; the portable build
    /// must give the same bits (6 channels: a full group and a short one).
    #[test]
    fn dispatched_and_portable_builds_agree() {
        let mut dispatched = EegSynth::new(SynthConfig::new(6, 1000.0, 3)).expect("valid");
        let mut portable = dispatched.clone();
        let (mut a, mut b) = (vec![0.0f32; 6 * 300], vec![0.0f32; 6 * 300]);
        for _ in 0..20 {
            dispatched.fill(&mut a, 6, 300).expect("valid");
            for (lanes, out) in portable.lanes.iter_mut().zip(b.chunks_mut(LANES * 300)) {
                lanes.fill(out, 300, &portable.shared);
            }
            assert_eq!(a, b);
        }
    }

    #[test]
    fn noise_lanes_are_rand_pcg_step_for_step() {
        for base in [0u64, 1, 42, u64::MAX - 3, 0x0123_4567_89ab_cdef] {
            let seeds: [u64; LANES] = std::array::from_fn(|l| mix(base, l, 1));
            let mut lanes = NoiseLanes::seeded(seeds);
            let mut rngs = seeds.map(Pcg32::seed_from_u64);
            for _ in 0..1000 {
                let white = lanes.white();
                for (rng, &w) in rngs.iter_mut().zip(&white) {
                    assert_eq!(w, 2.0 * unit(rng) - 1.0, "seed base {base}");
                }
            }
        }
    }

    #[test]
    fn sin_turns_is_within_an_ulp_of_sin() {
        let mut worst = 0.0f64;
        for i in 0..100_000 {
            let t = i as f64 / 100_000.0 + 3.7e-7;
            let exact = (TAU * t).sin();
            // `TAU * t` itself rounds by up to half an ulp of 2 pi t.
            let tolerance = f64::EPSILON * (1.0 + TAU * t);
            let ours = sin_turns(&[t; LANES])[0];
            let err = (ours - exact).abs();
            worst = worst.max(err / tolerance);
            assert!(err <= tolerance, "t = {t}: {ours} vs {exact}");
        }
        println!("worst |sin_turns - sin| = {worst:.2} of the tolerance");
        assert_eq!(sin_turns(&[0.0, 0.25, 0.5, 0.75]), [0.0, 1.0, 0.0, -1.0]);
    }

    /// Output is plain IEEE arithmetic now, so these bits hold on every
    /// machine: a change here is a change of the signal.
    #[test]
    fn first_samples_are_pinned() {
        let x = generate(SynthConfig::new(5, FS, 1), 3);
        let bits: Vec<u32> = x.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, PINNED, "{x:?}");
    }
}
