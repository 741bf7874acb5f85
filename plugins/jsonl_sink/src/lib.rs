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
//! flushed every `flush_every` lines so a reader sees progress, and flushed
//! and closed in `stop`.

use hsp_sdk::{
    ConfigSpec, ConfigType, ControlContext, ControlStage, Event, FeaturePacket, PacketKind,
    PacketRef, StageError,
};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// `[stage.config]` of `jsonl_sink`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// File to write, created or truncated when the stage starts.
    pub path: String,
    /// Flush every this many lines; 0 only when the stage stops.
    pub flush_every: i64,
}

const CONFIG: &[ConfigSpec] = &[
    ConfigSpec::required(
        "path",
        ConfigType::String,
        "JSON Lines file to write (created or truncated when the stage starts)",
    ),
    ConfigSpec::optional(
        "flush_every",
        ConfigType::Integer,
        "1",
        "Flush the file every this many lines; 0 = only when the stage stops",
    ),
];

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
    writer: Option<BufWriter<File>>,
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
}

impl ControlStage for JsonlSink {
    const KIND: &'static str = "jsonl_sink";
    const DOC: &'static str = "Writes events and features to a JSON Lines file, one object per line, each naming the input it came from.";
    const CONFIG: &'static [ConfigSpec] = CONFIG;
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
        Ok(Self {
            path: PathBuf::from(config.path),
            flush_every,
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
        self.writer = Some(BufWriter::new(file));
        self.lines = 0;
        Ok(())
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
        self.writer = Some(BufWriter::new(file));
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
        let flushed = written.and_then(|()| {
            self.lines += 1;
            let every = self.flush_every;
            if every > 0 && self.lines % every == 0 {
                writer.flush()?;
            }
            Ok(())
        });
        flushed.map_err(|e| self.write_error(e))
    }

    fn stop(&mut self, _ctx: &mut ControlContext<'_>) -> Result<(), StageError> {
        if let Some(writer) = self.writer.take() {
            // `into_inner` flushes and reports a failed flush, which dropping
            // the writer would swallow.
            let file = writer
                .into_inner()
                .map_err(|e| self.write_error(e.into_error()))?;
            file.sync_all().map_err(|e| self.write_error(e))?;
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
            values: (0..features.channels()).map(|c| features.row(c)).collect(),
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
}
