//! `passthrough`: forwards raw EEG blocks unchanged. For tests and for
//! measuring what a stage costs when it does nothing.

use hsp_sdk::{EegPacket, Outcome, Stage, StageError, StreamFormat};
use serde::Deserialize;

/// Copies each input block to its output.
pub struct Passthrough;

/// `passthrough` takes no config keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassthroughConfig {}

impl Stage for Passthrough {
    const KIND: &'static str = "passthrough";
    const DOC: &'static str = "Forwards raw EEG blocks unchanged.";
    type Config = PassthroughConfig;
    type Input = EegPacket;
    type Output = EegPacket;

    fn new(_config: PassthroughConfig, _input: Option<&StreamFormat>) -> Result<Self, StageError> {
        Ok(Self)
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
