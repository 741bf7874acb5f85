//! `edf_sink`: records a stream to an EDF+ or BDF+ file, with its events
//! as annotations.
//!
//! The file is valid while it grows: each data record is written whole as
//! soon as it fills, and the header's record count is rewritten right
//! after it. A normal stop (or SIGINT/SIGTERM, which drain the pipeline)
//! completes the last record with physical zeros, writes the annotations
//! still waiting, sets the count and syncs the file. After SIGKILL, the
//! file holds every record written before the kill with the count that
//! says so: readers see the recording up to its last whole record (the
//! samples of the record being filled, at most `record_s`, are lost).

use crate::edf::FileFormat;
use crate::edf::writer::{ChannelSpec, EdfWriter, RecordingSpec};
use hsp_sdk::{
    EegPacket, Event, InputPorts, NoPacket, Outcome, PacketKind, PlanarBlock, Stage, StageConfig,
    StageError, StreamFormat,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[stage.config]` of `edf_sink`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct EdfSinkConfig {
    /// File to write (created or truncated); its directory must exist
    pub path: String,
    /// `edf` (EDF+, 16-bit) or `bdf` (BDF+, 24-bit); empty = by the file's extension (`.bdf`:
    /// BDF+, else EDF+)
    #[config(default = "")]
    pub format: String,
    /// Length of a data record: how much a SIGKILL can lose; rate x record_s must be whole samples
    #[config(default = 1.0, unit = "s")]
    pub record_s: f64,
    /// Smallest value every channel can take (the digital minimum maps to it); with
    /// `physical_max`, overrides the stream's ranges. 0 and 0 = each channel's range from the
    /// stream, else -3276.8..3276.7 (EDF) or -262144..262143.97 (BDF), in its unit
    #[config(default = 0.0)]
    pub physical_min: f64,
    /// Largest value every channel can take; see `physical_min`
    #[config(default = 0.0)]
    pub physical_max: f64,
    /// EDF+ patient field: code, sex, birthdate, name (X for unknown)
    #[config(default = "X X X X")]
    pub patient: String,
    /// EDF+ recording field after the start date: admin code, technician, equipment
    #[config(default = "X X hsp")]
    pub recording: String,
    /// Bytes of annotation text each record can hold; annotations that do not fit wait for the
    /// next record
    #[config(default = 120)]
    pub annotation_bytes: i64,
}

/// `edf_sink`'s inputs.
#[derive(InputPorts)]
pub enum EdfSinkInput<'a> {
    /// The signal to record.
    Signal(&'a EegPacket),
    /// Events to write as annotations (text: the label, or `code N`).
    #[port(optional)]
    Events(&'a Event),
}

/// The config, checked against the input stream.
struct Settings {
    path: PathBuf,
    spec: RecordingSpec,
}

/// The default ranges, when neither the config nor the stream gives one:
/// 0.1 uV steps for EDF, 1/32 uV for BDF (BioSemi's).
fn default_range(format: FileFormat) -> (f64, f64) {
    match format {
        FileFormat::Edf => (-3276.8, 3276.7),
        FileFormat::Bdf => (-262_144.0, 262_143.968_75),
    }
}

fn check_directory(path: &Path) -> Result<(), StageError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(StageError::new(format!(
            "`path` = {:?}: directory {:?} does not exist",
            path.display().to_string(),
            dir.display().to_string()
        ))),
        _ => Ok(()),
    }
}

impl Settings {
    fn new(config: &EdfSinkConfig, signal: &StreamFormat) -> Result<Self, StageError> {
        if config.path.trim().is_empty() {
            return Err(StageError::new("`path` must name a file, got \"\""));
        }
        let path = PathBuf::from(&config.path);
        check_directory(&path)?;
        let format = match config.format.to_ascii_lowercase().as_str() {
            "edf" => FileFormat::Edf,
            "bdf" => FileFormat::Bdf,
            "" => match path.extension().and_then(|e| e.to_str()) {
                Some(e) if e.eq_ignore_ascii_case("bdf") => FileFormat::Bdf,
                _ => FileFormat::Edf,
            },
            other => {
                return Err(StageError::new(format!(
                    "`format` must be \"edf\" or \"bdf\" (or empty: by extension), got {other:?}"
                )));
            }
        };
        let rate = signal.sample_rate_hz;
        let record_s = config.record_s;
        let samples = rate * record_s;
        if !(record_s.is_finite() && record_s > 0.0)
            || samples < 1.0
            || (samples - samples.round()).abs() > 1e-6
        {
            return Err(StageError::new(format!(
                "`record_s` = {record_s} s at {rate} Hz is {samples} samples: a record must hold a whole number of samples (try {})",
                whole_record_s(rate)
            )));
        }
        let record_duration_ns = (record_s * 1e9).round() as i64;
        let configured = (config.physical_min, config.physical_max);
        let override_range = configured != (0.0, 0.0);
        if override_range
            && !(configured.0.is_finite()
                && configured.1.is_finite()
                && configured.0 < configured.1)
        {
            return Err(StageError::new(format!(
                "`physical_min` ({}) must be below `physical_max` ({})",
                configured.0, configured.1
            )));
        }
        let channels = signal
            .channel_list()
            .into_iter()
            .map(|c| {
                let (min, max) = if override_range {
                    configured
                } else {
                    c.range
                        .into_option()
                        .map_or_else(|| default_range(format), |r| (r.min, r.max))
                };
                ChannelSpec {
                    label: c.label.to_string(),
                    unit: c.unit.to_string(),
                    transducer: c.transducer.to_string(),
                    prefilter: c.prefilter.to_string(),
                    physical_min: min,
                    physical_max: max,
                }
            })
            .collect();
        let annotation_bytes = usize::try_from(config.annotation_bytes)
            .ok()
            .filter(|b| (32..=1 << 16).contains(b))
            .ok_or_else(|| {
                StageError::new(format!(
                    "`annotation_bytes` must be 32 to 65536, got {}",
                    config.annotation_bytes
                ))
            })?;
        let spec = RecordingSpec {
            format,
            channels,
            samples_per_record: samples.round() as usize,
            record_duration_ns,
            start_unix_ns: signal.start_time_ns as i64,
            patient: config.patient.clone(),
            recording: config.recording.clone(),
            annotation_bytes,
        };
        // The header is checked now (labels too long, non-ASCII text, a
        // range that does not fit its field), before anything runs.
        let mut checked = spec.clone();
        if !(1985..2085).contains(&year_of(checked.start_unix_ns)) {
            checked.start_unix_ns = 1_000_000_000_000_000_000;
        }
        EdfWriter::header(&checked)
            .map_err(|e| StageError::new(format!("{}: {e}", path.display())))?;
        Ok(Self { path, spec })
    }
}

fn year_of(unix_ns: i64) -> i32 {
    crate::edf::civil::civil_from_days(unix_ns.div_euclid(86_400 * 1_000_000_000)).0
}

/// A record length in whole seconds that holds whole samples at `rate`,
/// for the error's hint.
fn whole_record_s(rate: f64) -> String {
    (1..=100u32)
        .map(f64::from)
        .find(|s| (rate * s - (rate * s).round()).abs() < 1e-6)
        .map_or_else(
            || "a length that makes the rate times it a whole number".to_string(),
            |s| format!("record_s = {s}"),
        )
}

/// Records a stream.
pub struct EdfSink {
    settings: Settings,
    writer: Option<EdfWriter>,
    /// The timestamp the next block should have, to spot gaps.
    expected_ns: Option<u64>,
    /// Events that came before the first block (the file's start).
    early: Vec<Event>,
    gaps: u64,
    rate: f64,
}

impl EdfSink {
    /// The writer, once started.
    pub fn writer(&self) -> Option<&EdfWriter> {
        self.writer.as_ref()
    }

    fn annotate(writer: &mut EdfWriter, event: &Event) {
        let text = match event.label() {
            "" => format!("code {}", event.code),
            label => label.to_string(),
        };
        let duration = (event.duration_ns > 0).then_some(event.duration_ns as i64);
        writer.annotate(event.timestamp_ns as i64, duration, &text);
    }

    fn write_block(&mut self, block: &EegPacket) -> Result<(), StageError> {
        if self.writer.is_none() {
            // The file starts at the first block's first sample.
            let mut spec = self.settings.spec.clone();
            spec.start_unix_ns = block.timestamp_ns as i64;
            let mut writer =
                EdfWriter::create(&self.settings.path, &spec).map_err(StageError::new)?;
            for event in self.early.drain(..) {
                Self::annotate(&mut writer, &event);
            }
            self.writer = Some(writer);
        }
        let writer = self.writer.as_mut().expect("created above");
        if let Some(expected) = self.expected_ns {
            let period = 1e9 / self.rate;
            let off = block.timestamp_ns as f64 - expected as f64;
            if off.abs() > period {
                self.gaps += 1;
                writer.annotate(
                    expected as i64,
                    None,
                    &format!("hsp: {:+.6} s discontinuity in the input here", off / 1e9),
                );
            }
        }
        let n = block.values_per_channel();
        writer
            .write_samples(block.values(), n)
            .map_err(StageError::new)?;
        self.expected_ns = Some(block.timestamp_ns + (n as f64 * 1e9 / self.rate).round() as u64);
        Ok(())
    }
}

impl Stage for EdfSink {
    const KIND: &'static str = "edf_sink";
    const DOC: &'static str = "Records EEG to an EDF+ or BDF+ file with the stream's labels, units and ranges; events become annotations.";
    type Config = EdfSinkConfig;
    type Input = EdfSinkInput<'static>;
    type Output = NoPacket;
    /// It writes to a file.
    const MAY_BLOCK: bool = true;

    fn output_formats(
        config: &EdfSinkConfig,
        inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        let signal = signal_of(inputs)?;
        Settings::new(config, signal)?;
        Ok(Vec::new())
    }

    fn new(config: EdfSinkConfig, inputs: &[StreamFormat]) -> Result<Self, StageError> {
        let signal = signal_of(inputs)?;
        Ok(Self {
            settings: Settings::new(&config, signal)?,
            writer: None,
            expected_ns: None,
            early: Vec::new(),
            gaps: 0,
            rate: signal.sample_rate_hz,
        })
    }

    fn start(&mut self) -> Result<(), StageError> {
        check_directory(&self.settings.path)
    }

    fn process(
        &mut self,
        input: Option<EdfSinkInput<'_>>,
        _output: &mut NoPacket,
    ) -> Result<Outcome, StageError> {
        match input {
            Some(EdfSinkInput::Signal(block)) => self.write_block(block)?,
            Some(EdfSinkInput::Events(event)) => match &mut self.writer {
                Some(writer) => Self::annotate(writer, event),
                None => self.early.push(*event),
            },
            None => {}
        }
        Ok(Outcome::NoOutput)
    }

    fn stop(&mut self) -> Result<(), StageError> {
        if self.writer.is_none() {
            // Nothing came: an empty recording still says what it would
            // have held (a header, no records).
            let writer = EdfWriter::create(&self.settings.path, &self.settings.spec)
                .map_err(StageError::new)?;
            self.writer = Some(writer);
        }
        let writer = self.writer.as_mut().expect("set above");
        writer.finish().map_err(StageError::new)
    }

    fn notes(&self) -> Vec<String> {
        let Some(writer) = &self.writer else {
            return Vec::new();
        };
        let mut notes = Vec::new();
        let clipped: Vec<String> = writer
            .clipped()
            .iter()
            .zip(&self.settings.spec.channels)
            .filter(|(n, _)| **n > 0)
            .map(|(n, c)| {
                format!(
                    "{} {n} (range {}..{} {})",
                    c.label, c.physical_min, c.physical_max, c.unit
                )
            })
            .collect();
        if !clipped.is_empty() {
            notes.push(format!(
                "samples outside the physical range were clipped: {}; set `physical_min`/`physical_max` to widen it",
                clipped.join(", ")
            ));
        }
        if writer.padded() > 0 {
            notes.push(format!(
                "the last record was completed with {} samples of zeros per channel, after the last sample received",
                writer.padded()
            ));
        }
        if self.gaps > 0 {
            notes.push(format!(
                "{} discontinuities in the input were marked as annotations",
                self.gaps
            ));
        }
        notes
    }
}

fn signal_of(inputs: &[StreamFormat]) -> Result<&StreamFormat, StageError> {
    let signal = inputs
        .first()
        .ok_or_else(|| StageError::new("`edf_sink` needs a signal to record"))?;
    if !matches!(signal.kind, PacketKind::RawEeg | PacketKind::FilteredEeg) {
        return Err(StageError::new(format!(
            "`edf_sink` records EEG, not {}",
            signal.kind
        )));
    }
    if !(signal.sample_rate_hz.is_finite() && signal.sample_rate_hz > 0.0) {
        return Err(StageError::new(
            "`edf_sink` needs a stream with a sample rate",
        ));
    }
    Ok(signal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::testing::StageHarness;
    use hsp_sdk::{ChannelInfo, PacketTag, PortPacket};

    #[test]
    fn clipped_samples_and_padding_are_reported_per_channel() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.bdf");
        let format = StreamFormat::eeg(PacketKind::RawEeg, 2, 100.0, 50)
            .with_channels([ChannelInfo::eeg("Fz"), ChannelInfo::eeg("Cz")]);
        let config = format!(
            r#"{{"path": {:?}, "physical_min": -100.0, "physical_max": 100.0}}"#,
            path.display().to_string()
        );
        let mut harness =
            StageHarness::<EdfSink>::new(&config, std::slice::from_ref(&format)).unwrap();
        let mut block = EegPacket::for_format(&format);
        block.set_shape(2, 50).unwrap();
        block.values_mut()[3] = 150.0;
        block.values_mut()[60] = -150.0;
        block.values_mut()[61] = -170.0;
        block.sample_rate_hz = 100.0;
        block.timestamp_ns = 1_600_000_000_000_000_000;
        harness
            .process_port(Some("signal"), block.as_packet_ref())
            .unwrap();
        let notes = harness.stop().unwrap();
        assert!(
            notes
                .iter()
                .any(|n| n.contains("clipped: Fz 1 (range -100..100 uV), Cz 2")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("completed with 50 samples of zeros")),
            "{notes:?}"
        );
    }
}
