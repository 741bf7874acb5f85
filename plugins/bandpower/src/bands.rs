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
    /// Output slice length differs from the number of bands.
    #[error("output slice holds {got} values, band set has {expected} bands")]
    OutputLength {
        /// Bands in the set.
        expected: usize,
        /// Slice length supplied.
        got: usize,
    },
}

/// A validated list of bands.
///
/// Guarantee: computations never allocate and write exactly one value per
/// band, in the order the bands were given.
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
    #[cfg(test)]
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

    /// Writes absolute band power (`bin_hz * sum of owned bins`) into
    /// `absolute` and band / span-total into `relative` (0 where the span
    /// holds no power), one value per band.
    pub fn compute(
        &self,
        power: &[f32],
        bin_hz: f64,
        absolute: &mut [f32],
        relative: &mut [f32],
    ) -> Result<(), BandError> {
        self.check_out(relative.len())?;
        let total = self.absolute_into(power, bin_hz, absolute)?;
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
        power: &[f32],
        bin_hz: f64,
        absolute: &mut [f32],
    ) -> Result<(), BandError> {
        self.absolute_into(power, bin_hz, absolute).map(|_| ())
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
        power: &[f32],
        bin_hz: f64,
        absolute: &mut [f32],
    ) -> Result<f64, BandError> {
        if !(bin_hz.is_finite() && bin_hz > 0.0) {
            return Err(BandError::BinSpacing(bin_hz));
        }
        self.check_out(absolute.len())?;
        // One pass per band keeps every sum in f64 without scratch storage
        // (the output slots are f32); band counts are small.
        let mut total = 0.0f64;
        for (k, &p) in power.iter().enumerate() {
            let f = k as f64 * bin_hz;
            if f >= self.span_lo_hz && f < self.span_hi_hz {
                total += f64::from(p);
            }
        }
        for (out, band) in absolute.iter_mut().zip(&self.bands) {
            let mut sum = 0.0f64;
            for (k, &p) in power.iter().enumerate() {
                let f = k as f64 * bin_hz;
                if f >= band.lo_hz && f < band.hi_hz {
                    sum += f64::from(p);
                }
            }
            *out = (sum * bin_hz) as f32;
        }
        Ok(total * bin_hz)
    }
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
}
