//! `synth`: a source of deterministic synthetic EEG (sinusoids in the theta,
//! alpha and beta bands, pink background noise, waxing and waning alpha
//! bursts; see `src/signal.rs`), in blocks of raw EEG on named channels.
//! Endless or finite, paced to the wall clock or as fast as the pipeline
//! takes it.
//!
//! With `stimulus_every_s`, it is an ERP paradigm too: a stimulus marker on
//! its second output, `events`, every so often, and on every channel a known
//! evoked response after each one (a Gaussian wave of `evoked_uv` peaking
//! 300 ms after the stimulus, 50 ms wide), which averaging epochs around the
//! markers recovers.

use hsp_sdk::{
    ChannelInfo, EegPacket, Event, NoPacket, Out, Outcome, OutputPorts, PacketKind, PlanarBlock,
    Stage, StageConfig, StageError, StreamFormat,
};
use serde::Deserialize;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

// A complete DSP module with its own tests; the stage uses part of its API
// (no restart, no config read-back), and the rest stays as its author wrote it.
mod signal;

use signal::{EegSynth, MIN_SAMPLE_RATE_HZ, SynthConfig};

/// Most channels a `synth` stage generates.
pub const MAX_CHANNELS: usize = 1024;

/// Generates blocks of synthetic multichannel EEG.
pub struct Synth {
    generator: EegSynth,
    settings: Settings,
    /// Samples per channel emitted so far: the position of the next block.
    produced: u64,
    sequence: u64,
    /// Wall-clock time of sample 0, for timestamps.
    start_unix_ns: u64,
    /// Monotonic time of sample 0, for pacing: the wall clock may jump.
    start_instant: Instant,
    /// The evoked response, one value per sample after its stimulus (empty
    /// without stimuli); made in `new`.
    evoked: Vec<f32>,
}

/// `[stage.config]` of `synth`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct SynthStageConfig {
    /// Channels to generate, 1 to 1024
    #[config(default = 8)]
    pub channels: i64,
    /// Samples per second per channel, at least 64
    #[config(default = 250.0, unit = "Hz")]
    pub sample_rate_hz: f64,
    /// Samples per channel per packet
    #[config(default = 32)]
    pub block_size: i64,
    /// Seed of the noise and burst timing; equal seeds give equal output
    #[config(default = 1)]
    pub seed: i64,
    /// Length of the recording; 0 = endless (unless `samples` is set)
    #[config(default = 0.0, unit = "s")]
    pub duration_s: f64,
    /// Length of the recording in samples per channel; 0 = use `duration_s`; setting both is an
    /// error
    #[config(default = 0)]
    pub samples: i64,
    /// true: pace blocks to the wall clock; false: as fast as the pipeline takes them
    #[config(default = true)]
    pub realtime: bool,
    /// Stream id stamped on every block
    #[config(default = 0)]
    pub stream_id: i64,
    /// Time between stimulus markers on the `events` output, each followed by an evoked response on
    /// every channel (an ERP paradigm); 0 = none
    #[config(default = 0.0, unit = "s")]
    pub stimulus_every_s: f64,
    /// Peak of the evoked response: a positive wave 300 ms after each stimulus, 50 ms wide
    #[config(default = 10.0, unit = "uV")]
    pub evoked_uv: f64,
}

/// `synth`'s two outputs.
#[derive(OutputPorts)]
pub struct SynthOutput<'a> {
    /// The EEG.
    signal: Out<'a, EegPacket>,
    /// A marker at every stimulus (code 1, label `stimulus`, value: its
    /// number, from 1), stamped with the time of its sample.
    events: Out<'a, Event>,
}

/// Latency of the evoked response's peak after its stimulus.
const EVOKED_PEAK_S: f64 = 0.3;
/// Its width (the Gaussian's standard deviation).
const EVOKED_WIDTH_S: f64 = 0.05;
/// How long after its stimulus the response is added: past 6 widths of its
/// peak it is below 1e-7 of it.
const EVOKED_LENGTH_S: f64 = 0.6;

/// The config, checked and converted to the types the stage works in.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Settings {
    channels: usize,
    sample_rate_hz: f64,
    block_size: usize,
    seed: u64,
    /// Samples per channel in total; `None` for endless.
    total: Option<u64>,
    realtime: bool,
    stream_id: u32,
    /// Samples between stimuli; `None` for none.
    stimulus_every: Option<u64>,
    evoked_uv: f64,
}

impl Settings {
    fn from_config(config: &SynthStageConfig) -> Result<Self, StageError> {
        let channels = usize::try_from(config.channels)
            .ok()
            .filter(|c| (1..=MAX_CHANNELS).contains(c))
            .ok_or_else(|| {
                StageError::new(format!(
                    "`channels` must be between 1 and {MAX_CHANNELS}, got {}",
                    config.channels
                ))
            })?;
        let rate = config.sample_rate_hz;
        // The generator's components reach 20 Hz; below its minimum rate
        // they would alias, so its limit is this key's limit.
        if !(rate.is_finite() && rate >= MIN_SAMPLE_RATE_HZ) {
            return Err(StageError::new(format!(
                "`sample_rate_hz` must be a finite number of at least {MIN_SAMPLE_RATE_HZ} Hz, got {rate}"
            )));
        }
        let block_size = usize::try_from(config.block_size)
            .ok()
            .filter(|&b| b >= 1 && u32::try_from(b).is_ok())
            .ok_or_else(|| {
                StageError::new(format!(
                    "`block_size` must be at least 1 sample, got {}",
                    config.block_size
                ))
            })?;
        let seed = u64::try_from(config.seed).map_err(|_| {
            StageError::new(format!("`seed` must be 0 or more, got {}", config.seed))
        })?;
        let stream_id = u32::try_from(config.stream_id).map_err(|_| {
            StageError::new(format!(
                "`stream_id` must be between 0 and {}, got {}",
                u32::MAX,
                config.stream_id
            ))
        })?;
        let samples = u64::try_from(config.samples).map_err(|_| {
            StageError::new(format!(
                "`samples` must be 0 (use `duration_s`) or more, got {}",
                config.samples
            ))
        })?;
        let duration = config.duration_s;
        if !(duration.is_finite() && duration >= 0.0) {
            return Err(StageError::new(format!(
                "`duration_s` must be a finite number of seconds, 0 or more, got {duration}"
            )));
        }
        let total = match (samples, duration > 0.0) {
            (0, false) => None,
            (0, true) => {
                let count = (duration * rate).round();
                if count < 1.0 || count >= u64::MAX as f64 {
                    return Err(StageError::new(format!(
                        "`duration_s` = {duration} s at {rate} Hz is {count} samples: \
                         need at least one (0 means endless)"
                    )));
                }
                Some(count as u64)
            }
            (n, false) => Some(n),
            (n, true) => {
                return Err(StageError::new(format!(
                    "set either `samples` ({n}) or `duration_s` ({duration} s), not both"
                )));
            }
        };
        let every = config.stimulus_every_s;
        let stimulus_every = match every {
            0.0 => None,
            every if every.is_finite() && every * rate >= block_size as f64 => {
                Some((every * rate).round() as u64)
            }
            _ => {
                return Err(StageError::new(format!(
                    "`stimulus_every_s` must be 0 (no stimuli) or at least one block ({} s), got {every}",
                    block_size as f64 / rate
                )));
            }
        };
        if !config.evoked_uv.is_finite() {
            return Err(StageError::new(format!(
                "`evoked_uv` must be a finite number of uV, got {}",
                config.evoked_uv
            )));
        }
        Ok(Self {
            channels,
            sample_rate_hz: rate,
            block_size,
            seed,
            total,
            realtime: config.realtime,
            stream_id,
            stimulus_every,
            evoked_uv: config.evoked_uv,
        })
    }

    /// Nanoseconds from sample 0 to sample `index`, rounded; exact sample
    /// offsets (not summed block lengths) keep rounding from accumulating.
    fn offset_ns(&self, index: u64) -> u64 {
        (index as f64 * 1e9 / self.sample_rate_hz).round() as u64
    }
}

fn unix_now_ns() -> u64 {
    // A clock set before 1970 is a broken machine, not a reason to stop;
    // timestamps then start at 0 and stay evenly spaced.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Synth {
    /// Samples per channel emitted so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// The evoked response added after each stimulus, per sample.
    pub fn evoked_response(&self) -> &[f32] {
        &self.evoked
    }

    /// Fills `output` with the next block of EEG (evoked responses
    /// included): `Emitted`, `NoOutput` when a paced block is not due yet,
    /// `Finished` at the end. The signal half of `process`.
    pub fn next_block(&mut self, output: &mut EegPacket) -> Result<Outcome, StageError> {
        let s = self.settings;
        let block = match s.total {
            Some(total) => {
                let left = total - self.produced;
                if left == 0 {
                    return Ok(Outcome::Finished);
                }
                // At most `block_size`, so the cast back to usize is lossless.
                (s.block_size as u64).min(left) as usize
            }
            None => s.block_size,
        };
        if s.realtime {
            // A block is due once its last sample would have been measured,
            // as an amplifier delivers it; never sleep here (data-plane
            // thread): the host polls again.
            let end = (self.produced + block as u64) as f64;
            if self.start_instant.elapsed().as_secs_f64() * s.sample_rate_hz < end {
                return Ok(Outcome::NoOutput);
            }
        }
        output
            .set_shape(s.channels, block)
            .map_err(|e| StageError::new(format!("synth: output packet: {e}")))?;
        self.generator
            .fill(output.values_mut(), s.channels, block)
            .map_err(|e| StageError::new(format!("synth: {e}")))?;
        if let Some(every) = s.stimulus_every {
            add_evoked(output, &self.evoked, every, self.produced);
        }
        output.stream_id = s.stream_id;
        output.sequence = self.sequence;
        output.timestamp_ns = self
            .start_unix_ns
            .saturating_add(s.offset_ns(self.produced));
        output.sample_rate_hz = s.sample_rate_hz;
        self.produced += block as u64;
        self.sequence += 1;
        Ok(Outcome::Emitted)
    }

    /// The stimulus whose onset falls in the samples `[start, start + len)`,
    /// if one does (at most one: stimuli are a block or more apart): its
    /// number from 1 and its sample.
    fn stimulus_in(&self, start: u64, len: u64) -> Option<(u64, u64)> {
        let every = self.settings.stimulus_every?;
        let number = (start + len - 1) / every;
        let at = number * every;
        (number >= 1 && at >= start).then_some((number, at))
    }
}

/// Adds the evoked response of every stimulus (at samples `every`,
/// `2 * every`, ...) that reaches into `block`, which starts at sample
/// `start`, to every channel.
fn add_evoked(block: &mut EegPacket, evoked: &[f32], every: u64, start: u64) {
    let (channels, n) = (block.channels(), block.values_per_channel());
    let end = start + n as u64;
    let length = evoked.len() as u64;
    // Stimuli whose response window [k, k + length) overlaps [start, end).
    let first = (start + every).saturating_sub(length) / every;
    let first = first.max(1);
    let last = (end - 1) / every;
    let values = block.values_mut();
    for number in first..=last {
        let onset = number * every;
        let from = onset.max(start);
        let to = (onset + length).min(end);
        for sample in from..to {
            let wave = evoked[(sample - onset) as usize];
            let offset = (sample - start) as usize;
            for channel in 0..channels {
                values[channel * n + offset] += wave;
            }
        }
    }
}

/// The evoked response at `rate` Hz: a Gaussian of `peak_uv` at 300 ms,
/// 50 ms wide, over 600 ms.
fn evoked_response(peak_uv: f64, rate: f64) -> Vec<f32> {
    let samples = (EVOKED_LENGTH_S * rate).round() as usize;
    (0..samples)
        .map(|n| {
            let t = n as f64 / rate;
            let z = (t - EVOKED_PEAK_S) / EVOKED_WIDTH_S;
            (peak_uv * (-0.5 * z * z).exp()) as f32
        })
        .collect()
}

/// The labels of the first channels: the midline and a few lateral sites
/// first, as low-density caps place them, then the rest of the 10-20
/// system, then 10-10 sites.
const MONTAGE: [&str; 32] = [
    "Fz", "Cz", "Pz", "Oz", "F3", "F4", "O1", "O2", "C3", "C4", "P3", "P4", "Fp1", "Fp2", "F7",
    "F8", "T7", "T8", "P7", "P8", "AF3", "AF4", "FC5", "FC1", "FC2", "FC6", "CP5", "CP1", "CP2",
    "CP6", "PO3", "PO4",
];

/// Channel `index`'s label: a 10-20/10-10 site, `E33`, `E34`, ... past them.
fn channel_label(index: usize) -> String {
    MONTAGE
        .get(index)
        .map_or_else(|| format!("E{}", index + 1), |site| (*site).to_string())
}

impl Stage for Synth {
    const KIND: &'static str = "synth";
    const DOC: &'static str = "Synthetic multichannel EEG (theta/alpha/beta sines, pink noise, alpha bursts), seeded and reproducible.";
    type Config = SynthStageConfig;
    type Input = NoPacket;
    type Output = SynthOutput<'static>;

    fn output_formats(
        config: &SynthStageConfig,
        _inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        let s = Settings::from_config(config)?;
        let format = StreamFormat::eeg(
            PacketKind::RawEeg,
            s.channels,
            s.sample_rate_hz,
            s.block_size,
        )
        .with_channels((0..s.channels).map(|c| ChannelInfo::eeg(&channel_label(c))));
        let signal = StreamFormat {
            source: format!("synth (seed {})", s.seed).into(),
            ..format
        };
        let events = StreamFormat::events().with_origin(0, &signal.source);
        Ok(vec![signal, events])
    }

    fn new(config: SynthStageConfig, _inputs: &[StreamFormat]) -> Result<Self, StageError> {
        let settings = Settings::from_config(&config)?;
        let generator = EegSynth::new(SynthConfig::new(
            settings.channels,
            settings.sample_rate_hz,
            settings.seed,
        ))
        .map_err(|e| StageError::new(format!("synth: {e}")))?;
        Ok(Self {
            generator,
            settings,
            produced: 0,
            sequence: 0,
            // Set again in `start`; a value here keeps `process` well-defined
            // even for a driver that skips `start`.
            start_unix_ns: unix_now_ns(),
            start_instant: Instant::now(),
            evoked: match settings.stimulus_every {
                Some(_) => evoked_response(settings.evoked_uv, settings.sample_rate_hz),
                None => Vec::new(),
            },
        })
    }

    fn start(&mut self) -> Result<(), StageError> {
        self.start_unix_ns = unix_now_ns();
        self.start_instant = Instant::now();
        Ok(())
    }

    fn process(
        &mut self,
        _input: Option<&NoPacket>,
        mut output: SynthOutput<'_>,
    ) -> Result<Outcome, StageError> {
        let start = self.produced;
        let outcome = self.next_block(&mut output.signal)?;
        if outcome != Outcome::Emitted {
            return Ok(outcome);
        }
        output.signal.send();
        if let Some((number, at)) = self.stimulus_in(start, self.produced - start) {
            *output.events = Event::new(STIMULUS_CODE, "stimulus")
                .with_value(number as f64)
                .at(self
                    .start_unix_ns
                    .saturating_add(self.settings.offset_ns(at)));
            output.events.stream_id = self.settings.stream_id;
            output.events.send();
        }
        Ok(Outcome::Emitted)
    }
}

/// The code of stimulus markers.
pub const STIMULUS_CODE: u32 = 1;

hsp_sdk::export_plugin!(Synth);

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::testing::{Sent, StageHarness};
    use std::time::Duration;

    fn harness(config: &str) -> StageHarness<Synth> {
        StageHarness::<Synth>::new(config, &[]).unwrap()
    }

    /// One call: the blocks sent on `signal`, and the outcome.
    fn step(h: &mut StageHarness<Synth>) -> (Vec<EegPacket>, Outcome) {
        let (sent, outcome) = h.process_port(None, hsp_sdk::PacketRef::None).unwrap();
        (on_port::<EegPacket>(&sent, "signal"), outcome)
    }

    /// The packets of type `T` sent on `port`.
    fn on_port<T: hsp_sdk::PacketTag + Clone>(sent: &[Sent], port: &str) -> Vec<T> {
        sent.iter()
            .filter(|s| s.port == port)
            .map(|s| s.packet.get::<T>().unwrap().clone())
            .collect()
    }

    /// Calls until the source finishes (at most `max_calls` times): all it sent.
    fn run(h: &mut StageHarness<Synth>, max_calls: usize) -> Vec<Sent> {
        let mut all = Vec::new();
        for _ in 0..max_calls {
            let (sent, outcome) = h.process_port(None, hsp_sdk::PacketRef::None).unwrap();
            all.extend(sent);
            if outcome == Outcome::Finished {
                break;
            }
        }
        h.stop().unwrap();
        all
    }

    fn blocks(h: &mut StageHarness<Synth>, max_calls: usize) -> Vec<EegPacket> {
        on_port(&run(h, max_calls), "signal")
    }

    #[test]
    fn defaults_declare_8_channels_at_250_hz_in_blocks_of_32() {
        let h = harness("{}");
        let format = h.output_formats()[0].clone();
        assert_eq!(
            (
                format.kind,
                format.channels,
                format.sample_rate_hz,
                format.values_per_channel
            ),
            (PacketKind::RawEeg, 8, 250.0, 32),
            "{format:?}"
        );
        // The channels are named as a low-density cap places them.
        let labels: Vec<String> = format
            .channel_list()
            .iter()
            .map(|c| c.label.to_string())
            .collect();
        assert_eq!(labels, ["Fz", "Cz", "Pz", "Oz", "F3", "F4", "O1", "O2"]);
        assert_eq!(format.channel(0).unit.as_str(), "uV");
        assert_eq!(format.source.as_str(), "synth (seed 1)");
        assert!(h.stage().settings.realtime);
        assert_eq!(h.stage().settings.total, None);
    }

    #[test]
    fn finite_run_ends_with_a_short_block_and_exact_sample_count() {
        let mut h = harness(
            r#"{"channels": 3, "block_size": 32, "samples": 100, "realtime": false, "stream_id": 4, "seed": 9}"#,
        );
        let blocks = blocks(&mut h, 100);
        let lengths: Vec<usize> = blocks.iter().map(|b| b.values_per_channel()).collect();
        assert_eq!(lengths, [32, 32, 32, 4]);
        assert_eq!(h.stage().produced(), 100);
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(b.sequence, i as u64);
            assert_eq!(b.stream_id, 4);
            assert_eq!(b.channels(), 3);
            assert_eq!(b.sample_rate_hz, 250.0);
        }
        // 32 samples at 250 Hz are exactly 128 ms.
        for pair in blocks.windows(2) {
            assert_eq!(pair[1].timestamp_ns - pair[0].timestamp_ns, 128_000_000);
        }

        // Same samples as the generator run in one go: blocks only split it.
        let mut reference = EegSynth::new(SynthConfig::new(3, 250.0, 9)).unwrap();
        let mut whole = vec![0.0f32; 3 * 100];
        reference.fill(&mut whole, 3, 100).unwrap();
        for ch in 0..3 {
            let joined: Vec<f32> = blocks.iter().flat_map(|b| b.channel(ch).to_vec()).collect();
            assert_eq!(joined, &whole[ch * 100..(ch + 1) * 100]);
        }
    }

    #[test]
    fn stimuli_come_as_markers_with_a_known_evoked_response_after_each() {
        let base =
            r#""channels": 2, "block_size": 25, "samples": 1000, "realtime": false, "seed": 3"#;
        let mut with = harness(&format!(
            r#"{{{base}, "stimulus_every_s": 1.0, "evoked_uv": 10.0}}"#
        ));
        assert_eq!(with.output_formats()[1].kind, PacketKind::Event);
        let sent = run(&mut with, 1000);
        let signal: Vec<EegPacket> = on_port(&sent, "signal");
        let markers: Vec<Event> = on_port(&sent, "events");
        let plain = blocks(&mut harness(&format!("{{{base}}}")), 1000);
        // Stimuli at 1, 2 and 3 s (the 4th would be at the end).
        let t0 = signal[0].timestamp_ns;
        let stamps: Vec<u64> = markers.iter().map(|m| m.timestamp_ns - t0).collect();
        assert_eq!(stamps, [1_000_000_000, 2_000_000_000, 3_000_000_000]);
        assert!(
            markers
                .iter()
                .all(|m| m.code == STIMULUS_CODE && m.label() == "stimulus")
        );
        assert_eq!(
            markers.iter().map(|m| m.value).collect::<Vec<_>>(),
            [1.0, 2.0, 3.0]
        );
        // The difference is the evoked response, on every channel: 10 uV
        // 300 ms (75 samples) after each stimulus, none before the first.
        let joined = |blocks: &[EegPacket], ch: usize| -> Vec<f32> {
            blocks.iter().flat_map(|b| b.channel(ch).to_vec()).collect()
        };
        for ch in 0..2 {
            let (a, b) = (joined(&signal, ch), joined(&plain, ch));
            let diff: Vec<f32> = a.iter().zip(&b).map(|(a, b)| a - b).collect();
            assert!(diff[..250].iter().all(|&d| d == 0.0));
            for onset in [250, 500, 750] {
                assert!(
                    (diff[onset + 75] - 10.0).abs() < 1e-4,
                    "{}",
                    diff[onset + 75]
                );
                assert!(
                    diff[onset + 50] < 10.0 * 0.3,
                    "narrow: {}",
                    diff[onset + 50]
                );
            }
        }
        let response = with.stage().evoked_response();
        assert_eq!(response.len(), 150);
        // A stimulus less than a block apart would put two in one block.
        let e = StageHarness::<Synth>::new(r#"{"stimulus_every_s": 0.01}"#, &[])
            .err()
            .unwrap();
        assert!(e.to_string().contains("`stimulus_every_s`"), "{e}");
    }

    #[test]
    fn finished_is_sticky_and_emits_nothing() {
        let mut h = harness(r#"{"samples": 32, "realtime": false}"#);
        assert_eq!(step(&mut h).1, Outcome::Emitted);
        assert_eq!(step(&mut h), (vec![], Outcome::Finished));
        assert_eq!(step(&mut h), (vec![], Outcome::Finished));
    }

    #[test]
    fn duration_is_rounded_to_whole_samples() {
        let mut h = harness(r#"{"duration_s": 1.0, "sample_rate_hz": 100.0, "realtime": false}"#);
        let blocks = blocks(&mut h, 1000);
        let total: usize = blocks.iter().map(|b| b.values_per_channel()).sum();
        assert_eq!(total, 100);
        assert_eq!(blocks.last().unwrap().values_per_channel(), 100 % 32);
    }

    #[test]
    fn timestamps_follow_sample_time_from_start() {
        // 1e9 / 300 is not a whole number of ns: stamps are rounded from the
        // exact sample time, so no block drifts by more than half a ns.
        let mut h = harness(
            r#"{"sample_rate_hz": 300.0, "block_size": 7, "samples": 700, "realtime": false}"#,
        );
        let before = unix_now_ns();
        let blocks = blocks(&mut h, 1000);
        let t0 = blocks[0].timestamp_ns;
        assert!(
            t0 >= before && t0 - before < 5_000_000_000,
            "{t0} vs {before}"
        );
        for (i, b) in blocks.iter().enumerate() {
            let exact = (i * 7) as f64 * 1e9 / 300.0;
            let got = (b.timestamp_ns - t0) as f64;
            assert!((got - exact).abs() <= 0.5, "block {i}: {got} vs {exact}");
        }
    }

    #[test]
    fn realtime_waits_for_the_clock_without_blocking() {
        // A 1 s block cannot be due right after start.
        let mut h = harness(r#"{"sample_rate_hz": 250.0, "block_size": 250}"#);
        let called = Instant::now();
        assert_eq!(step(&mut h), (vec![], Outcome::NoOutput));
        assert!(
            called.elapsed() < Duration::from_millis(100),
            "process slept"
        );

        // A 1 ms block is due after 1 ms.
        let mut h = harness(r#"{"sample_rate_hz": 1000.0, "block_size": 1, "samples": 2}"#);
        step(&mut h);
        std::thread::sleep(Duration::from_millis(5));
        let (blocks, outcome) = step(&mut h);
        assert_eq!(outcome, Outcome::Emitted);
        assert_eq!(blocks.len(), 1);
    }

    #[test]
    fn bad_config_names_the_key() {
        for (config, key) in [
            (r#"{"channels": 0}"#, "`channels`"),
            (r#"{"channels": 1025}"#, "`channels`"),
            (r#"{"sample_rate_hz": 0}"#, "`sample_rate_hz`"),
            (r#"{"sample_rate_hz": -250}"#, "`sample_rate_hz`"),
            (r#"{"block_size": 0}"#, "`block_size`"),
            (r#"{"seed": -1}"#, "`seed`"),
            (r#"{"stream_id": -1}"#, "`stream_id`"),
            (r#"{"samples": -5}"#, "`samples`"),
            (r#"{"duration_s": -1}"#, "`duration_s`"),
            (r#"{"duration_s": 0.001}"#, "`duration_s`"),
            (r#"{"samples": 10, "duration_s": 1.0}"#, "not both"),
            (r#"{"realtime": "yes"}"#, "`realtime`"),
            (r#"{"chanels": 4}"#, "unknown key `chanels`"),
        ] {
            let error = StageHarness::<Synth>::new(config, &[]).err().unwrap();
            assert!(error.to_string().contains(key), "{config}: {error}");
        }
    }
}
