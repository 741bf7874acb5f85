//! Typed stage config, declared once: the struct a stage receives, with
//! `#[derive(StageConfig)]` publishing its keys (type, default, unit, doc)
//! in the plugin's manifest; the one rule of which value fits which type;
//! and the parsing that turns `[stage.config]` into the struct.

use crate::abi::{ConfigField, ConfigType};
use crate::stage::StageError;
use abi_stable::std_types::{RNone, RSome, RString};
use serde::de::DeserializeOwned;

/// A stage's config struct: the keys it publishes, each from one field.
///
/// Derive it. Each field is a key, named as serde names it (a
/// `#[serde(rename)]` included), typed by its Rust type ([`ConfigValue`]),
/// documented by its doc comment (what `host plugins inspect` and error
/// hints show). `#[config(default = ...)]` makes a key optional (the value
/// is written as a Rust literal: a number, a string, a bool or a list of
/// them); `#[config(unit = "Hz")]` gives its unit. A key without a default
/// is required. Defaults are filled in before the struct is deserialized,
/// so the struct needs no `#[serde(default)]`.
///
/// ```
/// use hsp_sdk::{parse_config, ConfigType, StageConfig};
///
/// #[derive(Debug, serde::Deserialize, StageConfig)]
/// #[serde(deny_unknown_fields)]
/// struct Notch {
///     /// Centre frequency.
///     #[config(unit = "Hz")]
///     freq_hz: f64,
///     /// Filter order, 1 to 8.
///     #[config(default = 4)]
///     order: u32,
/// }
///
/// assert_eq!(Notch::FIELDS[0].key, "freq_hz");
/// assert_eq!(Notch::FIELDS[0].unit, "Hz");
/// assert_eq!(Notch::FIELDS[1].ty, ConfigType::Integer);
/// assert_eq!(Notch::FIELDS[1].default, Some("4"));
/// assert_eq!(parse_config::<Notch>(r#"{"freq_hz": 50}"#).unwrap().order, 4);
/// let error = parse_config::<Notch>(r#"{"freq": 50}"#).unwrap_err();
/// assert!(error.to_string().contains("unknown key `freq`"), "{error}");
/// ```
pub trait StageConfig: DeserializeOwned {
    /// Its keys, in field order.
    const FIELDS: &'static [ConfigSpec];
}

pub use hsp_sdk_macros::StageConfig;

/// The config of a stage that takes none: any key is an error.
///
/// ```
/// use hsp_sdk::{parse_config, NoConfig};
///
/// assert!(parse_config::<NoConfig>("{}").is_ok());
/// assert!(parse_config::<NoConfig>(r#"{"gain": 2}"#).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

impl StageConfig for NoConfig {
    const FIELDS: &'static [ConfigSpec] = &[];
}

/// A config taken as raw JSON, publishing no keys (tests and examples).
impl StageConfig for serde_json::Value {
    const FIELDS: &'static [ConfigSpec] = &[];
}

/// A Rust type a config field may have, and the [`ConfigType`] it publishes.
/// Implement it for an enum read from a string (`const TYPE =
/// ConfigType::String`).
///
/// ```
/// use hsp_sdk::{ConfigType, ConfigValue};
///
/// assert_eq!(<u32 as ConfigValue>::TYPE, ConfigType::Integer);
/// assert_eq!(<Vec<f64> as ConfigValue>::TYPE, ConfigType::FloatList);
/// ```
pub trait ConfigValue {
    /// What the pipeline file must give for it.
    const TYPE: ConfigType;
}

macro_rules! config_values {
    ($ty:expr => $($rust:ty),*) => {
        $(impl ConfigValue for $rust {
            const TYPE: ConfigType = $ty;
        })*
    };
}

config_values!(ConfigType::Bool => bool);
config_values!(ConfigType::Integer => i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);
config_values!(ConfigType::Float => f32, f64);
config_values!(ConfigType::String => String);
config_values!(ConfigType::FloatList => Vec<f32>, Vec<f64>);
config_values!(ConfigType::IntegerList => Vec<i32>, Vec<i64>, Vec<u32>, Vec<u64>, Vec<usize>);
config_values!(ConfigType::StringList => Vec<String>);

impl ConfigType {
    /// Whether `value` is a value of this type: the one rule the host applies
    /// to the pipeline file and to live parameter changes, and the SDK to the
    /// config it parses. A float takes any number; a list of floats any list
    /// of numbers.
    ///
    /// ```
    /// use hsp_sdk::ConfigType;
    /// use serde_json::json;
    ///
    /// assert!(ConfigType::Float.fits(&json!(4)));
    /// assert!(!ConfigType::Integer.fits(&json!(4.5)));
    /// assert!(ConfigType::FloatList.fits(&json!([8, 13.5])));
    /// assert!(!ConfigType::FloatList.fits(&json!([8, "13"])));
    /// assert!(ConfigType::IntegerList.fits(&json!([0, 3])));
    /// assert!(!ConfigType::IntegerList.fits(&json!([0, 3.5])));
    /// assert!(ConfigType::StringList.fits(&json!(["Fz", "Cz"])));
    /// assert!(!ConfigType::StringList.fits(&json!(["Fz", 3])));
    /// ```
    pub fn fits(self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        match self {
            Self::Bool => value.is_boolean(),
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::Float => value.is_number(),
            Self::String => value.is_string(),
            Self::FloatList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_number)),
            Self::IntegerList => value
                .as_array()
                .is_some_and(|items| items.iter().all(|v| v.is_i64() || v.is_u64())),
            Self::StringList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
        }
    }

    /// `value` as this type would take it from a program rather than a
    /// person: a whole number sent as a float (`4.0`: control stages compute
    /// in floats) for an integer becomes an integer. Anything else is
    /// returned as it is, for [`fits`](Self::fits) to judge.
    ///
    /// ```
    /// use hsp_sdk::ConfigType;
    /// use serde_json::json;
    ///
    /// assert_eq!(ConfigType::Integer.normalize(json!(4.0)), json!(4));
    /// assert_eq!(ConfigType::Integer.normalize(json!(4.5)), json!(4.5));
    /// assert_eq!(ConfigType::Float.normalize(json!(4.0)), json!(4.0));
    /// ```
    pub fn normalize(self, value: serde_json::Value) -> serde_json::Value {
        match value.as_f64() {
            Some(number)
                if self == Self::Integer
                    && !(value.is_i64() || value.is_u64())
                    && number.fract() == 0.0
                    && number.abs() < 9.0e15 =>
            {
                serde_json::Value::from(number as i64)
            }
            _ => value,
        }
    }
}

/// One config key of a stage kind: its type, default, unit and doc, as
/// `#[derive(StageConfig)]` publishes it. The defaults here are the only
/// ones: [`parse_config`] fills them in before the struct is deserialized,
/// so the schema and the code cannot disagree.
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
/// defaults `C` declares. Errors name the key at fault: an unknown key, a
/// missing required key, a value of the wrong type.
///
/// `C` should be `#[serde(deny_unknown_fields)]` so a misspelt key is an error.
///
/// ```
/// use hsp_sdk::{parse_config, StageConfig};
///
/// #[derive(Debug, serde::Deserialize, StageConfig)]
/// #[serde(deny_unknown_fields)]
/// struct Gain {
///     /// Factor.
///     #[config(default = 1.0)]
///     gain: f64,
/// }
///
/// assert_eq!(parse_config::<Gain>("{}").unwrap().gain, 1.0);
/// assert_eq!(parse_config::<Gain>(r#"{"gain": 2.5}"#).unwrap().gain, 2.5);
/// let error = parse_config::<Gain>(r#"{"gian": 2.5}"#).unwrap_err();
/// assert!(error.to_string().contains("unknown key `gian`"), "{error}");
///
/// #[derive(Debug, serde::Deserialize, StageConfig)]
/// struct Order {
///     /// Filter order.
///     order: u8,
/// }
/// let error = parse_config::<Order>(r#"{"order": 300}"#).unwrap_err();
/// assert!(error.to_string().starts_with("config key `order`:"), "{error}");
/// ```
pub fn parse_config<C: StageConfig>(config_json: &str) -> Result<C, StageError> {
    let mut value: serde_json::Value = if config_json.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_str(config_json)
            .map_err(|e| StageError::new(format!("config is not valid JSON: {e}")))?
    };
    let object = value
        .as_object_mut()
        .ok_or_else(|| StageError::new("config must be a table of keys"))?;
    let schema = C::FIELDS;
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
    if spec.ty.fits(value) {
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
