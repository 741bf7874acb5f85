//! EDF+ annotations: time-stamped annotation lists (TALs) in the bytes of
//! the annotation signal, `+onset[\x15duration]\x14text\x14...\0`. Each
//! record's first TAL keeps time: its first text is empty and its onset is
//! the record's start. Times are decimal seconds, read here exactly into
//! nanoseconds (no float rounding between a file and its copy).

/// Ends a TAL's onset and each of its texts.
const TEXT_END: u8 = 0x14;
/// Separates the onset from the duration.
const DURATION_MARK: u8 = 0x15;

/// One annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Its time after the header's start time, ns.
    pub onset_ns: i64,
    /// How long it lasts, ns, when the file says.
    pub duration_ns: Option<i64>,
    /// What it says (UTF-8).
    pub text: String,
}

/// What one record's annotation bytes hold.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecordAnnotations {
    /// The record's start after the header's start time, ns (its
    /// time-keeping TAL), if it has one.
    pub record_onset_ns: Option<i64>,
    /// Its annotations, in file order.
    pub annotations: Vec<Annotation>,
}

/// Decimal seconds (`+12.5`, `-0.25`, `3`; a sign only when `signed`, and
/// then required) as ns; `None` if malformed. Digits past the ninth
/// decimal are dropped.
pub fn parse_seconds(text: &[u8], signed: bool) -> Option<i64> {
    let (negative, digits) = match text.first()? {
        b'+' if signed => (false, &text[1..]),
        b'-' if signed => (true, &text[1..]),
        _ if signed => return None,
        _ => (false, text),
    };
    let (whole, fraction) = match digits.iter().position(|&b| b == b'.') {
        Some(dot) => (&digits[..dot], &digits[dot + 1..]),
        None => (digits, &digits[..0]),
    };
    if whole.is_empty() || !whole.iter().chain(fraction).all(u8::is_ascii_digit) {
        return None;
    }
    let mut ns: i64 = 0;
    for &d in whole {
        ns = ns.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    ns = ns.checked_mul(1_000_000_000)?;
    let mut scale = 100_000_000;
    for &d in fraction.iter().take(9) {
        ns += i64::from(d - b'0') * scale;
        scale /= 10;
    }
    Some(if negative { -ns } else { ns })
}

/// `ns` as decimal seconds, signed when `signed`, with no trailing zeros.
pub fn format_seconds(ns: i64, signed: bool) -> String {
    let sign = match (signed, ns < 0) {
        (_, true) => "-",
        (true, false) => "+",
        (false, false) => "",
    };
    let abs = ns.unsigned_abs();
    let (whole, fraction) = (abs / 1_000_000_000, abs % 1_000_000_000);
    if fraction == 0 {
        format!("{sign}{whole}")
    } else {
        let digits = format!("{fraction:09}");
        format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Parses one record's annotation bytes; an error gives the offset within
/// `bytes` and what was wrong.
pub fn parse_record(bytes: &[u8]) -> Result<RecordAnnotations, (usize, String)> {
    let mut out = RecordAnnotations::default();
    let mut at = 0;
    let mut first = true;
    while at < bytes.len() && bytes[at] != 0 {
        let start = at;
        let end_of_time = bytes[at..]
            .iter()
            .position(|&b| b == TEXT_END || b == 0)
            .map(|p| at + p)
            .filter(|&p| bytes[p] == TEXT_END)
            .ok_or((start, "a TAL's onset is not ended by byte 0x14".to_string()))?;
        let time = &bytes[start..end_of_time];
        let (onset, duration) = match time.iter().position(|&b| b == DURATION_MARK) {
            Some(mark) => (&time[..mark], Some(&time[mark + 1..])),
            None => (time, None),
        };
        let onset_ns = parse_seconds(onset, true).ok_or_else(|| {
            (
                start,
                format!(
                    "expected a signed onset in seconds such as +1.5, found {:?}",
                    String::from_utf8_lossy(onset)
                ),
            )
        })?;
        let duration_ns = match duration {
            None => None,
            Some(text) => Some(parse_seconds(text, false).ok_or_else(|| {
                (
                    start,
                    format!(
                        "expected a duration in seconds, found {:?}",
                        String::from_utf8_lossy(text)
                    ),
                )
            })?),
        };
        at = end_of_time + 1;
        let mut texts = Vec::new();
        loop {
            let Some(end) = bytes[at..].iter().position(|&b| b == TEXT_END || b == 0) else {
                return Err((
                    at,
                    "a TAL runs past the end of the record without its 0 byte".into(),
                ));
            };
            if bytes[at + end] == 0 {
                if end != 0 {
                    return Err((at, "an annotation's text is not ended by byte 0x14".into()));
                }
                at += 1;
                break;
            }
            let text = std::str::from_utf8(&bytes[at..at + end])
                .map_err(|_| (at, "an annotation's text is not UTF-8".to_string()))?;
            texts.push(text.to_string());
            at += end + 1;
        }
        let mut texts = texts.into_iter();
        if first {
            first = false;
            // The time-keeping TAL: an empty first text, the record's onset.
            if let Some(text) = texts.as_slice().first().filter(|t| t.is_empty()) {
                debug_assert!(text.is_empty());
                texts.next();
                out.record_onset_ns = Some(onset_ns);
            }
        }
        for text in texts {
            out.annotations.push(Annotation {
                onset_ns,
                duration_ns,
                text,
            });
        }
    }
    Ok(out)
}

/// Writes one record's annotation bytes into `out` (zeroed first): the
/// time-keeping TAL at `record_onset_ns`, then as many of `annotations`
/// as fit; returns how many did.
pub fn encode_record(out: &mut [u8], record_onset_ns: i64, annotations: &[Annotation]) -> usize {
    out.fill(0);
    let keeping = format!("{}\x14\x14\0", format_seconds(record_onset_ns, true));
    out[..keeping.len()].copy_from_slice(keeping.as_bytes());
    let mut at = keeping.len();
    let mut written = 0;
    for annotation in annotations {
        let mut tal = format_seconds(annotation.onset_ns, true);
        if let Some(duration) = annotation.duration_ns {
            tal.push('\x15');
            tal.push_str(&format_seconds(duration, false));
        }
        tal.push('\x14');
        // The bytes that end a text cannot be inside one.
        tal.extend(annotation.text.chars().map(|c| match c {
            '\x14' | '\x15' | '\0' => ' ',
            c => c,
        }));
        tal.push_str("\x14\0");
        if at + tal.len() > out.len() {
            break;
        }
        out[at..at + tal.len()].copy_from_slice(tal.as_bytes());
        at += tal.len();
        written += 1;
    }
    written
}

/// Bytes the time-keeping TAL of a record starting at `onset_ns` takes.
pub fn keeping_bytes(onset_ns: i64) -> usize {
    format_seconds(onset_ns, true).len() + 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_read_exactly() {
        assert_eq!(parse_seconds(b"+1.9511719", true), Some(1_951_171_900));
        assert_eq!(parse_seconds(b"-0.5", true), Some(-500_000_000));
        assert_eq!(parse_seconds(b"30", false), Some(30_000_000_000));
        assert_eq!(parse_seconds(b"1.", false), Some(1_000_000_000));
        assert_eq!(parse_seconds(b"1.5", true), None);
        assert_eq!(parse_seconds(b"+", true), None);
        assert_eq!(parse_seconds(b"+1e3", true), None);
        assert_eq!(format_seconds(1_951_171_900, true), "+1.9511719");
        assert_eq!(format_seconds(30_000_000_000, false), "30");
        assert_eq!(format_seconds(-250_000_000, true), "-0.25");
    }

    #[test]
    fn a_record_from_pyedflib_parses() {
        let bytes = b"+0.3945312\x14\x14\0+1.9511719\x14XLSpike\x14\0\0\0\0";
        let record = parse_record(bytes).unwrap();
        assert_eq!(record.record_onset_ns, Some(394_531_200));
        assert_eq!(
            record.annotations,
            [Annotation {
                onset_ns: 1_951_171_900,
                duration_ns: None,
                text: "XLSpike".into()
            }]
        );
    }

    #[test]
    fn records_round_trip_and_stop_when_full() {
        let annotations = vec![
            Annotation {
                onset_ns: 1_500_000_000,
                duration_ns: Some(30_000_000_000),
                text: "Sleep stage W".into(),
            },
            Annotation {
                onset_ns: 2_000_000_000,
                duration_ns: None,
                text: "Ölauge".into(),
            },
            Annotation {
                onset_ns: 3_000_000_000,
                duration_ns: None,
                text: "x".repeat(40),
            },
        ];
        let mut out = vec![0u8; 64];
        let written = encode_record(&mut out, 1_000_000_000, &annotations);
        assert_eq!(written, 2);
        let record = parse_record(&out).unwrap();
        assert_eq!(record.record_onset_ns, Some(1_000_000_000));
        assert_eq!(record.annotations, annotations[..2]);
    }

    #[test]
    fn broken_tals_name_their_offset() {
        assert_eq!(parse_record(b"+0\x14\x14\0+x\x14a\x14\0").unwrap_err().0, 5);
        assert!(
            parse_record(b"+0\x14\x14\0+1\x14abc")
                .unwrap_err()
                .1
                .contains("past the end")
        );
        assert!(parse_record(b"+0").unwrap_err().1.contains("0x14"));
    }
}
