//! `csv_sink`: writes a stream to a CSV file. EEG (raw or filtered) becomes
//! one row per sample, `timestamp_ns,Fz [uV],Cz [uV],...`, each sample
//! stamped with its block's timestamp plus its offset at the block's sample
//! rate. Features become one row per packet,
//! `timestamp_ns,Fz_f0,Fz_f1,...`. Column names are the stream's channel
//! labels (and units), or `channel_names` when given.
//!
//! It may block (a disk can be slow): the host runs it on a thread of its
//! own, fed by a queue, so the data-plane thread never waits on the file.
//!
//! The file is created (or truncated) in `start`, written through a buffer
//! sized once (64 KiB, more for very wide rows), and flushed, synced and
//! closed in `stop`. In between, buffered rows go to the file
//!
//! - at the first packet that comes `flush_interval_s` (default 1 s) or more
//!   after the last flush, so a crash of the process (SIGKILL, an abort)
//!   loses at most about that long of rows plus one packet's: at 250 Hz in
//!   blocks of 25 samples, at most 275 rows. The clock is read once per
//!   packet: a stream that pauses keeps its last rows in memory until its
//!   next packet or `stop`;
//! - every `flush_every` packets, when set;
//! - whenever the buffer is full.
//!
//! `flush_interval_s = 0` and `flush_every = 0` flush only by size and at
//! `stop`: the fewest writes, but up to 64 KiB of rows (about 1000 rows of 4
//! channels) lost on a crash. `plugins/csv_sink/rows_at_risk.sh` measures it.
//!
//! Only whole rows reach the file: a write that fails part way (a full disk)
//! is cut back to the last whole row, so the file ends on a row boundary,
//! and the error, naming the file, is returned from `process` and again from
//! `stop`; the sink writes nothing more after it. A flush hands the rows to
//! the operating system, which keeps them if the process dies; `stop` also
//! syncs them to the disk, which keeps them through a power cut.

use abi_stable::std_types::RString;
use hsp_sdk::line_file::{DiskFile, LineFile};
use hsp_sdk::{
    AnyPacket, EegPacket, Event, FeaturePacket, NoPacket, Outcome, PacketKind, PacketRef,
    PlanarBlock, Stage, StageConfig, StageError, StreamFormat,
};
use serde::Deserialize;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bytes buffered before a write to the file: a few hundred rows of EEG.
const BUFFER_BYTES: usize = 1 << 16;

/// The most bytes a value takes in a row, its comma included: an `f32`
/// printed in full takes at most 48 (`-0.0000…` for the smallest ones).
const MAX_VALUE_BYTES: usize = 64;

/// The most bytes of a row's timestamp (a `u64`) and its newline.
const MAX_STAMP_BYTES: usize = 21;

/// `[stage.config]` of the CSV sinks.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// CSV file to write (created or truncated); its directory must exist
    pub path: String,
    /// Column names, one per channel, in place of the stream's channel labels and units; empty =
    /// the stream's
    #[config(default = [])]
    pub channel_names: Vec<String>,
    /// Flush the file every this many packets; 0 = not by count
    #[config(default = 0)]
    pub flush_every: i64,
    /// Flush the file at the first packet this long after the last flush, so a crash loses at most
    /// about this long of rows; 0 = not by time (then only by flush_every, a full 64 KiB buffer and
    /// at stop)
    #[config(default = 1.0, unit = "s")]
    pub flush_interval_s: f64,
}

/// The config, checked against the input stream.
struct Settings {
    path: PathBuf,
    names: Vec<String>,
    flush_every: u64,
    /// `None` for 0: not by time.
    flush_interval: Option<Duration>,
}

impl Settings {
    fn new(config: &CsvConfig, input: &StreamFormat) -> Result<Self, StageError> {
        if config.path.trim().is_empty() {
            return Err(StageError::new("`path` must name a file, got \"\""));
        }
        let path = PathBuf::from(&config.path);
        check_directory(&path)?;
        let flush_every = u64::try_from(config.flush_every).map_err(|_| {
            StageError::new(format!(
                "`flush_every` must be 0 (only at stop) or a number of packets, got {}",
                config.flush_every
            ))
        })?;
        let seconds = config.flush_interval_s;
        let flush_interval = match Duration::try_from_secs_f64(seconds) {
            Ok(interval) if interval.is_zero() => None,
            Ok(interval) => Some(interval),
            Err(_) => {
                return Err(StageError::new(format!(
                    "`flush_interval_s` must be 0 (not by time) or a number of seconds, got {seconds}"
                )));
            }
        };
        let channels = input.channels();
        let names: Vec<String> = if config.channel_names.is_empty() {
            input
                .channel_list()
                .iter()
                .map(|c| match (c.unit.as_str(), input.kind) {
                    ("", _) | (_, PacketKind::Features) => c.label.to_string(),
                    (unit, _) => format!("{} [{unit}]", c.label),
                })
                .collect()
        } else {
            config
                .channel_names
                .iter()
                .map(|n| n.trim().to_string())
                .collect()
        };
        if names.len() != channels {
            return Err(StageError::new(format!(
                "`channel_names` = {:?} names {} channels, the input has {channels}",
                config.channel_names,
                names.len()
            )));
        }
        // Names go into the header unquoted: refuse what would break a row.
        if let Some(bad) = names
            .iter()
            .find(|n| n.is_empty() || n.contains(['"', '\n', '\r', ',']))
        {
            let whose = if config.channel_names.is_empty() {
                "the stream's channel label".to_string()
            } else {
                format!("`channel_names` = {:?}: name", config.channel_names)
            };
            return Err(StageError::new(format!(
                "{whose} {bad:?} is empty or holds a comma, quote or line break"
            )));
        }
        Ok(Self {
            path,
            names,
            flush_every,
            flush_interval,
        })
    }
}

/// Refuses a path whose directory does not exist: the sink does not create
/// directories, so a typo does not scatter files.
fn check_directory(path: &Path) -> Result<(), StageError> {
    let directory = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => return Ok(()),
    };
    if directory.is_dir() {
        Ok(())
    } else {
        Err(StageError::new(format!(
            "`path` = {:?}: directory {:?} does not exist",
            path.display().to_string(),
            directory.display().to_string()
        )))
    }
}

fn write_error(path: &Path, error: std::io::Error) -> StageError {
    StageError::new(format!("writing {:?}: {error}", path.display().to_string()))
}

/// How a stream becomes rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// EEG: one row per sample, a column per channel.
    Eeg,
    /// Features: one row per packet, a column per channel and feature.
    Features,
    /// Events: one row per event, `timestamp_ns,code,value,label`.
    Events,
}

impl Layout {
    fn of(kind: PacketKind) -> Result<Self, StageError> {
        match kind {
            PacketKind::RawEeg | PacketKind::FilteredEeg => Ok(Self::Eeg),
            PacketKind::Features => Ok(Self::Features),
            PacketKind::Event => Ok(Self::Events),
            other => Err(StageError::new(format!(
                "`csv_sink` writes EEG (raw or filtered), features or events, not {other}"
            ))),
        }
    }

    /// Values in one row, after the timestamp.
    fn values_per_row(self, channels: usize, values_per_channel: usize) -> usize {
        match self {
            Self::Eeg => channels,
            Self::Features => channels * values_per_channel,
            // Code, value and a label of at most 48 bytes (96 with its
            // quotes doubled): the room of four values.
            Self::Events => 4,
        }
    }

    /// Writes the header line: `timestamp_ns` then one column per value.
    fn write_header(
        self,
        out: &mut impl Write,
        names: &[String],
        values_per_channel: usize,
        value_labels: &[RString],
    ) -> std::io::Result<()> {
        out.write_all(b"timestamp_ns")?;
        if self == Self::Events {
            return out.write_all(b",code,value,label\n");
        }
        for name in names {
            match self {
                Self::Eeg | Self::Events => write!(out, ",{name}")?,
                Self::Features => {
                    for feature in 0..values_per_channel {
                        match value_labels.get(feature) {
                            Some(value) => write!(out, ",{name}_{value}")?,
                            None => write!(out, ",{name}_f{feature}")?,
                        }
                    }
                }
            }
        }
        out.write_all(b"\n")
    }
}

/// One row per sample, `timestamp_ns` then each channel's sample.
fn write_eeg_rows(
    block: &EegPacket,
    out: &mut impl Write,
    fallback_rate_hz: f64,
) -> std::io::Result<u64> {
    let n = block.values_per_channel();
    let rate = if block.sample_rate_hz > 0.0 {
        block.sample_rate_hz
    } else {
        fallback_rate_hz
    };
    let samples = block.values();
    for i in 0..n {
        // Offsets from the block's stamp, not accumulated steps, so rounding
        // never builds up across a block.
        let offset = (i as f64 * 1e9 / rate).round() as u64;
        write!(out, "{}", block.timestamp_ns.saturating_add(offset))?;
        for channel in 0..block.channels() {
            write!(out, ",{}", samples[channel * n + i])?;
        }
        out.write_all(b"\n")?;
    }
    Ok(n as u64)
}

/// One row per packet, `timestamp_ns` then every value.
fn write_feature_row(features: &FeaturePacket, out: &mut impl Write) -> std::io::Result<u64> {
    write!(out, "{}", features.timestamp_ns)?;
    for value in features.values() {
        write!(out, ",{value}")?;
    }
    out.write_all(b"\n")?;
    Ok(1)
}

/// One row per event, its label quoted (doubling any quote in it).
fn write_event_row(event: &Event, out: &mut impl Write) -> std::io::Result<u64> {
    write!(
        out,
        "{},{},{},\"",
        event.timestamp_ns, event.code, event.value
    )?;
    for (i, part) in event.label().split('"').enumerate() {
        if i > 0 {
            out.write_all(b"\"\"")?;
        }
        out.write_all(part.as_bytes())?;
    }
    out.write_all(b"\"\n")?;
    Ok(1)
}

/// Writes every packet it takes to a CSV file.
pub struct CsvSink {
    settings: Settings,
    layout: Layout,
    values_per_channel: usize,
    /// The features' names, when the stream names them (band power's bands).
    value_labels: Vec<RString>,
    sample_rate_hz: f64,
    writer: Option<LineFile>,
    packets: u64,
    rows: u64,
}

impl CsvSink {
    /// Data rows written so far (the header not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.settings.path
    }

    /// Writes to `file`, which holds `len` bytes of whole rows, through a
    /// buffer sized once, with room for two of the widest rows.
    fn line_file(&self, file: File) -> Result<LineFile, StageError> {
        let (file, len) = DiskFile::new(file).map_err(|e| write_error(&self.settings.path, e))?;
        let values = self
            .layout
            .values_per_row(self.settings.names.len(), self.values_per_channel);
        let widest_row = MAX_STAMP_BYTES + values * MAX_VALUE_BYTES;
        let capacity = BUFFER_BYTES.max(2 * widest_row);
        Ok(LineFile::new(file, len, capacity))
    }

    fn write_header(&self, out: &mut impl Write) -> std::io::Result<()> {
        self.layout.write_header(
            out,
            &self.settings.names,
            self.values_per_channel,
            &self.value_labels,
        )
    }
}

/// The input of a CSV sink, checked.
fn input_of(inputs: &[StreamFormat]) -> Result<&StreamFormat, StageError> {
    inputs
        .first()
        .ok_or_else(|| StageError::new("`csv_sink` needs an input stream to write"))
}

impl Stage for CsvSink {
    const KIND: &'static str = "csv_sink";
    const DOC: &'static str = "Writes EEG (one row per sample), features (one row per packet) or events (one row each) to a CSV file, headed by the channels' labels and units.";
    type Config = CsvConfig;
    type Input = AnyPacket;
    type Output = NoPacket;
    /// It writes to a file: on a thread of its own, the data plane never
    /// waits on the disk.
    const MAY_BLOCK: bool = true;

    fn output_formats(
        config: &CsvConfig,
        inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        // Checked here too so a bad path or name list fails the graph check,
        // before any stage starts.
        let input = input_of(inputs)?;
        Layout::of(input.kind)?;
        Settings::new(config, input)?;
        Ok(Vec::new())
    }

    fn new(config: CsvConfig, inputs: &[StreamFormat]) -> Result<Self, StageError> {
        let input = input_of(inputs)?;
        let layout = Layout::of(input.kind)?;
        let settings = Settings::new(&config, input)?;
        Ok(Self {
            settings,
            layout,
            values_per_channel: input.values_per_channel(),
            value_labels: input.value_labels.to_vec(),
            sample_rate_hz: input.sample_rate_hz,
            writer: None,
            packets: 0,
            rows: 0,
        })
    }

    fn start(&mut self) -> Result<(), StageError> {
        let path = &self.settings.path;
        check_directory(path)?;
        let file = File::create(path).map_err(|e| {
            StageError::new(format!(
                "cannot create {:?}: {e}",
                path.display().to_string()
            ))
        })?;
        let mut writer = self.line_file(file)?;
        self.write_header(&mut writer)
            .map_err(|e| write_error(&self.settings.path, e))?;
        self.writer = Some(writer);
        Ok(())
    }

    /// Taking over from a running sink (a live change): append to its file
    /// when its header is the one this sink writes; a path with no file yet
    /// starts one. A file with another header (the channel names changed,
    /// or another file is at the new path) refuses, so nothing is mixed up
    /// or overwritten: the running sink carries on.
    fn resume(&mut self) -> Result<(), StageError> {
        let path = &self.settings.path;
        if !path.is_file() {
            return self.start();
        }
        let mut header = Vec::new();
        self.write_header(&mut header)
            .map_err(|e| write_error(path, e))?;
        // Only the header is read: the file may hold hours of rows.
        let mut existing = Vec::with_capacity(header.len());
        File::open(path)
            .and_then(|file| file.take(header.len() as u64).read_to_end(&mut existing))
            .map_err(|e| write_error(path, e))?;
        if existing != header {
            return Err(StageError::new(format!(
                "cannot append to {:?}: its header is not this sink's ({}); write to a new path",
                path.display().to_string(),
                String::from_utf8_lossy(header.trim_ascii_end())
            )));
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| {
                StageError::new(format!(
                    "cannot open {:?} to append: {e}",
                    path.display().to_string()
                ))
            })?;
        self.writer = Some(self.line_file(file)?);
        Ok(())
    }

    fn process(
        &mut self,
        input: Option<PacketRef<'_>>,
        _output: &mut NoPacket,
    ) -> Result<Outcome, StageError> {
        let Some(input) = input else {
            return Ok(Outcome::NoOutput);
        };
        let path = &self.settings.path;
        let Some(writer) = self.writer.as_mut() else {
            return Err(StageError::new(format!(
                "{}: got a packet before start opened {:?}",
                Self::KIND,
                path.display().to_string()
            )));
        };
        let written = match input {
            PacketRef::RawEeg(block) => write_eeg_rows(block, writer, self.sample_rate_hz),
            PacketRef::FilteredEeg(block) => write_eeg_rows(block, writer, self.sample_rate_hz),
            PacketRef::Features(features) => write_feature_row(features, writer),
            PacketRef::Event(event) => write_event_row(event, writer),
            other => {
                return Err(StageError::new(format!(
                    "{}: cannot write a {} packet",
                    Self::KIND,
                    other.kind().map_or("empty", PacketKind::name)
                )));
            }
        };
        self.rows += written.map_err(|e| {
            // A row cut short never reaches the file.
            writer.discard_unfinished();
            write_error(path, e)
        })?;
        self.packets += 1;
        let every = self.settings.flush_every;
        let due = (every > 0 && self.packets % every == 0)
            || self
                .settings
                .flush_interval
                .is_some_and(|interval| writer.since_flush() >= interval);
        if due {
            writer.flush_lines().map_err(|e| write_error(path, e))?;
        }
        Ok(Outcome::NoOutput)
    }

    fn stop(&mut self) -> Result<(), StageError> {
        let path = &self.settings.path;
        if let Some(writer) = self.writer.take() {
            // Reports a failed write, this one or an earlier one, which
            // dropping the writer would swallow.
            writer.finish().map_err(|e| write_error(path, e))?;
        }
        Ok(())
    }
}

hsp_sdk::export_plugin!(CsvSink);

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::testing::StageHarness;
    use hsp_sdk::{FilteredEegPacket, PacketTag};
    use std::time::{SystemTime, UNIX_EPOCH};

    /// A path in the temp directory no other test (or run) uses.
    fn temp_path(name: &str) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::env::temp_dir().join(format!(
            "hsp-csv-sink-{}-{name}-{nanos}.csv",
            std::process::id()
        ))
    }

    fn config(path: &Path, extra: &str) -> String {
        format!(r#"{{"path": {:?}{extra}}}"#, path.to_str().unwrap())
    }

    const FS: f64 = 250.0;
    const T0: u64 = 1_700_000_000_000_000_000;

    /// `count` blocks of 3 channels, sample `i` of channel `c` = `c * 1000 + i`.
    fn eeg_blocks(count: usize, n: usize) -> Vec<EegPacket> {
        (0..count)
            .map(|b| {
                let mut block = EegPacket::with_capacity(3, n);
                for c in 0..3 {
                    for (i, v) in block.channel_mut(c).iter_mut().enumerate() {
                        *v = (c * 1000 + b * n + i) as f32;
                    }
                }
                block.sequence = b as u64;
                block.timestamp_ns = T0 + (b * n) as u64 * 4_000_000;
                block.sample_rate_hz = FS;
                block
            })
            .collect()
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_resumed_sink_appends_rows_under_the_one_header() {
        let path = temp_path("resume");
        let format = StreamFormat::eeg(PacketKind::RawEeg, 3, FS, 10);
        let blocks = eeg_blocks(4, 10);
        let mut first =
            StageHarness::<CsvSink>::new(&config(&path, ""), std::slice::from_ref(&format))
                .unwrap();
        first.feed_all(&blocks[..2]).unwrap();
        // A live change: the new instance takes over after the old one stopped.
        let mut second = StageHarness::<CsvSink>::new(
            &config(&path, r#", "flush_every": 0"#),
            std::slice::from_ref(&format),
        )
        .unwrap();
        second.resume().unwrap();
        second.feed_all(&blocks[2..]).unwrap();

        let lines = lines(&path);
        assert_eq!(lines[0], "timestamp_ns,ch1 [uV],ch2 [uV],ch3 [uV]");
        assert_eq!(lines.len() - 1, 40, "every row, once");
        assert!(lines[1..].iter().all(|l| !l.starts_with("timestamp")));
        assert_eq!(lines[21], format!("{},20,1020,2020", T0 + 20 * 4_000_000));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn resuming_onto_a_file_with_another_header_is_refused_and_leaves_it_alone() {
        let path = temp_path("other-header");
        std::fs::write(&path, "timestamp_ns,a,b,c\n1,2,3,4\n").unwrap();
        let format = StreamFormat::eeg(PacketKind::RawEeg, 3, FS, 10);
        let mut sink =
            StageHarness::<CsvSink>::new(&config(&path, ""), std::slice::from_ref(&format))
                .unwrap();
        let error = sink.resume().unwrap_err().to_string();
        assert!(error.contains("header"), "{error}");
        assert_eq!(lines(&path), ["timestamp_ns,a,b,c", "1,2,3,4"]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn writes_one_row_per_sample() {
        let path = temp_path("raw");
        let format = StreamFormat::eeg(PacketKind::RawEeg, 3, FS, 10);
        let mut h = StageHarness::<CsvSink>::new(&config(&path, ""), std::slice::from_ref(&format))
            .unwrap();
        let mut blocks = eeg_blocks(4, 10);
        // A short last block, as a finite source ends.
        blocks[3].set_shape(3, 7).unwrap();
        h.feed_all(&blocks).unwrap();
        assert_eq!(h.stage().rows(), 37);

        let lines = lines(&path);
        assert_eq!(lines[0], "timestamp_ns,ch1 [uV],ch2 [uV],ch3 [uV]");
        assert_eq!(lines.len() - 1, 37, "rows == samples per channel");
        // 250 Hz: 4 ms per sample, the same step across block edges.
        for (i, line) in lines[1..].iter().enumerate() {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 4);
            let ts: u64 = fields[0].parse().unwrap();
            assert_eq!(ts, T0 + i as u64 * 4_000_000, "row {i}");
        }
        assert_eq!(lines[12], format!("{},11,1011,2011", T0 + 11 * 4_000_000));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn filtered_eeg_with_names_and_periodic_flush() {
        let path = temp_path("filtered");
        let format = StreamFormat::eeg(PacketKind::FilteredEeg, 3, FS, 5);
        let mut h = StageHarness::<CsvSink>::new(
            &config(
                &path,
                r#", "channel_names": ["Fz", " Cz", "Pz"], "flush_every": 2"#,
            ),
            std::slice::from_ref(&format),
        )
        .unwrap();
        let blocks: Vec<FilteredEegPacket> = eeg_blocks(3, 5)
            .into_iter()
            .map(FilteredEegPacket)
            .collect();
        h.feed(&blocks[0]).unwrap();
        h.feed(&blocks[1]).unwrap();
        // Flushed after the second packet, before `stop`.
        assert_eq!(lines(&path).len(), 1 + 10);
        h.feed(&blocks[2]).unwrap();
        h.stop().unwrap();
        let lines = lines(&path);
        assert_eq!(lines[0], "timestamp_ns,Fz,Cz,Pz");
        assert_eq!(lines.len(), 1 + 15);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn the_header_names_the_stream_s_channels_and_units() {
        use hsp_sdk::{ChannelInfo, ChannelType};
        let path = temp_path("labels");
        let format = StreamFormat::eeg(PacketKind::RawEeg, 3, FS, 10).with_channels([
            ChannelInfo::eeg("Fz"),
            ChannelInfo::eeg("Cz"),
            ChannelInfo::new("EOG1", "mV", ChannelType::Eog),
        ]);
        let mut h = StageHarness::<CsvSink>::new(&config(&path, ""), &[format]).unwrap();
        h.feed_all(&eeg_blocks(1, 10)).unwrap();
        assert_eq!(lines(&path)[0], "timestamp_ns,Fz [uV],Cz [uV],EOG1 [mV]");
        std::fs::remove_file(&path).unwrap();
        // Events: a row each, the label quoted.
        let events = [Event::new(3, "say \"hi\", twice").with_value(1.5).at(T0)];
        let mut h =
            StageHarness::<CsvSink>::new(&config(&path, ""), &[StreamFormat::events()]).unwrap();
        h.feed_all(&events).unwrap();
        assert_eq!(
            lines(&path),
            [
                "timestamp_ns,code,value,label".to_string(),
                format!("{T0},3,1.5,\"say \"\"hi\"\", twice\"")
            ]
        );
        std::fs::remove_file(&path).unwrap();
        // A stream of another kind is refused when the graph is checked.
        let fft = StreamFormat::eeg(PacketKind::Fft, 3, FS, 10);
        let e = StageHarness::<CsvSink>::new(&config(&path, ""), &[fft])
            .err()
            .unwrap();
        assert!(e.to_string().contains("not fft"), "{e}");
    }

    #[test]
    fn features_write_one_row_per_packet() {
        let path = temp_path("features");
        let format = StreamFormat {
            packet_rate_hz: 2.0,
            ..StreamFormat::eeg(PacketKind::Features, 2, FS, 3)
        };
        let mut h = StageHarness::<CsvSink>::new(
            &config(&path, r#", "channel_names": ["left", "right"]"#),
            std::slice::from_ref(&format),
        )
        .unwrap();
        let packets: Vec<FeaturePacket> = (0..4)
            .map(|k| {
                let mut p = FeaturePacket::with_capacity(2, 3);
                p.values_mut()
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, v)| *v = (k * 10 + i) as f32 + 0.5);
                p.timestamp_ns = T0 + k as u64;
                p
            })
            .collect();
        h.feed_all(&packets).unwrap();
        let lines = lines(&path);
        assert_eq!(
            lines[0],
            "timestamp_ns,left_f0,left_f1,left_f2,right_f0,right_f1,right_f2"
        );
        assert_eq!(lines.len(), 1 + 4);
        assert_eq!(
            lines[2],
            format!("{},10.5,11.5,12.5,13.5,14.5,15.5", T0 + 1)
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn missing_directory_is_named() {
        let dir = temp_path("no-such-dir");
        let path = dir.join("out.csv");
        let format = StreamFormat::eeg(PacketKind::RawEeg, 3, FS, 10);
        let e = StageHarness::<CsvSink>::new(&config(&path, ""), std::slice::from_ref(&format))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`path`") && e.contains("does not exist"), "{e}");
        assert!(e.contains(dir.to_str().unwrap()), "{e}");
    }

    #[test]
    fn bad_config_names_the_key() {
        let path = temp_path("unused");
        let format = StreamFormat::eeg(PacketKind::RawEeg, 3, FS, 10);
        for (extra, needle) in [
            (
                r#", "channel_names": ["a", "b"]"#,
                "names 2 channels, the input has 3",
            ),
            (r#", "channel_names": ["a", "", "c"]"#, "`channel_names`"),
            (r#", "channel_names": ["a", "\"b", "c"]"#, "`channel_names`"),
            (r#", "channel_names": "a,b,c""#, "`channel_names`"),
            (r#", "flush_every": -1"#, "`flush_every`"),
            (r#", "flush_interval_s": -0.5"#, "`flush_interval_s`"),
            (r#", "flush_interval_s": 1e300"#, "`flush_interval_s`"),
            (r#", "flush_interval_s": "1s""#, "`flush_interval_s`"),
            (r#", "mode": "append""#, "unknown key `mode`"),
        ] {
            let e =
                StageHarness::<CsvSink>::new(&config(&path, extra), std::slice::from_ref(&format))
                    .err()
                    .unwrap();
            assert!(e.to_string().contains(needle), "{extra}: {e}");
        }
        let e = StageHarness::<CsvSink>::new("{}", std::slice::from_ref(&format))
            .err()
            .unwrap();
        assert!(e.to_string().contains("missing required key `path`"), "{e}");
        let e = StageHarness::<CsvSink>::new(&config(&path, ""), &[])
            .err()
            .unwrap();
        assert!(e.to_string().contains("takes 1 input"), "{e}");
        assert!(!path.exists(), "nothing is created before start");
    }

    /// Every line of `text` is a whole row of `fields` fields, the last one
    /// ended by its newline.
    fn assert_whole_rows(text: &str, fields: usize) {
        assert!(
            text.ends_with('\n'),
            "ends mid-row: {:?}",
            &text[text.len().saturating_sub(80)..]
        );
        for (i, line) in text.lines().enumerate() {
            assert_eq!(line.split(',').count(), fields, "line {i}: {line:?}");
            if i > 0 {
                for field in line.split(',') {
                    assert!(field.parse::<f64>().is_ok(), "line {i}: {line:?}");
                }
            }
        }
    }

    /// Set in the child process of `a_full_disk_leaves_whole_rows_only`: the
    /// file it writes to.
    const FULL_DISK_CHILD: &str = "HSP_CSV_SINK_FULL_DISK_CHILD";

    /// A disk that fills up mid-run: the child process runs the sink under
    /// a file-size limit (`ulimit -f`, 512-byte blocks; SIGXFSZ ignored), so
    /// the write that crosses it is cut short and the next one fails, as on
    /// a full disk. The sink must report the error from `process` and from
    /// `stop`, naming the file, and leave the file ending on a whole row.
    #[cfg(unix)]
    #[test]
    fn a_full_disk_leaves_whole_rows_only() {
        if let Ok(path) = std::env::var(FULL_DISK_CHILD) {
            let path = PathBuf::from(path);
            let format = StreamFormat::eeg(PacketKind::RawEeg, 3, FS, 10);
            let mut h = StageHarness::<CsvSink>::new(
                &config(&path, r#", "flush_every": 1"#),
                std::slice::from_ref(&format),
            )
            .unwrap();
            let mut first_error = None;
            for block in eeg_blocks(100, 10) {
                if let Err(e) = h.feed(&block) {
                    first_error = Some(e.to_string());
                    break;
                }
            }
            let error = first_error.expect("a write past the limit fails in `process`");
            assert!(error.contains(path.to_str().unwrap()), "{error}");
            // The limit falls inside a row: the part written was cut off.
            assert!(error.contains("cut off"), "{error}");
            let error = h
                .stop()
                .expect_err("`stop` reports the failed write too")
                .to_string();
            assert!(error.contains(path.to_str().unwrap()), "{error}");
            return;
        }
        let path = temp_path("full-disk");
        // 4096 bytes: the header and about a hundred rows fit.
        hsp_sdk::testing::rerun_with_file_size_limit(
            "tests::a_full_disk_leaves_whole_rows_only",
            4096,
            FULL_DISK_CHILD,
            path.as_os_str(),
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.len() > 1000,
            "rows before the limit are kept: {} bytes",
            text.len()
        );
        assert!(text.len() <= 4096);
        assert_whole_rows(&text, 4);
        std::fs::remove_file(&path).unwrap();
    }

    /// `/dev/full` takes nothing: an error, from `process` once a flush is
    /// due and from `stop` in any case, never a silent success.
    #[cfg(target_os = "linux")]
    #[test]
    fn dev_full_is_an_error_from_process_and_stop() {
        let format = StreamFormat::eeg(PacketKind::RawEeg, 3, FS, 10);
        let blocks = eeg_blocks(3, 10);
        let path = Path::new("/dev/full");

        // Only at stop.
        let mut h = StageHarness::<CsvSink>::new(
            &config(path, r#", "flush_every": 0"#),
            std::slice::from_ref(&format),
        )
        .unwrap();
        for block in &blocks {
            h.feed(block).unwrap();
        }
        let error = h.stop().unwrap_err().to_string();
        assert!(error.contains("/dev/full"), "{error}");
        assert!(error.contains("No space left on device"), "{error}");

        // Every packet: the first one fails, and so does `stop` afterwards.
        let mut h = StageHarness::<CsvSink>::new(
            &config(path, r#", "flush_every": 1"#),
            std::slice::from_ref(&format),
        )
        .unwrap();
        let error = h.feed(&blocks[0]).unwrap_err().to_string();
        assert!(error.contains("/dev/full"), "{error}");
        let error = h.stop().unwrap_err().to_string();
        assert!(error.contains("/dev/full"), "{error}");
    }

    /// `flush_interval_s` bounds how long a row waits in memory: rows reach
    /// the file at the first packet after the interval, before any
    /// `flush_every` count or `stop`.
    #[test]
    fn rows_reach_the_file_once_the_flush_interval_passes() {
        let path = temp_path("interval");
        let format = StreamFormat::eeg(PacketKind::RawEeg, 3, FS, 10);
        let mut h = StageHarness::<CsvSink>::new(
            &config(&path, r#", "flush_interval_s": 0.5"#),
            std::slice::from_ref(&format),
        )
        .unwrap();
        let blocks = eeg_blocks(3, 10);
        h.feed(&blocks[0]).unwrap();
        assert_eq!(
            lines(&path).len(),
            0,
            "buffered: the interval has not passed"
        );
        std::thread::sleep(std::time::Duration::from_millis(600));
        h.feed(&blocks[1]).unwrap();
        assert_eq!(lines(&path).len(), 1 + 20, "flushed: the interval passed");
        h.feed(&blocks[2]).unwrap();
        assert_eq!(lines(&path).len(), 1 + 20);
        h.stop().unwrap();
        assert_eq!(lines(&path).len(), 1 + 30);
        std::fs::remove_file(&path).unwrap();
    }

    /// The default bounds rows at risk in time: a sink left at its defaults
    /// has written what it took more than a second ago (a crash loses at
    /// most about a second of rows, not 64 KiB of them).
    #[test]
    fn the_default_flushes_at_least_every_second() {
        let path = temp_path("default-interval");
        let format = StreamFormat::eeg(PacketKind::RawEeg, 3, FS, 10);
        let mut h = StageHarness::<CsvSink>::new(&config(&path, ""), std::slice::from_ref(&format))
            .unwrap();
        let blocks = eeg_blocks(2, 10);
        h.feed(&blocks[0]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1050));
        h.feed(&blocks[1]).unwrap();
        assert_eq!(lines(&path).len(), 1 + 20, "on disk before stop");
        h.stop().unwrap();
        std::fs::remove_file(&path).unwrap();
    }

    /// Counts this thread's allocations, so a test can prove a stretch of
    /// code allocates nothing while other tests run beside it.
    struct CountingAllocator;

    thread_local! {
        static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    // SAFETY: forwards every call to the system allocator unchanged.
    unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
        unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
            // SAFETY: the caller's contract is the system allocator's.
            unsafe { std::alloc::System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
            // SAFETY: `ptr` came from `alloc` above, that is from `System`.
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(
            &self,
            ptr: *mut u8,
            layout: std::alloc::Layout,
            new_size: usize,
        ) -> *mut u8 {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
            // SAFETY: as for `alloc` and `dealloc`.
            unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: CountingAllocator = CountingAllocator;

    /// Writing packets, flushing by count, by time and by a full buffer,
    /// allocates nothing: the buffer is sized once, at start.
    #[test]
    fn steady_state_writes_allocate_nothing() {
        let format = StreamFormat::eeg(PacketKind::RawEeg, 3, FS, 10);
        let mut blocks = eeg_blocks(2, 10);
        // The widest values there are.
        blocks[1].values_mut().fill(-f32::from_bits(0x0080_0001));
        for (name, flushes) in [
            (
                "by-count-and-time",
                r#", "flush_every": 7, "flush_interval_s": 0.000001"#,
            ),
            ("by-size", r#", "flush_every": 0, "flush_interval_s": 0"#),
        ] {
            let path = temp_path(name);
            let config = config(&path, flushes);
            let config = hsp_sdk::parse_config::<CsvConfig>(&config).unwrap();
            let mut sink = CsvSink::new(config, std::slice::from_ref(&format)).unwrap();
            sink.start().unwrap();
            let before = ALLOCATIONS.with(|n| n.get());
            for _ in 0..500 {
                for block in &blocks {
                    sink.process(Some(block.as_packet_ref()), &mut NoPacket)
                        .unwrap();
                }
            }
            let allocations = ALLOCATIONS.with(|n| n.get()) - before;
            assert_eq!(allocations, 0, "{name}: allocations in 1000 packets");
            sink.stop().unwrap();
            assert_eq!(lines(&path).len(), 1 + 10_000, "{name}");
            std::fs::remove_file(&path).unwrap();
        }
    }
}
