//! `null_sink`: takes raw EEG blocks and counts them. The end of test and
//! benchmark pipelines; optionally panics at a chosen packet, to test how
//! the host survives a faulty plugin.

use hsp_sdk::{
    EegPacket, NoPacket, Outcome, PlanarBlock, Stage, StageConfig, StageError, StreamFormat,
};
use serde::Deserialize;

/// Counts packets and samples.
pub struct NullSink {
    packets: u64,
    samples: u64,
    panic_at_packet: u64,
}

/// `[stage.config]` of `null_sink`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct NullSinkConfig {
    /// Panic on this packet, 1-based (fault-injection for tests); 0 never
    #[config(default = 0)]
    pub panic_at_packet: u64,
}

impl NullSink {
    /// Packets taken so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Samples (all channels) taken so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

impl Stage for NullSink {
    const KIND: &'static str = "null_sink";
    const DOC: &'static str = "Consumes raw EEG blocks and counts them.";
    type Config = NullSinkConfig;
    type Input = EegPacket;
    type Output = NoPacket;

    fn new(config: NullSinkConfig, _input: Option<&StreamFormat>) -> Result<Self, StageError> {
        Ok(Self {
            packets: 0,
            samples: 0,
            panic_at_packet: config.panic_at_packet,
        })
    }

    #[inline]
    fn process(
        &mut self,
        input: Option<&EegPacket>,
        _output: &mut NoPacket,
    ) -> Result<Outcome, StageError> {
        if let Some(input) = input {
            self.packets += 1;
            self.samples += input.values().len() as u64;
            if self.packets == self.panic_at_packet {
                panic!("null_sink: injected fault at packet {}", self.packets);
            }
        }
        Ok(Outcome::NoOutput)
    }
}

hsp_sdk::export_plugin!(NullSink);

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::testing::StageHarness;

    #[test]
    fn counts_packets_and_samples() {
        let block = EegPacket::with_capacity(4, 8);
        let mut harness = StageHarness::<NullSink>::new("{}", None).unwrap();
        harness.run([&block, &block, &block]).unwrap();
        assert_eq!(harness.stage().packets(), 3);
        assert_eq!(harness.stage().samples(), 96);
    }

    #[test]
    fn an_injected_panic_comes_back_as_an_error_and_poisons_the_stage() {
        let block = EegPacket::with_capacity(1, 1);
        let mut harness = StageHarness::<NullSink>::new(r#"{"panic_at_packet": 2}"#, None).unwrap();
        harness.process(Some(&block)).unwrap();
        let error = harness.process(Some(&block)).unwrap_err();
        assert!(
            error.to_string().contains("injected fault at packet 2"),
            "{error}"
        );
        let refused = harness.process(Some(&block)).unwrap_err();
        assert!(
            refused.to_string().contains("panicked earlier"),
            "{refused}"
        );
    }
}
