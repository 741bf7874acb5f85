//! Opening a recording (its header checked against the file's size, its
//! annotations and record times read once) and reading its samples as
//! physical values, channel-major, from any sample on.

use super::FileFormat;
use super::header::{Header, RECORD_COUNT_OFFSET, Variant};
use super::tal::{self, Annotation};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// How far a record's start may stray from where the previous record
/// ends and still count as contiguous: writers round onsets.
const CONTIGUOUS_SLACK_NS: i64 = 1_000;

/// An opened recording: what it holds, not yet its samples.
#[derive(Debug)]
pub struct Recording {
    pub path: PathBuf,
    pub header: Header,
    /// Whole data records the file holds and the header vouches for.
    pub records: u64,
    /// Bytes after the last whole record (a write cut short), ignored.
    pub trailing_bytes: u64,
    /// Every annotation, by onset.
    pub annotations: Vec<Annotation>,
    /// The first record's start after the header's start time, ns (EDF+
    /// keeps sub-second start times here); 0 for plain EDF/BDF.
    pub first_record_onset_ns: i64,
    pub record_duration_ns: i64,
}

/// `path: message`.
fn at_file(path: &Path, message: impl std::fmt::Display) -> String {
    format!("{}: {message}", path.display())
}

impl Recording {
    /// Opens `path`, checks its header and its size, and reads its
    /// annotations. Errors name the file and the byte or field at fault.
    pub fn open(path: &Path) -> Result<Self, String> {
        let mut file = File::open(path).map_err(|e| at_file(path, format!("cannot open: {e}")))?;
        let size = file
            .metadata()
            .map_err(|e| at_file(path, format!("cannot read its size: {e}")))?
            .len();
        if size == 0 {
            return Err(at_file(path, "the file is empty"));
        }
        let mut fixed = vec![0u8; super::header::FIXED_BYTES.min(size as usize)];
        file.read_exact(&mut fixed)
            .map_err(|e| at_file(path, format!("cannot read: {e}")))?;
        let (_, signals) = Header::parse_fixed(&fixed).map_err(|e| at_file(path, e))?;
        let header_bytes = Header::expected_header_bytes(signals);
        if size < header_bytes as u64 {
            return Err(at_file(
                path,
                format!(
                    "the header of {signals} signals takes {header_bytes} bytes, the file has {size}: it is truncated"
                ),
            ));
        }
        let mut bytes = vec![0u8; header_bytes];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| at_file(path, format!("cannot read: {e}")))?;
        let header = Header::parse(&bytes).map_err(|e| at_file(path, e))?;
        if header.record_duration_s == 0.0 {
            return Err(at_file(
                path,
                "byte 244 (duration of a data record): 0 s, an annotation-only file: it has no signal to replay",
            ));
        }
        let record_bytes = header.record_bytes() as u64;
        let data = size - header_bytes as u64;
        let (whole, trailing) = (data / record_bytes, data % record_bytes);
        let records = if header.records_stated == -1 {
            // Still being recorded (or cut off while it was): the size says.
            whole
        } else {
            let stated = header.records_stated as u64;
            if whole < stated {
                let end = header_bytes as u64 + stated * record_bytes;
                return Err(at_file(
                    path,
                    format!(
                        "truncated: byte {RECORD_COUNT_OFFSET} (number of data records) says {stated} records of {record_bytes} bytes, ending at byte {end}, but the file ends at byte {size}, in record {} of {stated}",
                        whole + 1
                    ),
                ));
            }
            if whole > stated {
                return Err(at_file(
                    path,
                    format!(
                        "byte {RECORD_COUNT_OFFSET} (number of data records) says {stated} records of {record_bytes} bytes, but the file holds {whole}: the header or the file is wrong"
                    ),
                ));
            }
            stated
        };
        if records == 0 {
            return Err(at_file(path, "the file holds no data record"));
        }
        let record_duration_ns = (header.record_duration_s * 1e9).round() as i64;
        let mut recording = Self {
            path: path.to_path_buf(),
            header,
            records,
            trailing_bytes: if whole > records { 0 } else { trailing },
            annotations: Vec::new(),
            first_record_onset_ns: 0,
            record_duration_ns,
        };
        recording.read_annotations(&file)?;
        Ok(recording)
    }

    /// Reads every record's annotation bytes: the annotations, and each
    /// record's start, which must follow the previous record's end.
    fn read_annotations(&mut self, file: &File) -> Result<(), String> {
        let signals: Vec<usize> = self.header.annotation_signals().collect();
        if signals.is_empty() {
            return Ok(());
        }
        let bytes_per_sample = self.header.format.bytes_per_sample();
        let record_bytes = self.header.record_bytes() as u64;
        let mut buffer = Vec::new();
        for record in 0..self.records {
            let record_start = self.header.header_bytes as u64 + record * record_bytes;
            for (n, &signal) in signals.iter().enumerate() {
                let offset = record_start + self.header.signal_offset(signal) as u64;
                buffer.resize(
                    self.header.signals[signal].samples_per_record * bytes_per_sample,
                    0,
                );
                file.read_exact_at(&mut buffer, offset).map_err(|e| {
                    at_file(
                        &self.path,
                        format!("cannot read record {}: {e}", record + 1),
                    )
                })?;
                let parsed = tal::parse_record(&buffer).map_err(|(at, message)| {
                    at_file(
                        &self.path,
                        format!(
                            "byte {} (annotations of record {}): {message}",
                            offset + at as u64,
                            record + 1
                        ),
                    )
                })?;
                if n == 0 {
                    let onset = parsed.record_onset_ns.ok_or_else(|| {
                        at_file(
                            &self.path,
                            format!("byte {offset} (annotations of record {}): the record does not start with its time-keeping TAL (+onset, 0x14, 0x14)", record + 1),
                        )
                    })?;
                    self.check_record_onset(record, onset, offset)?;
                }
                self.annotations.extend(parsed.annotations);
            }
        }
        // Stable: annotations at one onset keep their file order.
        self.annotations.sort_by_key(|a| a.onset_ns);
        Ok(())
    }

    fn check_record_onset(&mut self, record: u64, onset: i64, offset: u64) -> Result<(), String> {
        if record == 0 {
            self.first_record_onset_ns = onset;
            return Ok(());
        }
        let expected = self.first_record_onset_ns + record as i64 * self.record_duration_ns;
        if (onset - expected).abs() <= CONTIGUOUS_SLACK_NS {
            return Ok(());
        }
        let kind = match self.header.variant {
            Variant::Discontinuous => "this EDF+D (discontinuous) file has a gap",
            _ => {
                "the record's time-keeping TAL says it does not follow the previous record, which a contiguous (+C) file must"
            }
        };
        Err(at_file(
            &self.path,
            format!(
                "byte {offset} (annotations of record {}): record starts at {} s, expected {} s: {kind}. Discontinuous recordings are not replayed; split the file at its gaps (for example with MNE's `crop`) and replay each part",
                record + 1,
                tal::format_seconds(onset, false),
                tal::format_seconds(expected, false),
            ),
        ))
    }

    /// Samples per second of signal `index`.
    pub fn sample_rate_hz(&self, index: usize) -> f64 {
        self.header.signals[index].samples_per_record as f64 / self.header.record_duration_s
    }

    /// The data signals (all but annotations), by index.
    pub fn data_signals(&self) -> impl Iterator<Item = usize> + '_ {
        self.header
            .signals
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.annotations)
            .map(|(i, _)| i)
    }

    /// Samples per channel in the recording, for signal `index`.
    pub fn samples(&self, index: usize) -> u64 {
        self.records * self.header.signals[index].samples_per_record as u64
    }

    /// The recording's start (sample 0), ns since the UNIX epoch.
    pub fn start_unix_ns(&self) -> i64 {
        self.header.start_unix_s * 1_000_000_000 + self.first_record_onset_ns
    }

    /// Picks the signals to read: those labelled `labels` (in that order),
    /// or every data signal when it is empty. All must share one sample
    /// rate; an error says which rates there are and lists each one's
    /// channels.
    pub fn select(&self, labels: &[String]) -> Result<Vec<usize>, String> {
        let data: Vec<usize> = self.data_signals().collect();
        if data.is_empty() {
            return Err(at_file(
                &self.path,
                "the file has annotations only, no signal to replay",
            ));
        }
        let picked: Vec<usize> = if labels.is_empty() {
            data.clone()
        } else {
            let mut picked = Vec::with_capacity(labels.len());
            for label in labels {
                let found = data
                    .iter()
                    .copied()
                    .find(|&i| self.header.signals[i].label == *label)
                    .or_else(|| {
                        data.iter()
                            .copied()
                            .find(|&i| self.header.signals[i].label.eq_ignore_ascii_case(label))
                    });
                match found {
                    Some(i) if picked.contains(&i) => {
                        return Err(format!("`channels` lists {label:?} twice"));
                    }
                    Some(i) => picked.push(i),
                    None => {
                        return Err(format!(
                            "`channels`: {label:?} is not a signal of {}; it has {}",
                            self.path.display(),
                            self.labels(&data)
                        ));
                    }
                }
            }
            picked
        };
        let rate = self.header.signals[picked[0]].samples_per_record;
        if picked
            .iter()
            .all(|&i| self.header.signals[i].samples_per_record == rate)
        {
            return Ok(picked);
        }
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for &i in &picked {
            let spr = self.header.signals[i].samples_per_record;
            match groups.iter_mut().find(|(s, _)| *s == spr) {
                Some((_, members)) => members.push(i),
                None => groups.push((spr, vec![i])),
            }
        }
        groups.sort_by_key(|(spr, members)| {
            (std::cmp::Reverse(members.len()), std::cmp::Reverse(*spr))
        });
        let listing: Vec<String> = groups
            .iter()
            .map(|(spr, members)| {
                format!(
                    "{} Hz: {}",
                    trim_rate(*spr as f64 / self.header.record_duration_s),
                    self.labels(members)
                )
            })
            .collect();
        let suggestion: Vec<String> = groups[0]
            .1
            .iter()
            .map(|&i| format!("{:?}", self.header.signals[i].label))
            .collect();
        Err(format!(
            "the channels of {} have different sample rates ({}); a stream has one rate: pick channels of one rate, e.g. `channels = [{}]`",
            self.path.display(),
            listing.join("; "),
            suggestion.join(", ")
        ))
    }

    fn labels(&self, signals: &[usize]) -> String {
        signals
            .iter()
            .map(|&i| self.header.signals[i].label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A rate without needless decimals: `256`, `0.5`.
fn trim_rate(rate: f64) -> String {
    let text = format!("{rate:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Reads the samples of some signals of one rate, record by record,
/// converting them to physical values.
pub struct SignalReader {
    file: File,
    format: FileFormat,
    header_bytes: u64,
    record_bytes: usize,
    records: u64,
    /// Per selected signal: byte offset in a record, gain and offset.
    signals: Vec<(usize, f64, f64)>,
    samples_per_record: usize,
    /// The current record's bytes.
    raw: Vec<u8>,
    /// The current record, decoded: channel-major, `samples_per_record` each.
    decoded: Vec<f32>,
    /// Which record `decoded` holds.
    loaded: Option<u64>,
    /// The next sample to read.
    position: u64,
}

impl SignalReader {
    /// A reader of `signals` (of one rate, from [`Recording::select`]).
    pub fn new(recording: &Recording, signals: &[usize]) -> Result<Self, String> {
        let file = File::open(&recording.path)
            .map_err(|e| at_file(&recording.path, format!("cannot open: {e}")))?;
        let header = &recording.header;
        let samples_per_record = header.signals[signals[0]].samples_per_record;
        Ok(Self {
            file,
            format: header.format,
            header_bytes: header.header_bytes as u64,
            record_bytes: header.record_bytes(),
            records: recording.records,
            signals: signals
                .iter()
                .map(|&i| {
                    let (gain, offset) = header.signals[i].gain_offset();
                    (header.signal_offset(i), gain, offset)
                })
                .collect(),
            samples_per_record,
            raw: vec![0; header.record_bytes()],
            decoded: vec![0.0; signals.len() * samples_per_record],
            loaded: None,
            position: 0,
        })
    }

    /// Samples per channel in the file.
    pub fn len(&self) -> u64 {
        self.records * self.samples_per_record as u64
    }

    /// Whether the file holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next read starts at sample `sample`.
    pub fn seek(&mut self, sample: u64) {
        self.position = sample;
    }

    fn load(&mut self, record: u64) -> std::io::Result<()> {
        let at = self.header_bytes + record * self.record_bytes as u64;
        self.file.read_exact_at(&mut self.raw, at)?;
        let width = self.format.bytes_per_sample();
        let n = self.samples_per_record;
        for (channel, &(offset, gain, shift)) in self.signals.iter().enumerate() {
            let bytes = &self.raw[offset..offset + n * width];
            let out = &mut self.decoded[channel * n..(channel + 1) * n];
            match self.format {
                FileFormat::Edf => {
                    for (value, sample) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                        let digital = i16::from_le_bytes([sample[0], sample[1]]);
                        *value = (f64::from(digital) * gain + shift) as f32;
                    }
                }
                FileFormat::Bdf => {
                    for (value, sample) in out.iter_mut().zip(bytes.chunks_exact(3)) {
                        let digital = i32::from_le_bytes([0, sample[0], sample[1], sample[2]]) >> 8;
                        *value = (f64::from(digital) * gain + shift) as f32;
                    }
                }
            }
        }
        self.loaded = Some(record);
        Ok(())
    }

    /// Reads up to `n` samples per channel into `out` (channel-major, `n`
    /// per channel) from the current position; returns how many it read
    /// (fewer at the end of the file).
    pub fn read(&mut self, out: &mut [f32], n: usize) -> std::io::Result<usize> {
        let channels = self.signals.len();
        let spr = self.samples_per_record as u64;
        let count = (n as u64).min(self.len().saturating_sub(self.position)) as usize;
        let mut done = 0;
        while done < count {
            let record = self.position / spr;
            if self.loaded != Some(record) {
                self.load(record)?;
            }
            let within = (self.position % spr) as usize;
            let take = (count - done).min(self.samples_per_record - within);
            for channel in 0..channels {
                let from = channel * self.samples_per_record + within;
                out[channel * n + done..channel * n + done + take]
                    .copy_from_slice(&self.decoded[from..from + take]);
            }
            done += take;
            self.position += take as u64;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::super::writer::{ChannelSpec, EdfWriter, RecordingSpec};
    use super::*;

    /// Three 1 s records of one 10 Hz channel, as written.
    fn recording(dir: &Path) -> PathBuf {
        let path = dir.join("rec.edf");
        let spec = RecordingSpec {
            format: FileFormat::Edf,
            channels: vec![ChannelSpec {
                label: "Cz".into(),
                unit: "uV".into(),
                transducer: String::new(),
                prefilter: String::new(),
                physical_min: -100.0,
                physical_max: 100.0,
            }],
            samples_per_record: 10,
            record_duration_ns: 1_000_000_000,
            start_unix_ns: 1_600_000_000_000_000_000,
            patient: "X X X X".into(),
            recording: "X X X".into(),
            annotation_bytes: 40,
        };
        let mut writer = EdfWriter::create(&path, &spec).unwrap();
        writer.write_samples(&[1.0; 30], 30).unwrap();
        writer.finish().unwrap();
        path
    }

    /// `path` marked EDF+D, with record 3's start moved to `onset`.
    fn discontinuous(path: &Path, onset: &[u8]) {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[192..197].copy_from_slice(b"EDF+D");
        let record = (10 + 20) * 2;
        let tal = 768 + 2 * record + 20;
        bytes[tal..tal + onset.len()].copy_from_slice(onset);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_discontinuous_file_without_gaps_replays() {
        let dir = tempfile::tempdir().unwrap();
        let path = recording(dir.path());
        discontinuous(&path, b"+2\x14\x14\0");
        let opened = Recording::open(&path).unwrap();
        assert_eq!(opened.records, 3);
    }

    #[test]
    fn a_discontinuous_file_with_a_gap_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = recording(dir.path());
        discontinuous(&path, b"+7\x14\x14\0");
        let error = Recording::open(&path).unwrap_err();
        assert!(error.contains("record 3"), "{error}");
        assert!(error.contains("starts at 7 s, expected 2 s"), "{error}");
        assert!(
            error.contains("EDF+D (discontinuous) file has a gap"),
            "{error}"
        );
    }

    #[test]
    fn a_recording_still_open_counts_its_records_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = recording(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[236..244].copy_from_slice(b"-1      ");
        bytes.truncate(bytes.len() - 7);
        std::fs::write(&path, bytes).unwrap();
        let opened = Recording::open(&path).unwrap();
        assert_eq!((opened.records, opened.trailing_bytes), (2, 53));
    }
}
