//! `threshold`: a control stage that watches one value of a feature stream
//! (`channel(c)[feature]` of each packet) and emits an event each time it
//! crosses a level: `<label>/rise` (code 1) when it reaches the level,
//! `<label>/fall` (code 2) when it drops back below `level - hysteresis`.
//!
//! The stage starts low. Between the two edges it holds its state, so a
//! value wobbling around the level gives one rise and one fall, not a burst
//! of events. Each event carries the value that caused it and the packet's
//! timestamp. A NaN value never crosses either edge.

use hsp_sdk::{
    ControlContext, ControlStage, EVENT_LABEL_CAPACITY, Event, FeaturePacket, PacketKind,
    PacketRef, PlanarBlock, StageConfig, StageError,
};
use serde::Deserialize;

/// Code of the event emitted when the value reaches the level.
pub const RISE_CODE: u32 = 1;

/// Code of the event emitted when the value drops below `level - hysteresis`.
pub const FALL_CODE: u32 = 2;

/// Suffix of the rise event's label.
const RISE_SUFFIX: &str = "/rise";

/// Suffix of the fall event's label (as long as [`RISE_SUFFIX`]).
const FALL_SUFFIX: &str = "/fall";

/// `[stage.config]` of `threshold`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    /// Level to cross: a value >= level, while low, emits \<label>/rise
    pub level: f64,
    /// Once high, the value falls only below level - hysteresis; >= 0
    #[config(default = 0.0)]
    pub hysteresis: f64,
    /// Channel (row) of the feature packet watched, from 0
    #[config(default = 0)]
    pub channel: u32,
    /// Feature (column) of that channel watched, from 0
    #[config(default = 0)]
    pub feature: u32,
    /// Prefix of the event labels: \<label>/rise, \<label>/fall
    #[config(default = "threshold")]
    pub label: String,
}

/// Emits `<label>/rise` and `<label>/fall` events as one feature value
/// crosses a level, with hysteresis.
#[derive(Debug)]
pub struct Threshold {
    level: f64,
    fall_below: f64,
    channel: u32,
    feature: u32,
    rise_label: String,
    fall_label: String,
    high: bool,
}

impl Threshold {
    /// Whether the value is currently high (risen and not yet fallen).
    pub fn is_high(&self) -> bool {
        self.high
    }

    /// The value watched in `packet`, or an error naming the index out of
    /// range and the packet's shape.
    fn value(&self, packet: &FeaturePacket) -> Result<f64, StageError> {
        let (channels, features) = (packet.channels(), packet.values_per_channel());
        let (channel, feature) = (self.channel as usize, self.feature as usize);
        if channel >= channels || feature >= features {
            let which = if channel >= channels {
                format!("`channel` = {}", self.channel)
            } else {
                format!("`feature` = {}", self.feature)
            };
            return Err(StageError::new(format!(
                "{which} is out of range: the feature packet has {channels} channels \
                 × {features} features"
            )));
        }
        Ok(f64::from(packet.channel(channel)[feature]))
    }
}

impl ControlStage for Threshold {
    const KIND: &'static str = "threshold";
    const DOC: &'static str = "Emits <label>/rise (code 1) when one feature reaches a level and <label>/fall (code 2) when it drops below level - hysteresis.";
    const ACCEPTS: &'static [PacketKind] = &[PacketKind::Features];
    const EMITS_EVENTS: bool = true;
    type Config = ThresholdConfig;

    fn new(config: ThresholdConfig) -> Result<Self, StageError> {
        if !config.level.is_finite() {
            return Err(StageError::new(format!(
                "`level` must be a finite number, got {}",
                config.level
            )));
        }
        if !(config.hysteresis.is_finite() && config.hysteresis >= 0.0) {
            return Err(StageError::new(format!(
                "`hysteresis` must be a number >= 0, got {}",
                config.hysteresis
            )));
        }
        // A longer label would be cut, losing the `/rise` or `/fall` that
        // tells the two apart.
        let longest = EVENT_LABEL_CAPACITY - RISE_SUFFIX.len();
        if config.label.is_empty() || config.label.len() > longest {
            return Err(StageError::new(format!(
                "`label` = {:?} must be 1 to {longest} bytes long (event labels hold \
                 {EVENT_LABEL_CAPACITY}, including \"{RISE_SUFFIX}\")",
                config.label
            )));
        }
        Ok(Self {
            level: config.level,
            fall_below: config.level - config.hysteresis,
            channel: config.channel,
            feature: config.feature,
            rise_label: format!("{}{RISE_SUFFIX}", config.label),
            fall_label: format!("{}{FALL_SUFFIX}", config.label),
            high: false,
        })
    }

    fn on_packet(
        &mut self,
        _from: &str,
        packet: PacketRef<'_>,
        ctx: &mut ControlContext<'_>,
    ) -> Result<(), StageError> {
        let PacketRef::Features(packet) = packet else {
            return Err(StageError::new(format!(
                "`{}` takes features, got a {} packet",
                Self::KIND,
                packet.kind().map_or("empty", PacketKind::name)
            )));
        };
        let value = self.value(packet)?;
        let (code, label) = if !self.high && value >= self.level {
            self.high = true;
            (RISE_CODE, &self.rise_label)
        } else if self.high && value < self.fall_below {
            self.high = false;
            (FALL_CODE, &self.fall_label)
        } else {
            return Ok(());
        };
        ctx.emit(
            Event::new(code, label)
                .with_value(value)
                .at(packet.timestamp_ns),
        );
        Ok(())
    }
}

hsp_sdk::export_plugin!(; control: Threshold);

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::testing::ControlHarness;

    /// A 2-channel × 3-feature packet whose `channel(1)[2]` is `value`, the
    /// others far from any level, stamped `timestamp_ns`.
    fn packet(value: f32, timestamp_ns: u64) -> FeaturePacket {
        let mut p = FeaturePacket::with_capacity(2, 3);
        p.values_mut().fill(-1000.0);
        p.channel_mut(1)[2] = value;
        p.timestamp_ns = timestamp_ns;
        p
    }

    /// Feeds `values` (stamped 0, 1, 2, ...) and returns every event emitted.
    fn run(h: &mut ControlHarness<Threshold>, values: &[f32]) -> Vec<Event> {
        let mut events = Vec::new();
        for (t, &v) in values.iter().enumerate() {
            let out = h
                .on_packet("bands", PacketRef::Features(&packet(v, t as u64)))
                .unwrap();
            assert!(out.params.is_empty());
            events.extend(out.events.iter().copied());
        }
        events
    }

    #[test]
    fn rises_and_falls_once_with_hysteresis() {
        let mut h = ControlHarness::<Threshold>::new(
            r#"{"level": 10.0, "hysteresis": 2.0, "channel": 1, "feature": 2, "label": "alpha"}"#,
        )
        .unwrap();
        assert!(!h.stage().is_high());
        // Chatter around the level (9.9 .. 10.1) and within the hysteresis
        // band (8 .. 10) never emits twice.
        let values = [
            5.0, 9.9, 10.0, 9.9, 10.1, 8.5, 8.0, 11.0, 7.99, 8.0, 9.99, 10.0, 3.0,
        ];
        let events = run(&mut h, &values);
        let expected = [
            Event::new(RISE_CODE, "alpha/rise").with_value(10.0).at(2),
            Event::new(FALL_CODE, "alpha/fall")
                .with_value(f64::from(7.99_f32))
                .at(8),
            Event::new(RISE_CODE, "alpha/rise").with_value(10.0).at(11),
            Event::new(FALL_CODE, "alpha/fall").with_value(3.0).at(12),
        ];
        assert_eq!(events, expected);
        assert!(!h.stage().is_high());
        assert!(h.stop().unwrap().events.is_empty());
    }

    #[test]
    fn zero_hysteresis_falls_just_below_the_level() {
        let mut h = ControlHarness::<Threshold>::new(r#"{"level": -1.5}"#).unwrap();
        let mut events = Vec::new();
        for (t, v) in [-2.0_f32, -1.5, -1.5, -1.6, -1.5].into_iter().enumerate() {
            let mut p = FeaturePacket::with_capacity(1, 1);
            p.values_mut()[0] = v;
            p.timestamp_ns = 100 + t as u64;
            let out = h.on_packet("x", PacketRef::Features(&p)).unwrap();
            events.extend(
                out.events
                    .iter()
                    .map(|e| (e.label().to_string(), e.code, e.timestamp_ns)),
            );
        }
        assert_eq!(
            events,
            [
                ("threshold/rise".to_string(), 1, 101),
                ("threshold/fall".to_string(), 2, 103),
                ("threshold/rise".to_string(), 1, 104),
            ]
        );
    }

    #[test]
    fn nan_never_crosses() {
        let mut h =
            ControlHarness::<Threshold>::new(r#"{"level": 1.0, "channel": 1, "feature": 2}"#)
                .unwrap();
        let events = run(&mut h, &[f32::NAN, 2.0, f32::NAN, 0.0]);
        let codes: Vec<u32> = events.iter().map(|e| e.code).collect();
        assert_eq!(codes, [RISE_CODE, FALL_CODE]);
        assert_eq!(events[1].timestamp_ns, 3);
    }

    #[test]
    fn index_out_of_range_names_the_index_and_shape() {
        for (config, needle) in [
            (r#"{"level": 1.0, "channel": 2}"#, "`channel` = 2"),
            (
                r#"{"level": 1.0, "channel": 1, "feature": 3}"#,
                "`feature` = 3",
            ),
        ] {
            let mut h = ControlHarness::<Threshold>::new(config).unwrap();
            let e = h
                .on_packet("bands", PacketRef::Features(&packet(5.0, 0)))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{config}: {e}");
            assert!(e.contains("2 channels × 3 features"), "{config}: {e}");
        }
        // An empty packet is out of range for any index.
        let mut h = ControlHarness::<Threshold>::new(r#"{"level": 1.0}"#).unwrap();
        let e = h
            .on_packet("bands", PacketRef::Features(&FeaturePacket::default()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 channels × 0 features"), "{e}");
    }

    #[test]
    fn other_packet_kinds_are_refused() {
        let mut h = ControlHarness::<Threshold>::new(r#"{"level": 1.0}"#).unwrap();
        let e = h
            .on_packet("events", PacketRef::Event(&Event::new(1, "x")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not take event packets"), "{e}");
    }

    #[test]
    fn bad_config_names_the_key() {
        for (config, needle) in [
            ("{}", "missing required key `level`"),
            (r#"{"level": 1.0, "hysteresis": -0.5}"#, "`hysteresis`"),
            (r#"{"level": 1.0, "channel": -1}"#, "`channel`"),
            // No packet has 2^32 rows or columns: refused when the pipeline
            // is validated (which builds the stage), not at the first packet.
            (r#"{"level": 1.0, "channel": 4294967296}"#, "`channel`"),
            (r#"{"level": 1.0, "feature": 4294967296}"#, "`feature`"),
            (r#"{"level": 1.0, "feature": 1.5}"#, "`feature`"),
            (r#"{"level": "high"}"#, "`level`"),
            (r#"{"level": 1.0, "label": ""}"#, "`label`"),
            (
                r#"{"level": 1.0, "label": "a label far too long to fit in one event label"}"#,
                "must be 1 to 43 bytes",
            ),
            (r#"{"level": 1.0, "levle": 2.0}"#, "unknown key `levle`"),
        ] {
            let e = ControlHarness::<Threshold>::new(config).err().unwrap();
            assert!(e.to_string().contains(needle), "{config}: {e}");
        }
        // The longest label that fits is accepted, and kept whole.
        let label = "x".repeat(EVENT_LABEL_CAPACITY - RISE_SUFFIX.len());
        let mut h =
            ControlHarness::<Threshold>::new(&format!(r#"{{"level": 0.0, "label": "{label}"}}"#))
                .unwrap();
        let mut p = FeaturePacket::with_capacity(1, 1);
        p.values_mut()[0] = 1.0;
        let out = h.on_packet("x", PacketRef::Features(&p)).unwrap();
        assert_eq!(out.events[0].label(), format!("{label}/rise"));
    }
}
