//! `bandpower`: power per frequency band and channel from spectra. By default
//! the classic EEG bands delta 1-4, theta 4-8, alpha 8-13, beta 13-30 and
//! gamma 30-45 Hz, in that order; or the contiguous bands between the
//! `edges_hz` given. A bin at frequency `f` belongs to the band `[lo, hi)`
//! holding `f` (see `src/bands.rs`).
//!
//! Absolute power is `bin_hz × Σ P[k]` over the band's bins; relative power
//! divides it by the same sum over all bands' span, so contiguous bands add
//! up to 1. The sums need power: a spectrum of magnitudes (`scale =
//! "magnitude"` upstream) is squared bin by bin first, which is exactly the
//! power spectrum of the same frame.

use hsp_sdk::{
    FeaturePacket, FftPacket, Outcome, PacketKind, PlanarBlock, SpectrumScale, Stage, StageConfig,
    StageError, StreamFormat,
};
use serde::Deserialize;

// A complete DSP module with its own tests; the stage uses part of its API
// (no band names, spans or custom named bands), and the rest stays as its
// author wrote it.
mod bands;

use bands::{BandSet, BinMap, Spectrum};

/// `[stage.config]` of `bandpower`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct BandpowerConfig {
    /// Increasing band edges; consecutive pairs are the bands. Empty = delta 1-4, theta 4-8, alpha
    /// 8-13, beta 13-30, gamma 30-45 Hz
    #[config(default = [], unit = "Hz")]
    pub edges_hz: Vec<f64>,
    /// false: absolute power (bin_hz * sum of |X|^2); true: fraction of the total over all bands
    #[config(default = false)]
    pub relative: bool,
}

/// The bands `config` asks for, checked against the input's Nyquist
/// frequency when the input is known.
fn band_set(config: &BandpowerConfig, input: Option<&StreamFormat>) -> Result<BandSet, StageError> {
    if config.edges_hz.is_empty() {
        return Ok(BandSet::eeg());
    }
    let edges = &config.edges_hz;
    if edges.len() < 2 {
        return Err(StageError::new(format!(
            "`edges_hz` = {edges:?}: give at least two edges (one band), or none for the EEG bands"
        )));
    }
    if let Some(w) = edges.windows(2).find(|w| w[0] >= w[1]) {
        return Err(StageError::new(format!(
            "`edges_hz` = {edges:?}: edges must increase, but {} is followed by {}",
            w[0], w[1]
        )));
    }
    if let Some(nyquist) = input.map(|f| f.sample_rate_hz / 2.0) {
        if let Some(&top) = edges.last().filter(|&&top| top > nyquist) {
            return Err(StageError::new(format!(
                "`edges_hz` = {edges:?}: {top} Hz is above the input's Nyquist frequency ({nyquist} Hz)"
            )));
        }
    }
    BandSet::from_edges(edges).map_err(|e| StageError::new(format!("`edges_hz` = {edges:?}: {e}")))
}

fn require_input(inputs: &[StreamFormat]) -> Result<&StreamFormat, StageError> {
    inputs
        .first()
        .ok_or_else(|| StageError::new("`bandpower` needs an input stream of spectra"))
}

/// Band power of every channel of a spectrum stream.
pub struct Bandpower {
    bands: BandSet,
    /// The bins of every band, for the bin spacing and length of the
    /// spectra: made in `new` for the input format, again only if a frame
    /// comes with another spacing or length.
    bins: BinMap,
    relative: bool,
    channels: usize,
    /// Most bins per channel the input format allows.
    max_bins: usize,
    /// Absolute powers, when relative ones are emitted.
    absolute: Vec<f32>,
}

impl Bandpower {
    /// Bands per channel: the number of values per channel emitted.
    pub fn band_count(&self) -> usize {
        self.bands.len()
    }
}

impl Stage for Bandpower {
    const KIND: &'static str = "bandpower";
    const DOC: &'static str = "Absolute or relative band power per channel from spectra: delta, theta, alpha, beta, gamma (or custom edges), in that order.";
    type Config = BandpowerConfig;
    type Input = FftPacket;
    type Output = FeaturePacket;

    fn output_formats(
        config: &BandpowerConfig,
        inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        let input = require_input(inputs)?;
        let bands = band_set(config, Some(input))?;
        let mut output = input
            .reshaped(PacketKind::Features, bands.len(), input.packet_rate_hz)
            .with_value_labels(bands.bands().iter().map(|band| band.name.as_str()));
        if config.relative {
            // A fraction of the total: no unit.
            for channel in output.channel_info.iter_mut() {
                channel.unit = "".into();
            }
        }
        Ok(vec![output])
    }

    fn new(config: BandpowerConfig, inputs: &[StreamFormat]) -> Result<Self, StageError> {
        let input = require_input(inputs)?;
        let bands = band_set(&config, Some(input))?;
        let max_bins = input.values_per_channel();
        // Spectra of `size / 2 + 1` bins from an even-sized FFT are spaced
        // `rate / size` apart. A format that says otherwise (or has no
        // rate) leaves the map to the first frame, which checks its spacing.
        let mut bins = BinMap::unset(bands.len());
        if max_bins >= 2 {
            let expected_hz = input.sample_rate_hz / (2 * (max_bins - 1)) as f64;
            bins.update(&bands, expected_hz, max_bins).ok();
        }
        Ok(Self {
            absolute: vec![0.0; bands.len()],
            bands,
            bins,
            relative: config.relative,
            channels: input.channels(),
            max_bins,
        })
    }

    fn process(
        &mut self,
        input: Option<&FftPacket>,
        output: &mut FeaturePacket,
    ) -> Result<Outcome, StageError> {
        let Some(input) = input else {
            return Ok(Outcome::NoOutput);
        };
        if input.channels() != self.channels {
            return Err(StageError::new(format!(
                "bandpower: got a spectrum of {} channels, the stage was built for {}",
                input.channels(),
                self.channels
            )));
        }
        let bins = input.values_per_channel();
        if input.scale == SpectrumScale::Magnitude && bins > self.max_bins {
            return Err(StageError::new(format!(
                "bandpower: got {bins} bins per channel, the input format allows {}",
                self.max_bins
            )));
        }
        output
            .set_shape(self.channels, self.bands.len())
            .map_err(|e| StageError::new(format!("bandpower: output packet: {e}")))?;
        let error = |e| StageError::new(format!("bandpower: {e}"));
        self.bins
            .update(&self.bands, input.bin_hz, bins)
            .map_err(error)?;
        let holds = match input.scale {
            SpectrumScale::Power => Spectrum::Power,
            SpectrumScale::Magnitude => Spectrum::Magnitude,
        };
        for channel in 0..self.channels {
            let spectrum = input.channel(channel);
            let row = output.channel_mut(channel);
            let result = if self.relative {
                self.bins.compute(spectrum, holds, &mut self.absolute, row)
            } else {
                self.bins.absolute(spectrum, holds, row)
            };
            result.map_err(error)?;
        }
        output.stream_id = input.stream_id;
        output.sequence = input.sequence;
        output.timestamp_ns = input.timestamp_ns;
        Ok(Outcome::Emitted)
    }
}

hsp_sdk::export_plugin!(Bandpower);

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_fft::Fft;
    use hsp_sdk::testing::StageHarness;
    use hsp_sdk::{EegPacket, FilteredEegPacket};
    use std::f64::consts::TAU;

    const FS: f64 = 250.0;
    const ALPHA: usize = 2;

    /// Two channels, 4 s: a 10 Hz sine on channel 0, a 20 Hz one on
    /// channel 1, in blocks of 32.
    fn sines() -> Vec<FilteredEegPacket> {
        (0..1000 / 32 + 1)
            .map(|b| {
                let n = 32.min(1000 - b * 32);
                let mut block = EegPacket::with_capacity(2, 32);
                block.set_shape(2, n).unwrap();
                for (ch, freq) in [(0, 10.0), (1, 20.0)] {
                    for (i, v) in block.channel_mut(ch).iter_mut().enumerate() {
                        let t = (b * 32 + i) as f64 / FS;
                        *v = (20.0 * (TAU * freq * t).sin()) as f32;
                    }
                }
                block.sequence = b as u64;
                block.timestamp_ns = 1_000_000 + b as u64 * 128_000_000;
                block.sample_rate_hz = FS;
                FilteredEegPacket(block)
            })
            .collect()
    }

    /// Runs the sines through `fft` with `fft_config`, then `bandpower`.
    fn run(fft_config: &str, bandpower_config: &str) -> Vec<FeaturePacket> {
        let eeg = StreamFormat::eeg(PacketKind::FilteredEeg, 2, FS, 32);
        let mut fft = StageHarness::<Fft>::new(fft_config, &[eeg]).unwrap();
        let mut bp =
            StageHarness::<Bandpower>::new(bandpower_config, fft.output_formats()).unwrap();
        let spectra = fft.run(&sines()).unwrap();
        assert!(!spectra.is_empty());
        let features = bp.run(&spectra).unwrap();
        assert_eq!(features.len(), spectra.len());
        for (f, s) in features.iter().zip(&spectra) {
            assert_eq!(
                (f.sequence, f.timestamp_ns, f.stream_id),
                (s.sequence, s.timestamp_ns, s.stream_id)
            );
        }
        features
    }

    #[test]
    fn a_10_hz_sine_lands_in_alpha() {
        let features = run("{}", r#"{"relative": true}"#);
        for f in &features {
            assert_eq!((f.channels(), f.values_per_channel()), (2, 5));
            let alpha = f.channel(0);
            assert!(alpha[ALPHA] > 0.9, "10 Hz: {alpha:?}");
            let sum: f32 = alpha.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "relative powers sum to {sum}");
            // 20 Hz is beta.
            assert!(f.channel(1)[3] > 0.9, "20 Hz: {:?}", f.channel(1));
        }
    }

    #[test]
    fn magnitude_spectra_are_squared_first() {
        let from_power = run(r#"{"scale": "power"}"#, "{}");
        let from_magnitude = run(r#"{"scale": "magnitude"}"#, "{}");
        for (p, m) in from_power.iter().zip(&from_magnitude) {
            for (&a, &b) in p.values().iter().zip(m.values()) {
                assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
            }
        }
        // Absolute power of the alpha band dominates on channel 0.
        let row = from_power[0].channel(0);
        assert!(row.iter().all(|&v| v <= row[ALPHA]), "{row:?}");
    }

    #[test]
    fn custom_edges_make_the_bands() {
        let eeg = StreamFormat::eeg(PacketKind::FilteredEeg, 2, FS, 32);
        let fft = StageHarness::<Fft>::new("{}", &[eeg]).unwrap();
        let bp = StageHarness::<Bandpower>::new(
            r#"{"edges_hz": [8, 12, 16, 24]}"#,
            fft.output_formats(),
        )
        .unwrap();
        assert_eq!(bp.stage().band_count(), 3);
        assert_eq!(bp.output_formats()[0].values_per_channel, 3);
        assert_eq!(bp.output_formats()[0].kind, PacketKind::Features);

        let features = run("{}", r#"{"edges_hz": [8, 12, 16, 24], "relative": true}"#);
        let last = features.last().unwrap();
        assert!(last.channel(0)[0] > 0.9, "{:?}", last.channel(0));
        assert!(last.channel(1)[2] > 0.9, "{:?}", last.channel(1));
    }

    #[test]
    fn bad_config_names_the_key() {
        let spectra = StreamFormat {
            kind: PacketKind::Fft,
            channels: 2,
            values_per_channel: 129,
            sample_rate_hz: FS,
            packet_rate_hz: FS / 128.0,
            ..StreamFormat::events()
        };
        for (config, needle) in [
            (r#"{"edges_hz": [8]}"#, "`edges_hz` = [8.0]"),
            (r#"{"edges_hz": [8, 8]}"#, "must increase"),
            (r#"{"edges_hz": [12, 8]}"#, "must increase"),
            (r#"{"edges_hz": [-1, 4]}"#, "`edges_hz`"),
            (r#"{"edges_hz": [100, 200]}"#, "Nyquist frequency (125 Hz)"),
            (r#"{"relative": 1}"#, "`relative`"),
            (r#"{"bands": "alpha"}"#, "unknown key `bands`"),
        ] {
            let e = StageHarness::<Bandpower>::new(config, std::slice::from_ref(&spectra))
                .err()
                .unwrap();
            assert!(e.to_string().contains(needle), "{config}: {e}");
        }
    }

    #[test]
    fn wrong_spectra_are_errors_not_panics() {
        let spectra = StreamFormat {
            kind: PacketKind::Fft,
            channels: 2,
            values_per_channel: 9,
            sample_rate_hz: FS,
            packet_rate_hz: 1.0,
            ..StreamFormat::events()
        };
        let mut h = StageHarness::<Bandpower>::new("{}", &[spectra]).unwrap();
        let mut three = FftPacket::with_capacity(3, 9);
        three.bin_hz = 1.0;
        assert!(h.process(Some(&three)).is_err());
        let mut long = FftPacket::with_capacity(2, 10);
        long.bin_hz = 1.0;
        long.scale = SpectrumScale::Magnitude;
        assert!(h.process(Some(&long)).is_err());
        let no_spacing = FftPacket::with_capacity(2, 9);
        let e = h.process(Some(&no_spacing)).unwrap_err().to_string();
        assert!(e.contains("bin spacing"), "{e}");
    }
}
