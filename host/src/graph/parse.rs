//! Reading a pipeline file into its raw, span-carrying form.
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

use super::model::{EdgePolicy, IdleStrategy, OnError, StageType};
use super::report::{Issue, Span, did_you_mean, shown_id};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A pipeline file's contents, shape-checked, every part with its span.
#[derive(Debug, Default)]
pub(crate) struct RawPipeline {
    /// `[pipeline] name`.
    pub name: Option<Spanned<String>>,
    /// `[pipeline] pool_size`.
    pub pool_size: Option<Spanned<usize>>,
    /// `[pipeline] idle`.
    pub idle: Option<Spanned<IdleStrategy>>,
    /// `[pipeline] data_plane_threads`.
    pub data_plane_threads: Option<Spanned<usize>>,
    /// `[pipeline] memory_limit_mb`: the most the runtime may preallocate
    /// for packets, in MiB (see `limits.rs`).
    pub memory_limit_mb: Option<Spanned<usize>>,
    /// The `[[stage]]` tables, in file order.
    pub stages: Vec<RawStage>,
    /// Whether the file has a `stage` key at all (so an unusable one is not
    /// also reported as "no stages").
    pub has_stage_key: bool,
    /// Shape problems found while reading (the file is still usable for
    /// further checks, so these are reported together with those).
    pub issues: Vec<Issue>,
}

/// One `[[stage]]` table.
#[derive(Debug, Default)]
pub(crate) struct RawStage {
    /// The `[[stage]]` header.
    pub span: Span,
    /// `id`.
    pub id: Option<Spanned<String>>,
    /// `plugin`: the stage kind.
    pub plugin: Option<Spanned<String>>,
    /// `stage_type`.
    pub stage_type: Option<Spanned<StageType>>,
    /// `inputs` (the whole list's span), each entry the upstream stage id
    /// with any `.out` port suffix removed.
    pub inputs: Option<Spanned<Vec<Spanned<String>>>>,
    /// `queue`.
    pub queue: Option<RawQueue>,
    /// `on_error`.
    pub on_error: Option<Spanned<OnError>>,
    /// `[stage.config]`.
    pub config: Option<RawConfig>,
    /// Keys of the stage table that are not stage settings; reported by the
    /// validator, which knows the stage kind's config keys for a better hint.
    pub unknown_keys: Vec<Spanned<String>>,
    /// Every key the table has, valid or not (to tell a missing key from a
    /// wrong one, which was reported already).
    pub keys: Vec<String>,
}

/// A stage's `queue = { capacity, policy, decimate }`.
#[derive(Debug, Default)]
pub(crate) struct RawQueue {
    /// The key `queue`.
    pub span: Span,
    /// `capacity`.
    pub capacity: Option<Spanned<usize>>,
    /// `policy`.
    pub policy: Option<Spanned<EdgePolicy>>,
    /// `decimate`.
    pub decimate: Option<Spanned<usize>>,
}

/// A stage's `[stage.config]` table.
#[derive(Debug, Default)]
pub(crate) struct RawConfig {
    /// The table's header (or inline table).
    pub span: Span,
    /// Its keys and values, in file order.
    pub entries: Vec<(Spanned<String>, Spanned<ConfigValue>)>,
}

/// A value in `[stage.config]`, as it will be handed on in JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConfigValue {
    Bool(bool),
    Integer(i64),
    Float(f64),
    String(String),
    Array(Vec<Spanned<ConfigValue>>),
    Table(Vec<(Spanned<String>, Spanned<ConfigValue>)>),
    /// A value JSON cannot carry (a date-time, an integer out of range, a
    /// NaN or infinity); already reported.
    Invalid,
}

impl ConfigValue {
    /// True when this value or one inside it is [`ConfigValue::Invalid`].
    pub(crate) fn has_invalid(&self) -> bool {
        match self {
            Self::Invalid => true,
            Self::Array(items) => items.iter().any(|item| item.get_ref().has_invalid()),
            Self::Table(entries) => entries.iter().any(|(_, v)| v.get_ref().has_invalid()),
            _ => false,
        }
    }

    /// "a string", "an integer", ...: what the user wrote, for messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Self::Bool(_) => "a bool",
            Self::Integer(_) => "an integer",
            Self::Float(_) => "a float",
            Self::String(_) => "a string",
            Self::Array(_) => "a list",
            Self::Table(_) => "a table",
            Self::Invalid => "an unusable value",
        }
    }

    /// The value as JSON text.
    pub(crate) fn write_json(&self, out: &mut String) {
        match self {
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Integer(i) => out.push_str(&i.to_string()),
            Self::Float(f) => {
                // `{:?}` keeps a decimal point (1.0, not 1), so a float stays
                // a float in JSON; finite values only reach here.
                out.push_str(&format!("{f:?}"));
            }
            Self::String(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
            Self::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.get_ref().write_json(out);
                }
                out.push(']');
            }
            Self::Table(entries) => write_json_object(entries, out),
            Self::Invalid => out.push_str("null"),
        }
    }
}

/// `entries` as a JSON object.
pub(crate) fn write_json_object(
    entries: &[(Spanned<String>, Spanned<ConfigValue>)],
    out: &mut String,
) {
    out.push('{');
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::String(key.get_ref().clone()).to_string());
        out.push(':');
        value.get_ref().write_json(out);
    }
    out.push('}');
}

/// Parses the pipeline file `text`. `Err` is a TOML syntax error (nothing
/// else can be trusted after one); shape problems are collected in
/// [`RawPipeline::issues`].
pub(crate) fn parse(text: &str) -> Result<RawPipeline, Issue> {
    let root = DeTable::parse(text).map_err(|error| syntax_issue(text, &error))?;
    let mut raw = RawPipeline::default();
    for (key, value) in sorted(root.get_ref()) {
        raw.has_stage_key |= key.get_ref() == "stage";
        match key.get_ref().as_ref() {
            "pipeline" => match value.get_ref() {
                DeValue::Table(table) => read_settings(table, &mut raw),
                other => raw.issues.push(
                    Issue::new(
                        key.span(),
                        format!("`pipeline` must be a table, got {}", de_describe(other)),
                    )
                    .hint("write the settings under a `[pipeline]` header"),
                ),
            },
            "stage" => match value.get_ref() {
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
                                    format!(
                                        "each stage must be a table, got {}",
                                        de_describe(other)
                                    ),
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
            },
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

/// The entries of `table` in file order (`toml` keeps them sorted by name).
fn sorted<'a, 'i>(
    table: &'a DeTable<'i>,
) -> Vec<(
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
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
    Issue::new(span, format!("invalid TOML: {message}; found {found}"))
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
            "idle" => {
                raw.idle = choice(
                    key,
                    value,
                    &[
                        ("spin", IdleStrategy::Spin),
                        ("yield", IdleStrategy::Yield),
                        ("park", IdleStrategy::Park),
                    ],
                    issues,
                )
            }
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
            "stage_type" => {
                stage.stage_type = choice(
                    key,
                    value,
                    &[
                        ("data_plane", StageType::DataPlane),
                        ("control", StageType::Control),
                    ],
                    issues,
                )
            }
            "on_error" => {
                stage.on_error = choice(
                    key,
                    value,
                    &[
                        ("stop", OnError::Stop),
                        ("restart", OnError::Restart),
                        ("bypass", OnError::Bypass),
                    ],
                    issues,
                )
            }
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

fn read_inputs(
    value: &Spanned<DeValue<'_>>,
    issues: &mut Vec<Issue>,
) -> Option<Spanned<Vec<Spanned<String>>>> {
    let items = match value.get_ref() {
        DeValue::Array(items) => items,
        DeValue::String(single) => {
            issues.push(
                Issue::new(
                    value.span(),
                    "`inputs` must be a list of stage ids, got a string",
                )
                .hint(format!("write `inputs = [\"{single}\"]`")),
            );
            return None;
        }
        other => {
            issues.push(Issue::new(
                value.span(),
                format!(
                    "`inputs` must be a list of stage ids, got {}",
                    de_describe(other)
                ),
            ));
            return None;
        }
    };
    let mut inputs = Vec::new();
    for item in items.iter() {
        let DeValue::String(text) = item.get_ref() else {
            issues.push(Issue::new(
                item.span(),
                format!(
                    "each entry of `inputs` must be a stage id string, got {}",
                    de_describe(item.get_ref())
                ),
            ));
            continue;
        };
        let id = match text.rsplit_once('.') {
            None => text.as_ref(),
            Some((id, "out")) => id,
            Some((id, port)) => {
                let (entry, port, stage) = (shown_id(text), shown_id(port), shown_id(id));
                issues.push(
                    Issue::new(item.span(), format!("`{entry}` names output port `{port}` of stage `{stage}`, but stages have one output port, `out`"))
                        .hint(format!("write `\"{stage}\"` or `\"{stage}.out\"`")),
                );
                id
            }
        };
        inputs.push(Spanned::new(item.span(), id.to_string()));
    }
    Some(Spanned::new(value.span(), inputs))
}

fn read_queue(
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
    issues: &mut Vec<Issue>,
) -> Option<RawQueue> {
    let DeValue::Table(table) = value.get_ref() else {
        issues.push(
            Issue::new(
                value.span(),
                format!(
                    "`queue` must be a table, got {}",
                    de_describe(value.get_ref())
                ),
            )
            .hint("write `queue = { capacity = 16, policy = \"block\" }`"),
        );
        return None;
    };
    let mut queue = RawQueue {
        span: key.span(),
        ..RawQueue::default()
    };
    for (key, value) in sorted(table) {
        match key.get_ref().as_ref() {
            "capacity" => queue.capacity = count(key, value, 1, 1 << 16, issues),
            "decimate" => queue.decimate = count(key, value, 1, 1 << 16, issues),
            "policy" => {
                queue.policy = choice(
                    key,
                    value,
                    &[
                        ("block", EdgePolicy::Block),
                        ("drop_oldest", EdgePolicy::DropOldest),
                    ],
                    issues,
                )
            }
            unknown => issues.push(unknown_key(
                key.span(),
                unknown,
                "in `queue`",
                &["capacity", "policy", "decimate"],
            )),
        }
    }
    Some(queue)
}

fn read_config_table(
    table: &DeTable<'_>,
    issues: &mut Vec<Issue>,
) -> Vec<(Spanned<String>, Spanned<ConfigValue>)> {
    sorted(table)
        .into_iter()
        .map(|(key, value)| {
            (
                Spanned::new(key.span(), key.get_ref().to_string()),
                config_value(key.get_ref(), value, issues),
            )
        })
        .collect()
}

fn config_value(
    key: &str,
    value: &Spanned<DeValue<'_>>,
    issues: &mut Vec<Issue>,
) -> Spanned<ConfigValue> {
    let span = value.span();
    let converted = match value.get_ref() {
        DeValue::Boolean(b) => ConfigValue::Bool(*b),
        DeValue::String(s) => ConfigValue::String(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(i) => ConfigValue::Integer(i),
            Err(_) => {
                issues.push(Issue::new(
                    span.clone(),
                    format!("`{key}` = {i} does not fit in a 64-bit integer"),
                ));
                ConfigValue::Invalid
            }
        },
        DeValue::Float(f) => match f.as_str().parse::<f64>() {
            Ok(f) if f.is_finite() => ConfigValue::Float(f),
            _ => {
                issues.push(
                    Issue::new(
                        span.clone(),
                        format!("`{key}` = {f} is not a finite number"),
                    )
                    .hint("configs are handed to plugins as JSON, which has no nan or inf"),
                );
                ConfigValue::Invalid
            }
        },
        DeValue::Datetime(_) => {
            issues.push(
                Issue::new(
                    span.clone(),
                    format!("`{key}` is a TOML date-time, which stage configs do not take"),
                )
                .hint("write it as a string in quotes"),
            );
            ConfigValue::Invalid
        }
        DeValue::Array(items) => ConfigValue::Array(
            items
                .iter()
                .map(|item| config_value(key, item, issues))
                .collect(),
        ),
        DeValue::Table(table) => ConfigValue::Table(read_config_table(table, issues)),
    };
    Spanned::new(span, converted)
}

/// A string value, or an issue.
fn string(
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
    issues: &mut Vec<Issue>,
) -> Option<Spanned<String>> {
    match value.get_ref() {
        DeValue::String(s) => Some(Spanned::new(value.span(), s.to_string())),
        other => {
            issues.push(Issue::new(
                value.span(),
                format!(
                    "`{}` must be a string, got {}",
                    key.get_ref(),
                    de_describe(other)
                ),
            ));
            None
        }
    }
}

/// A whole number in `min..=max`, or an issue.
fn count(
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
    min: usize,
    max: usize,
    issues: &mut Vec<Issue>,
) -> Option<Spanned<usize>> {
    let range = if min == max {
        format!("{min}")
    } else {
        format!("an integer from {min} to {max}")
    };
    let DeValue::Integer(integer) = value.get_ref() else {
        issues.push(Issue::new(
            value.span(),
            format!(
                "`{}` must be {range}, got {}",
                key.get_ref(),
                de_describe(value.get_ref())
            ),
        ));
        return None;
    };
    match i128::from_str_radix(integer.as_str(), integer.radix()) {
        Ok(n) if (min as i128..=max as i128).contains(&n) => {
            Some(Spanned::new(value.span(), n as usize))
        }
        _ => {
            issues.push(Issue::new(
                value.span(),
                format!("`{}` must be {range}, got {integer}", key.get_ref()),
            ));
            None
        }
    }
}

/// One of the strings in `options`, or an issue.
fn choice<T: Copy>(
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
    options: &[(&str, T)],
    issues: &mut Vec<Issue>,
) -> Option<Spanned<T>> {
    let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
    let expected = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    match value.get_ref() {
        DeValue::String(s) => {
            if let Some((_, v)) = options.iter().find(|(name, _)| *name == s.as_ref()) {
                return Some(Spanned::new(value.span(), *v));
            }
            issues.push(
                Issue::new(
                    value.span(),
                    format!("`{}` must be one of {expected}, got \"{s}\"", key.get_ref()),
                )
                .maybe_hint(did_you_mean(s, names.iter().copied())),
            );
        }
        other => issues.push(Issue::new(
            value.span(),
            format!(
                "`{}` must be one of {expected}, got {}",
                key.get_ref(),
                de_describe(other)
            ),
        )),
    }
    None
}

/// An unknown key, with a did-you-mean or the list of known keys.
fn unknown_key(span: Span, key: &str, place: &str, known: &[&str]) -> Issue {
    let hint = did_you_mean(key, known.iter().copied()).unwrap_or_else(|| {
        format!(
            "known keys: {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    Issue::new(span, format!("unknown key `{key}` {place}")).hint(hint)
}

/// "a string", "an integer", ...: a TOML value's type, for messages.
fn de_describe(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a bool",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::model::Location;
    use crate::graph::report::LineIndex;

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
        assert_eq!(inputs[0].get_ref(), "src");
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
