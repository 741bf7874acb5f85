//! `detect`: threshold crossings as events, beside the signal they were
//! found in.

use hsp_sdk::prelude::*;
use serde::Deserialize;

/// `[stage.config]` of `detect`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    /// Magnitude a sample must reach for a crossing
    #[config(unit = "uV")]
    pub threshold_uv: f64,
    /// Label of the channel to watch; empty = every channel
    #[config(default = "")]
    pub channel: String,
    /// Time after a crossing in which no other is reported
    #[config(default = 0.2, unit = "s")]
    pub refractory_s: f64,
    /// Code of the events emitted
    #[config(default = 1)]
    pub code: u32,
    /// Label of the events emitted
    #[config(default = "detect")]
    pub label: String,
}

/// `detect`'s two outputs.
#[derive(OutputPorts)]
pub struct DetectOutput<'a> {
    /// The input, unchanged.
    signal: Out<'a, EegPacket>,
    /// One event per crossing: its time, code, label and the sample's value.
    events: Out<'a, Event>,
}

/// Passes blocks on and reports where a channel's magnitude rises to the
/// threshold.
pub struct Detect {
    threshold: f32,
    /// Channels watched: one, or all.
    channels: std::ops::Range<usize>,
    refractory_ns: u64,
    template: Event,
    /// Whether each watched channel was at or above the threshold at the
    /// last sample: a crossing is a rise, not every sample above.
    above: Vec<bool>,
    /// The last crossing reported, if any.
    last_ns: Option<u64>,
    /// Crossings found in the current block, still to be sent (one per
    /// call, by `MoreOutput`). Sized for a whole block in `new`.
    pending: Vec<Event>,
    next: usize,
    sample_rate_hz: f64,
}

impl Detect {
    /// Crossings reported so far in the current block, for tests.
    pub fn pending(&self) -> usize {
        self.pending.len() - self.next
    }

    /// Finds the crossings of `block`, in time order, into `pending`.
    fn scan(&mut self, block: &EegPacket) {
        self.pending.clear();
        self.next = 0;
        let n = block.values_per_channel();
        let rate = if block.sample_rate_hz > 0.0 {
            block.sample_rate_hz
        } else {
            self.sample_rate_hz
        };
        for i in 0..n {
            let mut crossed: Option<f32> = None;
            for (watched, channel) in self.channels.clone().enumerate() {
                let value = block.channel(channel)[i];
                let above = value.abs() >= self.threshold;
                if above && !self.above[watched] && crossed.is_none() {
                    crossed = Some(value);
                }
                self.above[watched] = above;
            }
            let Some(value) = crossed else { continue };
            let at = block
                .timestamp_ns
                .saturating_add((i as f64 * 1e9 / rate).round() as u64);
            if self
                .last_ns
                .is_some_and(|last| at.saturating_sub(last) < self.refractory_ns)
            {
                continue;
            }
            self.last_ns = Some(at);
            if self.pending.len() < self.pending.capacity() {
                self.pending
                    .push(self.template.with_value(f64::from(value)).at(at));
            }
        }
    }

    /// Sends the next pending crossing; `MoreOutput` while more wait.
    fn send_next(&mut self, output: &mut DetectOutput<'_>) -> Outcome {
        let Some(event) = self.pending.get(self.next) else {
            return Outcome::NoOutput;
        };
        *output.events = *event;
        output.events.send();
        self.next += 1;
        if self.next < self.pending.len() {
            Outcome::MoreOutput
        } else {
            Outcome::Emitted
        }
    }
}

impl Stage for Detect {
    const KIND: &'static str = "detect";
    const DOC: &'static str = "Passes EEG on and emits an event where a channel's magnitude rises to a threshold (spikes, artifacts, triggers).";
    type Config = DetectConfig;
    type Input = EegPacket;
    type Output = DetectOutput<'static>;

    fn output_formats(
        config: &DetectConfig,
        inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        let input = &inputs[0];
        watched(config, input)?;
        Ok(vec![input.clone(), StreamFormat::events()])
    }

    fn new(config: DetectConfig, inputs: &[StreamFormat]) -> Result<Self, StageError> {
        let input = &inputs[0];
        let channels = watched(&config, input)?;
        if !(config.threshold_uv.is_finite() && config.threshold_uv > 0.0) {
            return Err(StageError::new(format!(
                "`threshold_uv` must be a positive number of uV, got {}",
                config.threshold_uv
            )));
        }
        let refractory =
            std::time::Duration::try_from_secs_f64(config.refractory_s).map_err(|_| {
                StageError::new(format!(
                    "`refractory_s` must be 0 or more seconds, got {}",
                    config.refractory_s
                ))
            })?;
        Ok(Self {
            threshold: config.threshold_uv as f32,
            above: vec![false; channels.len()],
            channels,
            refractory_ns: refractory.as_nanos().min(u128::from(u64::MAX)) as u64,
            template: Event::new(config.code, &config.label),
            last_ns: None,
            pending: Vec::with_capacity(input.values_per_channel().max(1)),
            next: 0,
            sample_rate_hz: input.sample_rate_hz,
        })
    }

    fn process(
        &mut self,
        input: Option<&EegPacket>,
        mut output: DetectOutput<'_>,
    ) -> Result<Outcome, StageError> {
        let Some(block) = input else {
            // Called again after `MoreOutput`: the next crossing.
            return Ok(self.send_next(&mut output));
        };
        if block.channels() < self.channels.end {
            return Err(StageError::new(format!(
                "detect: got a block of {} channels, the stream has {}",
                block.channels(),
                self.channels.end
            )));
        }
        output
            .signal
            .copy_from(block)
            .map_err(|e| StageError::new(format!("detect: {e}")))?;
        output.signal.send();
        self.scan(block);
        Ok(match self.send_next(&mut output) {
            // The signal went out either way.
            Outcome::NoOutput => Outcome::Emitted,
            outcome => outcome,
        })
    }
}

/// The channels `config` watches in `input`: the one it names, or all.
fn watched(
    config: &DetectConfig,
    input: &StreamFormat,
) -> Result<std::ops::Range<usize>, StageError> {
    if config.channel.is_empty() {
        return Ok(0..input.channels());
    }
    match input.channel_index(&config.channel) {
        Some(index) => Ok(index..index + 1),
        None => {
            let labels: Vec<String> = input
                .channel_list()
                .iter()
                .map(|c| c.label.to_string())
                .collect();
            Err(StageError::new(format!(
                "`channel` = {:?} is not a channel of the input; its channels: {}",
                config.channel,
                labels.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::testing::{OwnedPacket, StageHarness};

    const FS: f64 = 100.0;
    const T0: u64 = 1_000_000_000;

    fn format() -> StreamFormat {
        StreamFormat::eeg(PacketKind::RawEeg, 2, FS, 10)
            .with_channels([ChannelInfo::eeg("Cz"), ChannelInfo::eeg("Pz")])
    }

    fn block(index: u64, pz: &[f32]) -> EegPacket {
        let mut block = EegPacket::with_capacity(2, 10);
        block.channel_mut(1).copy_from_slice(pz);
        block.timestamp_ns = T0 + index * 100_000_000;
        block.sample_rate_hz = FS;
        block
    }

    #[test]
    fn passes_the_signal_and_reports_each_rise_once_with_its_time() {
        let config = r#"{"threshold_uv": 50, "channel": "pz", "refractory_s": 0.02}"#;
        let mut h = StageHarness::<Detect>::new(config, &[format()]).unwrap();
        let mut pz = [0.0f32; 10];
        // Rises at samples 2 and 7; sample 3 stays above (no new crossing).
        pz[2] = 60.0;
        pz[3] = -70.0;
        pz[7] = 55.0;
        let (sent, outcome) = h.feed(&block(0, &pz)).unwrap();
        assert_eq!(outcome, Outcome::Emitted);
        let ports: Vec<&str> = sent.iter().map(|s| s.port).collect();
        assert_eq!(ports, ["signal", "events", "events"]);
        let OwnedPacket::RawEeg(signal) = &sent[0].packet else {
            panic!("{:?}", sent[0].packet)
        };
        assert_eq!(signal.channel(1), pz);
        let events: Vec<Event> = sent[1..]
            .iter()
            .map(|s| *s.packet.get::<Event>().unwrap())
            .collect();
        assert_eq!(events[0].timestamp_ns, T0 + 20_000_000);
        assert_eq!((events[0].code, events[0].value), (1, 60.0));
        assert_eq!(events[1].timestamp_ns, T0 + 70_000_000);
        assert_eq!(events[1].label(), "detect");
    }

    #[test]
    fn the_refractory_time_spans_blocks() {
        let config = r#"{"threshold_uv": 50, "refractory_s": 0.15}"#;
        let mut h = StageHarness::<Detect>::new(config, &[format()]).unwrap();
        let mut rise_at_9 = [0.0f32; 10];
        rise_at_9[9] = 80.0;
        let mut rise_at_0 = [0.0f32; 10];
        rise_at_0[0] = 0.0;
        rise_at_0[5] = 80.0;
        let events =
            |sent: Vec<hsp_sdk::testing::Sent>| sent.iter().filter(|s| s.port == "events").count();
        assert_eq!(events(h.feed(&block(0, &rise_at_9)).unwrap().0), 1);
        // 60 ms later: within the refractory time.
        assert_eq!(events(h.feed(&block(1, &rise_at_0)).unwrap().0), 0);
        // 160 ms after the first: reported.
        assert_eq!(events(h.feed(&block(2, &rise_at_0)).unwrap().0), 1);
    }

    #[test]
    fn an_unknown_channel_is_named_with_the_stream_s_channels() {
        let e = StageHarness::<Detect>::new(r#"{"threshold_uv": 5, "channel": "Oz"}"#, &[format()])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("`channel` = \"Oz\"") && e.contains("Cz, Pz"),
            "{e}"
        );
    }
}
