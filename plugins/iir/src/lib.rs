//! `iir`: Butterworth low-pass, high-pass, band-pass and
//! band-stop filters and a second-order notch, designed like scipy's
//! `butter(..., output='sos')` / `iirnotch` and run as a cascade of
//! second-order sections (see `src/design.rs`). Each channel keeps its filter
//! state from packet to packet, so a stream filtered in blocks equals the
//! whole recording filtered at once.
//!
//! It takes EEG, raw or already filtered, so filters chain (a band-pass,
//! then a mains notch), and outputs filtered EEG. Filtered EEG in is
//! filtered where it is, in place: a chain of filters copies each block
//! once. The channels' `prefilter` text says what was applied.

use hsp_sdk::{
    EegPacket, FilteredEegPacket, Outcome, PacketKind, PlanarBlock, Stage, StageConfig, StageError,
    StreamFormat,
};
use serde::Deserialize;

// A complete DSP module with its own tests; the stage uses part of its API
// (no live retuning), and the rest stays as its author wrote it. Public for
// the benchmarks (`benches/iir.rs`), which time its kernels directly.
pub mod design;

use design::{DesignError, FilterKind, MAX_ORDER, Sos, SosFilter, butterworth, iirnotch};

/// `[stage.config]` of `iir`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct IirConfig {
    /// Filter type: lowpass, highpass, bandpass, bandstop or notch
    #[serde(rename = "type")]
    pub filter_type: String,
    /// Butterworth order, 1 to 8 (band filters get twice as many poles); ignored for notch
    #[config(default = 4)]
    pub order: i64,
    /// Corner frequencies: \[f\] for lowpass/highpass, \[low, high\] for bandpass/bandstop, \[f0\] for
    /// notch
    #[config(unit = "Hz")]
    pub cutoff_hz: Vec<f64>,
    /// Notch quality factor: centre frequency / -3 dB bandwidth (notch only)
    #[config(default = 30.0)]
    pub quality: f64,
}

impl IirConfig {
    /// The filter as EDF writes prefiltering: `HP:1Hz LP:40Hz`, `N:50Hz`.
    pub fn describe(&self) -> String {
        let hz = |f: &f64| format!("{f}Hz");
        match (self.filter_type.as_str(), self.cutoff_hz.as_slice()) {
            ("lowpass", [f]) => format!("LP:{}", hz(f)),
            ("highpass", [f]) => format!("HP:{}", hz(f)),
            ("bandpass", [lo, hi]) => format!("HP:{} LP:{}", hz(lo), hz(hi)),
            ("bandstop", [lo, hi]) => format!("BS:{lo}-{}", hz(hi)),
            ("notch", [f]) => format!("N:{}", hz(f)),
            (kind, cutoffs) => format!("{kind}:{cutoffs:?}Hz"),
        }
    }
}

/// Designs the filter `config` describes for a stream at `sample_rate_hz`;
/// errors name the key at fault and its value.
fn design_sections(config: &IirConfig, sample_rate_hz: f64) -> Result<Vec<Sos>, StageError> {
    let cutoffs = &config.cutoff_hz;
    let kind = match config.filter_type.as_str() {
        "lowpass" => FilterKind::LowPass,
        "highpass" => FilterKind::HighPass,
        "bandpass" => FilterKind::BandPass,
        "bandstop" => FilterKind::BandStop,
        "notch" => {
            let &[notch_hz] = cutoffs.as_slice() else {
                return Err(StageError::new(format!(
                    "`cutoff_hz` = {cutoffs:?}: a notch filter takes one frequency, the notch's"
                )));
            };
            return iirnotch(notch_hz, config.quality, sample_rate_hz)
                .map(|sos| vec![sos])
                .map_err(|e| explain(e, config));
        }
        other => {
            return Err(StageError::new(format!(
                "`type` = {other:?} is not a filter type: use lowpass, highpass, bandpass, bandstop or notch"
            )));
        }
    };
    let order = usize::try_from(config.order)
        .ok()
        .filter(|o| (1..=MAX_ORDER).contains(o))
        .ok_or_else(|| {
            StageError::new(format!(
                "`order` = {} is outside 1..={MAX_ORDER}",
                config.order
            ))
        })?;
    butterworth(kind, order, cutoffs, sample_rate_hz).map_err(|e| explain(e, config))
}

/// Prefixes a design error with the config key it is about.
fn explain(error: DesignError, config: &IirConfig) -> StageError {
    let key = match error {
        DesignError::Order(_) => format!("`order` = {}", config.order),
        DesignError::Quality(_) => format!("`quality` = {}", config.quality),
        DesignError::SampleRate(_) => "input stream".to_string(),
        DesignError::CutoffCount { .. }
        | DesignError::Frequency { .. }
        | DesignError::BandOrder { .. } => format!("`cutoff_hz` = {:?}", config.cutoff_hz),
        DesignError::IllConditioned => format!(
            "{} filter of order {} at {:?} Hz",
            config.filter_type, config.order, config.cutoff_hz
        ),
    };
    StageError::new(format!("{key}: {error}"))
}

/// The input's format, which every design needs.
fn input_of(inputs: &[StreamFormat]) -> Result<&StreamFormat, StageError> {
    inputs
        .first()
        .ok_or_else(|| StageError::new("an IIR filter needs an input stream to filter"))
}

/// The `iir` stage: EEG in, raw or filtered, filtered EEG out.
pub struct Iir {
    filter: SosFilter,
    sample_rate_hz: f64,
}

impl Iir {
    /// The designed second-order sections, `[b0, b1, b2, 1, a1, a2]` each.
    pub fn sections(&self) -> &[[f64; 6]] {
        self.filter.sections()
    }

    /// Refuses a block the filter was not built for.
    fn check(&self, input: &EegPacket) -> Result<(), StageError> {
        if input.channels() != self.filter.channels() {
            return Err(StageError::new(format!(
                "{}: got a block of {} channels, the filter was built for {}",
                Self::KIND,
                input.channels(),
                self.filter.channels()
            )));
        }
        // A block at another rate would be filtered at the wrong corner
        // frequencies without any sign; 0 means the source left it unset.
        if input.sample_rate_hz != 0.0 && input.sample_rate_hz != self.sample_rate_hz {
            return Err(StageError::new(format!(
                "{}: got a block at {} Hz, the filter was designed for {} Hz",
                Self::KIND,
                input.sample_rate_hz,
                self.sample_rate_hz
            )));
        }
        Ok(())
    }

    fn filter_block(&mut self, block: &mut EegPacket) -> Result<(), StageError> {
        let samples_per_channel = block.values_per_channel();
        self.filter
            .process_planar(block.values_mut(), samples_per_channel)
            .map_err(|e| StageError::new(format!("{}: {e}", Self::KIND)))
    }
}

impl Stage for Iir {
    const KIND: &'static str = "iir";
    const DOC: &'static str = "Butterworth lowpass/highpass/bandpass/bandstop or notch IIR filter on EEG, raw or filtered; state kept per channel.";
    type Config = IirConfig;
    type Input = EegPacket;
    type Output = FilteredEegPacket;

    fn output_formats(
        config: &IirConfig,
        inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        let input = input_of(inputs)?;
        // Designing here reports a bad cutoff when the graph is checked,
        // before anything runs.
        design_sections(config, input.sample_rate_hz)?;
        let mut output = StreamFormat {
            kind: PacketKind::FilteredEeg,
            ..input.clone()
        };
        // The channels say what they went through.
        let applied = config.describe();
        for channel in output.channel_info.iter_mut() {
            channel.prefilter = if channel.prefilter.is_empty() {
                applied.as_str().into()
            } else {
                format!("{} {applied}", channel.prefilter).into()
            };
        }
        Ok(vec![output])
    }

    fn new(config: IirConfig, inputs: &[StreamFormat]) -> Result<Self, StageError> {
        let input = input_of(inputs)?;
        let sections = design_sections(&config, input.sample_rate_hz)?;
        let filter = SosFilter::new(sections, input.channels())
            .map_err(|e| StageError::new(format!("{}: {e}", Self::KIND)))?;
        Ok(Self {
            filter,
            sample_rate_hz: input.sample_rate_hz,
        })
    }

    fn process(
        &mut self,
        input: Option<&EegPacket>,
        output: &mut FilteredEegPacket,
    ) -> Result<Outcome, StageError> {
        let Some(input) = input else {
            return Ok(Outcome::NoOutput);
        };
        self.check(input)?;
        output
            .0
            .copy_from(input)
            .map_err(|e| StageError::new(format!("{}: {e}", Self::KIND)))?;
        self.filter_block(&mut output.0)?;
        Ok(Outcome::Emitted)
    }

    /// Filtered EEG in: filtered where it is (chained filters copy nothing).
    const IN_PLACE: bool = true;

    fn process_in_place(&mut self, packet: &mut FilteredEegPacket) -> Result<Outcome, StageError> {
        self.check(&packet.0)?;
        self.filter_block(&mut packet.0)?;
        Ok(Outcome::Emitted)
    }
}

hsp_sdk::export_plugin!(Iir);

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::testing::StageHarness;

    const CASES: &str = include_str!("../tests/data/cases.csv");
    const INPUT: &str = include_str!("../tests/data/input.csv");
    const OUTPUTS: &str = include_str!("../tests/data/outputs.csv");

    fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
        text.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(',').collect())
    }

    fn num(s: &str) -> f64 {
        s.trim().parse().unwrap()
    }

    /// A reference case as stage config, with its sample rate.
    struct Case {
        name: String,
        config: String,
        fs: f64,
    }

    fn cases() -> Vec<Case> {
        rows(CASES)
            .map(|r| {
                let (kind, order, f1, f2) = (r[1], r[2], num(r[3]), num(r[4]));
                let config = match kind {
                    // The reference files keep a notch's Q in the order column.
                    "notch" => {
                        format!(r#"{{"type": "notch", "cutoff_hz": [{f1:?}], "quality": {order}}}"#)
                    }
                    "lowpass" | "highpass" => {
                        format!(r#"{{"type": "{kind}", "order": {order}, "cutoff_hz": [{f1:?}]}}"#)
                    }
                    _ => format!(
                        r#"{{"type": "{kind}", "order": {order}, "cutoff_hz": [{f1:?}, {f2:?}]}}"#
                    ),
                };
                Case {
                    name: r[0].to_string(),
                    config,
                    fs: num(r[5]),
                }
            })
            .collect()
    }

    fn input() -> Vec<f32> {
        rows(INPUT).map(|r| num(r[0]) as f32).collect()
    }

    fn scipy_output(name: &str) -> Vec<f64> {
        let header: Vec<&str> = OUTPUTS.lines().next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == name).unwrap();
        rows(OUTPUTS).map(|r| num(r[col])).collect()
    }

    const BLOCK: usize = 64;

    /// Cuts `x` into two-channel blocks of uneven sizes (up to `BLOCK`):
    /// channel 0 is `x`, channel 1 is `-2x`, so a filter mixing up channel
    /// state shows.
    fn blocks(x: &[f32], fs: f64) -> Vec<EegPacket> {
        let mut out = Vec::new();
        let mut start = 0;
        for &n in [1, 7, 64, 3, 50, 64, 29].iter().cycle() {
            if start == x.len() {
                break;
            }
            let n = n.min(x.len() - start);
            let mut block = EegPacket::with_capacity(2, BLOCK);
            block.set_shape(2, n).unwrap();
            block.channel_mut(0).copy_from_slice(&x[start..start + n]);
            for (dst, &v) in block.channel_mut(1).iter_mut().zip(&x[start..start + n]) {
                *dst = -2.0 * v;
            }
            block.sequence = out.len() as u64;
            block.timestamp_ns = 1_000 + start as u64;
            block.stream_id = 3;
            block.sample_rate_hz = fs;
            out.push(block);
            start += n;
        }
        out
    }

    fn format(kind: PacketKind, fs: f64) -> StreamFormat {
        StreamFormat::eeg(kind, 2, fs, BLOCK)
    }

    /// max |ours - reference| / rms(reference)
    fn rel_err(ours: &[f32], reference: &[f64], scale: f64) -> f64 {
        assert_eq!(ours.len(), reference.len());
        let rms = (reference.iter().map(|x| x * x).sum::<f64>() / reference.len() as f64).sqrt();
        let max = ours
            .iter()
            .zip(reference)
            .map(|(&a, &b)| (f64::from(a) - scale * b).abs())
            .fold(0.0, f64::max);
        max / (rms * scale.abs())
    }

    fn check_against_scipy(case: &Case, outputs: &[FilteredEegPacket], inputs: &[EegPacket]) {
        assert_eq!(outputs.len(), inputs.len(), "{}", case.name);
        for (o, i) in outputs.iter().zip(inputs) {
            assert_eq!(o.values_per_channel(), i.values_per_channel());
            assert_eq!(
                (o.sequence, o.timestamp_ns, o.stream_id, o.sample_rate_hz),
                (i.sequence, i.timestamp_ns, i.stream_id, i.sample_rate_hz)
            );
        }
        let reference = scipy_output(&case.name);
        for (channel, scale) in [(0, 1.0), (1, -2.0)] {
            let ours: Vec<f32> = outputs
                .iter()
                .flat_map(|b| b.channel(channel).to_vec())
                .collect();
            let err = rel_err(&ours, &reference, scale);
            assert!(
                err < 1e-5,
                "{} channel {channel}: max err / rms = {err:e}",
                case.name
            );
        }
    }

    #[test]
    fn iir_matches_scipy_across_packets() {
        let x = input();
        for case in cases() {
            let inputs = blocks(&x, case.fs);
            let mut h =
                StageHarness::<Iir>::new(&case.config, &[format(PacketKind::RawEeg, case.fs)])
                    .unwrap();
            assert_eq!(
                h.output_formats(),
                [format(PacketKind::FilteredEeg, case.fs)]
            );
            let outputs = h.run(&inputs).unwrap();
            check_against_scipy(&case, &outputs, &inputs);
        }
    }

    #[test]
    fn iir_filtered_matches_scipy_across_packets() {
        let x = input();
        for case in cases() {
            let inputs = blocks(&x, case.fs);
            // Filtered in, filtered out: the host runs it in place.
            let mut filtered: Vec<FilteredEegPacket> =
                inputs.iter().cloned().map(FilteredEegPacket).collect();
            let mut h =
                StageHarness::<Iir>::new(&case.config, &[format(PacketKind::FilteredEeg, case.fs)])
                    .unwrap();
            for block in &mut filtered {
                assert_eq!(h.process_in_place(block).unwrap(), Outcome::Emitted);
            }
            check_against_scipy(&case, &filtered, &inputs);
        }
    }

    #[test]
    fn bandpass_then_notch_chains() {
        let x = input();
        let inputs = blocks(&x, 250.0);
        let mut bandpass = StageHarness::<Iir>::new(
            r#"{"type": "bandpass", "cutoff_hz": [1.0, 60.0]}"#,
            &[format(PacketKind::RawEeg, 250.0)],
        )
        .unwrap();
        let mut notch = StageHarness::<Iir>::new(
            r#"{"type": "notch", "cutoff_hz": [50.0]}"#,
            bandpass.output_formats(),
        )
        .unwrap();
        let middle = bandpass.run(&inputs).unwrap();
        let out = notch.run(middle.iter().map(|block| &block.0)).unwrap();

        assert_eq!(bandpass.stage().sections().len(), 4, "order-4 band-pass");
        assert_eq!(notch.stage().sections().len(), 1);
        // Each stage rounds to f32 on output, so the reference does too.
        let mut expected = x.clone();
        for sections in [bandpass.stage().sections(), notch.stage().sections()] {
            let mut filter = SosFilter::new(sections.to_vec(), 1).unwrap();
            filter.process_channel(0, &mut expected).unwrap();
        }
        let ours: Vec<f32> = out.iter().flat_map(|b| b.channel(0).to_vec()).collect();
        assert_eq!(ours, expected);
    }

    fn error(config: &str, fs: f64) -> String {
        StageHarness::<Iir>::new(config, &[format(PacketKind::RawEeg, fs)])
            .err()
            .unwrap()
            .to_string()
    }

    #[test]
    fn cutoff_above_nyquist_names_key_value_and_nyquist() {
        let e = error(r#"{"type": "lowpass", "cutoff_hz": [200.0]}"#, 250.0);
        assert!(e.contains("`cutoff_hz` = [200.0]"), "{e}");
        assert!(e.contains("Nyquist (125 Hz)"), "{e}");
        let e = error(r#"{"type": "notch", "cutoff_hz": [60.0]}"#, 100.0);
        assert!(
            e.contains("`cutoff_hz` = [60.0]") && e.contains("50 Hz"),
            "{e}"
        );
    }

    #[test]
    fn bad_config_names_the_key() {
        for (config, needle) in [
            (
                r#"{"type": "allpass", "cutoff_hz": [10]}"#,
                "`type` = \"allpass\"",
            ),
            (
                r#"{"type": "lowpass", "order": 9, "cutoff_hz": [10]}"#,
                "`order` = 9",
            ),
            (
                r#"{"type": "lowpass", "order": 0, "cutoff_hz": [10]}"#,
                "`order` = 0",
            ),
            (
                r#"{"type": "bandpass", "cutoff_hz": [10]}"#,
                "`cutoff_hz` = [10.0]",
            ),
            (
                r#"{"type": "bandstop", "cutoff_hz": [13, 8]}"#,
                "`cutoff_hz`",
            ),
            (r#"{"type": "notch", "cutoff_hz": [50, 60]}"#, "`cutoff_hz`"),
            (
                r#"{"type": "notch", "cutoff_hz": [50], "quality": 0}"#,
                "`quality` = 0",
            ),
            (r#"{"cutoff_hz": [10]}"#, "missing required key `type`"),
            (r#"{"type": "lowpass"}"#, "missing required key `cutoff_hz`"),
            (
                r#"{"type": "lowpass", "cutoff": [10]}"#,
                "unknown key `cutoff`",
            ),
        ] {
            let e = error(config, 250.0);
            assert!(e.contains(needle), "{config}: {e}");
        }
        // The notch ignores `order`, however it is set.
        assert!(
            StageHarness::<Iir>::new(
                r#"{"type": "notch", "order": 0, "cutoff_hz": [50]}"#,
                &[format(PacketKind::RawEeg, 250.0)]
            )
            .is_ok()
        );
    }

    #[test]
    fn mismatched_blocks_are_errors_not_panics() {
        let mut h = StageHarness::<Iir>::new(
            r#"{"type": "highpass", "cutoff_hz": [1.0]}"#,
            &[format(PacketKind::RawEeg, 250.0)],
        )
        .unwrap();
        let mut three = EegPacket::with_capacity(3, 4);
        three.sample_rate_hz = 250.0;
        let e = h.process(Some(&three)).unwrap_err().to_string();
        assert!(e.contains("3 channels"), "{e}");
        let mut wrong_rate = EegPacket::with_capacity(2, 4);
        wrong_rate.sample_rate_hz = 500.0;
        let e = h.process(Some(&wrong_rate)).unwrap_err().to_string();
        assert!(e.contains("500 Hz"), "{e}");
        let too_long = EegPacket::with_capacity(2, BLOCK + 1);
        assert!(h.process(Some(&too_long)).is_err());
        assert_eq!(h.process(None).unwrap(), (vec![], Outcome::NoOutput));
    }

    #[test]
    fn needs_an_input() {
        let e = StageHarness::<Iir>::new(r#"{"type": "lowpass", "cutoff_hz": [10]}"#, &[])
            .err()
            .unwrap();
        assert!(e.to_string().contains("takes 1 input"), "{e}");
    }
}
