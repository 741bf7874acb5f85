//! Does a stage's `[stage.config]` fit its kind's schema? Every key known,
//! every value of the key's type, every required key present; a config that
//! fits is handed on as the JSON the plugin will read.

use super::raw::{ConfigValue, RawConfig, RawStage, write_json_object};
use super::report::{Issue, backticked, did_you_mean, name_of};
use hsp_sdk::abi::{ConfigType, StageDescriptor};
use toml::Spanned;

/// `stage`'s config against `descriptor`'s schema; its JSON when it passes.
pub(super) fn check_config(
    stage: &RawStage,
    descriptor: &StageDescriptor,
    issues: &mut Vec<Issue>,
) -> Option<String> {
    let empty = RawConfig::default();
    let config = stage.config.as_ref().unwrap_or(&empty);
    let mut ok = true;
    for (key, value) in &config.entries {
        ok &= check_entry(descriptor, key, value.get_ref(), issues);
    }
    ok &= check_required(stage, descriptor, config, issues);
    ok.then(|| {
        let mut json = String::new();
        write_json_object(&config.entries, &mut json);
        json
    })
}

/// One entry against the schema: a key it has, with a value of the key's
/// type. False when it is not (reported, unless the value was unusable,
/// which the parser reported).
fn check_entry(
    descriptor: &StageDescriptor,
    key: &Spanned<String>,
    value: &ConfigValue,
    issues: &mut Vec<Issue>,
) -> bool {
    let Some(field) = descriptor
        .config
        .iter()
        .find(|f| f.key.as_str() == key.get_ref())
    else {
        issues.push(unknown_config_key(descriptor, key));
        return false;
    };
    if value.has_invalid() {
        return false;
    }
    let Some(got) = type_mismatch(field.ty, value) else {
        return true;
    };
    let article = if field.ty == ConfigType::Integer {
        "an"
    } else {
        "a"
    };
    issues.push(
        Issue::new(
            key.span(),
            format!(
                "`{}` must be {article} {}, got {got}",
                key.get_ref(),
                field.ty.name()
            ),
        )
        .maybe_hint(example(field.ty, key.get_ref())),
    );
    false
}

/// A key the schema does not have, with a did-you-mean or the keys it has.
fn unknown_config_key(descriptor: &StageDescriptor, key: &Spanned<String>) -> Issue {
    let kind = descriptor.kind.as_str();
    let keys: Vec<&str> = descriptor.config.iter().map(|f| f.key.as_str()).collect();
    let hint = did_you_mean(key.get_ref(), keys.iter().copied()).unwrap_or_else(|| {
        if keys.is_empty() {
            format!("`{kind}` takes no config keys")
        } else {
            format!("`{kind}` takes {}", backticked(&keys))
        }
    });
    Issue::new(
        key.span(),
        format!(
            "unknown config key `{}` for stage kind `{kind}`",
            key.get_ref()
        ),
    )
    .hint(hint)
}

/// Every key the schema requires (one without a default) that `config`
/// lacks, reported at `[stage.config]` or, without one, at the stage.
/// False when one is missing.
fn check_required(
    stage: &RawStage,
    descriptor: &StageDescriptor,
    config: &RawConfig,
    issues: &mut Vec<Issue>,
) -> bool {
    let kind = descriptor.kind.as_str();
    let mut ok = true;
    for field in descriptor.config.iter() {
        if field.default.is_some()
            || config
                .entries
                .iter()
                .any(|(k, _)| k.get_ref() == field.key.as_str())
        {
            continue;
        }
        let span = stage.config_span();
        let unit = if field.unit.is_empty() {
            String::new()
        } else {
            format!(", in {}", field.unit)
        };
        issues.push(
            Issue::new(
                span,
                format!(
                    "stage {} (`{kind}`) is missing required config key `{}` ({}{unit})",
                    name_of(stage),
                    field.key,
                    field.ty.name()
                ),
            )
            .hint(format!("`{}`: {}", field.key, field.doc)),
        );
        ok = false;
    }
    ok
}

/// What `value` is when it does not fit `ty`. Whether it fits is the SDK's
/// rule ([`ConfigType::fits`]), the one the plugin and live changes apply.
fn type_mismatch(ty: ConfigType, value: &ConfigValue) -> Option<String> {
    if ty.fits(&value.to_json()) {
        return None;
    }
    let item_type = match ty {
        ConfigType::FloatList => Some(ConfigType::Float),
        ConfigType::IntegerList => Some(ConfigType::Integer),
        ConfigType::StringList => Some(ConfigType::String),
        _ => None,
    };
    if let (Some(item_type), ConfigValue::Array(items)) = (item_type, value) {
        if let Some(bad) = items
            .iter()
            .find(|item| !item_type.fits(&item.get_ref().to_json()))
        {
            return Some(format!("a list holding {}", bad.get_ref().describe()));
        }
    }
    Some(value.describe().to_string())
}

/// How a value of type `ty` is written, for a hint; none for a float,
/// which any number is.
fn example(ty: ConfigType, key: &str) -> Option<String> {
    match ty {
        ConfigType::FloatList => Some(format!(
            "write a list of numbers, e.g. `{key} = [8.0, 13.0]`"
        )),
        ConfigType::IntegerList => Some(format!(
            "write a list of whole numbers, e.g. `{key} = [0, 3]`"
        )),
        ConfigType::StringList => Some(format!(
            "write a list of quoted strings, e.g. `{key} = [\"Fz\", \"Cz\"]`"
        )),
        ConfigType::String => Some("put the value in quotes".to_string()),
        ConfigType::Integer => Some("write a whole number without a decimal point".to_string()),
        ConfigType::Bool => Some("write `true` or `false`".to_string()),
        ConfigType::Float => None,
    }
}
