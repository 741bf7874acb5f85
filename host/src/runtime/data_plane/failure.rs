//! A stage call that failed: `on_error` decides (stop the run, forward the
//! packet unprocessed, or rebuild the stage from its recipe and feed it the
//! packet again).

use super::stage::{RunningStage, misshapen};
use super::{DataPlane, DataPlaneError};
use crate::graph::{BuildError, OnError};
use crate::runtime::packets::{as_input, as_output, bypass_into};
use hsp_sdk::Outcome;
use hsp_sdk::runtime::{DataPlaneStage, PacketMut, PipelineData};

impl DataPlane {
    /// Applies stage `index`'s `on_error` policy to a failed call on
    /// `input` (kept for `bypass` and `restart`) with `output`.
    ///
    /// - `stop`: the run fails, naming the stage.
    /// - `bypass`: this packet goes on unprocessed. A stage that panicked
    ///   refuses every later call, so it is first rebuilt from its config
    ///   (counted as a restart): only the packet that panicked is bypassed.
    /// - `restart`: the stage is rebuilt from its config, and the packet it
    ///   failed on is fed once to the fresh stage; if that fails too, the
    ///   packet is lost (counted). An in-place stage's packet was worked on
    ///   where it is and cannot be fed again: it is lost (counted).
    ///
    /// Handling an error may allocate (a log line, a rebuilt stage); it is
    /// off the packet path, and counted apart from the steady state.
    pub(super) fn on_stage_error(
        &mut self,
        index: usize,
        message: &str,
        input: Option<(u32, PipelineData)>,
    ) -> Result<(), DataPlaneError> {
        self.control_path.plugins += self.stages[index].allocations_since_seen();
        let before = self.allocations.read();
        let handled = self.apply_policy(index, message, input);
        self.control_path += self.allocations.since(&before);
        handled
    }

    fn apply_policy(
        &mut self,
        index: usize,
        message: &str,
        input: Option<(u32, PipelineData)>,
    ) -> Result<(), DataPlaneError> {
        let stage = &mut self.stages[index];
        stage.stats.errors += 1;
        if !stage.first_error_logged {
            stage.first_error_logged = true;
            tracing::error!(stage = %stage.id, kind = %stage.recipe.kind, policy = ?stage.recipe.on_error, "{message}");
        } else {
            tracing::trace!(stage = %stage.id, "{message}");
        }
        let fail = |stage: &RunningStage, message: String| DataPlaneError::running(stage, message);
        match stage.recipe.on_error {
            OnError::Stop => Err(fail(stage, message.to_string())),
            OnError::Bypass => {
                if hsp_sdk::export::is_panic_message(message) {
                    self.rebuild(index).map_err(|error| {
                        fail(
                            &self.stages[index],
                            format!("{message}; rebuilding it after the panic failed: {error}"),
                        )
                    })?;
                }
                let stage = &mut self.stages[index];
                let output = stage.outputs.first_mut().and_then(|port| port.held.take());
                if let (Some((_, input)), Some(mut output)) = (input, output) {
                    if bypass_into(&input, &mut output) {
                        stage.stats.bypassed += 1;
                        drop(input);
                        self.emit(index, 0, output)?;
                    } else {
                        stage.outputs[0].held = Some(output);
                        stage.stats.lost += 1;
                    }
                }
                Ok(())
            }
            OnError::Restart => {
                self.rebuild(index).map_err(|error| {
                    fail(
                        &self.stages[index],
                        format!("{message}; restarting it failed too: {error}"),
                    )
                })?;
                if let Some(input) = input {
                    self.feed_again(index, input)?;
                }
                Ok(())
            }
        }
    }

    /// Builds stage `index` afresh from its config: the failed object stops
    /// first (a sink flushes what it holds, on drop if it refuses `stop`
    /// after a panic), then the fresh one resumes after it (a sink appends).
    /// A rare error path: its drop may free memory on this thread.
    pub(super) fn rebuild(&mut self, index: usize) -> Result<(), BuildError> {
        let stage = &mut self.stages[index];
        let fresh = stage.recipe.build()?;
        let mut old = std::mem::replace(&mut stage.stage, fresh);
        self.progress.enter(index);
        let _ = DataPlaneStage::stop(&mut old);
        drop(old);
        let resumed = DataPlaneStage::resume(&mut stage.stage)
            .map_err(|e| BuildError::StartFailed(e.to_string()));
        self.progress.leave();
        resumed?;
        stage.stats.restarts += 1;
        if stage.stats.restarts == 1 {
            tracing::warn!(stage = %stage.id, "rebuilt from its config");
        } else {
            tracing::debug!(stage = %stage.id, restarts = stage.stats.restarts, "rebuilt from its config");
        }
        Ok(())
    }

    /// Gives a restarted stage the packet its predecessor failed on, once.
    pub(super) fn feed_again(
        &mut self,
        index: usize,
        (port, input): (u32, PipelineData),
    ) -> Result<(), DataPlaneError> {
        let stage = &mut self.stages[index];
        self.progress.enter(index);
        let result = {
            let RunningStage {
                stage: object,
                outputs,
                ..
            } = &mut *stage;
            let mut packets: Vec<PacketMut<'_>> = outputs
                .iter_mut()
                .map(|output| output.held.as_mut().map_or(PacketMut::None, as_output))
                .collect();
            DataPlaneStage::process(object, port, as_input(&input), &mut packets)
        };
        self.progress.leave();
        drop(input);
        match result {
            Ok(processed) => {
                stage.more_output = processed.outcome == Outcome::MoreOutput;
                for port in 0..stage.outputs.len() {
                    if processed.sent & (1 << port) == 0 {
                        continue;
                    }
                    let stage = &mut self.stages[index];
                    match stage.outputs[port].held.take() {
                        Some(output) if misshapen(stage, port, &output).is_none() => {
                            self.emit(index, port, output)?;
                        }
                        Some(_) => stage.stats.lost += 1,
                        None => {}
                    }
                }
                if processed.outcome == Outcome::Finished {
                    self.finish(index);
                }
                Ok(())
            }
            Err(error) => {
                stage.stats.errors += 1;
                stage.stats.lost += 1;
                tracing::debug!(stage = %stage.id, "the fresh stage failed on the same packet: {error}");
                Ok(())
            }
        }
    }
}
