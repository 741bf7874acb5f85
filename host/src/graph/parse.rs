//! How is a pipeline file read into its raw, span-carrying form? This file
//! walks its tables (top level, `[pipeline]`, each `[[stage]]`);
//! `parse_values.rs` reads the values in them, into the form of `raw.rs`.
//!
//! The TOML is parsed with `toml`'s own span-keeping document
//! ([`DeTable`]: every key and value wrapped in [`toml::Spanned`]), then
//! walked by hand rather than through `#[derive(Deserialize)]`: a derive stops
//! at the first unknown key or wrong type, while a walk reports every one of
//! them, each at the key or value it is about. Only a TOML syntax error stops
//! the walk, as nothing after it can be trusted.
//!
//! What this room checks is the file's shape (known keys, value types,
//! enumerations, ranges). What the stages mean together (kinds, edges,
//! configs, formats) is `validate.rs`'s.

use super::parse_values::{
    IDLE_STRATEGIES, ON_ERRORS, STAGE_TYPES, choice, count, de_describe, read_config_table,
    read_inputs, read_queue, sorted, string, unknown_key,
};
use super::raw::{RawConfig, RawPipeline, RawStage};
use super::report::{Issue, LineIndex, Span, shown_id};
use std::borrow::Cow;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Parses the pipeline file `text`. `Err` is a TOML syntax error (nothing
/// else can be trusted after one); shape problems are collected in
/// [`RawPipeline::issues`].
pub(crate) fn parse(text: &str) -> Result<RawPipeline, Issue> {
    let root = DeTable::parse(text).map_err(|error| syntax_issue(text, &error))?;
    let mut raw = RawPipeline::default();
    for (key, value) in sorted(root.get_ref()) {
        raw.has_stage_key |= key.get_ref() == "stage";
        match key.get_ref().as_ref() {
            "pipeline" => read_pipeline(key, value, &mut raw),
            "stage" => read_stages(key, value, &mut raw),
            unknown => raw.issues.push(unknown_key(
                key.span(),
                unknown,
                "at the top level",
                &["pipeline", "stage"],
            )),
        }
    }
    Ok(raw)
}

/// The top-level `pipeline` key, which must be the `[pipeline]` table.
fn read_pipeline(key: &Spanned<Cow<'_, str>>, value: &Spanned<DeValue<'_>>, raw: &mut RawPipeline) {
    match value.get_ref() {
        DeValue::Table(table) => read_settings(table, raw),
        other => raw.issues.push(
            Issue::new(
                key.span(),
                format!("`pipeline` must be a table, got {}", de_describe(other)),
            )
            .hint("write the settings under a `[pipeline]` header"),
        ),
    }
}

/// The top-level `stage` key, which must be an array of `[[stage]]` tables.
/// A single `[stage]` table is reported and still read as the stage it was
/// meant to be, so its own problems are found in the same run.
fn read_stages(key: &Spanned<Cow<'_, str>>, value: &Spanned<DeValue<'_>>, raw: &mut RawPipeline) {
    match value.get_ref() {
        DeValue::Array(items) => {
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::Table(table) => {
                        let stage = read_stage(item.span(), table, &mut raw.issues);
                        raw.stages.push(stage);
                    }
                    other => raw.issues.push(
                        Issue::new(
                            item.span(),
                            format!("each stage must be a table, got {}", de_describe(other)),
                        )
                        .hint("start each stage with a `[[stage]]` header"),
                    ),
                }
            }
        }
        DeValue::Table(table) => {
            raw.issues.push(
                Issue::new(
                    key.span(),
                    "`[stage]` is a single table, but stages are an array of tables",
                )
                .hint("start each stage with `[[stage]]` (double brackets)"),
            );
            let stage = read_stage(value.span(), table, &mut raw.issues);
            raw.stages.push(stage);
        }
        other => raw.issues.push(
            Issue::new(
                key.span(),
                format!(
                    "`stage` must be an array of tables, got {}",
                    de_describe(other)
                ),
            )
            .hint("start each stage with a `[[stage]]` header"),
        ),
    }
}

fn syntax_issue(text: &str, error: &toml::de::Error) -> Issue {
    let span = error.span().unwrap_or(0..0);
    let message = error.message().trim();
    // Say what was there instead: the offending text, or its first character.
    let start = span.start.min(text.len());
    let end = span.end.clamp(start, text.len());
    let found = match text.get(start..end) {
        Some(token)
            if !token.is_empty() && !token.contains('\n') && token.chars().count() <= 40 =>
        {
            format!("`{token}`")
        }
        _ => match text.get(start..).and_then(|rest| rest.chars().next()) {
            None => "the end of the file".to_string(),
            Some('\n' | '\r') => "the end of the line".to_string(),
            Some(c) => format!("`{}`", c.escape_debug()),
        },
    };
    let issue = format!("invalid TOML: {message}; found {found}");
    // A list or inline table left open is noticed where the next value
    // begins, often lines later: point at the bracket that was never closed.
    match unclosed_bracket(text) {
        Some(open) if line_of(text, open) < line_of(text, start) => {
            let noticed = LineIndex::new(text).location(start);
            let bracket = &text[open..open + 1];
            Issue::new(
                open..open + 1,
                format!("invalid TOML: this `{bracket}` is never closed"),
            )
            .hint(format!(
                "the parser noticed at line {}, column {}: {message}; found {found}",
                noticed.line, noticed.column
            ))
        }
        _ => Issue::new(span, issue),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count()
}

/// The first `[` or `{` of a value (not a table header) that is still open
/// at the end of `text`, skipping strings and comments; `None` when every
/// one is closed.
fn unclosed_bracket(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut open: Vec<usize> = Vec::new();
    let mut at_line_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        match bytes[i] {
            b'\n' => {
                at_line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                i = line_end(bytes, i);
                continue;
            }
            b'[' if at_line_start && open.is_empty() => {
                // A table header: its own line.
                i = line_end(bytes, i);
                continue;
            }
            b'[' | b'{' => open.push(i),
            b']' | b'}' => {
                open.pop();
            }
            b'"' if rest.starts_with(b"\"\"\"") => i = skip_past(bytes, i + 3, b"\"\"\"") - 1,
            b'\'' if rest.starts_with(b"\'\'\'") => i = skip_past(bytes, i + 3, b"\'\'\'") - 1,
            b'"' => i = skip_string(bytes, i + 1, b'"', true) - 1,
            b'\'' => i = skip_string(bytes, i + 1, b'\'', false) - 1,
            _ => {}
        }
        at_line_start = false;
        i += 1;
    }
    open.first().copied()
}

/// The offset of the end of the line `i` is on (its `\n`, or the end).
fn line_end(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| i + p)
}

/// The offset just past the first `needle` at or after `from` (the end of
/// `bytes` if there is none).
fn skip_past(bytes: &[u8], from: usize, needle: &[u8]) -> usize {
    bytes[from.min(bytes.len())..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map_or(bytes.len(), |p| from + p + needle.len())
}

/// The offset just past a one-line string's closing `quote` (or its line's
/// end, where an unterminated one stops), from just inside its opening one.
fn skip_string(bytes: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    while i < bytes.len() && bytes[i] != b'\n' {
        if escapes && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            return i + 1;
        }
        i += 1;
    }
    i
}

const SETTINGS_KEYS: &[&str] = &[
    "name",
    "pool_size",
    "idle",
    "data_plane_threads",
    "memory_limit_mb",
];

/// The largest `memory_limit_mb`: 1 PiB, far above any machine, small
/// enough that the limit in bytes never overflows.
const MAX_MEMORY_LIMIT_MB: usize = 1 << 30;

/// The longest stage id, in characters. Ids are names for people and for
/// `inputs`, printed in tables padded to the longest one; 64 is more than
/// any readable name, and keeps every message and table line short.
pub(crate) const MAX_ID_CHARS: usize = 64;

fn read_settings(table: &DeTable<'_>, raw: &mut RawPipeline) {
    for (key, value) in sorted(table) {
        let issues = &mut raw.issues;
        match key.get_ref().as_ref() {
            "name" => {
                raw.name = string(key, value, issues).filter(|name| {
                    if name.get_ref().trim().is_empty() {
                        issues.push(Issue::new(value.span(), "`name` must not be empty"));
                        false
                    } else {
                        true
                    }
                })
            }
            "pool_size" => raw.pool_size = count(key, value, 1, 1 << 20, issues),
            "memory_limit_mb" => {
                raw.memory_limit_mb = count(key, value, 1, MAX_MEMORY_LIMIT_MB, issues)
            }
            "idle" => raw.idle = choice(key, value, IDLE_STRATEGIES, issues),
            "data_plane_threads" => {
                raw.data_plane_threads = count(key, value, 1, 1, issues).or_else(|| {
                    if let DeValue::Integer(_) = value.get_ref() {
                        if let Some(last) = issues.last_mut() {
                            last.hint =
                                Some("only one data-plane thread is supported for now".into());
                        }
                    }
                    None
                })
            }
            unknown => issues.push(unknown_key(
                key.span(),
                unknown,
                "in `[pipeline]`",
                SETTINGS_KEYS,
            )),
        }
    }
}

/// The keys a `[[stage]]` table may have.
pub(crate) const STAGE_KEYS: &[&str] = &[
    "id",
    "plugin",
    "stage_type",
    "inputs",
    "queue",
    "on_error",
    "config",
];

fn read_stage(span: Span, table: &DeTable<'_>, issues: &mut Vec<Issue>) -> RawStage {
    let mut stage = RawStage {
        span,
        ..RawStage::default()
    };
    for (key, value) in sorted(table) {
        stage.keys.push(key.get_ref().to_string());
        match key.get_ref().as_ref() {
            // A malformed id is reported but kept, so `inputs` naming it
            // still resolve and nothing else is reported because of it.
            "id" => stage.id = string(key, value, issues).inspect(|id| check_id(id, issues)),
            "plugin" => stage.plugin = string(key, value, issues),
            "stage_type" => stage.stage_type = choice(key, value, STAGE_TYPES, issues),
            "on_error" => stage.on_error = choice(key, value, ON_ERRORS, issues),
            "inputs" => stage.inputs = read_inputs(value, issues),
            "queue" => stage.queue = read_queue(key, value, issues),
            "config" => match value.get_ref() {
                DeValue::Table(table) => {
                    stage.config = Some(RawConfig {
                        span: value.span(),
                        entries: read_config_table(table, issues),
                    })
                }
                other => issues.push(
                    Issue::new(
                        key.span(),
                        format!("`config` must be a table, got {}", de_describe(other)),
                    )
                    .hint("write the stage's settings under a `[stage.config]` header"),
                ),
            },
            _ => stage
                .unknown_keys
                .push(Spanned::new(key.span(), key.get_ref().to_string())),
        }
    }
    stage
}

/// Ids name stages in `inputs` (`id` or `id.out`), so they keep to letters,
/// digits, `_` and `-`, and to [`MAX_ID_CHARS`] characters.
fn check_id(id: &Spanned<String>, issues: &mut Vec<Issue>) {
    let text = id.get_ref();
    let bad = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'));
    let length = text.chars().count();
    if text.is_empty() {
        issues.push(Issue::new(id.span(), "`id` must not be empty"));
    } else if length > MAX_ID_CHARS {
        issues.push(
            Issue::new(
                id.span(),
                format!(
                    "stage id `{}` is {length} characters long, more than the {MAX_ID_CHARS} an id may have",
                    shown_id(text)
                ),
            )
            .hint("use a short name: other stages name it in `inputs`"),
        );
    } else if let Some(c) = bad {
        issues.push(
            Issue::new(id.span(), format!("stage id `{text}` contains `{c}`"))
                .hint("ids use letters, digits, `_` and `-` only"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::model::{EdgePolicy, IdleStrategy, Location};
    use crate::graph::raw::write_json_object;

    #[test]
    fn a_full_file_reads_with_spans() {
        let text = r#"
[pipeline]
name = "alpha"
idle = "spin"

[[stage]]
id = "src"
plugin = "synth"

[[stage]]
id = "f"
plugin = "iir"
inputs = ["src.out"]
queue = { capacity = 4, policy = "drop_oldest" }
on_error = "restart"
[stage.config]
type = "bandpass"
cutoff_hz = [1, 40.5]
"#;
        let raw = parse(text).expect("valid TOML");
        assert!(raw.issues.is_empty(), "{:?}", raw.issues);
        assert_eq!(
            raw.name.as_ref().map(|n| n.get_ref().as_str()),
            Some("alpha")
        );
        assert_eq!(
            raw.idle.as_ref().map(|i| *i.get_ref()),
            Some(IdleStrategy::Spin)
        );
        assert_eq!(raw.stages.len(), 2);
        let f = &raw.stages[1];
        assert_eq!(&text[f.span.clone()], "[[stage]]");
        let inputs = f.inputs.as_ref().unwrap().get_ref();
        assert_eq!(
            inputs[0].get_ref(),
            "src.out",
            "resolved once the ports are known"
        );
        assert_eq!(&text[inputs[0].span()], "\"src.out\"");
        let queue = f.queue.as_ref().unwrap();
        assert_eq!(queue.capacity.as_ref().map(|c| *c.get_ref()), Some(4));
        assert_eq!(
            queue.policy.as_ref().map(|p| *p.get_ref()),
            Some(EdgePolicy::DropOldest)
        );
        let config = f.config.as_ref().unwrap();
        assert_eq!(&text[config.span.clone()], "[stage.config]");
        let mut json = String::new();
        write_json_object(&config.entries, &mut json);
        assert_eq!(json, r#"{"type":"bandpass","cutoff_hz":[1,40.5]}"#);
    }

    #[test]
    fn shape_problems_are_all_collected() {
        let text = "[pipeline]\npool = 3\nidle = \"parq\"\n[[stage]]\nid = \"a b\"\nqueue = { capacity = 0 }\n[stage.config]\nwhen = 1979-05-27\n";
        let raw = parse(text).expect("valid TOML");
        let messages: Vec<&str> = raw.issues.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(messages.len(), 5, "{messages:#?}");
        assert!(messages[0].contains("unknown key `pool`"));
        assert_eq!(
            raw.issues[0].hint.as_deref(),
            Some("did you mean `pool_size`?")
        );
        assert!(messages[1].contains("`idle` must be one of"));
        assert_eq!(raw.issues[1].hint.as_deref(), Some("did you mean `park`?"));
        assert!(messages[2].contains("contains ` `"));
        assert!(messages[3].contains("`capacity` must be an integer from 1 to 65536, got 0"));
        assert!(messages[4].contains("date-time"));
    }

    #[test]
    fn ids_longer_than_the_limit_are_refused_at_the_id_and_shown_cut() {
        let ok = "a".repeat(MAX_ID_CHARS);
        let raw = parse(&format!("[[stage]]\nid = \"{ok}\"\n")).expect("valid TOML");
        assert!(raw.issues.is_empty(), "{:?}", raw.issues);
        // 70,000 characters used to reach the `validate` table, whose
        // padding panics past 65,535.
        for length in [MAX_ID_CHARS + 1, 70_000] {
            let long = "é".repeat(length);
            let text = format!("[[stage]]\nid = \"{long}\"\n");
            let raw = parse(&text).expect("valid TOML");
            let [issue] = &raw.issues[..] else {
                panic!("{:?}", raw.issues)
            };
            assert_eq!(
                LineIndex::new(&text).location(issue.span.start),
                Location { line: 2, column: 6 }
            );
            let shown = format!("{}…", "é".repeat(MAX_ID_CHARS));
            assert_eq!(
                issue.message,
                format!(
                    "stage id `{shown}` is {length} characters long, more than the 64 an id may have"
                )
            );
            assert_eq!(
                raw.stages[0]
                    .id
                    .as_ref()
                    .map(|id| id.get_ref().chars().count()),
                Some(length),
                "kept, so `inputs` naming it resolve"
            );
        }
    }

    #[test]
    fn the_memory_limit_is_a_pipeline_setting_in_range() {
        let raw = parse("[pipeline]\nmemory_limit_mb = 512\n").expect("valid TOML");
        assert!(raw.issues.is_empty(), "{:?}", raw.issues);
        assert_eq!(raw.memory_limit_mb.map(|m| m.into_inner()), Some(512));
        for bad in [
            "0",
            "-1",
            "1073741825",
            "18446744073709551616",
            "1.5",
            "\"1G\"",
        ] {
            let raw = parse(&format!("[pipeline]\nmemory_limit_mb = {bad}\n")).expect("TOML");
            let [issue] = &raw.issues[..] else {
                panic!("{bad}: {:?}", raw.issues)
            };
            assert!(
                issue
                    .message
                    .starts_with("`memory_limit_mb` must be an integer from 1 to 1073741824, got"),
                "{}",
                issue.message
            );
            assert_eq!(issue.span.start, "[pipeline]\nmemory_limit_mb = ".len());
        }
    }

    #[test]
    fn a_list_left_open_is_reported_at_its_bracket_not_where_the_parser_noticed() {
        let text = "[[stage]]\nid = \"f\"\n[stage.config]\ncutoff_hz = [1.0, 40.0\n\n[[stage]]\nid = \"g\"\n";
        let issue = parse(text).unwrap_err();
        assert_eq!(
            LineIndex::new(text).location(issue.span.start),
            Location {
                line: 4,
                column: 13
            }
        );
        assert_eq!(issue.message, "invalid TOML: this `[` is never closed");
        let hint = issue.hint.as_deref().unwrap_or_default();
        assert!(
            hint.starts_with("the parser noticed at line 6, column 1"),
            "{hint}"
        );
    }

    #[test]
    fn a_missing_comma_inside_a_closed_multi_line_list_stays_where_it_is() {
        // Brackets in strings and comments do not count; this list closes.
        let text = "# [ a comment\nx = [\n  \"[\", # ]\n  1\n  2\n]\n[table]\n";
        let issue = parse(text).unwrap_err();
        assert_eq!(LineIndex::new(text).location(issue.span.start).line, 5);
        assert!(issue.message.contains("comma"), "{}", issue.message);
    }

    #[test]
    fn a_syntax_error_has_a_span_and_says_what_was_expected() {
        let text = "[[stage]]\nid = \n";
        let issue = parse(text).unwrap_err();
        assert_eq!(
            LineIndex::new(text).location(issue.span.start),
            Location { line: 2, column: 6 }
        );
        assert!(issue.message.contains("expected"), "{}", issue.message);
    }
}
