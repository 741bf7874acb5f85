//! `gain`: multiplies every sample by a constant. The smallest complete hsp
//! plugin; every plugin crate in `plugins/` has this shape: config struct,
//! stage struct, `impl Stage`, `export_plugin!`, tests with the harness.

use hsp_sdk::{EegPacket, Outcome, PlanarBlock, Stage, StageConfig, StageError, StreamFormat};
use serde::Deserialize;

/// Multiplies every sample of a raw EEG block by `gain`.
pub struct Gain {
    gain: f32,
}

/// `[stage.config]` of `gain`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct GainConfig {
    /// Factor applied to every sample
    #[config(default = 1.0)]
    pub gain: f32,
}

impl Stage for Gain {
    const KIND: &'static str = "gain";
    const DOC: &'static str = "Multiplies every sample by a constant factor.";
    type Config = GainConfig;
    type Input = EegPacket;
    type Output = EegPacket;

    fn new(config: GainConfig, _inputs: &[StreamFormat]) -> Result<Self, StageError> {
        if !config.gain.is_finite() {
            return Err(StageError::new(format!(
                "`gain` must be a finite number, got {}",
                config.gain
            )));
        }
        Ok(Self { gain: config.gain })
    }

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
        for sample in output.values_mut() {
            *sample *= self.gain;
        }
        Ok(Outcome::Emitted)
    }

    const IN_PLACE: bool = true;

    fn process_in_place(&mut self, packet: &mut EegPacket) -> Result<Outcome, StageError> {
        for sample in packet.values_mut() {
            *sample *= self.gain;
        }
        Ok(Outcome::Emitted)
    }
}

hsp_sdk::export_plugin!(Gain);

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::PacketKind;
    use hsp_sdk::testing::StageHarness;

    fn block(values: &[f32]) -> EegPacket {
        let mut packet = EegPacket::with_capacity(1, values.len());
        packet.values_mut().copy_from_slice(values);
        packet.sequence = 7;
        packet
    }

    #[test]
    fn scales_every_sample_and_keeps_metadata() {
        let format = StreamFormat::eeg(PacketKind::RawEeg, 1, 250.0, 3);
        let mut harness = StageHarness::<Gain>::new(r#"{"gain": -2.0}"#, &[format]).unwrap();
        let out = harness.run([&block(&[1.0, 2.0, 3.0])]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].values(), &[-2.0, -4.0, -6.0]);
        assert_eq!(out[0].sequence, 7);
    }

    #[test]
    fn in_place_scales_the_packet_itself_like_process() {
        let format = StreamFormat::eeg(PacketKind::RawEeg, 1, 250.0, 3);
        let mut harness = StageHarness::<Gain>::new(r#"{"gain": -2.0}"#, &[format]).unwrap();
        let mut packet = block(&[1.0, 2.0, 3.0]);
        assert_eq!(
            harness.process_in_place(&mut packet).unwrap(),
            Outcome::Emitted
        );
        assert_eq!(packet.values(), &[-2.0, -4.0, -6.0]);
        assert_eq!(packet.sequence, 7);
    }

    #[test]
    fn default_gain_is_identity() {
        let format = StreamFormat::eeg(PacketKind::RawEeg, 1, 250.0, 2);
        let mut harness = StageHarness::<Gain>::new("{}", &[format]).unwrap();
        let out = harness.run([&block(&[0.5, -0.5])]).unwrap();
        assert_eq!(out[0].values(), &[0.5, -0.5]);
    }

    #[test]
    fn wrong_config_type_names_the_key() {
        let format = StreamFormat::eeg(PacketKind::RawEeg, 1, 250.0, 2);
        let error = StageHarness::<Gain>::new(r#"{"gain": "loud"}"#, &[format])
            .err()
            .unwrap();
        assert!(error.to_string().contains("gain"), "{error}");
    }
}
