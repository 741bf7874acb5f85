//! The EDF/BDF header: 256 bytes about the recording, then 256 bytes per
//! signal, stored field by field (every signal's label, then every
//! signal's transducer, ...). Parsed strictly: a field that is not what
//! the format says is an error naming its byte offset, so a bad file is
//! refused when the pipeline is checked, not halfway through a run.

use super::{FileFormat, civil};

/// Bytes of the fixed part of the header.
pub const FIXED_BYTES: usize = 256;
/// Bytes of each signal's part of the header.
pub const SIGNAL_BYTES: usize = 256;

/// The label of the EDF+ / BDF+ annotation signal.
pub fn annotation_label(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Edf => "EDF Annotations",
        FileFormat::Bdf => "BDF Annotations",
    }
}

/// Whether records follow each other without gaps (EDF+C), or may not
/// (EDF+D), or the file is plain EDF/BDF (always contiguous, no annotations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// EDF or BDF, without the "+" extensions.
    Plain,
    /// EDF+C / BDF+C: contiguous, with annotations.
    Contiguous,
    /// EDF+D / BDF+D: records carry their own start times.
    Discontinuous,
}

/// One signal's header.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalHeader {
    pub label: String,
    pub transducer: String,
    pub unit: String,
    pub physical_min: f64,
    pub physical_max: f64,
    pub digital_min: i32,
    pub digital_max: i32,
    pub prefilter: String,
    pub samples_per_record: usize,
    /// Whether this is the EDF+/BDF+ annotation signal.
    pub annotations: bool,
}

impl SignalHeader {
    /// Physical value = digital * gain + offset.
    pub fn gain_offset(&self) -> (f64, f64) {
        let gain = (self.physical_max - self.physical_min)
            / (f64::from(self.digital_max) - f64::from(self.digital_min));
        (gain, self.physical_min - f64::from(self.digital_min) * gain)
    }
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub format: FileFormat,
    pub variant: Variant,
    pub patient: String,
    pub recording: String,
    /// Start of the recording (the header's date and time, to the second),
    /// seconds since the UNIX epoch, read as UTC.
    pub start_unix_s: i64,
    pub header_bytes: usize,
    /// The record count the header states; -1 while a recording is open.
    pub records_stated: i64,
    pub record_duration_s: f64,
    pub signals: Vec<SignalHeader>,
}

/// Where a field lives, for error messages.
struct Field {
    name: &'static str,
    offset: usize,
    len: usize,
}

/// The fixed fields, in file order.
const VERSION: Field = Field {
    name: "version",
    offset: 0,
    len: 8,
};
const PATIENT: Field = Field {
    name: "patient identification",
    offset: 8,
    len: 80,
};
const RECORDING: Field = Field {
    name: "recording identification",
    offset: 88,
    len: 80,
};
const START_DATE: Field = Field {
    name: "start date",
    offset: 168,
    len: 8,
};
const START_TIME: Field = Field {
    name: "start time",
    offset: 176,
    len: 8,
};
const HEADER_BYTES: Field = Field {
    name: "header size",
    offset: 184,
    len: 8,
};
const RESERVED: Field = Field {
    name: "reserved (EDF+C/EDF+D)",
    offset: 192,
    len: 44,
};
/// Where the record count is: a sink rewrites it as records are added.
pub const RECORD_COUNT_OFFSET: usize = 236;
const RECORDS: Field = Field {
    name: "number of data records",
    offset: RECORD_COUNT_OFFSET,
    len: 8,
};
const DURATION: Field = Field {
    name: "duration of a data record",
    offset: 244,
    len: 8,
};
const SIGNALS: Field = Field {
    name: "number of signals",
    offset: 252,
    len: 4,
};

/// Per-signal fields: name and width, in file order.
const SIGNAL_FIELDS: [(&str, usize); 10] = [
    ("label", 16),
    ("transducer type", 80),
    ("physical dimension", 8),
    ("physical minimum", 8),
    ("physical maximum", 8),
    ("digital minimum", 8),
    ("digital maximum", 8),
    ("prefiltering", 80),
    ("number of samples in each data record", 8),
    ("reserved", 32),
];

/// A header error: what is wrong, at which byte.
pub fn error_at(offset: usize, field: &str, message: impl std::fmt::Display) -> String {
    format!("byte {offset} ({field}): {message}")
}

/// Reads the text of `len` bytes at `offset`, requiring printable ASCII
/// (the format's rule for every header byte), trimmed of spaces.
fn ascii(bytes: &[u8], offset: usize, len: usize, field: &str) -> Result<String, String> {
    let raw = &bytes[offset..offset + len];
    if let Some(at) = raw.iter().position(|b| !(0x20..0x7f).contains(b)) {
        return Err(error_at(
            offset + at,
            field,
            format!(
                "byte 0x{:02x} is not printable ASCII, which the header must be",
                raw[at]
            ),
        ));
    }
    // Checked: every byte is ASCII.
    Ok(String::from_utf8_lossy(raw).trim().to_string())
}

fn fixed(bytes: &[u8], field: &Field) -> Result<String, String> {
    ascii(bytes, field.offset, field.len, field.name)
}

fn integer(text: &str, offset: usize, field: &str) -> Result<i64, String> {
    text.parse::<i64>().map_err(|_| {
        error_at(
            offset,
            field,
            format!("expected an integer, found {text:?}"),
        )
    })
}

fn number(text: &str, offset: usize, field: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(error_at(
            offset,
            field,
            format!("expected a number, found {text:?}"),
        )),
    }
}

/// `dd.mm.yy` and `hh.mm.ss`, as three numbers each.
fn triple(text: &str, offset: usize, field: &str) -> Result<[u32; 3], String> {
    let parts: Vec<&str> = text.split('.').collect();
    let wrong = || {
        error_at(
            offset,
            field,
            format!("expected two digits, a dot, two digits, a dot, two digits, found {text:?}"),
        )
    };
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(wrong());
    }
    let mut out = [0u32; 3];
    for (slot, part) in out.iter_mut().zip(parts) {
        *slot = part.parse().map_err(|_| wrong())?;
    }
    Ok(out)
}

/// The 4-digit year of an EDF+ recording field (`Startdate 02-MAR-2002 ...`).
fn edf_plus_year(recording: &str) -> Option<i32> {
    let date = recording.strip_prefix("Startdate ")?.split(' ').next()?;
    let year = date.rsplit('-').next()?;
    (year.len() == 4).then(|| year.parse().ok()).flatten()
}

impl Header {
    /// Bytes the header takes: 256 per signal, plus 256.
    pub fn expected_header_bytes(signals: usize) -> usize {
        FIXED_BYTES + SIGNAL_BYTES * signals
    }

    /// Bytes of one data record.
    pub fn record_bytes(&self) -> usize {
        self.signals
            .iter()
            .map(|s| s.samples_per_record)
            .sum::<usize>()
            * self.format.bytes_per_sample()
    }

    /// The annotation signals' indices (EDF+ allows several).
    pub fn annotation_signals(&self) -> impl Iterator<Item = usize> + '_ {
        self.signals
            .iter()
            .enumerate()
            .filter(|(_, s)| s.annotations)
            .map(|(i, _)| i)
    }

    /// Byte offset of signal `index` within a record.
    pub fn signal_offset(&self, index: usize) -> usize {
        self.signals[..index]
            .iter()
            .map(|s| s.samples_per_record)
            .sum::<usize>()
            * self.format.bytes_per_sample()
    }

    /// Parses the fixed part (the first 256 bytes): everything but the
    /// signals, and how many there are.
    pub fn parse_fixed(bytes: &[u8]) -> Result<(Self, usize), String> {
        if bytes.len() < FIXED_BYTES {
            return Err(format!(
                "the file is {} bytes long, shorter than the 256-byte header every EDF and BDF file starts with",
                bytes.len()
            ));
        }
        let format = if bytes[0] == 0xff && &bytes[1..8] == b"BIOSEMI" {
            FileFormat::Bdf
        } else if &bytes[0..8] == b"0       " {
            FileFormat::Edf
        } else {
            return Err(error_at(
                0,
                VERSION.name,
                format!(
                    "expected \"0       \" (EDF) or 0xFF \"BIOSEMI\" (BDF), found {:?}: not an EDF or BDF file",
                    String::from_utf8_lossy(&bytes[0..8])
                ),
            ));
        };
        let patient = fixed(bytes, &PATIENT)?;
        let recording = fixed(bytes, &RECORDING)?;
        let [day, month, yy] = triple(
            &fixed(bytes, &START_DATE)?,
            START_DATE.offset,
            START_DATE.name,
        )?;
        let [hour, minute, second] = triple(
            &fixed(bytes, &START_TIME)?,
            START_TIME.offset,
            START_TIME.name,
        )?;
        let year = edf_plus_year(&recording).unwrap_or(if yy >= 85 {
            1900 + yy as i32
        } else {
            2000 + yy as i32
        });
        if !(1..=12).contains(&month) || !(1..=civil::days_in_month(year, month)).contains(&day) {
            return Err(error_at(
                START_DATE.offset,
                START_DATE.name,
                format!("{day:02}.{month:02}.{yy:02} is not a date"),
            ));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(error_at(
                START_TIME.offset,
                START_TIME.name,
                format!("{hour:02}.{minute:02}.{second:02} is not a time of day"),
            ));
        }
        let start_unix_s = civil::days_from_civil(year, month, day) * 86_400
            + i64::from(hour) * 3600
            + i64::from(minute) * 60
            + i64::from(second);
        let header_bytes = integer(
            &fixed(bytes, &HEADER_BYTES)?,
            HEADER_BYTES.offset,
            HEADER_BYTES.name,
        )?;
        let reserved = fixed(bytes, &RESERVED)?;
        let variant = match (format, reserved.get(..5)) {
            (FileFormat::Edf, Some("EDF+C")) | (FileFormat::Bdf, Some("BDF+C")) => {
                Variant::Contiguous
            }
            (FileFormat::Edf, Some("EDF+D")) | (FileFormat::Bdf, Some("BDF+D")) => {
                Variant::Discontinuous
            }
            _ => Variant::Plain,
        };
        let records_text = fixed(bytes, &RECORDS)?;
        let records_stated = integer(&records_text, RECORDS.offset, RECORDS.name)?;
        if records_stated < -1 {
            return Err(error_at(
                RECORDS.offset,
                RECORDS.name,
                format!("expected a count (or -1 while recording), found {records_stated}"),
            ));
        }
        let record_duration_s = number(&fixed(bytes, &DURATION)?, DURATION.offset, DURATION.name)?;
        if record_duration_s < 0.0 {
            return Err(error_at(
                DURATION.offset,
                DURATION.name,
                format!("expected seconds, 0 or more, found {record_duration_s}"),
            ));
        }
        let signals = integer(&fixed(bytes, &SIGNALS)?, SIGNALS.offset, SIGNALS.name)?;
        if !(1..=4096).contains(&signals) {
            return Err(error_at(
                SIGNALS.offset,
                SIGNALS.name,
                format!("expected 1 to 4096 signals, found {signals}"),
            ));
        }
        let signals = signals as usize;
        let expected = Self::expected_header_bytes(signals);
        if header_bytes != expected as i64 {
            return Err(error_at(
                HEADER_BYTES.offset,
                HEADER_BYTES.name,
                format!(
                    "{signals} signals take a {expected}-byte header, the field says {header_bytes}"
                ),
            ));
        }
        Ok((
            Self {
                format,
                variant,
                patient,
                recording,
                start_unix_s,
                header_bytes: expected,
                records_stated,
                record_duration_s,
                signals: Vec::new(),
            },
            signals,
        ))
    }

    /// Parses the whole header from `bytes`, which hold at least
    /// [`header_bytes`](Self::header_bytes) of them.
    // Each signal's fields sit in ten columns: the loop index reads all ten.
    #[allow(clippy::needless_range_loop)]
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let (mut header, count) = Self::parse_fixed(bytes)?;
        if bytes.len() < header.header_bytes {
            return Err(format!(
                "the header of {count} signals takes {} bytes, the file has {}: it is truncated",
                header.header_bytes,
                bytes.len()
            ));
        }
        // Field-major: each field holds every signal's value in turn.
        let mut columns: Vec<Vec<(String, usize)>> = Vec::with_capacity(SIGNAL_FIELDS.len());
        let mut offset = FIXED_BYTES;
        for (name, width) in SIGNAL_FIELDS {
            let mut column = Vec::with_capacity(count);
            for signal in 0..count {
                let at = offset + signal * width;
                let field = format!("{name} of signal {}", signal + 1);
                column.push((ascii(bytes, at, width, &field)?, at));
            }
            columns.push(column);
            offset += width * count;
        }
        let (dmin_limit, dmax_limit) = header.format.digital_limits();
        let reserved = fixed(bytes, &RESERVED)?;
        for signal in 0..count {
            let text = |field: usize| columns[field][signal].0.clone();
            let at = |field: usize| columns[field][signal].1;
            let name =
                |field: usize| format!("{} of signal {}", SIGNAL_FIELDS[field].0, signal + 1);
            let label = text(0);
            // Plain EDF files written by EDF+ tools may carry the signal
            // too: its bytes are TALs all the same (edfio reads them so).
            let annotations = label == annotation_label(header.format);
            let samples = integer(&text(8), at(8), &name(8))?;
            if samples < 1 {
                return Err(error_at(
                    at(8),
                    &name(8),
                    format!("expected at least 1 sample per record, found {samples}"),
                ));
            }
            let mut signal_header = SignalHeader {
                label,
                transducer: text(1),
                unit: text(2),
                physical_min: 0.0,
                physical_max: 0.0,
                digital_min: 0,
                digital_max: 0,
                prefilter: text(7),
                samples_per_record: samples as usize,
                annotations,
            };
            if !annotations {
                let pmin = number(&text(3), at(3), &name(3))?;
                let pmax = number(&text(4), at(4), &name(4))?;
                let dmin = integer(&text(5), at(5), &name(5))?;
                let dmax = integer(&text(6), at(6), &name(6))?;
                if pmin == pmax {
                    return Err(error_at(
                        at(4),
                        &name(4),
                        format!(
                            "equals the physical minimum ({pmin}): the signal's scale would divide by zero"
                        ),
                    ));
                }
                for (value, field) in [(dmin, 5), (dmax, 6)] {
                    if !(i64::from(dmin_limit)..=i64::from(dmax_limit)).contains(&value) {
                        return Err(error_at(
                            at(field),
                            &name(field),
                            format!(
                                "{value} is outside the {} range {dmin_limit}..{dmax_limit}",
                                header.format.name()
                            ),
                        ));
                    }
                }
                if dmin >= dmax {
                    return Err(error_at(
                        at(6),
                        &name(6),
                        format!("{dmax} is not above the digital minimum {dmin}"),
                    ));
                }
                signal_header.physical_min = pmin;
                signal_header.physical_max = pmax;
                signal_header.digital_min = dmin as i32;
                signal_header.digital_max = dmax as i32;
            }
            header.signals.push(signal_header);
        }
        if header.variant != Variant::Plain && !header.signals.iter().any(|s| s.annotations) {
            return Err(error_at(
                RESERVED.offset,
                RESERVED.name,
                format!(
                    "says {reserved}, but no signal is labelled `{}`, which an EDF+/BDF+ file must have",
                    annotation_label(header.format)
                ),
            ));
        }
        Ok(header)
    }

    /// The header as the file stores it, with `records` as the count.
    pub fn to_bytes(&self, records: i64) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(Self::expected_header_bytes(self.signals.len()));
        match self.format {
            FileFormat::Edf => out.extend_from_slice(b"0       "),
            FileFormat::Bdf => {
                out.push(0xff);
                out.extend_from_slice(b"BIOSEMI");
            }
        }
        let (days, seconds) = (
            self.start_unix_s.div_euclid(86_400),
            self.start_unix_s.rem_euclid(86_400),
        );
        let (year, month, day) = civil::civil_from_days(days);
        if !(1985..=2084).contains(&year) {
            return Err(format!(
                "the start time's year {year} is outside 1985..2084, which the format's two-digit year can say"
            ));
        }
        let reserved = match (self.variant, self.format) {
            (Variant::Plain, FileFormat::Edf) => "",
            (Variant::Plain, FileFormat::Bdf) => "24BIT",
            (Variant::Contiguous, FileFormat::Edf) => "EDF+C",
            (Variant::Contiguous, FileFormat::Bdf) => "BDF+C",
            (Variant::Discontinuous, FileFormat::Edf) => "EDF+D",
            (Variant::Discontinuous, FileFormat::Bdf) => "BDF+D",
        };
        let fields = [
            (PATIENT.name, self.patient.clone(), PATIENT.len),
            (RECORDING.name, self.recording.clone(), RECORDING.len),
            (
                START_DATE.name,
                format!("{day:02}.{month:02}.{:02}", year % 100),
                8,
            ),
            (
                START_TIME.name,
                format!(
                    "{:02}.{:02}.{:02}",
                    seconds / 3600,
                    seconds / 60 % 60,
                    seconds % 60
                ),
                8,
            ),
            (
                HEADER_BYTES.name,
                Self::expected_header_bytes(self.signals.len()).to_string(),
                8,
            ),
            (RESERVED.name, reserved.to_string(), 44),
            (RECORDS.name, records.to_string(), 8),
            (DURATION.name, format_number(self.record_duration_s, 8)?, 8),
            (SIGNALS.name, self.signals.len().to_string(), 4),
        ];
        for (name, text, width) in fields {
            put(&mut out, name, &text, width)?;
        }
        for (field, (name, width)) in SIGNAL_FIELDS.iter().enumerate() {
            for signal in &self.signals {
                let text = match field {
                    0 => signal.label.clone(),
                    1 => signal.transducer.clone(),
                    2 => signal.unit.clone(),
                    3 => format_number(signal.physical_min, 8)?,
                    4 => format_number(signal.physical_max, 8)?,
                    5 => signal.digital_min.to_string(),
                    6 => signal.digital_max.to_string(),
                    7 => signal.prefilter.clone(),
                    8 => signal.samples_per_record.to_string(),
                    _ => String::new(),
                };
                put(&mut out, name, &text, *width)?;
            }
        }
        Ok(out)
    }
}

/// Appends `text` padded with spaces to `width` bytes; refuses what does
/// not fit or is not printable ASCII.
fn put(out: &mut Vec<u8>, field: &str, text: &str, width: usize) -> Result<(), String> {
    if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(format!(
            "{field} {text:?} is not printable ASCII, which the header must be"
        ));
    }
    if text.len() > width {
        return Err(format!("{field} {text:?} is longer than its {width} bytes"));
    }
    out.extend_from_slice(text.as_bytes());
    out.resize(out.len() + width - text.len(), b' ');
    Ok(())
}

/// `value` in at most `width` characters, as precise as they allow.
pub fn format_number(value: f64, width: usize) -> Result<String, String> {
    if !value.is_finite() {
        return Err(format!("{value} cannot be written in a header field"));
    }
    if value == value.trunc() && value.abs() < 1e15 {
        let text = format!("{value:.0}");
        if text.len() <= width {
            return Ok(text);
        }
    }
    for decimals in (0..width).rev() {
        let text = format!("{value:.decimals$}");
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        };
        if text.len() <= width {
            return Ok(text);
        }
    }
    Err(format!("{value} does not fit in {width} characters"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(format: FileFormat) -> Header {
        Header {
            format,
            variant: Variant::Contiguous,
            patient: "X X X X".into(),
            recording: "Startdate 02-MAR-2002 X X X".into(),
            start_unix_s: 1_015_072_496,
            header_bytes: 768,
            records_stated: 3,
            record_duration_s: 1.0,
            signals: vec![
                SignalHeader {
                    label: "Fz".into(),
                    transducer: "AgAgCl electrode".into(),
                    unit: "uV".into(),
                    physical_min: -3276.8,
                    physical_max: 3276.7,
                    digital_min: -32768,
                    digital_max: 32767,
                    prefilter: "HP:0.1Hz".into(),
                    samples_per_record: 256,
                    annotations: false,
                },
                SignalHeader {
                    label: annotation_label(format).into(),
                    transducer: String::new(),
                    unit: String::new(),
                    physical_min: -1.0,
                    physical_max: 1.0,
                    digital_min: format.digital_limits().0,
                    digital_max: format.digital_limits().1,
                    prefilter: String::new(),
                    samples_per_record: 60,
                    annotations: true,
                },
            ],
        }
    }

    #[test]
    fn a_written_header_parses_back_to_itself() {
        for format in [FileFormat::Edf, FileFormat::Bdf] {
            let written = header(format);
            let bytes = written.to_bytes(3).unwrap();
            assert_eq!(bytes.len(), 768);
            let mut read = Header::parse(&bytes).unwrap();
            // The annotation signal's scale is not read back.
            read.signals[1].physical_min = -1.0;
            read.signals[1].physical_max = 1.0;
            read.signals[1].digital_min = format.digital_limits().0;
            read.signals[1].digital_max = format.digital_limits().1;
            assert_eq!(read, written);
        }
    }

    #[test]
    fn bad_fields_are_named_with_their_byte() {
        let good = header(FileFormat::Edf).to_bytes(3).unwrap();
        let mut bad = good.clone();
        bad[236..244].copy_from_slice(b"three   ");
        let error = Header::parse(&bad).unwrap_err();
        assert!(
            error.contains("byte 236 (number of data records)"),
            "{error}"
        );
        let mut bad = good.clone();
        bad[10] = 0xc3;
        let error = Header::parse(&bad).unwrap_err();
        assert!(
            error.contains("byte 10 (patient identification)") && error.contains("ASCII"),
            "{error}"
        );
        let mut bad = good.clone();
        bad[168..176].copy_from_slice(b"31.02.02");
        assert!(Header::parse(&bad).unwrap_err().contains("not a date"));
        let mut bad = good;
        bad[184..192].copy_from_slice(b"1024    ");
        assert!(Header::parse(&bad).unwrap_err().contains("header size"));
        assert!(
            Header::parse(b"hello")
                .unwrap_err()
                .contains("shorter than the 256-byte header")
        );
    }

    #[test]
    fn numbers_fit_their_fields() {
        assert_eq!(format_number(-3276.8, 8).unwrap(), "-3276.8");
        assert_eq!(format_number(262143.0, 8).unwrap(), "262143");
        assert_eq!(format_number(0.123456789, 8).unwrap(), "0.123457");
        assert_eq!(format_number(-0.000_012_3, 8).unwrap(), "-0.00001");
        assert!(format_number(1e12, 8).is_err());
    }
}
