//! What does a pipeline file hold once read? Its raw form: every setting,
//! stage and config value as the file wrote it, each with its span, for
//! the validator to check against the plugins.

use super::model::{EdgePolicy, IdleStrategy, OnError, StageType};
use super::report::{Issue, Span};
use toml::Spanned;

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

impl RawStage {
    /// Where a message about the stage's kind points: its `plugin` value,
    /// or its header when it has none.
    pub(crate) fn plugin_span(&self) -> Span {
        self.plugin.as_ref().map_or(self.span.clone(), |p| p.span())
    }

    /// Where a message about the stage's config as a whole points: its
    /// `[stage.config]` header, or the stage's when it has none.
    pub(crate) fn config_span(&self) -> Span {
        self.config
            .as_ref()
            .map_or(self.span.clone(), |c| c.span.clone())
    }
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

    /// The value as JSON, as the plugin will read it.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut text = String::new();
        self.write_json(&mut text);
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
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
