//! How is each value of a pipeline file read? As a string, a count in
//! range, one of a few names, a list of `inputs`, a `queue` table or a
//! config value JSON can carry; a value of the wrong shape is an issue at
//! the value, and reading goes on.

use super::model::{EdgePolicy, IdleStrategy, OnError, StageType};
use super::raw::{ConfigValue, RawQueue};
use super::report::{Issue, Span, backticked, did_you_mean};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// `idle`'s values, in the order messages list them.
pub(super) const IDLE_STRATEGIES: &[(&str, IdleStrategy)] = &[
    ("spin", IdleStrategy::Spin),
    ("yield", IdleStrategy::Yield),
    ("park", IdleStrategy::Park),
];

/// `stage_type`'s values, in the order messages list them.
pub(super) const STAGE_TYPES: &[(&str, StageType)] = &[
    ("data_plane", StageType::DataPlane),
    ("control", StageType::Control),
];

/// `on_error`'s values, in the order messages list them.
pub(super) const ON_ERRORS: &[(&str, OnError)] = &[
    ("stop", OnError::Stop),
    ("restart", OnError::Restart),
    ("bypass", OnError::Bypass),
];

/// `queue.policy`'s values, in the order messages list them.
const EDGE_POLICIES: &[(&str, EdgePolicy)] = &[
    ("block", EdgePolicy::Block),
    ("drop_oldest", EdgePolicy::DropOldest),
];

/// The entries of `table` in file order (`toml` keeps them sorted by name).
pub(super) fn sorted<'a, 'i>(
    table: &'a DeTable<'i>,
) -> Vec<(
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

pub(super) fn read_inputs(
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
        // `id` or `id.port`: resolved once the stages' ports are known.
        inputs.push(Spanned::new(item.span(), text.to_string()));
    }
    Some(Spanned::new(value.span(), inputs))
}

pub(super) fn read_queue(
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
            "policy" => queue.policy = choice(key, value, EDGE_POLICIES, issues),
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

pub(super) fn read_config_table(
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
pub(super) fn string(
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
pub(super) fn count(
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
pub(super) fn choice<T: Copy>(
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
pub(super) fn unknown_key(span: Span, key: &str, place: &str, known: &[&str]) -> Issue {
    let hint = did_you_mean(key, known.iter().copied())
        .unwrap_or_else(|| format!("known keys: {}", backticked(known)));
    Issue::new(span, format!("unknown key `{key}` {place}")).hint(hint)
}

/// "a string", "an integer", ...: a TOML value's type, for messages.
pub(super) fn de_describe(value: &DeValue<'_>) -> &'static str {
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
