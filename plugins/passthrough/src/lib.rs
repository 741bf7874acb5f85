//! `passthrough`: forwards raw EEG blocks unchanged, `counter_source`:
//! emits a given number of blocks doing as little as a source can, and
//! `merge`: forwards two streams as one. For tests and for measuring what
//! the framework costs per packet; `passthrough` can also misbehave on
//! purpose (panic, hang, sleep, emit the wrong shape), to test how the host
//! copes.

use hsp_sdk::{
    EegPacket, NoPacket, Outcome, PacketKind, PlanarBlock, Stage, StageConfig, StageError,
    StreamFormat,
};
use serde::Deserialize;

/// Forwards each input block: in place (no copy) when the host can, else
/// by copying it to its output.
pub struct Passthrough {
    packets: u64,
    config: PassthroughConfig,
    /// Any fault knob set.
    faulty: bool,
}

/// `[stage.config]` of `passthrough`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct PassthroughConfig {
    /// Panic on this packet, 1-based (fault injection for tests); 0 never
    #[config(default = 0)]
    pub panic_at_packet: u64,
    /// Finish after forwarding this many packets, while upstream goes on (tests); 0 never
    #[config(default = 0)]
    pub finish_after: u64,
    /// Never return from this packet on, 1-based (fault injection for tests); 0 never
    #[config(default = 0)]
    pub hang_at_packet: u64,
    /// Sleep this many milliseconds on every packet (a slow stage, for tests)
    #[config(default = 0)]
    pub sleep_ms: u64,
    /// Emit one channel fewer than declared from this packet on (fault injection for tests); 0
    /// never
    #[config(default = 0)]
    pub drop_channel_at_packet: u64,
    /// Allocate (and free) a buffer on every packet, which a stage must not do (tests)
    #[config(default = false)]
    pub allocate_every_packet: bool,
}

impl Stage for Passthrough {
    const KIND: &'static str = "passthrough";
    const DOC: &'static str = "Forwards raw EEG blocks unchanged.";
    type Config = PassthroughConfig;
    type Input = EegPacket;
    type Output = EegPacket;

    fn new(config: PassthroughConfig, _inputs: &[StreamFormat]) -> Result<Self, StageError> {
        let faulty = config.panic_at_packet > 0
            || config.hang_at_packet > 0
            || config.sleep_ms > 0
            || config.drop_channel_at_packet > 0
            || config.allocate_every_packet;
        Ok(Self {
            packets: 0,
            config,
            faulty,
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
        if self.finished() {
            return Ok(Outcome::Finished);
        }
        output
            .copy_from(input)
            .map_err(|e| StageError::new(e.to_string()))?;
        self.next_packet(output);
        Ok(Outcome::Emitted)
    }

    const IN_PLACE: bool = true;

    #[inline]
    fn process_in_place(&mut self, packet: &mut EegPacket) -> Result<Outcome, StageError> {
        if self.finished() {
            return Ok(Outcome::Finished);
        }
        self.next_packet(packet);
        Ok(Outcome::Emitted)
    }
}

impl Passthrough {
    fn finished(&self) -> bool {
        self.config.finish_after > 0 && self.packets == self.config.finish_after
    }

    /// Counts a packet and applies the faults asked for, if any.
    #[inline]
    fn next_packet(&mut self, packet: &mut EegPacket) {
        self.packets += 1;
        if self.faulty {
            self.inject_faults(packet);
        }
    }

    /// The fault knobs, kept out of the measured path of the benchmarks.
    #[cold]
    #[inline(never)]
    fn inject_faults(&mut self, packet: &mut EegPacket) {
        let c = &self.config;
        if self.packets == c.panic_at_packet {
            panic!("passthrough: injected fault at packet {}", self.packets);
        }
        if c.hang_at_packet > 0 && self.packets >= c.hang_at_packet {
            loop {
                std::thread::park();
            }
        }
        if c.sleep_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(c.sleep_ms));
        }
        if c.allocate_every_packet {
            // What a careless stage does: a scratch buffer per packet.
            let scratch: Vec<f32> = packet.values().to_vec();
            std::hint::black_box(scratch);
        }
        if c.drop_channel_at_packet > 0 && self.packets >= c.drop_channel_at_packet {
            let (channels, samples) = (packet.channels(), packet.values_per_channel());
            // Fewer channels always fit the buffer.
            let _ = packet.set_shape(channels.saturating_sub(1), samples);
        }
    }
}

/// Emits `packets` zero-filled blocks as fast as it is called, then finishes.
pub struct CounterSource {
    sent: u64,
    packets: u64,
    format: StreamFormat,
}

/// `[stage.config]` of `counter_source`.
#[derive(Debug, Deserialize, StageConfig)]
#[serde(deny_unknown_fields)]
pub struct CounterSourceConfig {
    /// Blocks to emit
    #[config(default = 1000000)]
    pub packets: u64,
    /// Channels per block
    #[config(default = 8)]
    pub channels: u32,
    /// Samples per channel per block
    #[config(default = 32)]
    pub block_size: u32,
}

impl Stage for CounterSource {
    const KIND: &'static str = "counter_source";
    const DOC: &'static str = "Emits zero-filled raw EEG blocks as fast as possible (benchmarks).";
    type Config = CounterSourceConfig;
    type Input = NoPacket;
    type Output = EegPacket;

    fn output_formats(
        config: &CounterSourceConfig,
        _inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        if config.channels == 0 || config.block_size == 0 {
            return Err(StageError::new(
                "`channels` and `block_size` must be at least 1",
            ));
        }
        Ok(vec![StreamFormat::eeg(
            PacketKind::RawEeg,
            config.channels as usize,
            250.0,
            config.block_size as usize,
        )])
    }

    fn new(config: CounterSourceConfig, _inputs: &[StreamFormat]) -> Result<Self, StageError> {
        let format = Self::output_formats(&config, &[])?.remove(0);
        Ok(Self {
            sent: 0,
            packets: config.packets,
            format,
        })
    }

    #[inline]
    fn process(
        &mut self,
        _input: Option<&NoPacket>,
        output: &mut EegPacket,
    ) -> Result<Outcome, StageError> {
        if self.sent == self.packets {
            return Ok(Outcome::Finished);
        }
        output
            .set_shape(self.format.channels(), self.format.values_per_channel())
            .map_err(|e| StageError::new(e.to_string()))?;
        output.sequence = self.sent;
        output.sample_rate_hz = self.format.sample_rate_hz;
        output.timestamp_ns = 0;
        self.sent += 1;
        Ok(Outcome::Emitted)
    }
}

/// `merge`'s two inputs.
#[derive(hsp_sdk::InputPorts)]
pub enum MergeInput<'a> {
    /// One stream.
    A(&'a EegPacket),
    /// The other, of the same shape.
    B(&'a EegPacket),
}

/// Forwards the blocks of two streams of one shape as one stream, in the
/// order the host hands them over (the oldest waiting first): the simplest
/// stage with two inputs, for measuring what a second port costs.
pub struct Merge;

impl Stage for Merge {
    const KIND: &'static str = "merge";
    const DOC: &'static str = "Forwards the EEG blocks of two streams of one shape as one stream, oldest first (benchmarks).";
    type Config = hsp_sdk::NoConfig;
    type Input = MergeInput<'static>;
    type Output = EegPacket;

    fn output_formats(
        _: &hsp_sdk::NoConfig,
        inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, StageError> {
        if !inputs[0].same_shape(&inputs[1]) {
            return Err(StageError::new(
                "`merge` takes two streams of the same kind and shape",
            ));
        }
        Ok(vec![inputs[0].clone()])
    }

    fn new(_: hsp_sdk::NoConfig, _: &[StreamFormat]) -> Result<Self, StageError> {
        Ok(Merge)
    }

    #[inline]
    fn process(
        &mut self,
        input: Option<MergeInput<'_>>,
        output: &mut EegPacket,
    ) -> Result<Outcome, StageError> {
        let block = match input {
            Some(MergeInput::A(block) | MergeInput::B(block)) => block,
            None => return Ok(Outcome::NoOutput),
        };
        output
            .copy_from(block)
            .map_err(|e| StageError::new(e.to_string()))?;
        Ok(Outcome::Emitted)
    }
}

hsp_sdk::export_plugin!(Passthrough, CounterSource, Merge);

#[cfg(test)]
mod tests {
    use super::*;
    use hsp_sdk::PacketKind;
    use hsp_sdk::testing::StageHarness;

    #[test]
    fn forwards_samples_and_metadata() {
        let format = StreamFormat::eeg(PacketKind::RawEeg, 2, 250.0, 2);
        let mut input = EegPacket::with_capacity(2, 2);
        input.values_mut().copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
        input.timestamp_ns = 99;
        let mut harness = StageHarness::<Passthrough>::new("{}", &[format]).unwrap();
        let out = harness.run([&input]).unwrap();
        assert_eq!(out, vec![input]);
    }

    #[test]
    fn counter_source_emits_exactly_its_packets() {
        let mut harness = StageHarness::<CounterSource>::new(r#"{"packets": 5}"#, &[]).unwrap();
        let blocks = harness.run_source(100).unwrap();
        assert_eq!(blocks.len(), 5);
        assert_eq!(blocks[4].sequence, 4);
        assert_eq!(blocks[0].values().len(), 8 * 32);
    }

    #[test]
    fn unknown_config_key_is_refused() {
        let format = StreamFormat::eeg(PacketKind::RawEeg, 1, 250.0, 1);
        let error = StageHarness::<Passthrough>::new(r#"{"speed": 1}"#, &[format])
            .err()
            .unwrap();
        assert!(error.to_string().contains("unknown key `speed`"), "{error}");
    }
}
