//! `fft`: a sliding-window spectrum of filtered EEG, per channel. Frame `k`
//! covers samples `[k * hop, k * hop + size)` of the stream; each is windowed
//! (Hann, Hamming or rectangular), transformed with a real FFT and emitted as
//! `size / 2 + 1` bins of `|X|` or `|X|²` without further normalisation,
//! equal to numpy's `np.abs(np.fft.rfft(frame * window))` (see
//! `src/spectrum.rs`).
//!
//! One input block can complete several frames (a block longer than the
//! hop); they wait in a ring sized in `new` and leave one per call, through
//! [`Outcome::MoreOutput`].

use hsp_sdk::{
    FftPacket, FilteredEegPacket, Outcome, PacketKind, PlanarBlock, SpectrumScale, Stage,
    StageConfig, StageError, StreamFormat,
};
use serde::Deserialize;

// A complete DSP module with its own tests; the stage uses part of its API
// (planar pushes only, no reset or per-channel access), and the rest stays
// as its author wrote it.
mod spectrum;

use spectrum::{Scale, SlidingSpectrum, Window};

/// Largest accepted FFT size: 2^16 samples, over 4 minutes at 250 Hz.
pub const MAX_SIZE: usize = 1 << 16;

/// `[stage.config]` of `fft`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct FftConfig {
    /// Frame length in samples (FFT size), 2 to 65536
    #[config(default = 256)]
    pub size: i64,
    /// Samples between frame starts; 0 = size / 2; more than size skips samples
    #[config(default = 0)]
    pub hop: i64,
    /// Window: hann, hamming or rectangular (periodic, as scipy's get_window)
    #[config(default = "hann")]
    pub window: String,
    /// Bins hold magnitude |X| or power |X|^2 (not normalised)
    #[config(default = "power")]
    pub scale: String,
}

/// The config, checked.
#[derive(Debug, Clone, Copy)]
struct Settings {
    size: usize,
    hop: usize,
    window: Window,
    scale: Scale,
}

impl Settings {
    fn from_config(config: &FftConfig) -> Result<Self, StageError> {
        let size = usize::try_from(config.size)
            .ok()
            .filter(|s| (2..=MAX_SIZE).contains(s))
            .ok_or_else(|| {
                StageError::new(format!(
                    "`size` must be between 2 and {MAX_SIZE} samples, got {}",
                    config.size
                ))
            })?;
        let hop = match usize::try_from(config.hop) {
            Ok(0) => size / 2,
            Ok(hop) if hop <= MAX_SIZE => hop,
            _ => {
                return Err(StageError::new(format!(
                    "`hop` must be between 1 and {MAX_SIZE} samples (0 for size / 2), got {}",
                    config.hop
                )));
            }
        };
        let window = match config.window.as_str() {
            "hann" => Window::Hann,
            "hamming" => Window::Hamming,
            "rectangular" => Window::Rectangular,
            other => {
                return Err(StageError::new(format!(
                    "`window` = {other:?} is not a window: use hann, hamming or rectangular"
                )));
            }
        };
        let scale = match config.scale.as_str() {
            "magnitude" => Scale::Magnitude,
            "power" => Scale::Power,
            other => {
                return Err(StageError::new(format!(
                    "`scale` = {other:?} is not a scale: use magnitude or power"
                )));
            }
        };
        Ok(Self {
            size,
            hop,
            window,
            scale,
        })
    }

    fn bins(&self) -> usize {
        self.size / 2 + 1
    }
}

fn require_input(inputs: &[StreamFormat]) -> Result<&StreamFormat, StageError> {
    inputs
        .first()
        .ok_or_else(|| StageError::new("`fft` needs an input stream"))
}

/// Frames completed but not yet handed out, oldest first.
struct FrameRing {
    /// `capacity` frames of `channels * bins` values, each channel-major.
    bins: Vec<f32>,
    /// Timestamp and sequence of each slot's frame.
    meta: Vec<(u64, u64)>,
    frame_len: usize,
    head: usize,
    len: usize,
}

impl FrameRing {
    fn new(capacity: usize, frame_len: usize) -> Self {
        Self {
            bins: vec![0.0; capacity * frame_len],
            meta: vec![(0, 0); capacity],
            frame_len,
            head: 0,
            len: 0,
        }
    }

    fn capacity(&self) -> usize {
        self.meta.len()
    }

    /// Stores a frame; `false` if the ring is full (the frame is dropped).
    fn push(&mut self, frame: &[f32], timestamp_ns: u64, sequence: u64) -> bool {
        if self.len == self.capacity() {
            return false;
        }
        let slot = (self.head + self.len) % self.capacity();
        let range = slot * self.frame_len..(slot + 1) * self.frame_len;
        self.bins[range].copy_from_slice(frame);
        self.meta[slot] = (timestamp_ns, sequence);
        self.len += 1;
        true
    }

    /// The oldest frame with its timestamp and sequence.
    fn front(&self) -> Option<(&[f32], u64, u64)> {
        (self.len > 0).then(|| {
            let slot = self.head;
            let (timestamp_ns, sequence) = self.meta[slot];
            let range = slot * self.frame_len..(slot + 1) * self.frame_len;
            (&self.bins[range], timestamp_ns, sequence)
        })
    }

    fn pop(&mut self) {
        if self.len > 0 {
            self.head = (self.head + 1) % self.capacity();
            self.len -= 1;
        }
    }
}

/// Sliding-window spectrum of every channel of a filtered EEG stream.
pub struct Fft {
    spectrum: SlidingSpectrum,
    ring: FrameRing,
    channels: usize,
    /// The longest block the input format allows; the ring is sized for it.
    max_block: usize,
    sample_rate_hz: f64,
    bin_hz: f64,
    scale: SpectrumScale,
    stream_id: u32,
    /// Samples per channel taken before the current block.
    samples_seen: u64,
    /// Frames completed so far: the next frame's sequence number.
    frames_done: u64,
}

impl Fft {
    /// Frames waiting to be handed out.
    pub fn pending(&self) -> usize {
        self.ring.len
    }

    /// Hands out the oldest waiting frame, saying whether more wait.
    fn emit(&mut self, output: &mut FftPacket) -> Result<Outcome, StageError> {
        let Some((frame, timestamp_ns, sequence)) = self.ring.front() else {
            return Ok(Outcome::NoOutput);
        };
        output
            .set_shape(self.channels, frame.len() / self.channels)
            .map_err(|e| StageError::new(format!("fft: output packet: {e}")))?;
        output.values_mut().copy_from_slice(frame);
        output.stream_id = self.stream_id;
        output.sequence = sequence;
        output.timestamp_ns = timestamp_ns;
        output.bin_hz = self.bin_hz;
        output.scale = self.scale;
        self.ring.pop();
        Ok(if self.ring.len > 0 {
            Outcome::MoreOutput
        } else {
            Outcome::Emitted
        })
    }
}

impl Stage for Fft {
    const KIND: &'static str = "fft";
    const DOC: &'static str =
        "Sliding-window FFT per channel of filtered EEG: size/2+1 bins of |X| or |X|^2 per frame.";
    type Config = FftConfig;
    type Input = FilteredEegPacket;
    type Output = FftPacket;

    fn output_formats(
        config: &FftConfig,
        inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        let s = Settings::from_config(config)?;
        let input = require_input(inputs)?;
        let mut output = input.reshaped(
            PacketKind::Fft,
            s.bins(),
            input.sample_rate_hz / s.hop as f64,
        );
        if s.scale == Scale::Power {
            // Bins of a power spectrum are in the square of the signal's unit.
            for channel in output.channel_info.iter_mut() {
                channel.unit = format!("{}^2", channel.unit).into();
            }
        }
        Ok(vec![output])
    }

    fn new(config: FftConfig, inputs: &[StreamFormat]) -> Result<Self, StageError> {
        let s = Settings::from_config(&config)?;
        let input = require_input(inputs)?;
        let rate = input.sample_rate_hz;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(StageError::new(format!(
                "`fft` needs an input with a sample rate, got {rate} Hz"
            )));
        }
        let channels = input.channels();
        if channels == 0 {
            return Err(StageError::new(
                "`fft` needs an input with at least one channel",
            ));
        }
        let spectrum = SlidingSpectrum::new(channels, s.size, s.hop, s.window, s.scale)
            .map_err(|e| StageError::new(format!("fft: {e}")))?;
        let max_block = input.values_per_channel().max(1);
        // A block of B samples completes at most ceil(B / hop) frames: after
        // the first, frames are `hop` samples apart.
        let ring = FrameRing::new(max_block.div_ceil(s.hop), channels * s.bins());
        Ok(Self {
            bin_hz: spectrum.bin_hz(rate),
            spectrum,
            ring,
            channels,
            max_block,
            sample_rate_hz: rate,
            scale: match s.scale {
                Scale::Magnitude => SpectrumScale::Magnitude,
                Scale::Power => SpectrumScale::Power,
            },
            stream_id: 0,
            samples_seen: 0,
            frames_done: 0,
        })
    }

    fn process(
        &mut self,
        input: Option<&FilteredEegPacket>,
        output: &mut FftPacket,
    ) -> Result<Outcome, StageError> {
        let Some(input) = input else {
            return self.emit(output);
        };
        if self.ring.len > 0 {
            return Err(StageError::new(format!(
                "fft: a new block arrived while {} frames were still waiting: \
                 after MoreOutput the host must call again without input",
                self.ring.len
            )));
        }
        let n = input.values_per_channel();
        if input.channels() != self.channels {
            return Err(StageError::new(format!(
                "fft: got a block of {} channels, the stage was built for {}",
                input.channels(),
                self.channels
            )));
        }
        if n > self.max_block {
            return Err(StageError::new(format!(
                "fft: got a block of {n} samples per channel, the input format allows {}",
                self.max_block
            )));
        }
        self.stream_id = input.stream_id;
        let Self {
            spectrum,
            ring,
            samples_seen,
            frames_done,
            sample_rate_hz,
            ..
        } = self;
        let (block_start, block_ts, hop) = (*samples_seen, input.timestamp_ns, spectrum.hop());
        let mut overflow = false;
        spectrum
            .push_planar(input.values(), n, |frame| {
                // The frame's first sample is `frames_done * hop` into the
                // stream; its time is taken from this block's stamp so that
                // gaps or clock corrections upstream carry through.
                let first = *frames_done * hop as u64;
                let offset_s = (first as f64 - block_start as f64) / *sample_rate_hz;
                let timestamp_ns = block_ts.saturating_add_signed((offset_s * 1e9).round() as i64);
                overflow |= !ring.push(frame, timestamp_ns, *frames_done);
                *frames_done += 1;
            })
            .map_err(|e| StageError::new(format!("fft: {e}")))?;
        *samples_seen += n as u64;
        if overflow {
            return Err(StageError::new(
                "fft: more frames than the ring holds (a bug in the stage)",
            ));
        }
        self.emit(output)
    }
}

hsp_sdk::export_plugin!(Fft);

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::EegPacket;
    use hsp_sdk::testing::StageHarness;

    const INPUT: &str = include_str!("../tests/data/input.csv");
    const CASES: &str = include_str!("../tests/data/cases.csv");
    const FRAMES: &str = include_str!("../tests/data/frames.csv");
    const FS: f64 = 250.0;
    const T0: u64 = 1_700_000_000_000_000_000;

    fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
        text.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(',').collect())
    }

    fn num(s: &str) -> f64 {
        s.trim().parse().unwrap()
    }

    fn input() -> Vec<f32> {
        rows(INPUT).map(|r| num(r[0]) as f32).collect()
    }

    /// `x` on channel 0 and `3x` on channel 1, cut into blocks of uneven
    /// length up to `max`, stamped with their first sample's time.
    fn blocks(x: &[f32], max: usize, lengths: &[usize]) -> Vec<FilteredEegPacket> {
        let mut out = Vec::new();
        let mut start = 0;
        for &n in lengths.iter().cycle() {
            if start == x.len() {
                break;
            }
            let n = n.min(max).min(x.len() - start);
            let mut block = EegPacket::with_capacity(2, max);
            block.set_shape(2, n).unwrap();
            block.channel_mut(0).copy_from_slice(&x[start..start + n]);
            for (dst, &v) in block.channel_mut(1).iter_mut().zip(&x[start..start + n]) {
                *dst = 3.0 * v;
            }
            block.stream_id = 5;
            block.sequence = out.len() as u64;
            block.timestamp_ns = T0 + (start as f64 * 1e9 / FS).round() as u64;
            block.sample_rate_hz = FS;
            out.push(FilteredEegPacket(block));
            start += n;
        }
        out
    }

    fn format(max: usize) -> StreamFormat {
        StreamFormat::eeg(PacketKind::FilteredEeg, 2, FS, max)
    }

    #[test]
    fn matches_numpy_through_the_harness() {
        let x = input();
        for case in rows(CASES) {
            let (name, size, hop, scale) = (case[0], case[1], case[2], case[4]);
            let window = if case[3] == "boxcar" {
                "rectangular"
            } else {
                case[3]
            };
            let reference: Vec<Vec<f64>> = rows(FRAMES)
                .filter(|r| r[0] == name)
                .map(|r| r[2..].iter().map(|v| num(v)).collect())
                .collect();
            let peak = reference
                .iter()
                .flatten()
                .fold(0.0f64, |m, v| m.max(v.abs()));
            let gain = if scale == "power" { 9.0 } else { 3.0 };

            // Blocks both shorter and longer than the hop, so some calls
            // complete no frame and some several.
            for (max, lengths) in [(40, &[40, 1, 13][..]), (250, &[250, 7, 199][..])] {
                let config = format!(
                    r#"{{"size": {size}, "hop": {hop}, "window": "{window}", "scale": "{scale}"}}"#
                );
                let mut h = StageHarness::<Fft>::new(&config, &[format(max)]).unwrap();
                let frames = h.run(&blocks(&x, max, lengths)).unwrap();
                assert_eq!(frames.len(), reference.len(), "{name}: frame count");
                let mut worst = 0.0f64;
                for (k, (ours, theirs)) in frames.iter().zip(&reference).enumerate() {
                    assert_eq!(ours.sequence, k as u64);
                    assert_eq!(ours.stream_id, 5);
                    assert_eq!(ours.channels(), 2);
                    assert_eq!(ours.values_per_channel(), theirs.len());
                    assert_eq!(ours.bin_hz, FS / num(size));
                    let first = (k * hop.parse::<usize>().unwrap()) as f64;
                    let expected_ts = T0 as f64 + first * 1e9 / FS;
                    assert!((ours.timestamp_ns as f64 - expected_ts).abs() <= 1.0);
                    for (j, &want) in theirs.iter().enumerate() {
                        worst = worst.max((f64::from(ours.channel(0)[j]) - want).abs());
                        let scaled = f64::from(ours.channel(1)[j]) / gain;
                        worst = worst.max((scaled - want).abs());
                    }
                }
                assert!(
                    worst / peak < 1e-4,
                    "{name}, blocks up to {max}: max err / peak = {:e}",
                    worst / peak
                );
            }
        }
    }

    #[test]
    fn declares_format_from_config_with_default_hop() {
        let h = StageHarness::<Fft>::new("{}", &[format(32)]).unwrap();
        assert_eq!(
            h.output_formats(),
            [StreamFormat {
                kind: PacketKind::Fft,
                channels: 2,
                values_per_channel: 129,
                sample_rate_hz: FS,
                packet_rate_hz: FS / 128.0,
                ..StreamFormat::events()
            }]
        );
        let h = StageHarness::<Fft>::new(
            r#"{"size": 64, "hop": 16, "scale": "magnitude"}"#,
            &[format(32)],
        )
        .unwrap();
        assert_eq!(h.output_formats()[0].values_per_channel, 33);
        assert_eq!(h.output_formats()[0].packet_rate_hz, FS / 16.0);
    }

    #[test]
    fn a_long_block_gives_several_frames_through_more_output() {
        let x = input();
        let mut h = StageHarness::<Fft>::new(r#"{"size": 16, "hop": 8}"#, &[format(100)]).unwrap();
        let blocks = blocks(&x, 100, &[100]);
        // 100 samples: frames end at 16, 24, .., 96: 11 frames at once.
        let (frames, outcome) = h.process(Some(&blocks[0])).unwrap();
        assert_eq!((frames.len(), outcome), (11, Outcome::Emitted));
        assert_eq!(h.stage().pending(), 0);
        assert!(frames.iter().all(|f| f.scale == SpectrumScale::Power));
        // The next block completes its first frame after 4 samples.
        let (frames, _) = h.process(Some(&blocks[1])).unwrap();
        assert_eq!(frames.len(), 13);
        assert_eq!(frames[0].sequence, 11);
        assert_eq!(h.process(None).unwrap(), (vec![], Outcome::NoOutput));
    }

    #[test]
    fn input_before_drain_is_an_error() {
        let x = input();
        let mut h = StageHarness::<Fft>::new(r#"{"size": 16, "hop": 8}"#, &[format(100)]).unwrap();
        let blocks = blocks(&x, 100, &[100]);
        // Drive the stage directly (not through `process`), which drains.
        let mut out = FftPacket::with_capacity(2, 9);
        let mut stage = Fft::new(
            FftConfig {
                size: 16,
                hop: 8,
                window: "hann".into(),
                scale: "power".into(),
            },
            &[format(100)],
        )
        .unwrap();
        assert_eq!(
            stage.process(Some(&blocks[0]), &mut out).unwrap(),
            Outcome::MoreOutput
        );
        let e = stage.process(Some(&blocks[1]), &mut out).unwrap_err();
        assert!(e.to_string().contains("still waiting"), "{e}");
        // The harness drains, so it never sees that.
        assert_eq!(h.run(&blocks).unwrap().len(), (x.len() - 16) / 8 + 1);
    }

    #[test]
    fn bad_config_names_the_key() {
        for (config, needle) in [
            (r#"{"size": 1}"#, "`size`"),
            (r#"{"size": 100000}"#, "`size`"),
            (r#"{"hop": -1}"#, "`hop`"),
            (r#"{"window": "blackman"}"#, "`window` = \"blackman\""),
            (r#"{"scale": "db"}"#, "`scale` = \"db\""),
            (r#"{"size": "big"}"#, "`size`"),
            (r#"{"overlap": 3}"#, "unknown key `overlap`"),
        ] {
            let e = StageHarness::<Fft>::new(config, &[format(32)])
                .err()
                .unwrap();
            assert!(e.to_string().contains(needle), "{config}: {e}");
        }
        let e = StageHarness::<Fft>::new("{}", &[]).err().unwrap();
        assert!(e.to_string().contains("takes 1 input"), "{e}");
    }

    #[test]
    fn wrong_blocks_are_errors_not_panics() {
        let mut h = StageHarness::<Fft>::new("{}", &[format(32)]).unwrap();
        let three = FilteredEegPacket::with_capacity(3, 8);
        assert!(h.process(Some(&three)).is_err());
        let long = FilteredEegPacket::with_capacity(2, 33);
        let e = h.process(Some(&long)).unwrap_err().to_string();
        assert!(e.contains("33 samples"), "{e}");
    }
}
