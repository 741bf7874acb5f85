//! Run a stage (data-plane or control) without a host, for plugin authors'
//! unit tests.
//!
//! The harness drives the stage exactly as the host does: through the ABI
//! adapter (so panics come back as errors), with output packets sized from
//! the stage's declared output format, honouring [`Outcome::MoreOutput`].

use crate::abi::{ControlOutputs, Outcome, PacketMut, PacketRef, StreamFormat};
use crate::config::parse_config;
use crate::control::ControlStage;
use crate::data::{EegPacket, Event, FeaturePacket, FftPacket, FilteredEegPacket, PacketKind};
use crate::export::{ControlAdapter, StageAdapter, output_formats};
use crate::ports::{InputPorts, OutputPorts};
use crate::stage::{DataPlaneStage, PacketTag, PortPacket, Stage, StageError};

/// A stage under test.
///
/// ```
/// use hsp_sdk::testing::StageHarness;
/// use hsp_sdk::{EegPacket, NoPacket, Outcome, PlanarBlock, Stage, StageError, StreamFormat, PacketKind};
///
/// /// Emits `blocks` blocks of ones, then finishes.
/// struct Ones { left: u32 }
///
/// impl Stage for Ones {
///     const KIND: &'static str = "ones";
///     const DOC: &'static str = "Blocks of ones.";
///     type Config = serde_json::Value;
///     type Input = NoPacket;
///     type Output = EegPacket;
///     fn output_formats(_: &serde_json::Value, _: &[StreamFormat]) -> Result<Vec<StreamFormat>, StageError> {
///         Ok(vec![StreamFormat::eeg(PacketKind::RawEeg, 2, 100.0, 10)])
///     }
///     fn new(_: serde_json::Value, _: &[StreamFormat]) -> Result<Self, StageError> {
///         Ok(Ones { left: 3 })
///     }
///     fn process(&mut self, _: Option<&NoPacket>, out: &mut EegPacket) -> Result<Outcome, StageError> {
///         if self.left == 0 { return Ok(Outcome::Finished) }
///         self.left -= 1;
///         out.set_shape(2, 10).unwrap();
///         out.values_mut().fill(1.0);
///         Ok(Outcome::Emitted)
///     }
/// }
///
/// let mut harness = StageHarness::<Ones>::new("{}", &[]).unwrap();
/// let blocks = harness.run_source(100).unwrap();
/// assert_eq!(blocks.len(), 3);
/// assert_eq!(blocks[2].values(), &[1.0; 20]);
/// ```
///
/// A stage with several ports is fed on a named port with
/// [`process_port`](StageHarness::process_port), and gives back what it sent
/// on each port as [`Sent`] packets.
pub struct StageHarness<S: Stage> {
    stage: StageAdapter<S>,
    output_formats: Vec<StreamFormat>,
    /// One packet per output port, kept between calls until sent, as the
    /// host keeps them.
    outputs: Vec<OwnedPacket>,
    started: bool,
}

/// One packet a stage sent, and the output port it went to.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The output port's name.
    pub port: &'static str,
    /// The packet.
    pub packet: OwnedPacket,
}

impl<S: Stage> StageHarness<S> {
    /// Builds the stage from `config_json` (a JSON object, `"{}"` for all
    /// defaults) for inputs of `inputs`, one format per input port (none
    /// for a source), after checking them as the host does.
    pub fn new(config_json: &str, inputs: &[StreamFormat]) -> Result<Self, StageError> {
        let output_formats = output_formats::<S>(config_json, inputs)?;
        let config = parse_config::<S::Config>(config_json)?;
        let stage = S::new(config, inputs)?;
        Ok(Self {
            stage: StageAdapter::new(stage),
            outputs: output_formats.iter().map(OwnedPacket::for_format).collect(),
            output_formats,
            started: false,
        })
    }

    /// The output formats the stage declared, one per output port.
    pub fn output_formats(&self) -> &[StreamFormat] {
        &self.output_formats
    }

    /// The stage itself, to inspect its state.
    pub fn stage(&self) -> &S {
        self.stage.stage()
    }

    /// Feeds `packet` on input port `port` (by name; `None` for a source's
    /// call or a drain) and returns every packet sent for it, in order, plus
    /// the last outcome; calls again while the stage says `MoreOutput`.
    pub fn process_port(
        &mut self,
        port: Option<&str>,
        packet: PacketRef<'_>,
    ) -> Result<(Vec<Sent>, Outcome), StageError> {
        let index = match port {
            None => 0,
            Some(name) => <S::Input as InputPorts>::PORTS
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| {
                    StageError::new(format!("`{}` has no input port `{name}`", S::KIND))
                })?,
        };
        self.ensure_started()?;
        let mut sent = Vec::new();
        let mut input = packet;
        loop {
            let mut packets: Vec<PacketMut<'_>> = self
                .outputs
                .iter_mut()
                .map(OwnedPacket::as_packet_mut)
                .collect();
            let processed = self.stage.process(index as u32, input, &mut packets)?;
            drop(packets);
            for (port, format) in self.output_formats.iter().enumerate() {
                if processed.sent & (1 << port) != 0 {
                    let fresh = OwnedPacket::for_format(format);
                    sent.push(Sent {
                        port: <S::Output as OutputPorts>::PORTS[port].name,
                        packet: std::mem::replace(&mut self.outputs[port], fresh),
                    });
                }
            }
            input = PacketRef::None;
            if processed.outcome != Outcome::MoreOutput {
                return Ok((sent, processed.outcome));
            }
        }
    }

    /// Feeds `packet` on the first input port: for a stage whose input
    /// takes several packet types ([`AnyPacket`](crate::AnyPacket)).
    pub fn feed<P: PacketTag>(&mut self, packet: &P) -> Result<(Vec<Sent>, Outcome), StageError> {
        self.process_port(None, packet.as_packet_ref())
    }

    /// Feeds every packet in turn on the first input port, then stops the
    /// stage; returns all it sent.
    pub fn feed_all<'a, P: PacketTag>(
        &mut self,
        packets: impl IntoIterator<Item = &'a P>,
    ) -> Result<Vec<Sent>, StageError> {
        let mut all = Vec::new();
        for packet in packets {
            all.extend(self.feed(packet)?.0);
        }
        self.stop()?;
        Ok(all)
    }

    /// Stops the stage (flush and close); returns what it says the user
    /// should know ([`Stage::notes`]).
    pub fn stop(&mut self) -> Result<Vec<String>, StageError> {
        self.ensure_started()?;
        self.stage.stop()
    }

    fn ensure_started(&mut self) -> Result<(), StageError> {
        if !self.started {
            self.started = true;
            self.stage.start()?;
        }
        Ok(())
    }

    /// Starts the stage with [`Stage::resume`], as the host does when it
    /// takes over from a running instance (call it before the first packet).
    pub fn resume(&mut self) -> Result<(), StageError> {
        self.started = true;
        self.stage.resume()
    }
}

/// The one-port shapes: a packet type (or [`NoPacket`](crate::NoPacket)) on
/// each side.
impl<S: Stage> StageHarness<S>
where
    S::Input: PacketTag,
    S::Output: PortPacket + Clone,
{
    /// Feeds one input (or `None` for a source) and returns every packet it
    /// emitted for it, plus the last outcome.
    pub fn process(
        &mut self,
        input: Option<&S::Input>,
    ) -> Result<(Vec<S::Output>, Outcome), StageError> {
        let packet = input.map_or(PacketRef::None, PacketTag::as_packet_ref);
        let (sent, outcome) = self.process_port(None, packet)?;
        let emitted = sent
            .into_iter()
            .map(|sent| {
                sent.packet.get::<S::Output>().cloned().ok_or_else(|| {
                    StageError::new(format!("`{}` sent a packet of another type", S::KIND))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok((emitted, outcome))
    }

    /// Runs the stage in place on `packet` (which holds the input and gets
    /// the output), as the host does for a stage that sets
    /// [`Stage::IN_PLACE`]; refuses if the stage does not.
    pub fn process_in_place(&mut self, packet: &mut S::Output) -> Result<Outcome, StageError> {
        if !crate::export::describe::<S>().in_place {
            return Err(StageError::new(format!(
                "stage `{}` does not process in place",
                S::KIND
            )));
        }
        self.ensure_started()?;
        self.stage.process_in_place(packet.as_packet_mut())
    }

    /// Feeds every input in turn, then stops the stage; returns all outputs.
    pub fn run<'a>(
        &mut self,
        inputs: impl IntoIterator<Item = &'a S::Input>,
    ) -> Result<Vec<S::Output>, StageError> {
        let mut all = Vec::new();
        for input in inputs {
            all.extend(self.process(Some(input))?.0);
        }
        self.stop()?;
        Ok(all)
    }

    /// Calls a source until it finishes or `max_calls` is reached, then stops it.
    pub fn run_source(&mut self, max_calls: usize) -> Result<Vec<S::Output>, StageError> {
        let mut all = Vec::new();
        for _ in 0..max_calls {
            let (emitted, outcome) = self.process(None)?;
            all.extend(emitted);
            if outcome == Outcome::Finished {
                break;
            }
        }
        self.stop()?;
        Ok(all)
    }
}

macro_rules! owned_packet {
    ($($(#[doc = $doc:literal])* $variant:ident($type:ident) = $name:literal;)*) => {
        /// A packet of any kind, owned: what a stage under test sent.
        #[derive(Debug, Clone, PartialEq)]
        pub enum OwnedPacket {
            $(
                $(#[doc = $doc])*
                $variant($type),
            )*
        }

        impl OwnedPacket {
            /// An empty packet with room for one packet of `format`.
            pub fn for_format(format: &StreamFormat) -> Self {
                match format.kind {
                    $(PacketKind::$variant => Self::$variant(<$type as PortPacket>::for_format(format)),)*
                }
            }

            /// Its kind.
            pub fn kind(&self) -> PacketKind {
                match self {
                    $(Self::$variant(_) => PacketKind::$variant,)*
                }
            }

            /// Borrows it as the ABI's tagged reference.
            pub fn as_packet_ref(&self) -> PacketRef<'_> {
                match self {
                    $(Self::$variant(packet) => PacketRef::$variant(packet),)*
                }
            }

            /// Borrows it as the ABI's tagged mutable reference.
            pub fn as_packet_mut(&mut self) -> PacketMut<'_> {
                match self {
                    $(Self::$variant(packet) => PacketMut::$variant(packet),)*
                }
            }
        }
    };
}

crate::for_each_packet_kind!(owned_packet);

impl OwnedPacket {
    /// The packet as type `T`, if it is one (an EEG packet of either kind
    /// as [`EegPacket`]).
    pub fn get<T: PacketTag>(&self) -> Option<&T> {
        T::from_ref(self.as_packet_ref())
    }
}

/// A control stage under test: fed packets by hand, its events and parameter
/// changes collected.
///
/// ```
/// use hsp_sdk::testing::ControlHarness;
/// use hsp_sdk::{ControlContext, ControlStage, Event, PacketKind, PacketRef, StageError};
///
/// /// Counts events and re-emits each with its running count as the value.
/// struct Count { seen: u32 }
///
/// impl ControlStage for Count {
///     const KIND: &'static str = "count";
///     const DOC: &'static str = "Counts events.";
///     const ACCEPTS: &'static [PacketKind] = &[PacketKind::Event];
///     const EMITS_EVENTS: bool = true;
///     type Config = serde_json::Value;
///     fn new(_: serde_json::Value) -> Result<Self, StageError> { Ok(Count { seen: 0 }) }
///     fn on_packet(&mut self, _: &str, packet: PacketRef<'_>, ctx: &mut ControlContext<'_>) -> Result<(), StageError> {
///         if let PacketRef::Event(event) = packet {
///             self.seen += 1;
///             ctx.emit(event.with_value(f64::from(self.seen)));
///         }
///         Ok(())
///     }
/// }
///
/// let mut harness = ControlHarness::<Count>::new("{}").unwrap();
/// harness.on_packet("source", PacketRef::Event(&Event::new(3, "x"))).unwrap();
/// let outputs = harness.on_packet("source", PacketRef::Event(&Event::new(3, "x"))).unwrap();
/// assert_eq!(outputs.events[0].value, 2.0);
/// ```
pub struct ControlHarness<C: ControlStage> {
    stage: ControlAdapter<C>,
    started: bool,
}

impl<C: ControlStage> ControlHarness<C> {
    /// Builds the stage from `config_json` (a JSON object, `"{}"` for all defaults).
    pub fn new(config_json: &str) -> Result<Self, StageError> {
        let config = parse_config::<C::Config>(config_json)?;
        Ok(Self {
            stage: ControlAdapter::new(C::new(config)?),
            started: false,
        })
    }

    /// The stage itself, to inspect its state.
    pub fn stage(&self) -> &C {
        self.stage.stage()
    }

    /// Starts the stage (once) and returns what it emitted doing so.
    pub fn start(&mut self) -> Result<ControlOutputs, StageError> {
        let mut outputs = ControlOutputs::default();
        if !self.started {
            self.started = true;
            self.stage.call("start", &mut outputs, C::start)?;
        }
        Ok(outputs)
    }

    /// Starts the stage (once) with [`ControlStage::resume`], as the host
    /// does when it takes over from a running instance.
    pub fn resume(&mut self) -> Result<ControlOutputs, StageError> {
        let mut outputs = ControlOutputs::default();
        if !self.started {
            self.started = true;
            self.stage.call("resume", &mut outputs, C::resume)?;
        }
        Ok(outputs)
    }

    /// Hands the stage one packet from input `from` (starting it first if
    /// needed) and returns what it emitted for it.
    pub fn on_packet(
        &mut self,
        from: &str,
        packet: PacketRef<'_>,
    ) -> Result<ControlOutputs, StageError> {
        let mut outputs = self.start()?;
        self.stage.on_packet(from, packet, &mut outputs)?;
        Ok(outputs)
    }

    /// The interval the stage asks ticks at, as the host reads it.
    pub fn tick_interval(&self) -> Option<std::time::Duration> {
        self.stage.stage().tick_interval()
    }

    /// One tick of the stage's timer (starting it first if needed); what
    /// it emitted.
    pub fn on_tick(&mut self) -> Result<ControlOutputs, StageError> {
        let mut outputs = self.start()?;
        self.stage.call("on_tick", &mut outputs, C::on_tick)?;
        Ok(outputs)
    }

    /// Stops the stage (starting it first if needed, as the host would)
    /// and returns what it emitted doing so.
    pub fn stop(&mut self) -> Result<ControlOutputs, StageError> {
        let mut outputs = self.start()?;
        self.stage.call("stop", &mut outputs, C::stop)?;
        Ok(outputs)
    }
}

/// Runs test `test` of the current test binary again, alone, in a child
/// process whose files may not grow past `limit_bytes` (rounded down to
/// 512-byte blocks), as a full disk would refuse them, with the environment
/// variable `marker` set to `value` so the child knows it is the child.
/// Panics with what the child printed unless it ran that one test and it
/// passed; returns its output otherwise.
///
/// For sinks: check that what a full disk leaves behind is whole lines and
/// that the error reaches `process` and `stop`. Unix only (`sh`, `ulimit`);
/// SIGXFSZ is ignored in the child, so writes fail with `EFBIG` instead.
///
/// ```no_run
/// # fn check_whole_lines(_: &str) {}
/// #[test]
/// fn a_full_disk_leaves_whole_lines() {
///     const CHILD: &str = "MY_SINK_FULL_DISK_CHILD";
///     if let Ok(path) = std::env::var(CHILD) {
///         // The child: write until the limit refuses more, check the error.
///         return;
///     }
///     let path = std::env::temp_dir().join("my-sink-full-disk.csv");
///     let output = hsp_sdk::testing::rerun_with_file_size_limit(
///         "tests::a_full_disk_leaves_whole_lines",
///         4096,
///         CHILD,
///         path.as_os_str(),
///     );
///     check_whole_lines(&std::fs::read_to_string(&path).unwrap());
/// }
/// ```
#[cfg(unix)]
pub fn rerun_with_file_size_limit(
    test: &str,
    limit_bytes: u64,
    marker: &str,
    value: &std::ffi::OsStr,
) -> std::process::Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"trap "" XFSZ; ulimit -f "$1" && shift && exec "$0" "$@""#)
        .arg(&exe)
        .arg((limit_bytes / 512).to_string())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(marker, value)
        .output()
        .expect("run the test binary under a file-size limit");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the child failed:\n{report}");
    assert!(
        report.contains("1 passed"),
        "the child ran no test:\n{report}"
    );
    output
}
