//! Band power from a one-sided power spectrum.
//!
//! Convention: bin `k` of a spectrum with spacing `bin_hz` is centred at
//! `f_k = k * bin_hz` (bin 0 = DC, as `np.fft.rfftfreq`). A band `[lo, hi)`
//! owns the bins with `lo <= f_k < hi`, so a bin exactly on a shared edge
//! belongs to the upper band and contiguous bands never double count.
//! Absolute band power is the rectangle rule `bin_hz * sum(P[k])` over the
//! owned bins: with a PSD (units^2/Hz) that is units^2; with raw `|X|^2`
//! frames it is proportional to it. Relative power divides by the same sum
//! over the whole span `[min lo, max hi)` of the set, so contiguous bands
//! (the default) add up to 1.
//!
//! A [`BinMap`] holds which bins each band owns for one bin spacing and
//! spectrum length, worked out once; a frame then costs one pass over the
//! span's bins, with sums in the same order (so the same bits) as summing
//! the owned bins of each band one by one.

use std::ops::Range;

use thiserror::Error;

/// One frequency band `[lo_hz, hi_hz)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Label used in outputs, e.g. `"alpha"`.
    pub name: String,
    /// Inclusive lower edge in Hz.
    pub lo_hz: f64,
    /// Exclusive upper edge in Hz.
    pub hi_hz: f64,
}

impl Band {
    /// Builds a band; validity is checked by [`BandSet::new`].
    pub fn new(name: impl Into<String>, lo_hz: f64, hi_hz: f64) -> Self {
        Band {
            name: name.into(),
            lo_hz,
            hi_hz,
        }
    }
}

/// Classic EEG bands: delta 1-4, theta 4-8, alpha 8-13, beta 13-30,
/// gamma 30-45 Hz.
pub const EEG_BANDS: [(&str, f64, f64); 5] = [
    ("delta", 1.0, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 13.0),
    ("beta", 13.0, 30.0),
    ("gamma", 30.0, 45.0),
];

/// Why a band set or a computation was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BandError {
    /// No bands given.
    #[error("a band set needs at least one band")]
    Empty,
    /// Band edges not finite, negative, or not increasing.
    #[error("band {name:?} has invalid edges [{lo_hz}, {hi_hz}) Hz; need 0 <= lo < hi, finite")]
    Edges {
        /// Band label.
        name: String,
        /// Lower edge supplied.
        lo_hz: f64,
        /// Upper edge supplied.
        hi_hz: f64,
    },
    /// Bin spacing not finite and positive.
    #[error("bin spacing {0} Hz must be finite and > 0")]
    BinSpacing(f64),
    /// Spectrum length differs from the one the [`BinMap`] was made for.
    #[error("spectrum holds {got} bins, the bin map was made for {expected}")]
    SpectrumLength {
        /// Bins the map was made for.
        expected: usize,
        /// Bins supplied.
        got: usize,
    },
    /// Output slice length differs from the number of bands.
    #[error("output slice holds {got} values, band set has {expected} bands")]
    OutputLength {
        /// Bands in the set.
        expected: usize,
        /// Slice length supplied.
        got: usize,
    },
}

/// A validated list of bands. [`BandSet::bin_map`] places them on the bins
/// of a spectrum.
#[derive(Debug, Clone, PartialEq)]
pub struct BandSet {
    bands: Vec<Band>,
    span_lo_hz: f64,
    span_hi_hz: f64,
}

impl Default for BandSet {
    fn default() -> Self {
        BandSet::eeg()
    }
}

impl BandSet {
    /// The [`EEG_BANDS`] set.
    pub fn eeg() -> Self {
        BandSet {
            bands: EEG_BANDS
                .iter()
                .map(|&(name, lo, hi)| Band::new(name, lo, hi))
                .collect(),
            span_lo_hz: 1.0,
            span_hi_hz: 45.0,
        }
    }

    /// Validates custom bands (each `0 <= lo < hi`, finite). Bands may
    /// overlap or leave gaps; then relative powers need not sum to 1.
    pub fn new(bands: Vec<Band>) -> Result<Self, BandError> {
        if bands.is_empty() {
            return Err(BandError::Empty);
        }
        for b in &bands {
            let ok =
                b.lo_hz.is_finite() && b.hi_hz.is_finite() && b.lo_hz >= 0.0 && b.lo_hz < b.hi_hz;
            if !ok {
                return Err(BandError::Edges {
                    name: b.name.clone(),
                    lo_hz: b.lo_hz,
                    hi_hz: b.hi_hz,
                });
            }
        }
        let span_lo_hz = bands.iter().map(|b| b.lo_hz).fold(f64::INFINITY, f64::min);
        let span_hi_hz = bands.iter().map(|b| b.hi_hz).fold(0.0, f64::max);
        Ok(BandSet {
            bands,
            span_lo_hz,
            span_hi_hz,
        })
    }

    /// Contiguous bands between consecutive `edges` (at least two,
    /// increasing), named `"{lo}-{hi}Hz"`.
    pub fn from_edges(edges: &[f64]) -> Result<Self, BandError> {
        if edges.len() < 2 {
            return Err(BandError::Empty);
        }
        let bands = edges
            .windows(2)
            .map(|w| Band::new(format!("{}-{}Hz", w[0], w[1]), w[0], w[1]))
            .collect();
        BandSet::new(bands)
    }

    /// The bands, in output order.
    pub fn bands(&self) -> &[Band] {
        &self.bands
    }

    /// Number of bands (= length every output slice must have).
    pub fn len(&self) -> usize {
        self.bands.len()
    }

    /// `[min lo, max hi)`, the range relative power is normalised over.
    #[cfg(test)]
    pub fn span_hz(&self) -> (f64, f64) {
        (self.span_lo_hz, self.span_hi_hz)
    }

    /// Where the bands fall in spectra of `len` bins spaced `bin_hz` apart.
    /// Allocates; [`BinMap::update`] moves an existing map without.
    #[cfg(test)]
    pub fn bin_map(&self, bin_hz: f64, len: usize) -> Result<BinMap, BandError> {
        let mut map = BinMap::unset(self.bands.len());
        map.update(self, bin_hz, len)?;
        Ok(map)
    }

    /// Writes absolute band power (`bin_hz * sum of owned bins`) into
    /// `absolute` and band / span-total into `relative` (0 where the span
    /// holds no power), one value per band.
    #[cfg(test)]
    pub fn compute(
        &self,
        power: &[f32],
        bin_hz: f64,
        absolute: &mut [f32],
        relative: &mut [f32],
    ) -> Result<(), BandError> {
        self.bin_map(bin_hz, power.len())?
            .compute(power, Spectrum::Power, absolute, relative)
    }

    /// Writes absolute band power only; see [`Self::compute`].
    #[cfg(test)]
    pub fn absolute(
        &self,
        power: &[f32],
        bin_hz: f64,
        absolute: &mut [f32],
    ) -> Result<(), BandError> {
        self.bin_map(bin_hz, power.len())?
            .absolute(power, Spectrum::Power, absolute)
    }
}

/// What a spectrum's bins hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spectrum {
    /// Power `|X|^2`, summed as it is.
    Power,
    /// Magnitude `|X|`, squared (in f32) before it is summed.
    Magnitude,
}

/// The bins each band of a [`BandSet`] owns in spectra of one bin spacing
/// and length, and the bins of the set's span.
///
/// Guarantee: computations never allocate and write exactly one value per
/// band, in the order the bands were given; each sum adds the owned bins in
/// increasing order, in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct BinMap {
    /// Spacing the map was made for; NaN before the first [`Self::update`].
    bin_hz: f64,
    len: usize,
    bands: Vec<Range<usize>>,
    span: Range<usize>,
    /// The bands' bins, in band order, are exactly the span's: the span
    /// total then accumulates in the same pass, in the same order.
    tiled: bool,
}

impl BinMap {
    /// A map for `bands` bands that matches no spacing yet.
    pub fn unset(bands: usize) -> Self {
        BinMap {
            bin_hz: f64::NAN,
            len: 0,
            bands: vec![0..0; bands],
            span: 0..0,
            tiled: false,
        }
    }

    /// Places `set`'s bands on spectra of `len` bins spaced `bin_hz` apart,
    /// unless the map is for those already. Never allocates once the map
    /// has a slot per band of `set`.
    pub fn update(&mut self, set: &BandSet, bin_hz: f64, len: usize) -> Result<(), BandError> {
        if bin_hz == self.bin_hz && len == self.len && self.bands.len() == set.bands.len() {
            return Ok(());
        }
        if !(bin_hz.is_finite() && bin_hz > 0.0) {
            return Err(BandError::BinSpacing(bin_hz));
        }
        let owned = |lo_hz, hi_hz| {
            let start = first_bin_at(lo_hz, bin_hz, len);
            start..first_bin_at(hi_hz, bin_hz, len).max(start)
        };
        self.bands.clear();
        self.bands
            .extend(set.bands.iter().map(|b| owned(b.lo_hz, b.hi_hz)));
        self.span = owned(set.span_lo_hz, set.span_hi_hz);
        let mut next = self.span.start;
        self.tiled = self.bands.iter().all(|bins| {
            let follows = bins.start == next;
            next = bins.end;
            follows
        }) && next == self.span.end;
        self.bin_hz = bin_hz;
        self.len = len;
        Ok(())
    }

    /// Writes absolute band power (`bin_hz * sum of owned bins`) into
    /// `absolute` and band / span-total into `relative` (0 where the span
    /// holds no power), one value per band. `spectrum` is one channel's
    /// bins, as many as the map was made for.
    pub fn compute(
        &self,
        spectrum: &[f32],
        holds: Spectrum,
        absolute: &mut [f32],
        relative: &mut [f32],
    ) -> Result<(), BandError> {
        self.check_out(relative.len())?;
        let total = self.absolute_into(spectrum, holds, absolute)?;
        for (r, &a) in relative.iter_mut().zip(absolute.iter()) {
            *r = if total > 0.0 {
                (f64::from(a) / total) as f32
            } else {
                0.0
            };
        }
        Ok(())
    }

    /// Writes absolute band power only; see [`Self::compute`].
    pub fn absolute(
        &self,
        spectrum: &[f32],
        holds: Spectrum,
        absolute: &mut [f32],
    ) -> Result<(), BandError> {
        self.absolute_into(spectrum, holds, absolute).map(|_| ())
    }

    fn check_out(&self, got: usize) -> Result<(), BandError> {
        if got == self.bands.len() {
            Ok(())
        } else {
            Err(BandError::OutputLength {
                expected: self.bands.len(),
                got,
            })
        }
    }

    /// Fills `absolute` and returns the span total (already times bin_hz).
    fn absolute_into(
        &self,
        spectrum: &[f32],
        holds: Spectrum,
        absolute: &mut [f32],
    ) -> Result<f64, BandError> {
        self.check_out(absolute.len())?;
        if spectrum.len() != self.len {
            return Err(BandError::SpectrumLength {
                expected: self.len,
                got: spectrum.len(),
            });
        }
        let total = match holds {
            Spectrum::Power => self.sums(spectrum, |p| p, absolute),
            Spectrum::Magnitude => self.sums(spectrum, |m| m * m, absolute),
        };
        Ok(total * self.bin_hz)
    }

    /// Band sums into `absolute` (times bin_hz), span sum returned; bins
    /// are read through `power`.
    #[inline(always)]
    fn sums(&self, spectrum: &[f32], power: impl Fn(f32) -> f32, absolute: &mut [f32]) -> f64 {
        let mut total = 0.0f64;
        for (out, bins) in absolute.iter_mut().zip(&self.bands) {
            let mut sum = 0.0f64;
            for &v in &spectrum[bins.clone()] {
                let p = f64::from(power(v));
                sum += p;
                total += p;
            }
            *out = (sum * self.bin_hz) as f32;
        }
        if self.tiled {
            return total;
        }
        // Gaps or overlaps: the span's own pass.
        spectrum[self.span.clone()]
            .iter()
            .map(|&v| f64::from(power(v)))
            .fold(0.0, |total, p| total + p)
    }
}

/// The first of `len` bins whose frequency `k * bin_hz` is at least `hz`
/// (`len` if none): bin `k` lies in `[lo, hi)` exactly when
/// `first_bin_at(lo) <= k < first_bin_at(hi)`. The estimate from a division
/// is corrected with the very product the definition uses.
fn first_bin_at(hz: f64, bin_hz: f64, len: usize) -> usize {
    let at = |k: usize| k as f64 * bin_hz >= hz;
    let mut k = (hz / bin_hz).ceil().clamp(0.0, len as f64) as usize;
    while k > 0 && at(k - 1) {
        k -= 1;
    }
    while k < len && !at(k) {
        k += 1;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// |DFT|^2 of a Hann-windowed sine, bins 0..=n/2 (direct sum: keeps
    /// this module free of an FFT dependency).
    fn sine_power(freq_hz: f64, fs: f64, n: usize) -> Vec<f32> {
        let x: Vec<f64> = (0..n)
            .map(|i| {
                let w = 0.5 - 0.5 * (2.0 * PI * i as f64 / n as f64).cos();
                w * 20.0 * (2.0 * PI * freq_hz * i as f64 / fs).sin()
            })
            .collect();
        (0..=n / 2)
            .map(|k| {
                let (mut re, mut im) = (0.0, 0.0);
                for (i, &v) in x.iter().enumerate() {
                    let ph = -2.0 * PI * (k * i) as f64 / n as f64;
                    re += v * ph.cos();
                    im += v * ph.sin();
                }
                (re * re + im * im) as f32
            })
            .collect()
    }

    #[test]
    fn pure_alpha_sine_lands_in_alpha() {
        // On-bin (fs 256, 1 Hz bins) and off-bin (fs 250, 0.977 Hz bins).
        for (fs, n) in [(256.0, 256), (250.0, 256)] {
            let p = sine_power(10.0, fs, n);
            let set = BandSet::eeg();
            let (mut abs, mut rel) = ([0.0f32; 5], [0.0f32; 5]);
            set.compute(&p, fs / n as f64, &mut abs, &mut rel)
                .expect("valid");
            println!("10 Hz sine, fs {fs}, n {n}: relative {rel:?}");
            assert!(rel[2] > 0.9, "alpha relative {} at fs {fs}", rel[2]);
            let sum: f32 = rel.iter().sum();
            assert!(
                (sum - 1.0).abs() < 1e-5,
                "contiguous bands sum to 1, got {sum}"
            );
            assert!(abs.iter().all(|&a| a <= abs[2]));
        }
    }

    #[test]
    fn edge_bin_goes_to_upper_band() {
        let power = [1.0f32; 10]; // bins at 0..9 Hz
        let set = BandSet::from_edges(&[2.0, 5.0, 9.0]).expect("valid edges");
        let (mut abs, mut rel) = ([0.0f32; 2], [0.0f32; 2]);
        set.compute(&power, 1.0, &mut abs, &mut rel).expect("valid");
        assert_eq!(abs, [3.0, 4.0]); // {2,3,4} and {5,6,7,8}
        assert_eq!(rel, [3.0 / 7.0, 4.0 / 7.0]);
        assert_eq!(set.bands()[0].name, "2-5Hz");

        // Halving the spacing: bins sit at 0, 0.5, .., 4.5 Hz, so the first
        // band owns 6 of them (x 0.5 Hz) and the second none.
        set.compute(&power, 0.5, &mut abs, &mut rel).expect("valid");
        assert_eq!(abs, [3.0, 0.0]);
        assert_eq!(rel, [1.0, 0.0]);
    }

    #[test]
    fn silence_gives_zero_relative_not_nan() {
        let set = BandSet::eeg();
        let (mut abs, mut rel) = ([1.0f32; 5], [1.0f32; 5]);
        set.compute(&[0.0; 129], 250.0 / 256.0, &mut abs, &mut rel)
            .expect("valid");
        assert_eq!(abs, [0.0; 5]);
        assert_eq!(rel, [0.0; 5]);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(BandSet::new(vec![]), Err(BandError::Empty));
        assert!(matches!(
            BandSet::new(vec![Band::new("x", 5.0, 5.0)]),
            Err(BandError::Edges { .. })
        ));
        assert!(matches!(
            BandSet::new(vec![Band::new("x", -1.0, 5.0)]),
            Err(BandError::Edges { .. })
        ));
        assert!(matches!(
            BandSet::from_edges(&[1.0, f64::NAN]),
            Err(BandError::Edges { .. })
        ));
        assert_eq!(BandSet::from_edges(&[1.0]), Err(BandError::Empty));
        let set = BandSet::eeg();
        let mut out = [0.0f32; 4];
        assert_eq!(
            set.absolute(&[1.0; 8], 1.0, &mut out),
            Err(BandError::OutputLength {
                expected: 5,
                got: 4
            })
        );
        let mut out = [0.0f32; 5];
        assert_eq!(
            set.absolute(&[1.0; 8], 0.0, &mut out),
            Err(BandError::BinSpacing(0.0))
        );
        assert_eq!(set.span_hz(), (1.0, 45.0));
        assert_eq!(
            BandSet::default(),
            BandSet::new(BandSet::eeg().bands().to_vec()).expect("valid")
        );
    }

    /// The computation before bin maps: every band rescans every bin and
    /// tests its frequency; the span total likewise.
    fn scan(set: &BandSet, power: &[f32], bin_hz: f64) -> (Vec<f32>, f64) {
        let in_band = |k: usize, lo: f64, hi: f64| {
            let f = k as f64 * bin_hz;
            f >= lo && f < hi
        };
        let sum = |lo, hi| -> f64 {
            let owned = power
                .iter()
                .enumerate()
                .filter(|&(k, _)| in_band(k, lo, hi));
            owned.fold(0.0, |acc, (_, &p)| acc + f64::from(p))
        };
        let absolute = set
            .bands
            .iter()
            .map(|b| (sum(b.lo_hz, b.hi_hz) * bin_hz) as f32);
        (
            absolute.collect(),
            sum(set.span_lo_hz, set.span_hi_hz) * bin_hz,
        )
    }

    #[test]
    fn bin_maps_give_the_bits_of_the_full_scan() {
        let sets = [
            BandSet::eeg(),
            BandSet::from_edges(&[0.0, 0.5, 7.3, 7.4, 60.0, 200.0]).expect("edges"),
            // A gap (4-8 Hz) and an overlap (20-30 Hz in two bands).
            BandSet::new(vec![
                Band::new("a", 1.0, 4.0),
                Band::new("b", 8.0, 30.0),
                Band::new("c", 20.0, 45.0),
            ])
            .expect("bands"),
        ];
        let mut seed = 12345u64;
        for set in &sets {
            for (fs, size) in [
                (250.0, 256),
                (1000.0, 256),
                (256.0, 256),
                (500.0, 99),
                (1e3, 7),
            ] {
                let bins = size / 2 + 1;
                let bin_hz = fs / size as f64;
                let power: Vec<f32> = (0..bins)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (seed >> 40) as f32 / 1024.0
                    })
                    .collect();
                let magnitude: Vec<f32> = power.iter().map(|p| p.sqrt()).collect();
                let squared: Vec<f32> = magnitude.iter().map(|m| m * m).collect();
                let map = set.bin_map(bin_hz, bins).expect("valid spacing");
                let (want, total) = scan(set, &power, bin_hz);
                let mut abs = vec![0.0; set.len()];
                let mut rel = vec![0.0; set.len()];
                map.compute(&power, Spectrum::Power, &mut abs, &mut rel)
                    .expect("valid");
                assert_eq!(abs, want, "fs {fs}, size {size}, {set:?}");
                let want_rel: Vec<f32> = want
                    .iter()
                    .map(|&a| {
                        if total > 0.0 {
                            (f64::from(a) / total) as f32
                        } else {
                            0.0
                        }
                    })
                    .collect();
                assert_eq!(rel, want_rel);
                let (want, _) = scan(set, &squared, bin_hz);
                map.absolute(&magnitude, Spectrum::Magnitude, &mut abs)
                    .expect("valid");
                assert_eq!(abs, want, "from magnitude: fs {fs}, size {size}");
            }
        }
        let mut map = BinMap::unset(5);
        assert!(map.update(&sets[0], f64::NAN, 9).is_err());
        map.update(&sets[0], 1.0, 9).expect("valid");
        assert_eq!(
            map.absolute(&[0.0; 8], Spectrum::Power, &mut [0.0; 5]),
            Err(BandError::SpectrumLength {
                expected: 9,
                got: 8
            })
        );
        assert!(map.tiled);
        assert!(!sets[2].bin_map(1.0, 50).expect("valid").tiled);
    }
}
