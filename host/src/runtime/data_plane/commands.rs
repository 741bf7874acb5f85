//! Changes the control plane sends a running data plane (a stage swapped
//! for a new build, a bridge set), applied between two packets, and what
//! the data plane hands back to be dropped off its thread.

use super::DataPlane;
use crate::graph::StageRecipe;
use crate::runtime::bridge::Tap;
use hsp_sdk::abi::FfiStageBox;
use hsp_sdk::runtime::{DataPlaneStage, PolledConsumer, PolledProducer, QueueProducer};
use std::time::Instant;

/// Commands in flight at once; the control plane waits for room.
pub(super) const COMMAND_CAPACITY: usize = 64;

/// Where a plane hands back what it retired: the data-plane thread to the
/// control plane, the thread of a stage that may block to the data-plane
/// thread (which passes it on).
pub(super) enum RetiredSink {
    /// To the control plane.
    Control(QueueProducer<Retired>),
    /// To the data-plane thread.
    DataPlane(PolledProducer<Retired>),
}

/// The data-plane thread's link to the thread of a stage that may block:
/// the commands it passes on, and what comes back.
pub(super) struct OwnThreadLink {
    pub(super) commands: PolledProducer<Command>,
    pub(super) retired: PolledConsumer<Retired>,
    /// Unparked after a command is passed on.
    pub(super) thread: Option<std::thread::Thread>,
}

/// A change for the running data plane, applied between two packets.
pub enum Command {
    /// Swap a stage's object for a new one (new parameters or new code).
    Replace(Box<Replacement>),
    /// Set (or remove) the bridge on a stage's output port.
    SetTap {
        /// Data-plane stage index.
        stage: usize,
        /// Its output port.
        port: usize,
        /// The new tap.
        tap: Option<Tap>,
    },
}

/// A stage object to swap in. After the swap it travels back in
/// [`Retired::Replaced`] holding the *old* object (stopped at the swap) to
/// be dropped off the data-plane thread.
pub struct Replacement {
    /// Data-plane stage index.
    pub stage: usize,
    /// The stage object (built, not started: it resumes at the swap, after
    /// the old one stops, so a sink appends in order and a source's clock
    /// starts when it does).
    pub object: FfiStageBox,
    /// What it was built from (a later restart builds from it again).
    pub recipe: StageRecipe,
    /// The sender's number for this change, to match its acknowledgement.
    pub ticket: u64,
    /// When the change was asked for.
    pub requested: Instant,
}

/// What the data plane hands back to the control plane.
pub enum Retired {
    /// A `Command::Replace` was applied (`error: None`; the box holds the
    /// old stage, stopped) or refused (the box holds the new stage, which
    /// failed to start; the old one runs on).
    Replaced {
        /// The replacement.
        replacement: Box<Replacement>,
        /// Packets the stage had taken in when the swap happened.
        at_packet: u64,
        /// When it was applied.
        applied: Instant,
        /// Why it was refused.
        error: Option<String>,
    },
    /// A tap taken off a stage.
    Tap(Tap),
}

impl DataPlane {
    /// Applies the commands the control plane sent since the last pass,
    /// passing on those for a stage on a thread of its own.
    pub(super) fn apply_commands(&mut self) {
        while let Some(command) = self.commands.pop() {
            let command = match self.pass_on(command) {
                Some(command) => command,
                None => continue,
            };
            match command {
                Command::Replace(replacement) => {
                    let index = replacement.stage;
                    match self.stages.get_mut(index) {
                        Some(stage) if stage.finished => {
                            self.retire_refused(replacement, "the stage has already finished");
                        }
                        Some(stage) if stage.more_output || stage.replacement.is_some() => {
                            // Mid-run of `MoreOutput`: swap once it is done.
                            // A second replacement supersedes the first.
                            if let Some(superseded) = stage.replacement.replace(replacement) {
                                self.retire_refused(superseded, "superseded by a newer change");
                            }
                        }
                        Some(_) => self.replace(index, replacement),
                        None => self.retire_refused(replacement, "no such stage"),
                    }
                }
                Command::SetTap { stage, port, tap } => {
                    let output = self
                        .stages
                        .get_mut(stage)
                        .and_then(|running| running.outputs.get_mut(port));
                    let old = match output {
                        Some(output) => std::mem::replace(&mut output.tap, tap),
                        None => tap,
                    };
                    if let Some(old) = old {
                        self.retire(Retired::Tap(old));
                    }
                }
            }
        }
    }

    /// Swaps stage `index` for `replacement`'s object, between two packets.
    pub(super) fn replace(&mut self, index: usize, replacement: Box<Replacement>) {
        // Off the packet path, and allowed to allocate: counted apart.
        self.allocations
            .add(replacement.recipe.allocation_counter());
        let before = self.allocations.read();
        self.swap_in(index, replacement);
        self.control_path += self.allocations.since(&before);
    }

    fn swap_in(&mut self, index: usize, mut replacement: Box<Replacement>) {
        let stage = &mut self.stages[index];
        if stage.finished {
            return self.retire_refused(replacement, "the stage has already finished");
        }
        if replacement.recipe.runs_in_place() != stage.in_place {
            return self.retire_refused(
                replacement,
                "the new code changes whether the stage works in place; that needs a restart",
            );
        }
        // The old stage stops first (a sink flushes), then the new one
        // resumes after it (a sink appends), so output stays in order. If
        // the new one cannot resume, the old one resumes and runs on.
        if let Err(error) = DataPlaneStage::stop(&mut stage.stage) {
            tracing::warn!(stage = %stage.id, "stopping it for the swap: {error}");
        }
        if let Err(error) = DataPlaneStage::resume(&mut replacement.object) {
            let message = match DataPlaneStage::resume(&mut stage.stage) {
                Ok(()) => format!("the new stage failed to start: {error}"),
                Err(again) => format!(
                    "the new stage failed to start ({error}) and the old one did not resume ({again})"
                ),
            };
            return self.retire_refused(replacement, &message);
        }
        std::mem::swap(&mut stage.stage, &mut replacement.object);
        std::mem::swap(&mut stage.recipe, &mut replacement.recipe);
        stage.allocation_counter = stage.recipe.allocation_counter();
        stage.allocations_seen = stage.library_allocations();
        stage.stats.replaced += 1;
        stage.first_error_logged = false;
        let at_packet = stage.stats.packets_in;
        self.retire(Retired::Replaced {
            replacement,
            at_packet,
            applied: Instant::now(),
            error: None,
        });
    }

    pub(super) fn retire_refused(&mut self, replacement: Box<Replacement>, why: &str) {
        let at_packet = self
            .stages
            .get(replacement.stage)
            .map_or(0, |s| s.stats.packets_in);
        self.retire(Retired::Replaced {
            replacement,
            at_packet,
            applied: Instant::now(),
            error: Some(why.to_string()),
        });
    }

    /// Passes `command` on when its stage runs on a thread of its own
    /// (numbered after this plane's stages, in the order of those threads);
    /// gives it back otherwise.
    fn pass_on(&mut self, command: Command) -> Option<Command> {
        let here = self.stages.len();
        let (stage, command) = match command {
            Command::Replace(mut replacement) if replacement.stage >= here => {
                let stage = replacement.stage - here;
                replacement.stage = 0;
                (stage, Command::Replace(replacement))
            }
            Command::SetTap { stage, port, tap } if stage >= here => (
                stage - here,
                Command::SetTap {
                    stage: 0,
                    port,
                    tap,
                },
            ),
            command => return Some(command),
        };
        let Some(link) = self.own_threads.get_mut(stage) else {
            return Some(command); // refused below as "no such stage"
        };
        match link.commands.push(command) {
            Ok(()) => {
                if let Some(thread) = &link.thread {
                    thread.unpark();
                }
                None
            }
            Err(error) => match error.into_inner() {
                Command::Replace(replacement) => {
                    self.retire_refused(replacement, "the stage's command queue is full");
                    None
                }
                Command::SetTap { tap, .. } => {
                    if let Some(tap) = tap {
                        self.retire(Retired::Tap(tap));
                    }
                    None
                }
            },
        }
    }

    /// Passes on what the threads of stages that may block handed back.
    pub(super) fn collect_retired(&mut self) {
        for index in 0..self.own_threads.len() {
            while let Some(item) = self.own_threads[index].retired.pop() {
                self.retire(item);
            }
        }
    }

    /// Hands `item` to the control plane to drop.
    pub(super) fn retire(&mut self, item: Retired) {
        // The queue has room for every command in flight; if the control
        // plane is gone, the item is dropped here.
        match &mut self.retired {
            RetiredSink::Control(queue) => drop(queue.push(item)),
            RetiredSink::DataPlane(queue) => drop(queue.push(item)),
        }
    }
}
