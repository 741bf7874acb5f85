//! `edf_source`: replays an EDF, EDF+C, BDF or BDF+C file as a stream of
//! raw EEG blocks in physical units, with the file's annotations as events.

use crate::edf::reader::{Recording, SignalReader};
use crate::replay::{self, Pacer, Progress, ReplayConfig, Window};
use hsp_sdk::{
    ChannelInfo, ChannelType, EegPacket, Event, NoPacket, Out, Outcome, OutputPorts, PacketKind,
    PlanarBlock, Stage, StageConfig, StageError, StreamFormat,
};
use serde::Deserialize;
use std::path::PathBuf;

/// `[stage.config]` of `edf_source`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct EdfSourceConfig {
    /// EDF, EDF+C, BDF or BDF+C file to replay
    pub path: String,
    /// Channels to play, by label, in this order; empty = every signal (they must share one sample
    /// rate)
    #[config(default = [])]
    pub channels: Vec<String>,
    /// Samples per channel per packet
    #[config(default = 32)]
    pub block_size: i64,
    /// true: pace blocks to the wall clock; false: as fast as the pipeline takes them (with a
    /// progress bar on a terminal)
    #[config(default = true)]
    pub realtime: bool,
    /// Where in the recording to begin
    #[config(default = 0.0, unit = "s")]
    pub start_s: f64,
    /// How much of it to play; 0 = to the end
    #[config(default = 0.0, unit = "s")]
    pub duration_s: f64,
    /// Play it again from `start_s` at the end, for ever; timestamps keep counting
    #[serde(rename = "loop")]
    #[config(default = false)]
    pub looped: bool,
    /// Stream id stamped on every block
    #[config(default = 0)]
    pub stream_id: i64,
}

/// `edf_source`'s two outputs.
#[derive(OutputPorts)]
pub struct EdfSourceOutput<'a> {
    /// The samples, in each channel's physical unit.
    signal: Out<'a, EegPacket>,
    /// The annotations: label = its text, `duration_ns` = its duration,
    /// `code` = 1 + the index of its text among the file's distinct texts
    /// (in order of first appearance), stamped with its time.
    events: Out<'a, Event>,
}

/// The config and the file, checked together.
struct Opened {
    recording: Recording,
    signals: Vec<usize>,
    window: Window,
    replay: ReplayConfig,
    block_size: usize,
    rate: f64,
    stream_id: u32,
}

fn open(config: &EdfSourceConfig) -> Result<Opened, StageError> {
    if config.path.trim().is_empty() {
        return Err(StageError::new(
            "`path` must name an EDF or BDF file, got \"\"",
        ));
    }
    let recording = Recording::open(&PathBuf::from(&config.path)).map_err(StageError::new)?;
    let signals = recording
        .select(&config.channels)
        .map_err(StageError::new)?;
    let block_size = replay::block_size(config.block_size)?;
    let stream_id = replay::stream_id(config.stream_id)?;
    let rate = recording.sample_rate_hz(signals[0]);
    let replay = ReplayConfig {
        realtime: config.realtime,
        start_s: config.start_s,
        duration_s: config.duration_s,
        looped: config.looped,
    };
    let window = replay.window(recording.samples(signals[0]), rate)?;
    Ok(Opened {
        recording,
        signals,
        window,
        replay,
        block_size,
        rate,
        stream_id,
    })
}

/// What a channel measures, guessed from its label and transducer as
/// EEG tools do (`EOG`, `EMG`, `ECG`/`EKG`, `Status`/`Trigger`).
fn channel_type(label: &str, transducer: &str) -> ChannelType {
    let text = format!("{label} {transducer}").to_ascii_uppercase();
    if text.contains("EOG") {
        ChannelType::Eog
    } else if text.contains("EMG") {
        ChannelType::Emg
    } else if text.contains("ECG") || text.contains("EKG") {
        ChannelType::Ecg
    } else if text.contains("STATUS") || text.contains("TRIGGER") || text.contains("STI") {
        ChannelType::Stim
    } else {
        ChannelType::Eeg
    }
}

impl Opened {
    fn formats(&self) -> Vec<StreamFormat> {
        let header = &self.recording.header;
        let channels = self.signals.iter().map(|&i| {
            let s = &header.signals[i];
            let mut info =
                ChannelInfo::new(&s.label, &s.unit, channel_type(&s.label, &s.transducer))
                    .with_range(s.physical_min, s.physical_max);
            info.transducer = s.transducer.as_str().into();
            info.prefilter = s.prefilter.as_str().into();
            info
        });
        let start = self.start_ns(0).max(0) as u64;
        let source = self.recording.path.display().to_string();
        let signal = StreamFormat::eeg(
            PacketKind::RawEeg,
            self.signals.len(),
            self.rate,
            self.block_size,
        )
        .with_channels(channels)
        .with_origin(start, &source);
        let events = StreamFormat::events().with_origin(start, &source);
        vec![signal, events]
    }

    /// The time of the window's sample `index` (counting on through
    /// loops), ns since the UNIX epoch.
    fn start_ns(&self, index: u64) -> i64 {
        let sample = self.window.first + index;
        self.recording.start_unix_ns() + (sample as f64 * 1e9 / self.rate).round() as i64
    }
}

/// An annotation to send, relative to the window's first sample.
struct Pending {
    offset_ns: i64,
    event: Event,
}

/// Replays a recording.
pub struct EdfSource {
    opened: Opened,
    reader: SignalReader,
    /// The window's annotations, by time.
    events: Vec<Pending>,
    next_event: usize,
    /// Passes through the window the events have reached (loops).
    event_pass: u64,
    /// Samples per channel sent so far.
    emitted: u64,
    sequence: u64,
    pacer: Pacer,
    progress: Progress,
}

impl EdfSource {
    /// Samples per channel sent so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    fn window_ns(&self) -> i64 {
        (self.opened.window.len as f64 * 1e9 / self.opened.rate).round() as i64
    }

    /// The next annotation due before sample `end` (counted from the
    /// start, through loops), stamped.
    fn next_event_before(&mut self, end: u64) -> Option<Event> {
        if self.events.is_empty() {
            return None;
        }
        if self.next_event == self.events.len() {
            // The next pass's annotations wait for the next pass's blocks.
            let block_pass = (end - 1) / self.opened.window.len;
            if !self.opened.replay.looped || self.event_pass >= block_pass {
                return None;
            }
            self.next_event = 0;
            self.event_pass += 1;
        }
        let pass_ns = self.event_pass as i64 * self.window_ns();
        let pending = &self.events[self.next_event];
        let end_ns = (end as f64 * 1e9 / self.opened.rate).round() as i64;
        // Before the last block of a pass go the annotations at or past its
        // end too (a file's "recording ends").
        let last_of_pass = end % self.opened.window.len == 0;
        if pending.offset_ns + pass_ns >= end_ns && !last_of_pass {
            return None;
        }
        self.next_event += 1;
        let mut event = pending.event;
        event.timestamp_ns = (event.timestamp_ns as i64 + pass_ns) as u64;
        Some(event)
    }
}

impl Stage for EdfSource {
    const KIND: &'static str = "edf_source";
    const DOC: &'static str = "Replays an EDF/EDF+/BDF/BDF+ recording: its signals in physical units, its annotations as events.";
    type Config = EdfSourceConfig;
    type Input = NoPacket;
    type Output = EdfSourceOutput<'static>;
    /// It reads a file, and sleeps to pace blocks.
    const MAY_BLOCK: bool = true;

    fn output_formats(
        config: &EdfSourceConfig,
        _inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        Ok(open(config)?.formats())
    }

    fn new(config: EdfSourceConfig, _inputs: &[StreamFormat]) -> Result<Self, StageError> {
        let opened = open(&config)?;
        let reader =
            SignalReader::new(&opened.recording, &opened.signals).map_err(StageError::new)?;
        let window_start = opened.start_ns(0);
        let window_end = opened.start_ns(opened.window.len);
        let header_start = opened.recording.header.start_unix_s * 1_000_000_000;
        let mut texts: Vec<&str> = Vec::new();
        let mut events = Vec::new();
        for annotation in &opened.recording.annotations {
            let code = match texts.iter().position(|t| *t == annotation.text) {
                Some(i) => i,
                None => {
                    texts.push(&annotation.text);
                    texts.len() - 1
                }
            };
            let at = header_start + annotation.onset_ns;
            // A window that runs to the end of the file takes the
            // annotations at and after its last sample too.
            let to_the_end = opened.window.first + opened.window.len
                == opened.recording.samples(opened.signals[0]);
            if at < window_start || (at >= window_end && !to_the_end) {
                continue;
            }
            let mut event = Event::new(code as u32 + 1, &annotation.text)
                .at(at.max(0) as u64)
                .lasting(annotation.duration_ns.unwrap_or(0).max(0) as u64);
            event.stream_id = opened.stream_id;
            events.push(Pending {
                offset_ns: at - window_start,
                event,
            });
        }
        let total = (!opened.replay.looped).then_some(opened.window.len);
        let label = opened
            .recording
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let progress = Progress::new(&opened.replay, total, &label);
        let pacer = Pacer::new(opened.rate);
        let mut reader = reader;
        reader.seek(opened.window.first);
        Ok(Self {
            opened,
            reader,
            events,
            next_event: 0,
            event_pass: 0,
            emitted: 0,
            sequence: 0,
            pacer,
            progress,
        })
    }

    fn process(
        &mut self,
        _input: Option<&NoPacket>,
        mut output: EdfSourceOutput<'_>,
    ) -> Result<Outcome, StageError> {
        let window = self.opened.window;
        let into_pass = self.emitted % window.len;
        if !self.opened.replay.looped && self.emitted >= window.len {
            self.progress.finish();
            return Ok(Outcome::Finished);
        }
        // A block never spans the window's end: a loop starts a new block.
        let n = (self.opened.block_size as u64).min(window.len - into_pass) as usize;
        let end = self.emitted + n as u64;
        if self.opened.replay.realtime && !self.pacer.due(end) {
            return Ok(Outcome::NoOutput);
        }
        // Annotations go out before the block they fall in, one per call.
        if let Some(event) = self.next_event_before(end) {
            *output.events = event;
            output.events.send();
            return Ok(Outcome::Emitted);
        }
        if into_pass == 0 {
            self.reader.seek(window.first);
        }
        let channels = self.opened.signals.len();
        let signal = &mut *output.signal;
        signal
            .set_shape(channels, n)
            .map_err(|e| StageError::new(format!("edf_source: output packet: {e}")))?;
        let read = self.reader.read(signal.values_mut(), n).map_err(|e| {
            StageError::new(format!(
                "{}: cannot read: {e}",
                self.opened.recording.path.display()
            ))
        })?;
        if read != n {
            return Err(StageError::new(format!(
                "{}: the file ended early (it changed while it was replayed?)",
                self.opened.recording.path.display()
            )));
        }
        signal.timestamp_ns = self.opened.start_ns(self.emitted).max(0) as u64;
        signal.sequence = self.sequence;
        signal.stream_id = self.opened.stream_id;
        signal.sample_rate_hz = self.opened.rate;
        output.signal.send();
        self.emitted = end;
        self.sequence += 1;
        self.progress
            .set(self.emitted.min(window.len), self.opened.rate);
        Ok(Outcome::Emitted)
    }

    fn stop(&mut self) -> Result<(), StageError> {
        self.progress.finish();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edf::writer::{ChannelSpec, EdfWriter, RecordingSpec};
    use hsp_sdk::testing::StageHarness;

    /// 4 s of one channel at 10 Hz whose sample `i` is `i`, with an
    /// annotation at 1.5 s.
    fn recording(dir: &std::path::Path) -> String {
        let path = dir.join("ramp.edf");
        let spec = RecordingSpec {
            format: crate::edf::FileFormat::Edf,
            channels: vec![ChannelSpec {
                label: "Cz".into(),
                unit: "uV".into(),
                transducer: String::new(),
                prefilter: String::new(),
                physical_min: -3276.8,
                physical_max: 3276.7,
            }],
            samples_per_record: 10,
            record_duration_ns: 1_000_000_000,
            start_unix_ns: 1_600_000_000_000_000_000,
            patient: "X X X X".into(),
            recording: "X X X".into(),
            annotation_bytes: 60,
        };
        let mut writer = EdfWriter::create(&path, &spec).unwrap();
        writer.annotate(1_600_000_001_500_000_000, None, "marker");
        let ramp: Vec<f32> = (0..40).map(|i| i as f32).collect();
        writer.write_samples(&ramp, 40).unwrap();
        writer.finish().unwrap();
        path.display().to_string()
    }

    /// (first value, timestamp) of each block; (label, timestamp) of each event.
    type Played = (Vec<(f32, u64)>, Vec<(String, u64)>);

    /// What `calls` calls send.
    fn play(config: &str, calls: usize) -> Played {
        let mut harness = StageHarness::<EdfSource>::new(config, &[]).unwrap();
        let (mut blocks, mut events) = (Vec::new(), Vec::new());
        for _ in 0..calls {
            let (sent, outcome) = harness
                .process_port(None, hsp_sdk::PacketRef::None)
                .unwrap();
            for s in sent {
                match s.port {
                    "signal" => {
                        let block = s.packet.get::<EegPacket>().unwrap();
                        blocks.push((block.values()[0], block.timestamp_ns));
                    }
                    _ => {
                        let event = s.packet.get::<Event>().unwrap();
                        events.push((event.label().to_string(), event.timestamp_ns));
                    }
                }
            }
            if outcome == Outcome::Finished {
                break;
            }
        }
        (blocks, events)
    }

    const T0: u64 = 1_600_000_000_000_000_000;

    #[test]
    fn a_window_plays_from_start_s_for_duration_s() {
        let dir = tempfile::tempdir().unwrap();
        let path = recording(dir.path());
        let config = format!(
            r#"{{"path": {path:?}, "realtime": false, "block_size": 5, "start_s": 1.0, "duration_s": 2.0}}"#
        );
        let (blocks, events) = play(&config, 100);
        let firsts: Vec<f32> = blocks.iter().map(|b| b.0).collect();
        assert_eq!(firsts, [10.0, 15.0, 20.0, 25.0]);
        assert_eq!(blocks[0].1, T0 + 1_000_000_000);
        assert_eq!(events, [("marker".to_string(), T0 + 1_500_000_000)]);
    }

    #[test]
    fn a_loop_starts_over_and_keeps_the_clock_counting() {
        let dir = tempfile::tempdir().unwrap();
        let path = recording(dir.path());
        let config = format!(
            r#"{{"path": {path:?}, "realtime": false, "block_size": 10, "start_s": 1.0, "duration_s": 1.0, "loop": true}}"#
        );
        // Each pass: its annotation, then its block.
        let (blocks, events) = play(&config, 6);
        assert_eq!(
            blocks,
            [
                (10.0, T0 + 1_000_000_000),
                (10.0, T0 + 2_000_000_000),
                (10.0, T0 + 3_000_000_000)
            ]
        );
        assert_eq!(
            events,
            [
                ("marker".to_string(), T0 + 1_500_000_000),
                ("marker".to_string(), T0 + 2_500_000_000),
                ("marker".to_string(), T0 + 3_500_000_000)
            ]
        );
    }

    #[test]
    fn a_window_past_the_end_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = recording(dir.path());
        let config = format!(r#"{{"path": {path:?}, "start_s": 3.5, "duration_s": 1.0}}"#);
        let error = StageHarness::<EdfSource>::new(&config, &[]).err().unwrap();
        assert!(
            error
                .to_string()
                .contains("runs past the end of the recording (4 s)"),
            "{error}"
        );
    }
}
