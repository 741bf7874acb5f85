//! Writing EDF+/BDF+ as samples arrive. The header goes first; each data
//! record is written whole, with one `write`, as soon as it is full, and
//! the header's record count is rewritten right after it, so at any moment
//! the file is a valid recording of the records written so far (a process
//! killed between the two writes leaves one whole record the count does not
//! include yet). Annotations wait for the next record written.

use super::FileFormat;
use super::header::{Header, RECORD_COUNT_OFFSET, SignalHeader, Variant, annotation_label};
use super::tal::{self, Annotation};
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One data channel to record.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSpec {
    pub label: String,
    pub unit: String,
    pub transducer: String,
    pub prefilter: String,
    pub physical_min: f64,
    pub physical_max: f64,
}

/// What a recording is: its format, channels, rate and start.
#[derive(Debug, Clone)]
pub struct RecordingSpec {
    pub format: FileFormat,
    pub channels: Vec<ChannelSpec>,
    pub samples_per_record: usize,
    pub record_duration_ns: i64,
    /// The first sample's time, ns since the UNIX epoch.
    pub start_unix_ns: i64,
    pub patient: String,
    pub recording: String,
    /// Bytes of annotation text room per record.
    pub annotation_bytes: usize,
}

/// A recording being written.
pub struct EdfWriter {
    path: PathBuf,
    file: File,
    format: FileFormat,
    channels: usize,
    samples_per_record: usize,
    /// Per channel: physical minimum, digital per physical unit, digital limits.
    scales: Vec<(f64, f64, i32, i32, i32)>,
    /// The record being filled, in file layout.
    record: Vec<u8>,
    /// Samples per channel in `record` so far.
    filled: usize,
    annotation_offset: usize,
    annotation_len: usize,
    pending: VecDeque<Annotation>,
    first_record_onset_ns: i64,
    record_duration_ns: i64,
    /// The header's start time, ns since the UNIX epoch.
    header_start_ns: i64,
    records: u64,
    /// Samples clipped to the range, per channel.
    clipped: Vec<u64>,
    /// Samples of padding in the last record.
    padded: usize,
    /// In `finish`: every annotation waiting is due.
    finishing: bool,
}

/// `ns` to the nearest 100 ns: TAL times are written with 7 decimals, the
/// resolution EDFlib (and so pyedflib) reads; finer digits it drops.
fn round_to_tal(ns: i64) -> i64 {
    (ns + 50).div_euclid(100) * 100
}

/// `path: message`.
fn at_file(path: &Path, message: impl std::fmt::Display) -> String {
    format!("{}: {message}", path.display())
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

impl EdfWriter {
    /// The header `spec` describes: the channels, then the annotation
    /// signal. Its numbers are those the file will say, read back, so the
    /// scaling matches what a reader computes.
    pub fn header(spec: &RecordingSpec) -> Result<Header, String> {
        let width = spec.format.bytes_per_sample();
        let (dmin, dmax) = spec.format.digital_limits();
        let start_s = spec.start_unix_ns.div_euclid(1_000_000_000);
        let (year, month, day) = super::civil::civil_from_days(start_s.div_euclid(86_400));
        let startdate = format!("{day:02}-{}-{year}", MONTHS[month as usize - 1]);
        let mut signals: Vec<SignalHeader> = spec
            .channels
            .iter()
            .map(|c| SignalHeader {
                label: c.label.clone(),
                transducer: c.transducer.clone(),
                unit: c.unit.clone(),
                physical_min: c.physical_min,
                physical_max: c.physical_max,
                digital_min: dmin,
                digital_max: dmax,
                prefilter: c.prefilter.clone(),
                samples_per_record: spec.samples_per_record,
                annotations: false,
            })
            .collect();
        signals.push(SignalHeader {
            label: annotation_label(spec.format).into(),
            transducer: String::new(),
            unit: String::new(),
            physical_min: -1.0,
            physical_max: 1.0,
            digital_min: dmin,
            digital_max: dmax,
            prefilter: String::new(),
            samples_per_record: spec.annotation_bytes.div_ceil(width),
            annotations: true,
        });
        let header = Header {
            format: spec.format,
            variant: Variant::Contiguous,
            patient: spec.patient.clone(),
            recording: format!("Startdate {startdate} {}", spec.recording),
            start_unix_s: start_s,
            header_bytes: Header::expected_header_bytes(signals.len()),
            records_stated: 0,
            record_duration_s: spec.record_duration_ns as f64 / 1e9,
            signals,
        };
        // Read back what the file will say (numbers as their fields hold
        // them); the annotation signal's scale, which readers ignore, is
        // not read back, so it is kept as made.
        let bytes = header.to_bytes(0)?;
        let mut read = Header::parse(&bytes)?;
        let annotation = read.signals.len() - 1;
        read.signals[annotation] = header.signals[annotation].clone();
        Ok(read)
    }

    /// Creates (or truncates) `path` and writes the header of `spec`.
    pub fn create(path: &Path, spec: &RecordingSpec) -> Result<Self, String> {
        let header = Self::header(spec).map_err(|e| at_file(path, e))?;
        let bytes = header.to_bytes(0).map_err(|e| at_file(path, e))?;
        let mut file =
            File::create(path).map_err(|e| at_file(path, format!("cannot create: {e}")))?;
        file.write_all(&bytes)
            .map_err(|e| at_file(path, format!("cannot write the header: {e}")))?;
        let width = spec.format.bytes_per_sample();
        let annotation = header.signals.len() - 1;
        let scales = header.signals[..annotation]
            .iter()
            .map(|s| {
                let per_unit = (f64::from(s.digital_max) - f64::from(s.digital_min))
                    / (s.physical_max - s.physical_min);
                // A physical 0 where the range has it, for padding.
                let zero = ((0.0 - s.physical_min) * per_unit + f64::from(s.digital_min))
                    .round()
                    .clamp(f64::from(s.digital_min), f64::from(s.digital_max))
                    as i32;
                (s.physical_min, per_unit, s.digital_min, s.digital_max, zero)
            })
            .collect();
        let header_start_ns = header.start_unix_s * 1_000_000_000;
        // Times in TALs to 100 ns, the finest EDFlib (pyedflib) reads.
        let first_record_onset_ns = round_to_tal(spec.start_unix_ns - header_start_ns);
        Ok(Self {
            path: path.to_path_buf(),
            file,
            format: spec.format,
            channels: spec.channels.len(),
            samples_per_record: spec.samples_per_record,
            scales,
            record: vec![0; header.record_bytes()],
            filled: 0,
            annotation_offset: header.signal_offset(annotation),
            annotation_len: header.signals[annotation].samples_per_record * width,
            pending: VecDeque::new(),
            first_record_onset_ns,
            record_duration_ns: spec.record_duration_ns,
            header_start_ns,
            records: 0,
            clipped: vec![0; spec.channels.len()],
            padded: 0,
            finishing: false,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records written.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Samples clipped to each channel's range so far.
    pub fn clipped(&self) -> &[u64] {
        &self.clipped
    }

    /// Samples of padding that completed the last record.
    pub fn padded(&self) -> usize {
        self.padded
    }

    /// Annotations not written yet.
    pub fn pending_annotations(&self) -> usize {
        self.pending.len()
    }

    /// Appends `n` samples per channel from `values` (channel-major).
    pub fn write_samples(&mut self, values: &[f32], n: usize) -> Result<(), String> {
        let width = self.format.bytes_per_sample();
        let spr = self.samples_per_record;
        let mut done = 0;
        while done < n {
            let take = (n - done).min(spr - self.filled);
            for channel in 0..self.channels {
                let (pmin, per_unit, dmin, dmax, _) = self.scales[channel];
                let base = channel * spr * width;
                let source = &values[channel * n + done..channel * n + done + take];
                for (i, &value) in source.iter().enumerate() {
                    let digital = ((f64::from(value) - pmin) * per_unit + f64::from(dmin)).round();
                    let digital = if digital < f64::from(dmin) {
                        self.clipped[channel] += 1;
                        dmin
                    } else if digital > f64::from(dmax) {
                        self.clipped[channel] += 1;
                        dmax
                    } else if digital.is_nan() {
                        // No value: written as the range's middle... a NaN
                        // counts as clipped, so it is reported.
                        self.clipped[channel] += 1;
                        ((i64::from(dmin) + i64::from(dmax)) / 2) as i32
                    } else {
                        digital as i32
                    };
                    let at = base + (self.filled + i) * width;
                    self.format.encode(digital, &mut self.record[at..]);
                }
            }
            self.filled += take;
            done += take;
            if self.filled == spr {
                self.flush_record()?;
            }
        }
        Ok(())
    }

    /// Queues an annotation at `timestamp_ns` (ns since the UNIX epoch)
    /// for the first record written that ends after it.
    pub fn annotate(&mut self, timestamp_ns: i64, duration_ns: Option<i64>, text: &str) {
        let annotation = Annotation {
            onset_ns: round_to_tal(timestamp_ns - self.header_start_ns),
            duration_ns,
            text: text.to_string(),
        };
        // Kept in time order (equal times in arrival order); they come
        // nearly sorted, so the search from the back is short.
        let at = self
            .pending
            .iter()
            .rposition(|a| a.onset_ns <= annotation.onset_ns)
            .map_or(0, |i| i + 1);
        self.pending.insert(at, annotation);
    }

    /// Writes the full record and then the count that includes it.
    fn flush_record(&mut self) -> Result<(), String> {
        let onset = self.first_record_onset_ns + self.records as i64 * self.record_duration_ns;
        let room =
            &mut self.record[self.annotation_offset..self.annotation_offset + self.annotation_len];
        // The annotations whose time has come by the end of this record:
        // where each lands depends on the data, not on when it arrived.
        let record_end = onset + self.record_duration_ns;
        let due = self
            .pending
            .iter()
            .take(64)
            .take_while(|a| a.onset_ns < record_end || self.finishing)
            .count();
        let queued: Vec<Annotation> = self.pending.iter().take(due).cloned().collect();
        let written = tal::encode_record(room, onset, &queued);
        if written == 0
            && !queued.is_empty()
            && tal::keeping_bytes(onset) + 8 >= self.annotation_len
        {
            return Err(at_file(
                &self.path,
                "the annotation signal has no room for an annotation: raise `annotation_bytes`",
            ));
        }
        self.pending.drain(..written);
        self.file.write_all(&self.record).map_err(|e| {
            at_file(
                &self.path,
                format!("cannot write record {}: {e}", self.records + 1),
            )
        })?;
        self.records += 1;
        self.write_count()?;
        self.filled = 0;
        Ok(())
    }

    fn write_count(&self) -> Result<(), String> {
        let mut field = self.records.to_string().into_bytes();
        field.resize(8, b' ');
        self.file
            .write_all_at(&field, RECORD_COUNT_OFFSET as u64)
            .map_err(|e| at_file(&self.path, format!("cannot update the record count: {e}")))
    }

    /// Completes the last record with physical zeros (counted in
    /// [`padded`](Self::padded)), writes records until every annotation is
    /// in the file, and syncs it to disk.
    pub fn finish(&mut self) -> Result<(), String> {
        let width = self.format.bytes_per_sample();
        let spr = self.samples_per_record;
        self.finishing = true;
        while self.filled > 0 || !self.pending.is_empty() {
            self.padded += spr - self.filled;
            for channel in 0..self.channels {
                let zero = self.scales[channel].4;
                for i in self.filled..spr {
                    let at = (channel * spr + i) * width;
                    self.format.encode(zero, &mut self.record[at..]);
                }
            }
            self.filled = spr;
            self.flush_record()?;
        }
        self.file
            .sync_all()
            .map_err(|e| at_file(&self.path, format!("cannot sync: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::reader::{Recording, SignalReader};
    use super::*;

    fn spec(format: FileFormat) -> RecordingSpec {
        RecordingSpec {
            format,
            channels: ["Fz", "Cz"]
                .iter()
                .map(|l| ChannelSpec {
                    label: (*l).into(),
                    unit: "uV".into(),
                    transducer: "AgAgCl".into(),
                    prefilter: "HP:0.5Hz".into(),
                    physical_min: -500.0,
                    physical_max: 500.0,
                })
                .collect(),
            samples_per_record: 250,
            record_duration_ns: 1_000_000_000,
            start_unix_ns: 1_700_000_000_250_000_000,
            patient: "X X X X".into(),
            recording: "X X hsp".into(),
            annotation_bytes: 120,
        }
    }

    #[test]
    fn what_is_written_reads_back_to_the_resolution() {
        for format in [FileFormat::Edf, FileFormat::Bdf] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("rec.edf");
            let mut writer = EdfWriter::create(&path, &spec(format)).unwrap();
            let n = 600;
            let values: Vec<f32> = (0..2 * n)
                .map(|i| ((i as f32) * 0.37).sin() * 400.0)
                .collect();
            for block in 0..3 {
                let chunk: Vec<f32> = (0..2)
                    .flat_map(|c| values[c * n + block * 200..c * n + block * 200 + 200].to_vec())
                    .collect();
                writer.write_samples(&chunk, 200).unwrap();
            }
            writer.annotate(1_700_000_001_000_000_000, Some(2_000_000_000), "stimulus");
            writer.finish().unwrap();
            assert_eq!(writer.records(), 3);
            assert_eq!(writer.padded(), 150);
            let recording = Recording::open(&path).unwrap();
            assert_eq!(recording.start_unix_ns(), 1_700_000_000_250_000_000);
            assert_eq!(recording.annotations.len(), 1);
            assert_eq!(recording.annotations[0].onset_ns, 1_000_000_000);
            assert_eq!(recording.header.signals[0].prefilter, "HP:0.5Hz");
            let signals = recording.select(&[]).unwrap();
            let mut reader = SignalReader::new(&recording, &signals).unwrap();
            let mut out = vec![0f32; 2 * n];
            assert_eq!(reader.read(&mut out, n).unwrap(), n);
            let resolution =
                1000.0 / f64::from(format.digital_limits().1 - format.digital_limits().0);
            for (a, b) in out.iter().zip(&values) {
                assert!(
                    f64::from((a - b).abs()) <= resolution * 0.5 + 1e-4,
                    "{a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn out_of_range_samples_are_clipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.bdf");
        let mut writer = EdfWriter::create(&path, &spec(FileFormat::Bdf)).unwrap();
        let mut values = vec![0f32; 500];
        values[3] = 900.0;
        values[260] = -901.0;
        values[261] = f32::NAN;
        writer.write_samples(&values, 250).unwrap();
        writer.finish().unwrap();
        assert_eq!(writer.clipped(), [1, 2]);
    }

    #[test]
    fn the_count_is_right_after_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.edf");
        let mut writer = EdfWriter::create(&path, &spec(FileFormat::Edf)).unwrap();
        writer.write_samples(&vec![1.0; 2 * 375], 375).unwrap();
        // Not finished: one whole record counted, half a record waiting.
        let recording = Recording::open(&path).unwrap();
        assert_eq!(recording.records, 1);
    }
}
