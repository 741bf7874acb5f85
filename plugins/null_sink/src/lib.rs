//! `null_sink`: takes packets of any kind and counts them. The end of test
//! and benchmark pipelines; optionally panics at a chosen packet, to test
//! how the host survives a faulty plugin.

use hsp_sdk::{
    AnyPacket, NoPacket, Outcome, PacketRef, PlanarBlock, Stage, StageConfig, StageError,
    StreamFormat,
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

    /// Values (all channels) of the planar packets taken so far: samples
    /// of EEG, bins of spectra, features.
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

impl Stage for NullSink {
    const KIND: &'static str = "null_sink";
    const DOC: &'static str = "Consumes packets of any kind and counts them.";
    type Config = NullSinkConfig;
    type Input = AnyPacket;
    type Output = NoPacket;

    fn new(config: NullSinkConfig, _inputs: &[StreamFormat]) -> Result<Self, StageError> {
        Ok(Self {
            packets: 0,
            samples: 0,
            panic_at_packet: config.panic_at_packet,
        })
    }

    #[inline]
    fn process(
        &mut self,
        input: Option<PacketRef<'_>>,
        _output: &mut NoPacket,
    ) -> Result<Outcome, StageError> {
        if let Some(input) = input {
            self.packets += 1;
            self.samples += match input {
                PacketRef::RawEeg(block) => block.values().len(),
                PacketRef::FilteredEeg(block) => block.values().len(),
                PacketRef::Fft(spectrum) => spectrum.values().len(),
                PacketRef::Features(features) => features.values().len(),
                PacketRef::Event(_) | PacketRef::None => 0,
            } as u64;
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
    use hsp_sdk::{EegPacket, Event, PacketKind};

    #[test]
    fn counts_packets_and_samples() {
        let block = EegPacket::with_capacity(4, 8);
        let eeg = StreamFormat::eeg(PacketKind::RawEeg, 4, 250.0, 8);
        let mut harness = StageHarness::<NullSink>::new("{}", &[eeg]).unwrap();
        harness.feed_all([&block, &block, &block]).unwrap();
        assert_eq!(harness.stage().packets(), 3);
        assert_eq!(harness.stage().samples(), 96);
        // Any kind: events count as packets with no values.
        let mut harness = StageHarness::<NullSink>::new("{}", &[StreamFormat::events()]).unwrap();
        harness
            .feed_all([&Event::new(1, "a"), &Event::new(2, "b")])
            .unwrap();
        assert_eq!(
            (harness.stage().packets(), harness.stage().samples()),
            (2, 0)
        );
    }

    #[test]
    fn an_injected_panic_comes_back_as_an_error_and_poisons_the_stage() {
        let block = EegPacket::with_capacity(1, 1);
        let eeg = StreamFormat::eeg(PacketKind::RawEeg, 1, 250.0, 1);
        let mut harness =
            StageHarness::<NullSink>::new(r#"{"panic_at_packet": 2}"#, &[eeg]).unwrap();
        harness.feed(&block).unwrap();
        let error = harness.feed(&block).unwrap_err();
        assert!(
            error.to_string().contains("injected fault at packet 2"),
            "{error}"
        );
        let refused = harness.feed(&block).unwrap_err();
        assert!(
            refused.to_string().contains("panicked earlier"),
            "{refused}"
        );
    }
}
