//! `csv_source`: replays a CSV file of samples, one row per sample and one
//! column per channel, headed by the channels' names (`Fz` or `Fz [uV]`,
//! as `csv_sink` writes them). A column named `timestamp_ns` (ns since the
//! UNIX epoch) or `time_s`/`time`/`timestamp` (seconds) stamps the rows and,
//! without `sample_rate_hz`, gives the rate. The whole file is checked when
//! the pipeline is: a ragged row or a cell that is not a number is an error
//! naming the file, line and column.

use crate::replay::{self, Pacer, Progress, ReplayConfig, Window};
use hsp_sdk::{
    ChannelInfo, ChannelType, EegPacket, NoPacket, Outcome, PacketKind, PlanarBlock, Stage,
    StageConfig, StageError, StreamFormat,
};
use serde::Deserialize;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Most channels.
const MAX_CHANNELS: usize = 4096;

/// `[stage.config]` of `csv_source`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct CsvSourceConfig {
    /// CSV file to replay: a header row of channel names, then one row per sample
    pub path: String,
    /// Samples per second; 0 = from the timestamp column (`timestamp_ns`, `time_s`, `time` or
    /// `timestamp`)
    #[config(default = 0.0, unit = "Hz")]
    pub sample_rate_hz: f64,
    /// Unit of channels whose header does not give one (`Fz [uV]` does)
    #[config(default = "uV")]
    pub unit: String,
    /// Channels to play, by name, in this order; empty = every column but the timestamp
    #[config(default = [])]
    pub channels: Vec<String>,
    /// Samples per channel per packet
    #[config(default = 32)]
    pub block_size: i64,
    /// true: pace blocks to the wall clock; false: as fast as the pipeline takes them (with a
    /// progress bar on a terminal)
    #[config(default = true)]
    pub realtime: bool,
    /// Where in the file to begin
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

/// How the timestamp column counts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Clock {
    Nanoseconds,
    Seconds,
}

/// The file's layout, from its header and one pass over its rows.
#[derive(Debug)]
struct Layout {
    path: PathBuf,
    /// Columns in each row.
    columns: usize,
    /// The timestamp column, if any, and how it counts.
    time: Option<(usize, Clock)>,
    /// Per channel to play: its column, label and unit.
    channels: Vec<(usize, String, String)>,
    rows: u64,
    rate: f64,
    /// The first row's time, ns since the epoch (0 without a clock).
    first_ns: i64,
}

fn at(path: &Path, line: u64, column: usize, message: impl std::fmt::Display) -> String {
    format!("{}:{line}:{column}: {message}", path.display())
}

/// `Fz [uV]` as (`Fz`, `uV`); `Fz` as (`Fz`, default).
fn split_name(name: &str, default_unit: &str) -> (String, String) {
    let name = name.trim().trim_matches('"');
    if let Some(open) = name.rfind(" [") {
        if let Some(unit) = name[open + 2..].strip_suffix(']') {
            return (name[..open].to_string(), unit.to_string());
        }
    }
    (name.to_string(), default_unit.to_string())
}

/// The 1-based column (in characters) where cell `index` of `line` begins.
fn column_of(line: &str, index: usize) -> usize {
    line.split(',')
        .take(index)
        .map(|cell| cell.chars().count() + 1)
        .sum::<usize>()
        + 1
}

fn time_ns(cell: &str, clock: Clock) -> Option<i64> {
    match clock {
        Clock::Nanoseconds => cell.trim().parse::<i64>().ok(),
        Clock::Seconds => cell
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite())
            .map(|s| (s * 1e9).round() as i64),
    }
}

impl Layout {
    /// Reads the header and checks every row.
    fn scan(config: &CsvSourceConfig) -> Result<Self, StageError> {
        let path = PathBuf::from(&config.path);
        if config.path.trim().is_empty() {
            return Err(StageError::new("`path` must name a CSV file, got \"\""));
        }
        let file = File::open(&path)
            .map_err(|e| StageError::new(format!("{}: cannot open: {e}", path.display())))?;
        let mut lines = BufReader::new(file).lines();
        let header = match lines.next() {
            Some(Ok(line)) if !line.trim().is_empty() => line,
            Some(Err(e)) => {
                return Err(StageError::new(format!(
                    "{}: cannot read: {e}",
                    path.display()
                )));
            }
            _ => {
                return Err(StageError::new(format!(
                    "{}:1: the file is empty; expected a header row of channel names",
                    path.display()
                )));
            }
        };
        let header = header.trim_end_matches('\r');
        let names: Vec<&str> = header.split(',').collect();
        let mut time = None;
        let mut all = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let clean = name.trim().trim_matches('"');
            let clock = match clean.to_ascii_lowercase().as_str() {
                "timestamp_ns" => Some(Clock::Nanoseconds),
                "time_s" | "time" | "timestamp" => Some(Clock::Seconds),
                _ => None,
            };
            match (clock, time) {
                (Some(clock), None) => time = Some((index, clock)),
                _ if clean.is_empty() => {
                    return Err(StageError::new(at(
                        &path,
                        1,
                        column_of(header, index),
                        "a column has no name",
                    )));
                }
                _ => {
                    let (label, unit) = split_name(clean, &config.unit);
                    all.push((index, label, unit));
                }
            }
        }
        if all.is_empty() {
            return Err(StageError::new(format!(
                "{}:1: the header names no channel column",
                path.display()
            )));
        }
        let channels = if config.channels.is_empty() {
            all
        } else {
            let mut picked: Vec<(usize, String, String)> = Vec::new();
            for wanted in &config.channels {
                let found = all
                    .iter()
                    .find(|(_, l, _)| l == wanted)
                    .or_else(|| all.iter().find(|(_, l, _)| l.eq_ignore_ascii_case(wanted)));
                match found {
                    Some(c) if picked.iter().any(|p| p.0 == c.0) => {
                        return Err(StageError::new(format!(
                            "`channels` lists {wanted:?} twice"
                        )));
                    }
                    Some(c) => picked.push(c.clone()),
                    None => {
                        let have: Vec<&str> = all.iter().map(|(_, l, _)| l.as_str()).collect();
                        return Err(StageError::new(format!(
                            "`channels`: {wanted:?} is not a column of {}; it has {}",
                            path.display(),
                            have.join(", ")
                        )));
                    }
                }
            }
            picked
        };
        if channels.len() > MAX_CHANNELS {
            return Err(StageError::new(format!(
                "{}: {} channels, at most {MAX_CHANNELS}",
                path.display(),
                channels.len()
            )));
        }
        let mut rows = 0u64;
        let (mut first_ns, mut last_ns) = (None, None);
        for (number, line) in lines.enumerate() {
            let line_no = number as u64 + 2;
            let line = line.map_err(|e| {
                StageError::new(format!("{}:{line_no}: cannot read: {e}", path.display()))
            })?;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != names.len() {
                return Err(StageError::new(at(
                    &path,
                    line_no,
                    1,
                    format!(
                        "this row has {} cells, the header has {} columns",
                        cells.len(),
                        names.len()
                    ),
                )));
            }
            for (index, _, _) in &channels {
                let cell = cells[*index].trim();
                if !cell.parse::<f32>().is_ok_and(f32::is_finite) {
                    return Err(StageError::new(at(
                        &path,
                        line_no,
                        column_of(line, *index),
                        format!(
                            "expected a number in column {:?}, found {cell:?}",
                            names[*index].trim()
                        ),
                    )));
                }
            }
            if let Some((index, clock)) = time {
                let ns = time_ns(cells[index], clock).ok_or_else(|| {
                    StageError::new(at(
                        &path,
                        line_no,
                        column_of(line, index),
                        format!(
                            "expected a timestamp ({}), found {:?}",
                            match clock {
                                Clock::Nanoseconds => "an integer of ns",
                                Clock::Seconds => "seconds",
                            },
                            cells[index].trim()
                        ),
                    ))
                })?;
                if last_ns.is_some_and(|last| ns <= last) {
                    return Err(StageError::new(at(
                        &path,
                        line_no,
                        column_of(line, index),
                        "timestamps must increase from row to row",
                    )));
                }
                first_ns.get_or_insert(ns);
                last_ns = Some(ns);
            }
            rows += 1;
        }
        if rows == 0 {
            return Err(StageError::new(format!(
                "{}: the file has a header but no rows",
                path.display()
            )));
        }
        let rate = match (config.sample_rate_hz, first_ns, last_ns) {
            (rate, _, _) if rate > 0.0 && rate.is_finite() => rate,
            (rate, _, _) if rate != 0.0 => {
                return Err(StageError::new(format!(
                    "`sample_rate_hz` must be more than 0 (or 0: from the timestamps), got {rate}"
                )));
            }
            (_, Some(first), Some(last)) if rows >= 2 => {
                let rate = (rows - 1) as f64 * 1e9 / (last - first) as f64;
                // Rates are set in whole mHz; timestamps jitter below that.
                (rate * 1000.0).round() / 1000.0
            }
            _ => {
                return Err(StageError::new(format!(
                    "{}: no sample rate: set `sample_rate_hz`, or give the file a timestamp column (`timestamp_ns` or `time_s`) and two rows or more",
                    path.display()
                )));
            }
        };
        Ok(Self {
            path,
            columns: names.len(),
            time,
            channels,
            rows,
            rate,
            first_ns: first_ns.unwrap_or(0),
        })
    }

    fn format(&self, block_size: usize) -> StreamFormat {
        let channels = self
            .channels
            .iter()
            .map(|(_, label, unit)| ChannelInfo::new(label, unit, ChannelType::Eeg));
        StreamFormat::eeg(
            PacketKind::RawEeg,
            self.channels.len(),
            self.rate,
            block_size,
        )
        .with_channels(channels)
        .with_origin(
            self.first_ns.max(0) as u64,
            &self.path.display().to_string(),
        )
    }
}

struct Checked {
    layout: Layout,
    window: Window,
    replay: ReplayConfig,
    block_size: usize,
    stream_id: u32,
}

fn check(config: &CsvSourceConfig) -> Result<Checked, StageError> {
    let layout = Layout::scan(config)?;
    let block_size = replay::block_size(config.block_size)?;
    let stream_id = replay::stream_id(config.stream_id)?;
    let replay = ReplayConfig {
        realtime: config.realtime,
        start_s: config.start_s,
        duration_s: config.duration_s,
        looped: config.looped,
    };
    let window = replay.window(layout.rows, layout.rate)?;
    Ok(Checked {
        layout,
        window,
        replay,
        block_size,
        stream_id,
    })
}

/// Replays a CSV file.
pub struct CsvSource {
    checked: Checked,
    lines: Option<std::io::Lines<BufReader<File>>>,
    /// The file line the reader is at (1: the header).
    line_no: u64,
    emitted: u64,
    sequence: u64,
    pacer: Pacer,
    progress: Progress,
}

impl CsvSource {
    /// Opens the file at the window's first row.
    fn rewind(&mut self) -> Result<(), StageError> {
        let path = &self.checked.layout.path;
        let file = File::open(path)
            .map_err(|e| StageError::new(format!("{}: cannot open: {e}", path.display())))?;
        let mut lines = BufReader::new(file).lines();
        self.line_no = 1;
        lines.next();
        let mut skipped = 0;
        while skipped < self.checked.window.first {
            self.next_row(&mut lines)?;
            skipped += 1;
        }
        self.lines = Some(lines);
        Ok(())
    }

    /// The next non-empty row.
    fn next_row(
        &mut self,
        lines: &mut std::io::Lines<BufReader<File>>,
    ) -> Result<String, StageError> {
        let path = &self.checked.layout.path;
        loop {
            self.line_no += 1;
            match lines.next() {
                Some(Ok(line)) if line.trim().is_empty() => continue,
                Some(Ok(line)) => return Ok(line),
                Some(Err(e)) => {
                    return Err(StageError::new(format!(
                        "{}:{}: cannot read: {e}",
                        path.display(),
                        self.line_no
                    )));
                }
                None => {
                    return Err(StageError::new(format!(
                        "{}: the file ended early (it changed while it was replayed?)",
                        path.display()
                    )));
                }
            }
        }
    }
}

impl Stage for CsvSource {
    const KIND: &'static str = "csv_source";
    const DOC: &'static str = "Replays a CSV file of samples (a header of channel names, one row per sample, an optional timestamp column).";
    type Config = CsvSourceConfig;
    type Input = NoPacket;
    type Output = EegPacket;
    /// It reads a file, and sleeps to pace blocks.
    const MAY_BLOCK: bool = true;

    fn output_formats(
        config: &CsvSourceConfig,
        _inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        let checked = check(config)?;
        Ok(vec![checked.layout.format(checked.block_size)])
    }

    fn new(config: CsvSourceConfig, _inputs: &[StreamFormat]) -> Result<Self, StageError> {
        let checked = check(&config)?;
        let total = (!checked.replay.looped).then_some(checked.window.len);
        let label = checked
            .layout
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let progress = Progress::new(&checked.replay, total, &label);
        let pacer = Pacer::new(checked.layout.rate);
        Ok(Self {
            checked,
            lines: None,
            line_no: 0,
            emitted: 0,
            sequence: 0,
            pacer,
            progress,
        })
    }

    fn process(
        &mut self,
        _input: Option<&NoPacket>,
        output: &mut EegPacket,
    ) -> Result<Outcome, StageError> {
        let window = self.checked.window;
        if !self.checked.replay.looped && self.emitted >= window.len {
            self.progress.finish();
            return Ok(Outcome::Finished);
        }
        let into_pass = self.emitted % window.len;
        let n = (self.checked.block_size as u64).min(window.len - into_pass) as usize;
        let end = self.emitted + n as u64;
        if self.checked.replay.realtime && !self.pacer.due(end) {
            return Ok(Outcome::NoOutput);
        }
        if into_pass == 0 || self.lines.is_none() {
            self.rewind()?;
        }
        let mut lines = self.lines.take().expect("opened by rewind");
        let layout = &self.checked.layout;
        let channels = layout.channels.len();
        output
            .set_shape(channels, n)
            .map_err(|e| StageError::new(format!("csv_source: output packet: {e}")))?;
        let mut first_time = None;
        for i in 0..n {
            let line = self.next_row(&mut lines)?;
            let layout = &self.checked.layout;
            let cells: Vec<&str> = line.trim_end_matches('\r').split(',').collect();
            if cells.len() != layout.columns {
                return Err(StageError::new(at(
                    &layout.path,
                    self.line_no,
                    1,
                    "the row changed since the file was checked",
                )));
            }
            let values = output.values_mut();
            for (c, (index, _, _)) in layout.channels.iter().enumerate() {
                values[c * n + i] = cells[*index].trim().parse::<f32>().map_err(|_| {
                    StageError::new(at(
                        &layout.path,
                        self.line_no,
                        column_of(&line, *index),
                        "not a number (the file changed since it was checked)",
                    ))
                })?;
            }
            if i == 0 {
                if let Some((index, clock)) = layout.time {
                    first_time = time_ns(cells[index], clock);
                }
            }
        }
        self.lines = Some(lines);
        let layout = &self.checked.layout;
        let pass = self.emitted / window.len;
        let window_ns = (window.len as f64 * 1e9 / layout.rate).round() as i64;
        let stamp = match first_time {
            Some(t) => t + pass as i64 * window_ns,
            None => ((window.first + self.emitted) as f64 * 1e9 / layout.rate).round() as i64,
        };
        output.timestamp_ns = stamp.max(0) as u64;
        output.sequence = self.sequence;
        output.stream_id = self.checked.stream_id;
        output.sample_rate_hz = layout.rate;
        self.emitted = end;
        self.sequence += 1;
        self.progress.set(self.emitted.min(window.len), layout.rate);
        Ok(Outcome::Emitted)
    }

    fn stop(&mut self) -> Result<(), StageError> {
        self.progress.finish();
        Ok(())
    }
}
