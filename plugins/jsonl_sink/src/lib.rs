//! `jsonl_sink`: a control stage that logs what its inputs produce, events
//! and features, to a [JSON Lines](https://jsonlines.org) file: one JSON
//! object per line, in the order the stage receives them. `from` is the
//! pipeline id of the input that produced the line.
//!
//! ```text
//! {"from":"alpha","type":"event","timestamp_ns":1700000000000000000,"code":1,"label":"alpha/rise","value":12.5}
//! {"from":"bands","type":"features","timestamp_ns":1700000000000000000,"sequence":4,"channels":2,"values":[[1.5,2.0],[0.5,3.0]]}
//! ```
//!
//! `values` holds one list per channel. A NaN or infinite value, which JSON
//! cannot represent, is written as `null`.
//!
//! The file is created (or truncated) in `start`, written through a buffer,
//! and flushed, synced and closed in `stop`. By default every line goes to
//! the file as it is written (`flush_every = 1`), so a crash loses none.
//! With `flush_every` above 1 (or 0, not by count) lines are batched, and
//! `flush_interval_s` (default 1 s) bounds how long one waits in memory: the
//! first line after that interval, or the stage's tick at that interval,
//! flushes them all.
//!
//! Only whole lines reach the file: a write that fails part way (a full
//! disk) is cut back to the last whole line, so every line of the file
//! parses, and the error, naming the file, is returned from `on_packet` (or
//! `on_tick`) and again from `stop`; the stage writes nothing more after it.
//! A flush hands the lines to the operating system (they survive the
//! process, not a power cut); `stop` syncs them to the disk.

use hsp_sdk::line_file::{DiskFile, LineFile};
use hsp_sdk::{
    ControlContext, ControlStage, Event, FeaturePacket, PacketKind, PacketRef, PlanarBlock,
    StageConfig, StageError,
};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bytes buffered before a write to the file (more for a longer line).
const BUFFER_BYTES: usize = 8 << 10;

/// `[stage.config]` of `jsonl_sink`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// JSON Lines file to write (created or truncated when the stage starts)
    pub path: String,
    /// Flush the file every this many lines (1 = each line as it comes); 0 = not by count
    #[config(default = 1)]
    pub flush_every: i64,
    /// When lines are batched (flush_every other than 1), flush them at the latest this long after
    /// the last flush; 0 = not by time (then only by flush_every, a full buffer and at stop)
    #[config(default = 1.0, unit = "s")]
    pub flush_interval_s: f64,
}

/// One line for an [`Event`]; fields in the order they are written.
#[derive(Serialize)]
struct EventLine<'a> {
    from: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp_ns: u64,
    code: u32,
    label: &'a str,
    value: f64,
}

/// One line for a [`FeaturePacket`]; fields in the order they are written.
#[derive(Serialize)]
struct FeaturesLine<'a> {
    from: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp_ns: u64,
    sequence: u64,
    channels: usize,
    values: Vec<&'a [f32]>,
}

/// Writes every event and feature packet it receives to a JSON Lines file.
#[derive(Debug)]
pub struct JsonlSink {
    path: PathBuf,
    flush_every: u64,
    /// `None` for 0: not by time.
    flush_interval: Option<Duration>,
    writer: Option<LineFile>,
    lines: u64,
}

impl JsonlSink {
    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_error(&self, error: impl std::fmt::Display) -> StageError {
        StageError::new(format!(
            "writing {:?}: {error}",
            self.path.display().to_string()
        ))
    }

    /// Writes to `file`, opened or created, after what it holds.
    fn line_file(&self, file: File) -> Result<LineFile, StageError> {
        let (file, len) = DiskFile::new(file).map_err(|e| self.write_error(e))?;
        Ok(LineFile::new(file, len, BUFFER_BYTES))
    }
}

impl ControlStage for JsonlSink {
    const KIND: &'static str = "jsonl_sink";
    const DOC: &'static str = "Writes events and features to a JSON Lines file, one object per line, each naming the input it came from.";
    const ACCEPTS: &'static [PacketKind] = &[PacketKind::Features, PacketKind::Event];
    type Config = JsonlConfig;

    fn new(config: JsonlConfig) -> Result<Self, StageError> {
        if config.path.trim().is_empty() {
            return Err(StageError::new("`path` must name a file, got \"\""));
        }
        let flush_every = u64::try_from(config.flush_every).map_err(|_| {
            StageError::new(format!(
                "`flush_every` must be 0 (only at stop) or a number of lines, got {}",
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
        Ok(Self {
            path: PathBuf::from(config.path),
            flush_every,
            flush_interval,
            writer: None,
            lines: 0,
        })
    }

    fn start(&mut self, _ctx: &mut ControlContext<'_>) -> Result<(), StageError> {
        let file = File::create(&self.path).map_err(|e| {
            StageError::new(format!(
                "cannot create {:?}: {e}",
                self.path.display().to_string()
            ))
        })?;
        self.writer = Some(self.line_file(file)?);
        self.lines = 0;
        Ok(())
    }

    /// Ticks at `flush_interval_s` when lines are batched, so a line waits
    /// no longer than that even when no other line follows it.
    fn tick_interval(&self) -> Option<Duration> {
        if self.flush_every == 1 {
            None
        } else {
            self.flush_interval
        }
    }

    fn on_tick(&mut self, _ctx: &mut ControlContext<'_>) -> Result<(), StageError> {
        match self.writer.as_mut().map(LineFile::flush_lines) {
            Some(Err(e)) => Err(self.write_error(e)),
            _ => Ok(()),
        }
    }

    /// Taking over from a running instance (its config or code changed):
    /// append to the file rather than start it afresh.
    fn resume(&mut self, ctx: &mut ControlContext<'_>) -> Result<(), StageError> {
        if !self.path.is_file() {
            return self.start(ctx);
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| {
                StageError::new(format!(
                    "cannot open {:?} to append: {e}",
                    self.path.display().to_string()
                ))
            })?;
        self.writer = Some(self.line_file(file)?);
        self.lines = 0;
        Ok(())
    }

    fn on_packet(
        &mut self,
        from: &str,
        packet: PacketRef<'_>,
        _ctx: &mut ControlContext<'_>,
    ) -> Result<(), StageError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(StageError::new(format!(
                "{}: got a packet before start opened {:?}",
                Self::KIND,
                self.path.display().to_string()
            )));
        };
        let written = match packet {
            PacketRef::Event(event) => write_event(writer, from, event),
            PacketRef::Features(features) => write_features(writer, from, features),
            other => {
                return Err(StageError::new(format!(
                    "`{}` takes features and events, got a {} packet",
                    Self::KIND,
                    other.kind().map_or("empty", PacketKind::name)
                )));
            }
        };
        let flushed = match written {
            Ok(()) => {
                self.lines += 1;
                let every = self.flush_every;
                let due = (every > 0 && self.lines % every == 0)
                    || self
                        .flush_interval
                        .is_some_and(|interval| writer.since_flush() >= interval);
                if due { writer.flush_lines() } else { Ok(()) }
            }
            Err(e) => {
                // A line cut short never reaches the file, nor merges with
                // the next one.
                writer.discard_unfinished();
                Err(e)
            }
        };
        flushed.map_err(|e| self.write_error(e))
    }

    fn stop(&mut self, _ctx: &mut ControlContext<'_>) -> Result<(), StageError> {
        if let Some(writer) = self.writer.take() {
            // Reports a failed write, this one or an earlier one, which
            // dropping the writer would swallow.
            writer.finish().map_err(|e| self.write_error(e))?;
        }
        Ok(())
    }
}

/// Writes `line` as JSON, then a newline.
fn write_line(writer: &mut impl Write, line: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *writer, line)?;
    writer.write_all(b"\n")
}

fn write_event(writer: &mut impl Write, from: &str, event: &Event) -> std::io::Result<()> {
    write_line(
        writer,
        &EventLine {
            from,
            kind: "event",
            timestamp_ns: event.timestamp_ns,
            code: event.code,
            label: event.label(),
            value: event.value,
        },
    )
}

fn write_features(
    writer: &mut impl Write,
    from: &str,
    features: &FeaturePacket,
) -> std::io::Result<()> {
    write_line(
        writer,
        &FeaturesLine {
            from,
            kind: "features",
            timestamp_ns: features.timestamp_ns,
            sequence: features.sequence,
            channels: features.channels(),
            values: (0..features.channels())
                .map(|c| features.channel(c))
                .collect(),
        },
    )
}

hsp_sdk::export_plugin!(; control: JsonlSink);

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::testing::ControlHarness;
    use serde_json::{Value, json};
    use std::time::{SystemTime, UNIX_EPOCH};

    /// A path in the temp directory no other test (or run) uses.
    fn temp_path(name: &str) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::env::temp_dir().join(format!(
            "hsp-jsonl-sink-{}-{name}-{nanos}.jsonl",
            std::process::id()
        ))
    }

    fn config(path: &Path, extra: &str) -> String {
        format!(r#"{{"path": {:?}{extra}}}"#, path.to_str().unwrap())
    }

    /// Each line of the file, parsed.
    fn read_lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    const T0: u64 = 1_700_000_000_000_000_000;

    fn features(sequence: u64) -> FeaturePacket {
        let mut p = FeaturePacket::with_capacity(2, 3);
        p.values_mut()
            .copy_from_slice(&[1.5, 2.0, -0.25, 10.0, 0.0, 3.5]);
        p.sequence = sequence;
        p.timestamp_ns = T0 + sequence;
        p
    }

    #[test]
    fn writes_events_and_features_one_object_per_line() {
        let path = temp_path("mixed");
        let mut h = ControlHarness::<JsonlSink>::new(&config(&path, "")).unwrap();
        assert!(h.start().unwrap().events.is_empty());
        assert!(path.exists(), "created in start");
        let rise = Event::new(1, "alpha/rise").with_value(12.5).at(T0 + 7);
        h.on_packet("bands", PacketRef::Features(&features(4)))
            .unwrap();
        let out = h.on_packet("alpha", PacketRef::Event(&rise)).unwrap();
        assert!(out.events.is_empty() && out.params.is_empty());
        let mut ragged = FeaturePacket::with_capacity(3, 0);
        ragged.sequence = 5;
        h.on_packet("empty", PacketRef::Features(&ragged)).unwrap();
        assert!(h.stop().unwrap().events.is_empty());
        assert_eq!(h.stage().lines(), 3);

        let lines = read_lines(&path);
        assert_eq!(
            lines,
            [
                json!({
                    "from": "bands", "type": "features", "timestamp_ns": T0 + 4,
                    "sequence": 4, "channels": 2,
                    "values": [[1.5, 2.0, -0.25], [10.0, 0.0, 3.5]],
                }),
                json!({
                    "from": "alpha", "type": "event", "timestamp_ns": T0 + 7,
                    "code": 1, "label": "alpha/rise", "value": 12.5,
                }),
                json!({
                    "from": "empty", "type": "features", "timestamp_ns": 0,
                    "sequence": 5, "channels": 3, "values": [[], [], []],
                }),
            ]
        );
        // The keys come in the documented order.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(r#"{"from":"bands","type":"features","timestamp_ns":"#),
            "{text}"
        );
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .ends_with(r#""code":1,"label":"alpha/rise","value":12.5}"#),
            "{text}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn flushes_every_n_lines_and_at_stop() {
        let path = temp_path("flush");
        let mut h =
            ControlHarness::<JsonlSink>::new(&config(&path, r#", "flush_every": 2"#)).unwrap();
        let event = Event::new(3, "x");
        h.on_packet("a", PacketRef::Event(&event)).unwrap();
        assert_eq!(read_lines(&path).len(), 0, "buffered");
        h.on_packet("a", PacketRef::Event(&event)).unwrap();
        assert_eq!(read_lines(&path).len(), 2, "flushed at the second line");
        h.on_packet("a", PacketRef::Event(&event)).unwrap();
        assert_eq!(read_lines(&path).len(), 2);
        h.stop().unwrap();
        assert_eq!(read_lines(&path).len(), 3, "flushed at stop");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn default_flushes_every_line() {
        let path = temp_path("every-line");
        let mut h = ControlHarness::<JsonlSink>::new(&config(&path, "")).unwrap();
        h.on_packet("a", PacketRef::Features(&features(0))).unwrap();
        assert_eq!(read_lines(&path).len(), 1);
        h.stop().unwrap();
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn resume_appends_to_what_the_previous_instance_wrote() {
        let path = temp_path("resume");
        let mut first = ControlHarness::<JsonlSink>::new(&config(&path, "")).unwrap();
        first
            .on_packet("a", PacketRef::Event(&Event::new(1, "before")))
            .unwrap();
        first.stop().unwrap();
        let mut second = ControlHarness::<JsonlSink>::new(&config(&path, "")).unwrap();
        second.resume().unwrap();
        second
            .on_packet("a", PacketRef::Event(&Event::new(2, "after")))
            .unwrap();
        second.stop().unwrap();
        let labels: Vec<String> = read_lines(&path)
            .iter()
            .map(|line| line["label"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(labels, ["before", "after"]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn start_truncates_an_existing_file() {
        let path = temp_path("truncate");
        std::fs::write(&path, "old contents\nmore\n").unwrap();
        let mut h = ControlHarness::<JsonlSink>::new(&config(&path, "")).unwrap();
        h.on_packet("a", PacketRef::Event(&Event::new(1, "new")))
            .unwrap();
        h.stop().unwrap();
        let lines = read_lines(&path);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["label"], "new");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn non_finite_values_are_written_as_null() {
        let path = temp_path("nan");
        let mut h = ControlHarness::<JsonlSink>::new(&config(&path, "")).unwrap();
        let mut p = FeaturePacket::with_capacity(1, 2);
        p.values_mut().copy_from_slice(&[f32::NAN, f32::INFINITY]);
        h.on_packet("a", PacketRef::Features(&p)).unwrap();
        h.on_packet(
            "b",
            PacketRef::Event(&Event::new(1, "n").with_value(f64::NAN)),
        )
        .unwrap();
        h.stop().unwrap();
        let lines = read_lines(&path);
        assert_eq!(lines[0]["values"], json!([[null, null]]));
        assert_eq!(lines[1]["value"], Value::Null);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn unwritable_path_names_the_path_and_the_os_error() {
        // A directory cannot be opened as a file.
        let dir = std::env::temp_dir();
        let mut h = ControlHarness::<JsonlSink>::new(&config(&dir, "")).unwrap();
        let e = h.start().unwrap_err().to_string();
        assert!(e.starts_with("cannot create"), "{e}");
        assert!(e.contains(dir.to_str().unwrap()), "{e}");
        assert!(e.contains("os error"), "{e}");

        let path = temp_path("no-such-dir").join("out.jsonl");
        let mut h = ControlHarness::<JsonlSink>::new(&config(&path, "")).unwrap();
        let e = h
            .on_packet("a", PacketRef::Event(&Event::new(1, "x")))
            .unwrap_err()
            .to_string();
        assert!(e.contains(path.to_str().unwrap()), "{e}");
        assert!(e.contains("os error"), "{e}");
        assert!(!path.exists());
    }

    #[test]
    fn other_packet_kinds_are_refused() {
        let path = temp_path("kinds");
        let mut h = ControlHarness::<JsonlSink>::new(&config(&path, "")).unwrap();
        let block = hsp_sdk::EegPacket::with_capacity(1, 1);
        let e = h
            .on_packet("raw", PacketRef::RawEeg(&block))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not take raw_eeg packets"), "{e}");
        h.stop().unwrap();
        assert!(read_lines(&path).is_empty());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn bad_config_names_the_key() {
        for (config, needle) in [
            ("{}", "missing required key `path`"),
            (r#"{"path": ""}"#, "`path`"),
            (r#"{"path": 3}"#, "`path`"),
            (r#"{"path": "x.jsonl", "flush_every": -1}"#, "`flush_every`"),
            (
                r#"{"path": "x.jsonl", "flush_interval_s": -1}"#,
                "`flush_interval_s`",
            ),
            (
                r#"{"path": "x.jsonl", "flush_interval_s": 1e300}"#,
                "`flush_interval_s`",
            ),
            (
                r#"{"path": "x.jsonl", "append": true}"#,
                "unknown key `append`",
            ),
        ] {
            let e = ControlHarness::<JsonlSink>::new(config).err().unwrap();
            assert!(e.to_string().contains(needle), "{config}: {e}");
        }
        assert!(
            !Path::new("x.jsonl").exists(),
            "nothing is created before start"
        );
    }

    /// Set in the child process of `a_full_disk_leaves_whole_lines_only`:
    /// the file it writes to.
    const FULL_DISK_CHILD: &str = "HSP_JSONL_SINK_FULL_DISK_CHILD";

    /// A disk that fills up mid-run: the child process runs the sink under
    /// a file-size limit (`ulimit -f`, 512-byte blocks; SIGXFSZ ignored), so
    /// the write that crosses it is cut short and the next one fails, as on
    /// a full disk. The sink must report the error from `on_packet` and from
    /// `stop`, naming the file, and leave only whole JSON lines in it.
    #[cfg(unix)]
    #[test]
    fn a_full_disk_leaves_whole_lines_only() {
        if let Ok(path) = std::env::var(FULL_DISK_CHILD) {
            let path = PathBuf::from(path);
            let mut h = ControlHarness::<JsonlSink>::new(&config(&path, "")).unwrap();
            let mut first_error = None;
            for sequence in 0..1000 {
                if let Err(e) = h.on_packet("bands", PacketRef::Features(&features(sequence))) {
                    first_error = Some(e.to_string());
                    break;
                }
            }
            let error = first_error.expect("a write past the limit fails in `on_packet`");
            assert!(error.contains(path.to_str().unwrap()), "{error}");
            // The limit falls inside a line: the part written was cut off.
            assert!(error.contains("cut off"), "{error}");
            let error = h
                .stop()
                .expect_err("`stop` reports the failed write too")
                .to_string();
            assert!(error.contains(path.to_str().unwrap()), "{error}");
            return;
        }
        let path = temp_path("full-disk");
        // 4096 bytes: a few dozen lines fit.
        hsp_sdk::testing::rerun_with_file_size_limit(
            "tests::a_full_disk_leaves_whole_lines_only",
            4096,
            FULL_DISK_CHILD,
            path.as_os_str(),
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.len() > 1000,
            "lines before the limit are kept: {} bytes",
            text.len()
        );
        assert!(
            text.ends_with('\n'),
            "ends mid-line: {:?}",
            &text[text.len().saturating_sub(80)..]
        );
        for (i, line) in text.lines().enumerate() {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("line {i}: {e}: {line}"));
            assert_eq!(value["sequence"], i, "line {i}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    /// `/dev/full` takes nothing: an error from `on_packet` when the line is
    /// flushed, and from `stop` after it, never a silent success.
    #[cfg(target_os = "linux")]
    #[test]
    fn dev_full_is_an_error_from_on_packet_and_stop() {
        let path = Path::new("/dev/full");
        let mut h = ControlHarness::<JsonlSink>::new(&config(path, "")).unwrap();
        let error = h
            .on_packet("a", PacketRef::Event(&Event::new(1, "x")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/dev/full"), "{error}");
        assert!(error.contains("No space left on device"), "{error}");
        let error = h.stop().unwrap_err().to_string();
        assert!(error.contains("/dev/full"), "{error}");

        let mut h =
            ControlHarness::<JsonlSink>::new(&config(path, r#", "flush_every": 0"#)).unwrap();
        h.on_packet("a", PacketRef::Event(&Event::new(1, "x")))
            .unwrap();
        let error = h.stop().unwrap_err().to_string();
        assert!(error.contains("/dev/full"), "{error}");
    }

    /// With lines batched (`flush_every` other than 1), `flush_interval_s`
    /// bounds how long a line waits in memory: it is flushed by the next
    /// line after the interval, or by the stage's tick at that interval.
    #[test]
    fn batched_lines_reach_the_file_within_the_flush_interval() {
        let path = temp_path("interval");
        let mut h = ControlHarness::<JsonlSink>::new(&config(
            &path,
            r#", "flush_every": 0, "flush_interval_s": 0.5"#,
        ))
        .unwrap();
        assert_eq!(
            h.tick_interval(),
            Some(std::time::Duration::from_millis(500))
        );
        let event = Event::new(3, "x");
        h.on_packet("a", PacketRef::Event(&event)).unwrap();
        assert_eq!(read_lines(&path).len(), 0, "buffered");
        std::thread::sleep(std::time::Duration::from_millis(600));
        h.on_packet("a", PacketRef::Event(&event)).unwrap();
        assert_eq!(read_lines(&path).len(), 2, "the interval passed");
        h.on_packet("a", PacketRef::Event(&event)).unwrap();
        assert_eq!(read_lines(&path).len(), 2, "buffered");
        h.on_tick().unwrap();
        assert_eq!(read_lines(&path).len(), 3, "flushed by the tick");
        h.stop().unwrap();
        assert_eq!(read_lines(&path).len(), 3);

        // Every line written at once: nothing waits, no tick needed.
        let h = ControlHarness::<JsonlSink>::new(&config(&path, "")).unwrap();
        assert_eq!(h.tick_interval(), None);
        std::fs::remove_file(&path).unwrap();
    }
}
