//! `passthrough`: forwards raw EEG blocks unchanged. For tests and for
//! measuring what a stage costs when it does nothing; it can also panic at a
//! chosen packet, to test the host's `on_error` policies.

use hsp_sdk::{ConfigSpec, ConfigType, EegPacket, Outcome, Stage, StageError, StreamFormat};
use serde::Deserialize;

/// Copies each input block to its output.
pub struct Passthrough {
    packets: u64,
    panic_at_packet: u64,
}

/// `[stage.config]` of `passthrough`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassthroughConfig {
    /// Panic on this packet (1-based, counted per stage instance); 0 never.
    pub panic_at_packet: u64,
}

impl Stage for Passthrough {
    const KIND: &'static str = "passthrough";
    const DOC: &'static str = "Forwards raw EEG blocks unchanged.";
    const CONFIG: &'static [ConfigSpec] = &[ConfigSpec::optional(
        "panic_at_packet",
        ConfigType::Integer,
        "0",
        "Panic on this packet, 1-based (fault injection for tests); 0 never",
    )];
    type Config = PassthroughConfig;
    type Input = EegPacket;
    type Output = EegPacket;

    fn new(config: PassthroughConfig, _input: Option<&StreamFormat>) -> Result<Self, StageError> {
        Ok(Self {
            packets: 0,
            panic_at_packet: config.panic_at_packet,
        })
    }

    #[inline]
    fn process(
        &mut self,
        input: Option<&EegPacket>,
        output: &mut EegPacket,
    ) -> Result<Outcome, StageError> {
        let Some(input) = input else {
            return Ok(Outcome::NoOutput);
        };
        self.packets += 1;
        if self.packets == self.panic_at_packet {
            panic!("passthrough: injected fault at packet {}", self.packets);
        }
        output
            .copy_from(input)
            .map_err(|e| StageError::new(e.to_string()))?;
        Ok(Outcome::Emitted)
    }
}

hsp_sdk::export_plugin!(Passthrough);

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::PacketKind;
    use hsp_sdk::testing::StageHarness;

    #[test]
    fn forwards_samples_and_metadata() {
        let format = StreamFormat::eeg(PacketKind::RawEeg, 2, 250.0, 2);
        let mut input = EegPacket::with_capacity(2, 2);
        input.samples_mut().copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
        input.timestamp_ns = 99;
        let mut harness = StageHarness::<Passthrough>::new("{}", Some(format)).unwrap();
        let out = harness.run([&input]).unwrap();
        assert_eq!(out, vec![input]);
    }

    #[test]
    fn unknown_config_key_is_refused() {
        let error = StageHarness::<Passthrough>::new(r#"{"speed": 1}"#, None)
            .err()
            .unwrap();
        assert!(error.to_string().contains("unknown key `speed`"), "{error}");
    }
}
