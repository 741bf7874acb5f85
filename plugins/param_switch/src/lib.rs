//! `param_switch`: a control stage that changes a parameter of a running
//! data-plane stage when events arrive. An event with code `rise_code` sets
//! config key `key` of stage `target` to `rise_value`; one with `fall_code`
//! sets it to `fall_value`; other codes are ignored. Fed by a `threshold`
//! stage, it switches a filter's band while a feature is high, say.
//!
//! **The value sent.** A list of exactly one element is sent as a JSON
//! number (`rise_value = [10.0]` sends `10.0`, for a key such as `gain`);
//! a longer list is sent as a JSON array (`[8.0, 12.0]`, for a key such as
//! `cutoff_hz`). Values are sent as floats; the host turns a whole number
//! into an integer for a target key of integer type (`order = [6.0]` sets
//! `order = 6`).
//!
//! **No duplicate changes.** A change is asked for only when the value
//! differs from the last one this stage sent: two rises in a row, or a fall
//! whose value equals the rise's, send nothing the second time.
//!
//! After each change it emits an event with the triggering event's code and
//! timestamp and the label `set <target>.<key>` (cut to the event label's
//! capacity), so a `jsonl_sink` reading it logs every switch.

use hsp_sdk::{
    ControlContext, ControlStage, Event, PacketKind, PacketRef, StageConfig, StageError,
};
use serde::{Deserialize, Serialize};

/// `[stage.config]` of `param_switch`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct ParamSwitchConfig {
    /// Pipeline id of the data-plane stage whose parameter is switched
    pub target: String,
    /// Config key of the target to switch
    pub key: String,
    /// Code of the events that set rise_value
    #[config(default = 1)]
    pub rise_code: u32,
    /// Value set on a rise event; one element is sent as a number, more as a list
    pub rise_value: Vec<f64>,
    /// Code of the events that set fall_value
    #[config(default = 2)]
    pub fall_code: u32,
    /// Value set on a fall event; one element is sent as a number, more as a list
    pub fall_value: Vec<f64>,
}

/// Which of the two configured values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Rise,
    Fall,
}

/// A configured value as sent: a number for one element, else a list.
#[derive(Serialize)]
#[serde(untagged)]
enum ParamValue<'a> {
    Number(f64),
    List(&'a [f64]),
}

impl<'a> ParamValue<'a> {
    fn of(values: &'a [f64]) -> Self {
        match values {
            [value] => Self::Number(*value),
            values => Self::List(values),
        }
    }
}

/// Sets a running stage's parameter to one value on rise events and another
/// on fall events.
#[derive(Debug)]
pub struct ParamSwitch {
    target: String,
    key: String,
    rise_code: u32,
    rise_value: Vec<f64>,
    fall_code: u32,
    fall_value: Vec<f64>,
    label: String,
    last: Option<Side>,
}

impl ParamSwitch {
    /// The value last sent (as configured), or `None` before the first change.
    pub fn last_sent(&self) -> Option<&[f64]> {
        self.last.map(|side| self.value(side))
    }

    fn value(&self, side: Side) -> &[f64] {
        match side {
            Side::Rise => &self.rise_value,
            Side::Fall => &self.fall_value,
        }
    }
}

/// Refuses an empty list or one holding a non-finite value.
fn check_value(key: &str, values: &[f64]) -> Result<(), StageError> {
    if values.is_empty() {
        return Err(StageError::new(format!(
            "`{key}` must hold at least one value, got []"
        )));
    }
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(StageError::new(format!(
            "`{key}` must hold finite numbers, got {bad}"
        )));
    }
    Ok(())
}

impl ControlStage for ParamSwitch {
    const KIND: &'static str = "param_switch";
    const DOC: &'static str = "Sets a running stage's config key to rise_value on rise_code events and to fall_value on fall_code events, and emits a `set <target>.<key>` event for each change.";
    const ACCEPTS: &'static [PacketKind] = &[PacketKind::Event];
    const EMITS_EVENTS: bool = true;
    type Config = ParamSwitchConfig;

    fn new(config: ParamSwitchConfig) -> Result<Self, StageError> {
        for (key, value) in [("target", &config.target), ("key", &config.key)] {
            if value.trim().is_empty() {
                return Err(StageError::new(format!(
                    "`{key}` must not be empty, got {value:?}"
                )));
            }
        }
        check_value("rise_value", &config.rise_value)?;
        check_value("fall_value", &config.fall_value)?;
        if config.rise_code == config.fall_code {
            return Err(StageError::new(format!(
                "`rise_code` and `fall_code` must differ, both are {}",
                config.rise_code
            )));
        }
        Ok(Self {
            label: format!("set {}.{}", config.target, config.key),
            target: config.target,
            key: config.key,
            rise_code: config.rise_code,
            rise_value: config.rise_value,
            fall_code: config.fall_code,
            fall_value: config.fall_value,
            last: None,
        })
    }

    fn on_packet(
        &mut self,
        _from: &str,
        packet: PacketRef<'_>,
        ctx: &mut ControlContext<'_>,
    ) -> Result<(), StageError> {
        let PacketRef::Event(event) = packet else {
            return Err(StageError::new(format!(
                "`{}` takes events, got a {} packet",
                Self::KIND,
                packet.kind().map_or("empty", PacketKind::name)
            )));
        };
        let side = if event.code == self.rise_code {
            Side::Rise
        } else if event.code == self.fall_code {
            Side::Fall
        } else {
            return Ok(());
        };
        let value = self.value(side);
        if self.last_sent() == Some(value) {
            return Ok(());
        }
        ctx.set_param(&self.target, &self.key, &ParamValue::of(value))?;
        ctx.emit(Event::new(event.code, &self.label).at(event.timestamp_ns));
        self.last = Some(side);
        Ok(())
    }
}

hsp_sdk::export_plugin!(; control: ParamSwitch);

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::PlanarBlock;
    use hsp_sdk::abi::ControlOutputs;
    use hsp_sdk::testing::ControlHarness;

    /// (target, key, value_json) of each parameter change.
    fn params(outputs: &ControlOutputs) -> Vec<(String, String, String)> {
        outputs
            .params
            .iter()
            .map(|p| {
                (
                    p.target.to_string(),
                    p.key.to_string(),
                    p.value_json.to_string(),
                )
            })
            .collect()
    }

    fn change(target: &str, key: &str, value_json: &str) -> (String, String, String) {
        (target.into(), key.into(), value_json.into())
    }

    fn event(code: u32, timestamp_ns: u64) -> Event {
        Event::new(code, "alpha/x").with_value(3.0).at(timestamp_ns)
    }

    const BAND: &str = r#"{"target": "bandpass", "key": "band_hz",
        "rise_value": [8.0, 12.0], "fall_value": [1, 40]}"#;

    #[test]
    fn rise_and_fall_set_the_lists_and_log_each_switch() {
        let mut h = ControlHarness::<ParamSwitch>::new(BAND).unwrap();
        assert_eq!(h.stage().last_sent(), None);

        let out = h
            .on_packet("alpha", PacketRef::Event(&event(1, 100)))
            .unwrap();
        assert_eq!(params(&out), [change("bandpass", "band_hz", "[8.0,12.0]")]);
        assert_eq!(
            out.events.as_slice(),
            [Event::new(1, "set bandpass.band_hz").at(100)]
        );
        assert_eq!(h.stage().last_sent(), Some(&[8.0, 12.0][..]));

        let out = h
            .on_packet("alpha", PacketRef::Event(&event(2, 200)))
            .unwrap();
        assert_eq!(params(&out), [change("bandpass", "band_hz", "[1.0,40.0]")]);
        assert_eq!(
            out.events.as_slice(),
            [Event::new(2, "set bandpass.band_hz").at(200)]
        );

        // The value round-trips to what the target's config would parse.
        let sent: Vec<f64> = serde_json::from_str(&params(&out)[0].2).unwrap();
        assert_eq!(sent, [1.0, 40.0]);
        assert!(h.stop().unwrap().params.is_empty());
    }

    #[test]
    fn a_single_value_is_sent_as_a_number() {
        let mut h = ControlHarness::<ParamSwitch>::new(
            r#"{"target": "amp", "key": "gain", "rise_code": 7, "rise_value": [10],
                "fall_code": 0, "fall_value": [0.5]}"#,
        )
        .unwrap();
        let out = h.on_packet("t", PacketRef::Event(&event(7, 1))).unwrap();
        assert_eq!(params(&out), [change("amp", "gain", "10.0")]);
        let value: serde_json::Value = serde_json::from_str(&params(&out)[0].2).unwrap();
        assert!(value.is_number(), "{value}");
        assert_eq!(out.events[0].code, 7);
        assert_eq!(out.events[0].label(), "set amp.gain");

        let out = h.on_packet("t", PacketRef::Event(&event(0, 2))).unwrap();
        assert_eq!(params(&out), [change("amp", "gain", "0.5")]);
    }

    #[test]
    fn mixed_lengths_follow_the_rule_per_value() {
        let mut h = ControlHarness::<ParamSwitch>::new(
            r#"{"target": "f", "key": "k", "rise_value": [1.5], "fall_value": [1.5, 2.5]}"#,
        )
        .unwrap();
        let out = h.on_packet("t", PacketRef::Event(&event(1, 1))).unwrap();
        assert_eq!(params(&out), [change("f", "k", "1.5")]);
        let out = h.on_packet("t", PacketRef::Event(&event(2, 2))).unwrap();
        assert_eq!(params(&out), [change("f", "k", "[1.5,2.5]")]);
    }

    #[test]
    fn no_duplicate_changes_and_other_codes_ignored() {
        let mut h = ControlHarness::<ParamSwitch>::new(BAND).unwrap();
        let mut sent = Vec::new();
        let mut logged = Vec::new();
        for (t, code) in [3, 2, 1, 1, 5, 1, 2, 2, 0, 1].into_iter().enumerate() {
            let out = h
                .on_packet("alpha", PacketRef::Event(&event(code, t as u64)))
                .unwrap();
            assert_eq!(out.params.len(), out.events.len());
            sent.extend(params(&out).into_iter().map(|(_, _, v)| v));
            logged.extend(out.events.iter().map(|e| (e.code, e.timestamp_ns)));
        }
        // The first fall is a change (nothing was sent yet); repeats are not.
        assert_eq!(
            sent,
            ["[1.0,40.0]", "[8.0,12.0]", "[1.0,40.0]", "[8.0,12.0]"]
        );
        assert_eq!(logged, [(2, 1), (1, 2), (2, 6), (1, 9)]);
    }

    #[test]
    fn equal_rise_and_fall_values_send_once() {
        let mut h = ControlHarness::<ParamSwitch>::new(
            r#"{"target": "f", "key": "k", "rise_value": [4.0], "fall_value": [4]}"#,
        )
        .unwrap();
        let first = h.on_packet("t", PacketRef::Event(&event(1, 1))).unwrap();
        assert_eq!(first.params.len(), 1);
        let second = h.on_packet("t", PacketRef::Event(&event(2, 2))).unwrap();
        assert!(second.params.is_empty() && second.events.is_empty());
    }

    #[test]
    fn a_long_label_is_cut_but_the_change_is_whole() {
        let target = "a_very_long_pipeline_stage_identifier";
        let mut h = ControlHarness::<ParamSwitch>::new(&format!(
            r#"{{"target": "{target}", "key": "cutoff_hz", "rise_value": [1], "fall_value": [2]}}"#
        ))
        .unwrap();
        let out = h.on_packet("t", PacketRef::Event(&event(1, 1))).unwrap();
        assert_eq!(params(&out), [change(target, "cutoff_hz", "1.0")]);
        let label = out.events[0].label();
        assert_eq!(label.len(), hsp_sdk::EVENT_LABEL_CAPACITY);
        assert!(
            format!("set {target}.cutoff_hz").starts_with(label),
            "{label}"
        );
    }

    #[test]
    fn other_packet_kinds_are_refused() {
        let mut h = ControlHarness::<ParamSwitch>::new(BAND).unwrap();
        let features = hsp_sdk::FeaturePacket::with_capacity(1, 1);
        let e = h
            .on_packet("bands", PacketRef::Features(&features))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not take features packets"), "{e}");
    }

    #[test]
    fn bad_config_names_the_key() {
        let base = r#""target": "f", "key": "k", "rise_value": [1.0], "fall_value": [2.0]"#;
        for (config, needle) in [
            (
                r#"{"key": "k", "rise_value": [1.0], "fall_value": [2.0]}"#.to_string(),
                "missing required key `target`",
            ),
            (
                r#"{"target": "f", "rise_value": [1.0], "fall_value": [2.0]}"#.to_string(),
                "missing required key `key`",
            ),
            (
                r#"{"target": "f", "key": "k", "fall_value": [2.0]}"#.to_string(),
                "missing required key `rise_value`",
            ),
            (
                r#"{"target": "f", "key": "k", "rise_value": [1.0]}"#.to_string(),
                "missing required key `fall_value`",
            ),
            (
                r#"{"target": "", "key": "k", "rise_value": [1.0], "fall_value": [2.0]}"#
                    .to_string(),
                "`target` must not be empty",
            ),
            (
                r#"{"target": "f", "key": "k", "rise_value": [], "fall_value": [2.0]}"#.to_string(),
                "`rise_value` must hold at least one value",
            ),
            (
                r#"{"target": "f", "key": "k", "rise_value": 1.0, "fall_value": [2.0]}"#
                    .to_string(),
                "`rise_value`",
            ),
            (format!(r#"{{{base}, "rise_code": -1}}"#), "`rise_code`"),
            (format!(r#"{{{base}, "fall_code": 1}}"#), "must differ"),
            (format!(r#"{{{base}, "code": 1}}"#), "unknown key `code`"),
        ] {
            let e = ControlHarness::<ParamSwitch>::new(&config).err().unwrap();
            assert!(e.to_string().contains(needle), "{config}: {e}");
        }
    }
}
