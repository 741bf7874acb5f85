//! `gate`: a signal passed on only while events hold the gate open (task
//! blocks of an experiment, a recording switched on and off by markers).

use hsp_sdk::prelude::*;
use serde::Deserialize;

/// `[stage.config]` of `gate`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Code of the events that open the gate
    #[config(default = 1)]
    pub open_code: u32,
    /// Code of the events that close it
    #[config(default = 2)]
    pub close_code: u32,
    /// Whether it starts open
    #[config(default = false)]
    pub open: bool,
}

/// `gate`'s two inputs.
#[derive(InputPorts)]
pub enum GateInput<'a> {
    /// The signal to pass or hold back.
    Signal(&'a EegPacket),
    /// The events that open and close the gate.
    Events(&'a Event),
}

/// Passes EEG blocks on while open; events open and close it.
///
/// A block passes when the gate is open at the time of its first sample.
/// The host hands over the oldest waiting packet first, so an event stamped
/// before a block takes effect before it, as long as both have arrived.
pub struct Gate {
    open_code: u32,
    close_code: u32,
    open: bool,
    /// Blocks held back so far.
    held_back: u64,
}

impl Gate {
    /// Whether the gate is open now.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Blocks held back so far.
    pub fn held_back(&self) -> u64 {
        self.held_back
    }
}

impl Stage for Gate {
    const KIND: &'static str = "gate";
    const DOC: &'static str =
        "Passes EEG on only while events (open and close codes) hold the gate open.";
    type Config = GateConfig;
    type Input = GateInput<'static>;
    type Output = EegPacket;

    fn output_formats(
        _: &GateConfig,
        inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        // The signal's stream, whichever EEG kind it is.
        Ok(vec![inputs[0].clone()])
    }

    fn new(config: GateConfig, _inputs: &[StreamFormat]) -> Result<Self, StageError> {
        if config.open_code == config.close_code {
            return Err(StageError::new(format!(
                "`open_code` and `close_code` are both {}: the gate could not tell them apart",
                config.open_code
            )));
        }
        Ok(Self {
            open_code: config.open_code,
            close_code: config.close_code,
            open: config.open,
            held_back: 0,
        })
    }

    fn process(
        &mut self,
        input: Option<GateInput<'_>>,
        output: &mut EegPacket,
    ) -> Result<Outcome, StageError> {
        match input {
            Some(GateInput::Events(event)) => {
                if event.code == self.open_code {
                    self.open = true;
                } else if event.code == self.close_code {
                    self.open = false;
                }
                Ok(Outcome::NoOutput)
            }
            Some(GateInput::Signal(block)) if self.open => {
                output
                    .copy_from(block)
                    .map_err(|e| StageError::new(format!("gate: {e}")))?;
                Ok(Outcome::Emitted)
            }
            Some(GateInput::Signal(_)) => {
                self.held_back += 1;
                Ok(Outcome::NoOutput)
            }
            None => Ok(Outcome::NoOutput),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::testing::StageHarness;

    fn formats() -> [StreamFormat; 2] {
        [
            StreamFormat::eeg(PacketKind::FilteredEeg, 1, 100.0, 4),
            StreamFormat::events(),
        ]
    }

    #[test]
    fn events_open_and_close_the_gate_for_the_blocks_after_them() {
        let mut h = StageHarness::<Gate>::new("{}", &formats()).unwrap();
        assert_eq!(h.output_formats()[0].kind, PacketKind::FilteredEeg);
        let block = FilteredEegPacket::with_capacity(1, 4);
        let passed = |h: &mut StageHarness<Gate>| {
            h.process_port(Some("signal"), block.as_packet_ref())
                .unwrap()
                .0
                .len()
        };
        assert_eq!(passed(&mut h), 0, "closed at first");
        h.process_port(Some("events"), Event::new(1, "start").as_packet_ref())
            .unwrap();
        assert_eq!(passed(&mut h), 1);
        assert_eq!(passed(&mut h), 1);
        h.process_port(Some("events"), Event::new(2, "stop").as_packet_ref())
            .unwrap();
        assert_eq!(passed(&mut h), 0);
        // Other codes leave it as it is.
        h.process_port(Some("events"), Event::new(9, "other").as_packet_ref())
            .unwrap();
        assert_eq!(passed(&mut h), 0);
        assert_eq!(h.stage().held_back(), 3);
    }

    #[test]
    fn a_packet_on_a_port_that_does_not_take_it_is_an_error() {
        let mut h = StageHarness::<Gate>::new("{}", &formats()).unwrap();
        let e = h
            .process_port(Some("events"), FilteredEegPacket::default().as_packet_ref())
            .unwrap_err()
            .to_string();
        assert!(e.contains("port `events`, which takes event"), "{e}");
        let e = StageHarness::<Gate>::new("{}", &formats()[..1])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("takes 2 input(s) (signal, events), given 1"),
            "{e}"
        );
    }
}
