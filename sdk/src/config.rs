//! Typed stage config: the schema a stage publishes, and the parsing that
//! turns the pipeline file's `[stage.config]` table into the stage's struct.

use crate::abi::{ConfigField, ConfigType};
use crate::stage::StageError;
use abi_stable::std_types::{RNone, RSome, RString};
use serde::de::DeserializeOwned;

/// One config key of a stage kind: its type, default, unit and doc. The
/// defaults here are the only ones: [`parse_config`] fills them in before the
/// stage's struct is deserialized, so the schema and the code cannot disagree.
///
/// ```
/// use hsp_sdk::{ConfigSpec, ConfigType};
///
/// const CONFIG: &[ConfigSpec] = &[
///     ConfigSpec::required("cutoff_hz", ConfigType::Float, "Corner frequency").unit("Hz"),
///     ConfigSpec::optional("order", ConfigType::Integer, "4", "Filter order, 1 to 8"),
/// ];
/// assert_eq!(CONFIG[1].default, Some("4"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigSpec {
    /// The key in `[stage.config]`.
    pub key: &'static str,
    /// The value's type.
    pub ty: ConfigType,
    /// The default, as a JSON literal (`"4"`, `"\"hann\""`, `"[8, 13]"`);
    /// `None` when the key is required.
    pub default: Option<&'static str>,
    /// Unit ("Hz", "s"), empty when none.
    pub unit: &'static str,
    /// One line on what the key does.
    pub doc: &'static str,
}

impl ConfigSpec {
    /// A key the pipeline must set.
    pub const fn required(key: &'static str, ty: ConfigType, doc: &'static str) -> Self {
        Self {
            key,
            ty,
            default: None,
            unit: "",
            doc,
        }
    }

    /// A key with a default, given as a JSON literal.
    pub const fn optional(
        key: &'static str,
        ty: ConfigType,
        default: &'static str,
        doc: &'static str,
    ) -> Self {
        Self {
            key,
            ty,
            default: Some(default),
            unit: "",
            doc,
        }
    }

    /// The same key with a unit.
    pub const fn unit(mut self, unit: &'static str) -> Self {
        self.unit = unit;
        self
    }

    pub(crate) fn to_field(self) -> ConfigField {
        ConfigField {
            key: self.key.into(),
            ty: self.ty,
            default: match self.default {
                Some(json) => RSome(RString::from(json)),
                None => RNone,
            },
            unit: self.unit.into(),
            doc: self.doc.into(),
        }
    }
}

/// Parses `config_json` (a JSON object) into `C`, after filling in the
/// defaults from `schema`. Errors name the key at fault: an unknown key, a
/// missing required key, a value of the wrong type.
///
/// `C` should be `#[serde(deny_unknown_fields)]` so a misspelt key is an error.
///
/// ```
/// use hsp_sdk::{parse_config, ConfigSpec, ConfigType};
///
/// #[derive(Debug, serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Gain { gain: f64 }
///
/// const SCHEMA: &[ConfigSpec] = &[ConfigSpec::optional("gain", ConfigType::Float, "1.0", "Factor")];
/// assert_eq!(parse_config::<Gain>(SCHEMA, "{}").unwrap().gain, 1.0);
/// assert_eq!(parse_config::<Gain>(SCHEMA, r#"{"gain": 2.5}"#).unwrap().gain, 2.5);
/// let error = parse_config::<Gain>(SCHEMA, r#"{"gian": 2.5}"#).unwrap_err();
/// assert!(error.to_string().contains("unknown key `gian`"), "{error}");
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Order { order: u8 }
/// const ORDER: &[ConfigSpec] = &[ConfigSpec::required("order", ConfigType::Integer, "Filter order")];
/// let error = parse_config::<Order>(ORDER, r#"{"order": 300}"#).unwrap_err();
/// assert!(error.to_string().starts_with("config key `order`:"), "{error}");
/// ```
pub fn parse_config<C: DeserializeOwned>(
    schema: &[ConfigSpec],
    config_json: &str,
) -> Result<C, StageError> {
    let mut value: serde_json::Value = if config_json.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_str(config_json)
            .map_err(|e| StageError::new(format!("config is not valid JSON: {e}")))?
    };
    let object = value
        .as_object_mut()
        .ok_or_else(|| StageError::new("config must be a table of keys"))?;
    for (key, value) in object.iter() {
        if let Some(spec) = schema.iter().find(|spec| spec.key == key) {
            check_type(spec, value)?;
            continue;
        }
        {
            let known: Vec<_> = schema.iter().map(|s| format!("`{}`", s.key)).collect();
            return Err(StageError::new(format!(
                "unknown key `{key}` in config (known keys: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    for spec in schema {
        if object.contains_key(spec.key) {
            continue;
        }
        match spec.default {
            Some(default) => {
                let default = serde_json::from_str(default).map_err(|e| {
                    StageError::new(format!(
                        "the stage's default for `{}` is not valid JSON ({e}): a bug in the plugin",
                        spec.key
                    ))
                })?;
                object.insert(spec.key.to_string(), default);
            }
            None => {
                return Err(StageError::new(format!(
                    "missing required key `{}` ({}{}): {}",
                    spec.key,
                    spec.ty.name(),
                    if spec.unit.is_empty() {
                        String::new()
                    } else {
                        format!(", in {}", spec.unit)
                    },
                    spec.doc
                )));
            }
        }
    }
    // The path names the key even where serde's message does not (an
    // integer out of range for a `u32` field, say).
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        let message = strip_json_position(e.inner());
        StageError::new(if key.is_empty() || key == "." {
            format!("config: {message}")
        } else {
            format!("config key `{key}`: {message}")
        })
    })
}

/// Checks `value` against the key's declared type, so that a wrong type is
/// reported by key name (serde's own message does not name it).
fn check_type(spec: &ConfigSpec, value: &serde_json::Value) -> Result<(), StageError> {
    use serde_json::Value;
    let fits = match spec.ty {
        ConfigType::Bool => value.is_boolean(),
        ConfigType::Integer => value.is_i64() || value.is_u64(),
        ConfigType::Float => value.is_number(),
        ConfigType::String => value.is_string(),
        ConfigType::FloatList => value
            .as_array()
            .is_some_and(|items| items.iter().all(Value::is_number)),
    };
    if fits {
        return Ok(());
    }
    let got = match value {
        Value::Null => "nothing".to_string(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a table".to_string(),
    };
    Err(StageError::new(format!(
        "key `{}` must be {} {}, got {got}",
        spec.key,
        if matches!(spec.ty, ConfigType::Integer) {
            "an"
        } else {
            "a"
        },
        spec.ty.name()
    )))
}

/// serde_json reports positions in the JSON text the host made, which mean
/// nothing to the user; the host adds the TOML position instead.
fn strip_json_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}
