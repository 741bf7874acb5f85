//! Run a stage (data-plane or control) without a host, for plugin authors'
//! unit tests.
//!
//! The harness drives the stage exactly as the host does: through the ABI
//! adapter (so panics come back as errors), with output packets sized from
//! the stage's declared output format, honouring [`Outcome::MoreOutput`].

use crate::abi::{ControlOutputs, Outcome, PacketRef, StreamFormat};
use crate::config::parse_config;
use crate::control::ControlStage;
use crate::export::{ControlAdapter, StageAdapter};
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
///     fn output_format(_: &serde_json::Value, _: Option<&StreamFormat>) -> Result<Option<StreamFormat>, StageError> {
///         Ok(Some(StreamFormat::eeg(PacketKind::RawEeg, 2, 100.0, 10)))
///     }
///     fn new(_: serde_json::Value, _: Option<&StreamFormat>) -> Result<Self, StageError> {
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
/// let mut harness = StageHarness::<Ones>::new("{}", None).unwrap();
/// let blocks = harness.run_source(100).unwrap();
/// assert_eq!(blocks.len(), 3);
/// assert_eq!(blocks[2].values(), &[1.0; 20]);
/// ```
pub struct StageHarness<S: Stage> {
    stage: StageAdapter<S>,
    output_format: Option<StreamFormat>,
    started: bool,
}

impl<S: Stage> StageHarness<S> {
    /// Builds the stage from `config_json` (a JSON object, `"{}"` for all
    /// defaults) for input of `input` (`None` for a source).
    pub fn new(config_json: &str, input: Option<StreamFormat>) -> Result<Self, StageError> {
        let config = parse_config::<S::Config>(config_json)?;
        let output_format = S::output_format(&config, input.as_ref())?;
        let stage = S::new(config, input.as_ref())?;
        Ok(Self {
            stage: StageAdapter::new(stage),
            output_format,
            started: false,
        })
    }

    /// The output format the stage declared.
    pub fn output_format(&self) -> Option<StreamFormat> {
        self.output_format
    }

    /// The stage itself, to inspect its state.
    pub fn stage(&self) -> &S {
        self.stage.stage()
    }

    /// Feeds one input (or `None` for a source) and returns every packet it
    /// emitted for it, plus the last outcome.
    pub fn process(
        &mut self,
        input: Option<&S::Input>,
    ) -> Result<(Vec<S::Output>, Outcome), StageError> {
        self.ensure_started()?;
        let mut emitted = Vec::new();
        let mut input = input;
        loop {
            let mut output = self.fresh_output();
            let input_ref = match input.take() {
                Some(packet) => packet.as_packet_ref(),
                None => crate::abi::PacketRef::None,
            };
            let outcome = self.stage.process(input_ref, output.as_packet_mut())?;
            match outcome {
                Outcome::Emitted => emitted.push(output),
                Outcome::MoreOutput => {
                    emitted.push(output);
                    continue;
                }
                Outcome::NoOutput | Outcome::Finished => {}
            }
            return Ok((emitted, outcome));
        }
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

    /// Stops the stage (flush and close).
    pub fn stop(&mut self) -> Result<(), StageError> {
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

    fn fresh_output(&self) -> S::Output {
        match &self.output_format {
            Some(format) => S::Output::for_format(format),
            None => S::Output::for_format(&StreamFormat::eeg(
                crate::data::PacketKind::RawEeg,
                0,
                0.0,
                0,
            )),
        }
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
