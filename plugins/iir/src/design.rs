//! Butterworth and notch design as second-order sections (SOS), plus a
//! streaming per-channel SOS filter that reproduces `scipy.signal.sosfilt`.
//!
//! Why not `sci-rs` 0.4: it designs the same filters, but brings `nalgebra`
//! and its numeric stack into every plugin build (slow on 2-core CI) to save
//! ~250 lines. The scipy algorithm (`buttap` -> `lp2{lp,hp,bp,bs}_zpk` ->
//! `bilinear_zpk` -> `zpk2sos(pairing='nearest')`) only needs complex
//! arithmetic on at most 16 roots, so it is ported here verbatim, including
//! scipy's pole/zero pairing; the tests pin coefficients and filter output
//! to scipy reference data (`tests/data/make_reference.py`).

use std::f64::consts::PI;
use std::ops::{Add, Div, Mul, Neg, Sub};

use thiserror::Error;

/// One second-order section `[b0, b1, b2, a0, a1, a2]`, scipy's SOS row
/// layout. Sections produced by this module always have `a0 == 1`.
pub type Sos = [f64; 6];

/// Highest Butterworth prototype order accepted by [`butterworth`].
pub const MAX_ORDER: usize = 8;

/// Response type of a Butterworth filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterKind {
    /// Passes below the single cutoff.
    LowPass,
    /// Passes above the single cutoff.
    HighPass,
    /// Passes between the two cutoffs.
    BandPass,
    /// Rejects between the two cutoffs.
    BandStop,
}

impl FilterKind {
    /// Number of cutoff frequencies this kind takes (1 or 2).
    pub fn cutoff_count(self) -> usize {
        match self {
            FilterKind::LowPass | FilterKind::HighPass => 1,
            FilterKind::BandPass | FilterKind::BandStop => 2,
        }
    }
}

/// Why a filter could not be designed; every variant names the bad input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DesignError {
    /// Order outside `1..=MAX_ORDER`.
    #[error("filter order {0} is outside 1..={MAX_ORDER}")]
    Order(usize),
    /// Wrong number of cutoff frequencies for the filter kind.
    #[error("{kind:?} filter needs {expected} cutoff frequencies, got {got}")]
    CutoffCount {
        /// Requested response type.
        kind: FilterKind,
        /// Cutoffs this kind takes.
        expected: usize,
        /// Cutoffs supplied.
        got: usize,
    },
    /// Sample rate not finite and positive.
    #[error("sample rate {0} Hz must be finite and > 0")]
    SampleRate(f64),
    /// A frequency not strictly inside `(0, fs/2)`.
    #[error("frequency {freq_hz} Hz must lie strictly between 0 and Nyquist ({nyquist_hz} Hz)")]
    Frequency {
        /// Offending frequency.
        freq_hz: f64,
        /// Half the sample rate.
        nyquist_hz: f64,
    },
    /// Band edges not strictly increasing.
    #[error("band edges must increase, got low {low_hz} Hz >= high {high_hz} Hz")]
    BandOrder {
        /// Lower edge supplied.
        low_hz: f64,
        /// Upper edge supplied.
        high_hz: f64,
    },
    /// Notch quality factor not finite and positive.
    #[error("quality factor {0} must be finite and > 0")]
    Quality(f64),
    /// The design produced non-finite or unpairable roots (cannot happen for
    /// validated Butterworth inputs; kept so no input can panic).
    #[error("filter design is numerically ill-conditioned")]
    IllConditioned,
}

/// Why an [`SosFilter`] rejected a call.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FilterError {
    /// A section has a non-finite coefficient or `a0 == 0`.
    #[error("section {index} has a non-finite coefficient or a0 == 0")]
    InvalidSection {
        /// Position of the bad section.
        index: usize,
    },
    /// Channel index past the configured channel count.
    #[error("channel {channel} out of range for {channels} channels")]
    Channel {
        /// Requested channel.
        channel: usize,
        /// Configured channel count.
        channels: usize,
    },
    /// Planar buffer length is not `channels * samples_per_channel`.
    #[error("buffer holds {len} samples, expected {channels} x {samples_per_channel}")]
    BufferLength {
        /// Buffer length supplied.
        len: usize,
        /// Configured channel count.
        channels: usize,
        /// Samples per channel claimed by the caller.
        samples_per_channel: usize,
    },
}

/// Designs a digital Butterworth filter as SOS rows equal (to rounding) to
/// `scipy.signal.butter(order, cutoffs, btype, fs=sample_rate_hz, output='sos')`.
///
/// `order` is the prototype order, so band filters have `2 * order` poles and
/// `order` sections; low/high-pass filters have `ceil(order / 2)` sections.
/// The overall gain sits in the first section, like scipy.
pub fn butterworth(
    kind: FilterKind,
    order: usize,
    cutoffs_hz: &[f64],
    sample_rate_hz: f64,
) -> Result<Vec<Sos>, DesignError> {
    if !(1..=MAX_ORDER).contains(&order) {
        return Err(DesignError::Order(order));
    }
    let expected = kind.cutoff_count();
    if cutoffs_hz.len() != expected {
        return Err(DesignError::CutoffCount {
            kind,
            expected,
            got: cutoffs_hz.len(),
        });
    }
    let nyquist_hz = validate_rate(sample_rate_hz)?;
    for &f in cutoffs_hz {
        validate_freq(f, nyquist_hz)?;
    }
    if expected == 2 && cutoffs_hz[0] >= cutoffs_hz[1] {
        return Err(DesignError::BandOrder {
            low_hz: cutoffs_hz[0],
            high_hz: cutoffs_hz[1],
        });
    }

    // scipy pre-warps against a normalised fs = 2 and then uses
    // bilinear_zpk(fs=2); the same operation order keeps rounding identical.
    let warp = |f: f64| 4.0 * (PI * (f / nyquist_hz) / 2.0).tan();
    let (z, p, k) = buttap(order);
    let (z, p, k) = match kind {
        FilterKind::LowPass => lp2lp(&z, &p, k, warp(cutoffs_hz[0])),
        FilterKind::HighPass => lp2hp(&z, &p, k, warp(cutoffs_hz[0])),
        FilterKind::BandPass | FilterKind::BandStop => {
            let (w0, w1) = (warp(cutoffs_hz[0]), warp(cutoffs_hz[1]));
            let bw = w1 - w0;
            let wo = (w0 * w1).sqrt();
            if kind == FilterKind::BandPass {
                lp2bp(&z, &p, k, wo, bw)
            } else {
                lp2bs(&z, &p, k, wo, bw)
            }
        }
    };
    let (z, p, k) = bilinear(&z, &p, k, 2.0);
    let sos = zpk2sos(z, p, k)?;
    if sos.iter().flatten().all(|c| c.is_finite()) {
        Ok(sos)
    } else {
        Err(DesignError::IllConditioned)
    }
}

/// Designs a second-order IIR notch as one SOS row equal (to rounding) to
/// `b, a = scipy.signal.iirnotch(notch_hz, quality, fs=sample_rate_hz)`,
/// i.e. `[b0, b1, b2, 1, a1, a2]`; -3 dB bandwidth is `notch_hz / quality`.
pub fn iirnotch(notch_hz: f64, quality: f64, sample_rate_hz: f64) -> Result<Sos, DesignError> {
    let nyquist_hz = validate_rate(sample_rate_hz)?;
    validate_freq(notch_hz, nyquist_hz)?;
    if !(quality.is_finite() && quality > 0.0) {
        return Err(DesignError::Quality(quality));
    }
    let w0 = 2.0 * notch_hz / sample_rate_hz;
    let bw = w0 / quality * PI;
    let w0 = w0 * PI;
    let beta = (bw / 2.0).tan();
    let gain = 1.0 / (1.0 + beta);
    let cos_w0 = w0.cos();
    Ok([
        gain,
        gain * (-2.0 * cos_w0),
        gain,
        1.0,
        -2.0 * gain * cos_w0,
        2.0 * gain - 1.0,
    ])
}

fn validate_rate(sample_rate_hz: f64) -> Result<f64, DesignError> {
    if sample_rate_hz.is_finite() && sample_rate_hz > 0.0 {
        Ok(sample_rate_hz / 2.0)
    } else {
        Err(DesignError::SampleRate(sample_rate_hz))
    }
}

fn validate_freq(freq_hz: f64, nyquist_hz: f64) -> Result<(), DesignError> {
    if freq_hz > 0.0 && freq_hz < nyquist_hz {
        Ok(())
    } else {
        Err(DesignError::Frequency {
            freq_hz,
            nyquist_hz,
        })
    }
}

/// Channels one pass of the lane kernel filters together. The recurrence
/// of one section is a chain of four dependent operations per sample; eight
/// independent channels fill the gaps (two 4-wide AVX registers or four
/// 2-wide SSE2 ones per state), and the inner loops over a `[f64; LANES]`
/// compile to packed arithmetic on the stable toolchain without `unsafe`.
pub const LANES: usize = 8;

/// The DF2T state of one section for one group of [`LANES`] channels:
/// `z[k][lane]`, channels side by side so the lane loops vectorise.
type LaneState = [[f64; LANES]; 2];

/// Streaming cascade of second-order sections over several channels.
///
/// Guarantees: output equals `scipy.signal.sosfilt` run over the
/// concatenation of all blocks fed to a channel (Direct Form II transposed,
/// f64 arithmetic and state; samples are rounded to f32 only on output).
/// Channels are independent. Processing never allocates.
///
/// [`Self::process_planar`] filters [`LANES`] channels at a time with the
/// same operations in the same order as [`Self::process_channel`] (no fused
/// multiply-add), so both give bit-identical output and either may continue
/// what the other started.
#[derive(Debug, Clone)]
pub struct SosFilter {
    sections: Vec<Sos>,
    channels: usize,
    /// `groups * sections.len()` lane states, group-major: channel `c` is
    /// lane `c % LANES` of group `c / LANES`. Lanes past `channels` in the
    /// last group stay zero.
    state: Vec<LaneState>,
}

impl SosFilter {
    /// Builds a filter for `channels` channels with zeroed state.
    ///
    /// Sections are normalised so `a0 == 1` (scipy requires that already);
    /// an empty list is a pass-through.
    pub fn new(mut sections: Vec<Sos>, channels: usize) -> Result<Self, FilterError> {
        validate_sections(&sections)?;
        sections.iter_mut().for_each(normalise);
        let state = vec![[[0.0; LANES]; 2]; channels.div_ceil(LANES) * sections.len()];
        Ok(SosFilter {
            sections,
            channels,
            state,
        })
    }

    /// Replaces the coefficients.
    ///
    /// Keeps each channel's state when the section count is unchanged, so a
    /// small retune (e.g. moving a cutoff) continues without a restart
    /// transient; resets state to zero when the count changes, since old
    /// states have no meaning for a different cascade. On error the filter
    /// is left unchanged. Allocates only if the section count grows.
    #[cfg(test)]
    pub fn set_sections(&mut self, sections: &[Sos]) -> Result<(), FilterError> {
        validate_sections(sections)?;
        let same_count = sections.len() == self.sections.len();
        self.sections.clear();
        self.sections.extend_from_slice(sections);
        self.sections.iter_mut().for_each(normalise);
        if !same_count {
            self.state.clear();
            self.state.resize(
                self.channels.div_ceil(LANES) * self.sections.len(),
                [[0.0; LANES]; 2],
            );
        }
        Ok(())
    }

    /// Zeroes every channel's state, as if no sample had been processed.
    #[cfg(test)]
    pub fn reset(&mut self) {
        self.state.fill([[0.0; LANES]; 2]);
    }

    /// Current (a0-normalised) sections.
    pub fn sections(&self) -> &[Sos] {
        &self.sections
    }

    /// Number of channels the state was sized for.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Filters `samples` of one channel in place, continuing from the state
    /// left by the previous call for that channel.
    pub fn process_channel(
        &mut self,
        channel: usize,
        samples: &mut [f32],
    ) -> Result<(), FilterError> {
        if channel >= self.channels {
            return Err(FilterError::Channel {
                channel,
                channels: self.channels,
            });
        }
        let n = self.sections.len();
        let (group, lane) = (channel / LANES, channel % LANES);
        let state = &mut self.state[group * n..(group + 1) * n];
        for sample in samples.iter_mut() {
            let mut x = f64::from(*sample);
            for (s, z) in self.sections.iter().zip(state.iter_mut()) {
                let y = s[0] * x + z[0][lane];
                z[0][lane] = s[1] * x - s[4] * y + z[1][lane];
                z[1][lane] = s[2] * x - s[5] * y;
                x = y;
            }
            *sample = x as f32;
        }
        Ok(())
    }

    /// Filters a planar block (`samples[ch * samples_per_channel + i]`) in
    /// place, every channel continuing from its own state. Channels go
    /// through the cascade [`LANES`] at a time.
    pub fn process_planar(
        &mut self,
        samples: &mut [f32],
        samples_per_channel: usize,
    ) -> Result<(), FilterError> {
        if Some(samples.len()) != self.channels.checked_mul(samples_per_channel) {
            return Err(FilterError::BufferLength {
                len: samples.len(),
                channels: self.channels,
                samples_per_channel,
            });
        }
        if samples_per_channel == 0 || self.sections.is_empty() {
            return Ok(());
        }
        let n = self.sections.len();
        let groups = samples
            .chunks_mut(LANES * samples_per_channel)
            .zip(self.state.chunks_exact_mut(n));
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            for (block, state) in groups {
                // SAFETY: `filter_lanes_avx` only requires the CPU to have
                // AVX, which was detected just above.
                unsafe { filter_lanes_avx(&self.sections, state, block, samples_per_channel) };
            }
            return Ok(());
        }
        for (block, state) in groups {
            filter_lanes(&self.sections, state, block, samples_per_channel);
        }
        Ok(())
    }
}

/// [`filter_lanes`] compiled for AVX: the same operations in the same
/// order (AVX has no fused multiply-add, and Rust never fuses on its own),
/// four lanes per instruction instead of SSE2's two.
///
/// # Safety
///
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn filter_lanes_avx(
    sections: &[Sos],
    state: &mut [LaneState],
    block: &mut [f32],
    len: usize,
) {
    filter_lanes(sections, state, block, len);
}

/// Runs the cascade over up to [`LANES`] planar channels (`block[l * len +
/// i]`), sample by sample with every channel of the group in one lane.
/// Missing lanes of a short last group are fed zeros and keep a zero state.
#[inline(always)]
fn filter_lanes(sections: &[Sos], state: &mut [LaneState], block: &mut [f32], len: usize) {
    let used = block.len() / len;
    for i in 0..len {
        let mut x = [0.0f64; LANES];
        for (lane, x) in x.iter_mut().enumerate().take(used) {
            *x = f64::from(block[lane * len + i]);
        }
        for (s, z) in sections.iter().zip(state.iter_mut()) {
            x = section_lanes(s, z, x);
        }
        for (lane, &x) in x.iter().enumerate().take(used) {
            block[lane * len + i] = x as f32;
        }
    }
}

/// One DF2T step of one section in every lane: the recurrence of
/// [`SosFilter::process_channel`], operation for operation, so each line
/// is one packed operation over the lanes.
#[inline(always)]
fn section_lanes(s: &Sos, z: &mut LaneState, x: [f64; LANES]) -> [f64; LANES] {
    let [b0, b1, b2, _, a1, a2] = *s;
    let mut y = [0.0f64; LANES];
    for l in 0..LANES {
        y[l] = b0 * x[l] + z[0][l];
        z[0][l] = b1 * x[l] - a1 * y[l] + z[1][l];
        z[1][l] = b2 * x[l] - a2 * y[l];
    }
    y
}

fn validate_sections(sections: &[Sos]) -> Result<(), FilterError> {
    match sections
        .iter()
        .position(|s| !(s.iter().all(|c| c.is_finite()) && s[3] != 0.0))
    {
        Some(index) => Err(FilterError::InvalidSection { index }),
        None => Ok(()),
    }
}

/// Scales a section so `a0 == 1`, the form the DF2T recurrence assumes.
fn normalise(s: &mut Sos) {
    let a0 = s[3];
    *s = [s[0] / a0, s[1] / a0, s[2] / a0, 1.0, s[4] / a0, s[5] / a0];
}

// ---------------------------------------------------------------------------
// Port of scipy.signal's zpk machinery. Function names follow scipy so the
// two can be read side by side.

#[derive(Debug, Clone, Copy, PartialEq)]
struct C {
    re: f64,
    im: f64,
}

impl C {
    const ZERO: C = C { re: 0.0, im: 0.0 };

    fn new(re: f64, im: f64) -> C {
        C { re, im }
    }

    fn real(re: f64) -> C {
        C { re, im: 0.0 }
    }

    fn conj(self) -> C {
        C::new(self.re, -self.im)
    }

    fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }

    fn is_real(self) -> bool {
        self.im == 0.0
    }

    fn scale(self, s: f64) -> C {
        C::new(self.re * s, self.im * s)
    }

    /// Principal square root (branch cut on the negative real axis, like C99
    /// `csqrt` / numpy).
    fn sqrt(self) -> C {
        let r = self.abs();
        if r == 0.0 {
            return C::new(0.0, self.im);
        }
        if self.re >= 0.0 {
            let t = ((r + self.re) / 2.0).sqrt();
            C::new(t, self.im / (2.0 * t))
        } else {
            let t = ((r - self.re) / 2.0).sqrt();
            C::new(self.im.abs() / (2.0 * t), t.copysign(self.im))
        }
    }
}

impl Add for C {
    type Output = C;
    fn add(self, o: C) -> C {
        C::new(self.re + o.re, self.im + o.im)
    }
}

impl Sub for C {
    type Output = C;
    fn sub(self, o: C) -> C {
        C::new(self.re - o.re, self.im - o.im)
    }
}

impl Mul for C {
    type Output = C;
    fn mul(self, o: C) -> C {
        C::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
}

impl Div for C {
    type Output = C;
    /// Smith's algorithm, avoiding overflow in `|o|^2`.
    fn div(self, o: C) -> C {
        if o.re.abs() >= o.im.abs() {
            let r = o.im / o.re;
            let d = o.re + o.im * r;
            C::new((self.re + self.im * r) / d, (self.im - self.re * r) / d)
        } else {
            let r = o.re / o.im;
            let d = o.re * r + o.im;
            C::new((self.re * r + self.im) / d, (self.im * r - self.re) / d)
        }
    }
}

impl Neg for C {
    type Output = C;
    fn neg(self) -> C {
        C::new(-self.re, -self.im)
    }
}

type Zpk = (Vec<C>, Vec<C>, f64);

fn prod(xs: impl Iterator<Item = C>) -> C {
    xs.fold(C::real(1.0), |acc, x| acc * x)
}

fn buttap(order: usize) -> Zpk {
    let n = order as f64;
    let poles = (0..order)
        .map(|i| {
            let m = 2.0 * i as f64 - (n - 1.0);
            let theta = PI * m / (2.0 * n);
            -C::new(theta.cos(), theta.sin())
        })
        .collect();
    (Vec::new(), poles, 1.0)
}

fn relative_degree(z: &[C], p: &[C]) -> usize {
    p.len().saturating_sub(z.len())
}

fn lp2lp(z: &[C], p: &[C], k: f64, wo: f64) -> Zpk {
    let degree = relative_degree(z, p);
    let z_lp = z.iter().map(|&x| x.scale(wo)).collect();
    let p_lp = p.iter().map(|&x| x.scale(wo)).collect();
    (z_lp, p_lp, k * wo.powi(degree as i32))
}

fn lp2hp(z: &[C], p: &[C], k: f64, wo: f64) -> Zpk {
    let degree = relative_degree(z, p);
    let w = C::real(wo);
    let mut z_hp: Vec<C> = z.iter().map(|&x| w / x).collect();
    let p_hp = p.iter().map(|&x| w / x).collect();
    z_hp.extend(std::iter::repeat_n(C::ZERO, degree));
    let k_hp = k * (prod(z.iter().map(|&x| -x)) / prod(p.iter().map(|&x| -x))).re;
    (z_hp, p_hp, k_hp)
}

/// `x ± sqrt(x^2 - wo^2)` for every root, all `+` roots first (scipy order).
fn split_roots(xs: &[C], wo: f64) -> Vec<C> {
    let wo2 = C::real(wo * wo);
    let plus = xs.iter().map(|&x| x + (x * x - wo2).sqrt());
    let minus = xs.iter().map(|&x| x - (x * x - wo2).sqrt());
    plus.chain(minus).collect()
}

fn lp2bp(z: &[C], p: &[C], k: f64, wo: f64, bw: f64) -> Zpk {
    let degree = relative_degree(z, p);
    let z_lp: Vec<C> = z.iter().map(|&x| x.scale(bw) / C::real(2.0)).collect();
    let p_lp: Vec<C> = p.iter().map(|&x| x.scale(bw) / C::real(2.0)).collect();
    let mut z_bp = split_roots(&z_lp, wo);
    z_bp.extend(std::iter::repeat_n(C::ZERO, degree));
    (z_bp, split_roots(&p_lp, wo), k * bw.powi(degree as i32))
}

fn lp2bs(z: &[C], p: &[C], k: f64, wo: f64, bw: f64) -> Zpk {
    let degree = relative_degree(z, p);
    let half = C::real(bw / 2.0);
    let z_hp: Vec<C> = z.iter().map(|&x| half / x).collect();
    let p_hp: Vec<C> = p.iter().map(|&x| half / x).collect();
    let mut z_bs = split_roots(&z_hp, wo);
    z_bs.extend(std::iter::repeat_n(C::new(0.0, wo), degree));
    z_bs.extend(std::iter::repeat_n(C::new(0.0, -wo), degree));
    let k_bs = k * (prod(z.iter().map(|&x| -x)) / prod(p.iter().map(|&x| -x))).re;
    (z_bs, split_roots(&p_hp, wo), k_bs)
}

fn bilinear(z: &[C], p: &[C], k: f64, fs: f64) -> Zpk {
    let degree = relative_degree(z, p);
    let fs2 = C::real(2.0 * fs);
    let mut z_z: Vec<C> = z.iter().map(|&x| (fs2 + x) / (fs2 - x)).collect();
    let p_z = p.iter().map(|&x| (fs2 + x) / (fs2 - x)).collect();
    z_z.extend(std::iter::repeat_n(C::real(-1.0), degree));
    let k_z = k * (prod(z.iter().map(|&x| fs2 - x)) / prod(p.iter().map(|&x| fs2 - x))).re;
    (z_z, p_z, k_z)
}

/// scipy `_cplxreal`: one representative (positive imaginary part) per
/// conjugate pair sorted by real part, followed by the real roots sorted.
fn cplxreal(mut z: Vec<C>) -> Result<Vec<C>, DesignError> {
    let tol = 100.0 * f64::EPSILON;
    // Stable sorts reproduce numpy's lexsort((|imag|, real)).
    z.sort_by(|a, b| a.im.abs().total_cmp(&b.im.abs()));
    z.sort_by(|a, b| a.re.total_cmp(&b.re));
    let is_real = |x: &C| x.im.abs() <= tol * x.abs();
    let reals = z.iter().filter(|x| is_real(x)).map(|x| C::real(x.re));
    let mut zp: Vec<C> = z
        .iter()
        .filter(|x| !is_real(x) && x.im > 0.0)
        .copied()
        .collect();
    let mut zn: Vec<C> = z
        .iter()
        .filter(|x| !is_real(x) && x.im < 0.0)
        .copied()
        .collect();
    if zp.len() != zn.len() {
        return Err(DesignError::IllConditioned);
    }
    // Within runs of (nearly) equal real part, order by |imag| so that each
    // positive root meets its own conjugate.
    let mut start = 0;
    while start < zp.len() {
        let mut stop = start + 1;
        while stop < zp.len() && zp[stop].re - zp[stop - 1].re <= tol * zp[stop - 1].abs() {
            stop += 1;
        }
        zp[start..stop].sort_by(|a, b| a.im.abs().total_cmp(&b.im.abs()));
        zn[start..stop].sort_by(|a, b| a.im.abs().total_cmp(&b.im.abs()));
        start = stop;
    }
    let mut out = Vec::with_capacity(z.len());
    for (a, b) in zp.iter().zip(&zn) {
        if (*a - b.conj()).abs() > tol * b.abs() {
            return Err(DesignError::IllConditioned);
        }
        out.push((*a + b.conj()).scale(0.5));
    }
    out.extend(reals);
    Ok(out)
}

/// Index of the root closest to the unit circle (first one on ties, as
/// numpy's argmin).
fn idx_worst(p: &[C]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, x) in p.iter().enumerate() {
        let d = (1.0 - x.abs()).abs();
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((i, d));
        }
    }
    best.map(|(i, _)| i)
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Real,
    Complex,
    Any,
}

/// scipy `_nearest_real_complex_idx`: closest element of `fro` to `to`
/// among those of the requested kind.
fn nearest_idx(fro: &[C], to: C, which: Which) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, x) in fro.iter().enumerate() {
        let ok = match which {
            Which::Real => x.is_real(),
            Which::Complex => !x.is_real(),
            Which::Any => true,
        };
        let d = (*x - to).abs();
        if ok && best.is_none_or(|(_, bd)| d < bd) {
            best = Some((i, d));
        }
    }
    best.map(|(i, _)| i)
}

/// Monic polynomial with the given (at most two) roots, real part only:
/// callers pass conjugate pairs or reals, so the imaginary part is rounding.
fn poly(roots: &[C]) -> Vec<f64> {
    let mut coeffs = vec![C::real(1.0)];
    for &r in roots {
        let mut next = vec![C::ZERO; coeffs.len() + 1];
        for (i, &c) in coeffs.iter().enumerate() {
            next[i] = next[i] + c;
            next[i + 1] = next[i + 1] - c * r;
        }
        coeffs = next;
    }
    coeffs.into_iter().map(|c| c.re).collect()
}

fn single_zpksos(z: &[C], p: &[C]) -> Sos {
    let mut sos = [0.0; 6];
    let b = poly(z);
    let a = poly(p);
    sos[3 - b.len()..3].copy_from_slice(&b);
    sos[6 - a.len()..6].copy_from_slice(&a);
    sos
}

/// Removes and returns the element `pick` selects.
fn take(v: &mut Vec<C>, pick: impl FnOnce(&[C]) -> Option<usize>) -> Result<C, DesignError> {
    match pick(v) {
        Some(i) if i < v.len() => Ok(v.remove(i)),
        _ => Err(DesignError::IllConditioned),
    }
}

/// scipy `zpk2sos(z, p, k, pairing='nearest')` for digital filters.
fn zpk2sos(mut z: Vec<C>, mut p: Vec<C>, k: f64) -> Result<Vec<Sos>, DesignError> {
    if z.is_empty() && p.is_empty() {
        return Ok(vec![[k, 0.0, 0.0, 1.0, 0.0, 0.0]]);
    }
    let n = z.len().max(p.len());
    z.resize(n, C::ZERO);
    p.resize(n, C::ZERO);
    let n_sections = n.div_ceil(2);
    if n % 2 == 1 {
        z.push(C::ZERO);
        p.push(C::ZERO);
    }
    let mut z = cplxreal(z)?;
    let mut p = cplxreal(p)?;
    let mut sos = vec![[0.0; 6]; n_sections];

    // Fill from the back so the poles nearest the unit circle end up in the
    // last sections, where the signal has already been attenuated.
    for si in (0..n_sections).rev() {
        let p1 = take(&mut p, idx_worst)?;
        let reals_left = p.iter().filter(|x| x.is_real()).count();
        sos[si] = if p1.is_real() && reals_left == 0 {
            let z1 = take(&mut z, |z| nearest_idx(z, p1, Which::Real))?;
            single_zpksos(&[z1, C::ZERO], &[p1, C::ZERO])
        } else if p.len() + 1 == z.len()
            && !p1.is_real()
            && reals_left == 1
            && z.iter().filter(|x| x.is_real()).count() == 1
        {
            let z1 = take(&mut z, |z| nearest_idx(z, p1, Which::Complex))?;
            single_zpksos(&[z1, z1.conj()], &[p1, p1.conj()])
        } else {
            let p2 = if p1.is_real() {
                take(&mut p, |p| {
                    let real_idx: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_real()).collect();
                    let real_p: Vec<C> = real_idx.iter().map(|&i| p[i]).collect();
                    idx_worst(&real_p).map(|j| real_idx[j])
                })?
            } else {
                p1.conj()
            };
            if z.is_empty() {
                single_zpksos(&[], &[p1, p2])
            } else {
                let z1 = take(&mut z, |z| nearest_idx(z, p1, Which::Any))?;
                if !z1.is_real() {
                    single_zpksos(&[z1, z1.conj()], &[p1, p2])
                } else if z.is_empty() {
                    single_zpksos(&[z1], &[p1, p2])
                } else {
                    let z2 = take(&mut z, |z| nearest_idx(z, p1, Which::Real))?;
                    single_zpksos(&[z1, z2], &[p1, p2])
                }
            }
        };
    }
    if !(p.is_empty() && z.is_empty()) {
        return Err(DesignError::IllConditioned);
    }
    for c in &mut sos[0][..3] {
        *c *= k;
    }
    Ok(sos)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASES: &str = include_str!("../tests/data/cases.csv");
    const SOS: &str = include_str!("../tests/data/sos.csv");
    const INPUT: &str = include_str!("../tests/data/input.csv");
    const OUTPUTS: &str = include_str!("../tests/data/outputs.csv");

    struct Case {
        name: String,
        kind: String,
        order: usize,
        f1: f64,
        f2: f64,
        fs: f64,
    }

    fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
        text.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(',').collect())
    }

    fn num(s: &str) -> f64 {
        s.trim().parse().expect("reference file holds a number")
    }

    fn cases() -> Vec<Case> {
        rows(CASES)
            .map(|r| Case {
                name: r[0].to_string(),
                kind: r[1].to_string(),
                order: r[2].parse().expect("order"),
                f1: num(r[3]),
                f2: num(r[4]),
                fs: num(r[5]),
            })
            .collect()
    }

    fn scipy_sos(name: &str) -> Vec<Sos> {
        rows(SOS)
            .filter(|r| r[0] == name)
            .map(|r| {
                let mut s = [0.0; 6];
                for (dst, src) in s.iter_mut().zip(&r[2..8]) {
                    *dst = num(src);
                }
                s
            })
            .collect()
    }

    fn input() -> Vec<f32> {
        rows(INPUT).map(|r| num(r[0]) as f32).collect()
    }

    fn scipy_output(name: &str) -> Vec<f64> {
        let header: Vec<&str> = OUTPUTS.lines().next().expect("header").split(',').collect();
        let col = header.iter().position(|h| *h == name).expect("case column");
        rows(OUTPUTS).map(|r| num(r[col])).collect()
    }

    fn design(case: &Case) -> Vec<Sos> {
        let result = match case.kind.as_str() {
            "notch" => iirnotch(case.f1, case.order as f64, case.fs).map(|s| vec![s]),
            "lowpass" => butterworth(FilterKind::LowPass, case.order, &[case.f1], case.fs),
            "highpass" => butterworth(FilterKind::HighPass, case.order, &[case.f1], case.fs),
            "bandpass" => butterworth(
                FilterKind::BandPass,
                case.order,
                &[case.f1, case.f2],
                case.fs,
            ),
            "bandstop" => butterworth(
                FilterKind::BandStop,
                case.order,
                &[case.f1, case.f2],
                case.fs,
            ),
            other => panic!("unknown kind {other}"),
        };
        result.expect("reference case is a valid design")
    }

    /// max |a - b| / rms(b)
    fn rel_err(a: &[f32], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        let rms = (b.iter().map(|x| x * x).sum::<f64>() / b.len() as f64).sqrt();
        let max = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - y).abs())
            .fold(0.0, f64::max);
        max / rms
    }

    fn run(sos: &[Sos], x: &[f32], chunks: &[usize]) -> Vec<f32> {
        let mut f = SosFilter::new(sos.to_vec(), 1).expect("valid sections");
        let mut y = x.to_vec();
        let mut rest = y.as_mut_slice();
        for &c in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (head, tail) = rest.split_at_mut(c.min(rest.len()));
            f.process_channel(0, head).expect("channel 0 exists");
            rest = tail;
        }
        y
    }

    #[test]
    fn coefficients_match_scipy() {
        for case in cases() {
            let ours = design(&case);
            let theirs = scipy_sos(&case.name);
            assert_eq!(ours.len(), theirs.len(), "{}: section count", case.name);
            let max = ours
                .iter()
                .flatten()
                .zip(theirs.iter().flatten())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            println!("{:>16}: max |coef - scipy| = {max:.3e}", case.name);
            assert!(max < 1e-12, "{}: coefficients differ by {max}", case.name);
        }
    }

    #[test]
    fn output_matches_scipy_whole_and_chunked() {
        let x = input();
        for case in cases() {
            let reference = scipy_output(&case.name);
            let sos = design(&case);
            let whole = run(&sos, &x, &[x.len()]);
            let chunked = run(&sos, &x, &[1, 7, 64, 3, 129]);
            let scipy_coefs = run(&scipy_sos(&case.name), &x, &[x.len()]);
            let (e_whole, e_chunk, e_coef) = (
                rel_err(&whole, &reference),
                rel_err(&chunked, &reference),
                rel_err(&scipy_coefs, &reference),
            );
            println!(
                "{:>16}: max err / rms(ref): whole {e_whole:.2e}, chunked {e_chunk:.2e}, scipy coefs {e_coef:.2e}",
                case.name
            );
            assert!(e_whole < 1e-5, "{}: {e_whole}", case.name);
            assert!(e_coef < 1e-5, "{}: {e_coef}", case.name);
            // Chunking must not change a single bit: state carries over exactly.
            assert_eq!(whole, chunked, "{}: chunked output differs", case.name);
        }
    }

    #[test]
    fn channels_keep_independent_state() {
        let x = input();
        let sos = butterworth(FilterKind::BandPass, 4, &[8.0, 13.0], 250.0).expect("design");
        let reference = run(&sos, &x, &[x.len()]);
        let zeros = vec![0.0f32; x.len()];
        let mut f = SosFilter::new(sos, 3).expect("valid");
        let n = x.len();
        let mut planar: Vec<f32> = [x.as_slice(), &zeros, x.as_slice()].concat();
        // Interleave calls so a shared-state bug would show up.
        for start in (0..n).step_by(50) {
            let end = (start + 50).min(n);
            for ch in 0..3 {
                f.process_channel(ch, &mut planar[ch * n + start..ch * n + end])
                    .expect("channel exists");
            }
        }
        assert_eq!(&planar[..n], reference.as_slice());
        assert!(planar[n..2 * n].iter().all(|&v| v == 0.0));
        assert_eq!(&planar[2 * n..], reference.as_slice());

        f.reset();
        let mut again: Vec<f32> = [x.as_slice(), &zeros, x.as_slice()].concat();
        f.process_planar(&mut again, n).expect("planar length");
        assert_eq!(again, planar);
    }

    /// 19 channels: two full lane groups and a short one. The lane kernel
    /// (AVX where the CPU has it, else the portable build) must give the
    /// per-channel recurrence's bits, and the two may take turns.
    #[test]
    fn lanes_equal_the_per_channel_recurrence() {
        const CHANNELS: usize = 19;
        let x = input();
        let n = x.len();
        let sos = butterworth(FilterKind::BandPass, 4, &[1.0, 40.0], 250.0).expect("design");
        let planar: Vec<f32> = (0..CHANNELS)
            .flat_map(|c| x.iter().map(move |&v| v * (c as f32 + 1.0)))
            .collect();
        let mut by_channel = planar.clone();
        let mut one = SosFilter::new(sos.clone(), CHANNELS).expect("valid");
        for (c, samples) in by_channel.chunks_exact_mut(n).enumerate() {
            one.process_channel(c, samples).expect("channel");
        }

        let (mut lanes, mut portable) = (planar.clone(), planar.clone());
        let mut f = SosFilter::new(sos.clone(), CHANNELS).expect("valid");
        let mut g = SosFilter::new(sos, CHANNELS).expect("valid");
        for start in (0..n).step_by(50) {
            let end = (start + 50).min(n);
            let mut block: Vec<f32> = (0..CHANNELS)
                .flat_map(|c| lanes[c * n + start..c * n + end].to_vec())
                .collect();
            let mut same = block.clone();
            if start % 100 == 0 {
                f.process_planar(&mut block, end - start).expect("length");
            } else {
                for (c, samples) in block.chunks_exact_mut(end - start).enumerate() {
                    f.process_channel(c, samples).expect("channel");
                }
            }
            let len = end - start;
            let groups = same.chunks_mut(LANES * len);
            for (group, state) in groups.zip(g.state.chunks_exact_mut(g.sections.len())) {
                filter_lanes(&g.sections, state, group, len);
            }
            for c in 0..CHANNELS {
                lanes[c * n + start..c * n + end].copy_from_slice(&block[c * len..(c + 1) * len]);
                portable[c * n + start..c * n + end].copy_from_slice(&same[c * len..(c + 1) * len]);
            }
        }
        assert_eq!(lanes, by_channel);
        assert_eq!(portable, by_channel);
        let padding = &f.state[2 * f.sections.len()..];
        assert!(
            padding
                .iter()
                .all(|z| z[0][3..] == [0.0; 5] && z[1][3..] == [0.0; 5])
        );
    }

    #[test]
    fn set_sections_keeps_or_resets_state() {
        let x = input();
        let a = butterworth(FilterKind::LowPass, 4, &[30.0], 250.0).expect("design");
        let b = butterworth(FilterKind::LowPass, 4, &[20.0], 250.0).expect("design");
        let c = butterworth(FilterKind::LowPass, 2, &[20.0], 250.0).expect("design");

        // Same section count: continuing must equal a filter that ran `a`
        // and then had its coefficients swapped, i.e. state kept.
        let mut f = SosFilter::new(a.clone(), 1).expect("valid");
        let mut head = x[..100].to_vec();
        f.process_channel(0, &mut head).expect("ch");
        let kept_state = f.state.clone();
        f.set_sections(&b).expect("valid");
        assert_eq!(f.state, kept_state);

        // Different count: fresh state, identical to a new filter.
        f.set_sections(&c).expect("valid");
        let mut tail = x[100..].to_vec();
        f.process_channel(0, &mut tail).expect("ch");
        assert_eq!(tail, run(&c, &x[100..], &[300]));
    }

    #[test]
    fn rejects_bad_input() {
        use FilterKind::*;
        assert_eq!(
            butterworth(LowPass, 0, &[10.0], 250.0),
            Err(DesignError::Order(0))
        );
        assert_eq!(
            butterworth(LowPass, 9, &[10.0], 250.0),
            Err(DesignError::Order(9))
        );
        assert!(matches!(
            butterworth(BandPass, 2, &[10.0], 250.0),
            Err(DesignError::CutoffCount {
                expected: 2,
                got: 1,
                ..
            })
        ));
        assert!(matches!(
            butterworth(LowPass, 2, &[125.0], 250.0),
            Err(DesignError::Frequency { .. })
        ));
        assert!(matches!(
            butterworth(HighPass, 2, &[0.0], 250.0),
            Err(DesignError::Frequency { .. })
        ));
        assert!(matches!(
            butterworth(LowPass, 2, &[f64::NAN], 250.0),
            Err(DesignError::Frequency { .. })
        ));
        assert!(matches!(
            butterworth(BandStop, 2, &[13.0, 8.0], 250.0),
            Err(DesignError::BandOrder { .. })
        ));
        assert!(matches!(
            butterworth(LowPass, 2, &[10.0], 0.0),
            Err(DesignError::SampleRate(_))
        ));
        assert!(matches!(
            iirnotch(50.0, 0.0, 250.0),
            Err(DesignError::Quality(_))
        ));
        assert!(matches!(
            iirnotch(50.0, 30.0, 100.0),
            Err(DesignError::Frequency { .. })
        ));

        let mut f = SosFilter::new(vec![], 2).expect("empty cascade is a pass-through");
        let mut buf = [1.0f32, 2.0];
        f.process_channel(1, &mut buf).expect("ch 1");
        assert_eq!(buf, [1.0, 2.0]);
        assert!(matches!(
            f.process_channel(2, &mut buf),
            Err(FilterError::Channel { .. })
        ));
        assert!(matches!(
            f.process_planar(&mut buf, 2),
            Err(FilterError::BufferLength { .. })
        ));
        assert!(matches!(
            SosFilter::new(vec![[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]], 1),
            Err(FilterError::InvalidSection { index: 0 })
        ));
        assert!(!DesignError::Order(0).to_string().is_empty());
    }
}
