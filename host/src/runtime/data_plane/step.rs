//! The hot path: one stage's step, the call into its plugin, and the
//! packet's way on (a direct hand-off, its queue, or a fan-out of copies).

use super::edge::push;
use super::stage::{misshapen, unix_now_ns};
use super::{DataPlane, DataPlaneError};
use crate::runtime::packets::{as_input, as_output, copy_into};
use crate::runtime::stats::MAX_LATENCY_NS;
use hsp_sdk::runtime::{DataPlaneStage, PacketMut, PipelineData};
use hsp_sdk::{Outcome, PacketRef};
use std::time::Instant;

/// Direct hand-offs nest one stack frame group per stage; past this depth a
/// packet goes through its queue instead, so a long chain cannot overflow
/// the data-plane thread's stack.
const MAX_HAND_OFF_DEPTH: u32 = 32;

impl DataPlane {
    /// Lets stage `index` do at most one packet's work; `true` if it did any.
    pub(super) fn step(&mut self, index: usize) -> Result<bool, DataPlaneError> {
        if self.stages[index].finished {
            return Ok(false);
        }
        let mut worked = false;
        if self.stages[index].pending.is_some() {
            if !self.distribute(index) {
                return Ok(false);
            }
            worked = true;
        }
        if !self.stages[index].more_output {
            if let Some(replacement) = self.stages[index].replacement.take() {
                self.replace(index, replacement);
            }
        }
        let stage = &mut self.stages[index];
        let draining = stage.more_output;
        if let (Some(edge), false) = (stage.input_edge, draining) {
            if stage.in_place {
                return match self.edges[edge].consumer.pop() {
                    Some(packet) => self.step_in_place(index, packet),
                    None => Ok(self.end_of_input(index, edge) || worked),
                };
            }
            if self.edges[edge].consumer.is_empty() {
                return Ok(self.end_of_input(index, edge) || worked);
            }
        }
        let stage = &mut self.stages[index];
        let output = match &stage.pool {
            Some(pool) => match pool.try_acquire() {
                Some(packet) => Some(packet),
                None => return Ok(worked),
            },
            None => None,
        };
        let input = match (stage.input_edge, draining) {
            (Some(edge), false) => self.edges[edge].consumer.pop(),
            _ => None,
        };
        self.call_stage(index, input, output, worked)
    }

    /// Calls stage `index` on `input` (if any) with `output` (if it has a
    /// pool) and acts on the outcome; `worked` is what to report for a
    /// source that had nothing ready.
    pub(super) fn call_stage(
        &mut self,
        index: usize,
        input: Option<PipelineData>,
        mut output: Option<PipelineData>,
        worked: bool,
    ) -> Result<bool, DataPlaneError> {
        let stage = &mut self.stages[index];
        stage.stats.packets_in += u64::from(input.is_some());
        let input_ref = input.as_ref().map_or(PacketRef::None, as_input);
        let output_mut = output.as_mut().map_or(PacketMut::None, as_output);
        let timed = stage.sampler.tick();
        let allocated_before = if timed {
            stage.library_allocations()
        } else {
            0
        };
        let began = timed.then(Instant::now);
        // No `leave` on the hot path: the next pass or call moves the
        // progress on, which is all the watchdog needs.
        self.progress.enter(index);
        let result = DataPlaneStage::process(&mut stage.stage, input_ref, output_mut);
        if let Some(began) = began {
            stage
                .stats
                .process_ns
                .saturating_record(began.elapsed().as_nanos() as u64);
            stage.count_call_allocations(allocated_before);
        }
        if let (true, Some(latency), Some(item)) = (timed, &mut stage.stats.latency_ns, &input) {
            match unix_now_ns().checked_sub(item.timestamp_ns()) {
                Some(age) if age <= MAX_LATENCY_NS => latency.saturating_record(age),
                // Stamped before any real latency: no wall clock behind it.
                Some(_) => stage.stats.no_clock += 1,
                // A source faster than real time stamps data "in the future".
                None => stage.stats.ahead_of_clock += 1,
            }
        }
        match result {
            Ok(Outcome::Emitted) | Ok(Outcome::MoreOutput) => {
                stage.more_output = matches!(result, Ok(Outcome::MoreOutput));
                if let Some(output) = output {
                    if let Some(message) = misshapen(stage, &output) {
                        stage.more_output = false;
                        self.on_stage_error(index, &message, input, Some(output))?;
                        return Ok(true);
                    }
                    if stage.input_edge.is_none() {
                        stage.track_pace(&output, timed);
                    }
                    self.emit(index, output)?;
                }
            }
            Ok(Outcome::NoOutput) => {
                stage.more_output = false;
                // A source that had nothing ready yet is not work done.
                if stage.input_edge.is_none() {
                    return Ok(worked);
                }
            }
            Ok(Outcome::Finished) => {
                stage.more_output = false;
                drop(output);
                self.finish(index);
            }
            Err(error) => {
                stage.more_output = false;
                self.on_stage_error(index, error.message(), input, output)?;
            }
        }
        Ok(true)
    }

    /// Stage `index` found its input `edge` empty: if the producer is gone
    /// too, the stage's input has ended and it finishes (`true`).
    pub(super) fn end_of_input(&mut self, index: usize, edge: usize) -> bool {
        // Both ends live on this thread: the producer half is dropped when
        // the upstream stage finishes, so no atomic needs reading before.
        let edge = &self.edges[edge];
        if edge.producer.is_none() && edge.consumer.is_finished() {
            self.finish(index);
            return true;
        }
        false
    }

    /// [`step`](Self::step) for an in-place stage given its next input: the
    /// packet is processed where it is and forwarded itself.
    pub(super) fn step_in_place(
        &mut self,
        index: usize,
        mut packet: PipelineData,
    ) -> Result<bool, DataPlaneError> {
        let stage = &mut self.stages[index];
        stage.stats.packets_in += 1;
        let timed = stage.sampler.tick();
        let allocated_before = if timed {
            stage.library_allocations()
        } else {
            0
        };
        let began = timed.then(Instant::now);
        self.progress.enter(index);
        let result = DataPlaneStage::process_in_place(&mut stage.stage, as_output(&mut packet));
        if let Some(began) = began {
            stage
                .stats
                .process_ns
                .saturating_record(began.elapsed().as_nanos() as u64);
            stage.count_call_allocations(allocated_before);
        }
        match result {
            Ok(Outcome::Emitted) => match misshapen(stage, &packet) {
                None => self.emit(index, packet)?,
                Some(message) => self.lost_in_place(index, packet, &message)?,
            },
            Ok(Outcome::NoOutput) => drop(packet),
            Ok(Outcome::Finished) => {
                drop(packet);
                self.finish(index);
            }
            Ok(Outcome::MoreOutput) => {
                let message = "returned MoreOutput from process_in_place, which cannot give more";
                self.lost_in_place(index, packet, message)?;
            }
            Err(error) => self.lost_in_place(index, packet, error.message())?,
        }
        Ok(true)
    }

    /// An in-place stage failed on `packet`: it was worked on where it is
    /// and may be half-transformed, so it can be neither bypassed nor fed
    /// again. It is lost, counted, and the stage's policy applies.
    #[cold]
    #[inline(never)]
    pub(super) fn lost_in_place(
        &mut self,
        index: usize,
        packet: PipelineData,
        message: &str,
    ) -> Result<(), DataPlaneError> {
        drop(packet);
        self.stages[index].stats.lost += 1;
        self.on_stage_error(index, message, None, None)
    }

    /// Stage `index` emitted `packet`: counts it, offers it to the control
    /// plane, and sends it on (straight into the queue when there is one
    /// consumer; a packet that does not fit waits as the stage's pending one).
    ///
    /// With one consumer that could take the packet right now (its queue is
    /// empty, and it works in place or is a sink, so it needs no packet of
    /// its own), the packet is handed straight to it: depth first, the same
    /// order the queue would give, without the queue's push and pop.
    #[inline]
    pub(super) fn emit(
        &mut self,
        index: usize,
        packet: PipelineData,
    ) -> Result<(), DataPlaneError> {
        let stage = &mut self.stages[index];
        stage.stats.packets_out += 1;
        if let Some(tap) = &mut stage.tap {
            tap.offer(&packet);
        }
        if let [edge_index] = stage.output_edges[..] {
            let edge = &mut self.edges[edge_index];
            let consumer = &self.stages[edge.to];
            let direct = edge.producer.is_some()
                && consumer.takes_directly()
                && edge.consumer.is_empty()
                && self.hand_off_depth < MAX_HAND_OFF_DEPTH;
            if direct {
                edge.pushed += 1;
                let to = edge.to;
                self.hand_off_depth += 1;
                let result = if self.stages[to].in_place {
                    self.step_in_place(to, packet).map(|_| ())
                } else {
                    self.call_stage(to, Some(packet), None, true).map(|_| ())
                };
                self.hand_off_depth -= 1;
                return result;
            }
            if let Err(packet) = push(edge, packet) {
                let stage = &mut self.stages[index];
                stage.pending = Some(packet);
                stage.pending_reached = 0;
            }
            return Ok(());
        }
        stage.pending = Some(packet);
        stage.pending_reached = 0;
        self.distribute(index);
        Ok(())
    }

    /// Pushes the stage's pending packet to every output edge (copies for all
    /// but the last); `false` if an edge is full under `block` and the packet
    /// stays pending.
    pub(super) fn distribute(&mut self, index: usize) -> bool {
        let stage = &mut self.stages[index];
        let edge_count = stage.output_edges.len();
        if edge_count == 0 {
            stage.pending = None;
            return true;
        }
        while stage.pending_reached < edge_count {
            let edge_index = stage.output_edges[stage.pending_reached];
            let last = stage.pending_reached + 1 == edge_count;
            let item = if last {
                match stage.pending.take() {
                    Some(item) => item,
                    None => return true,
                }
            } else {
                let Some(pool) = &stage.pool else { return true };
                let Some(mut copy) = pool.try_acquire() else {
                    return false;
                };
                let Some(original) = &stage.pending else {
                    return true;
                };
                if !copy_into(original, &mut copy) {
                    // Cannot happen for packets of the stage's declared
                    // shape; a copy that does not fit is dropped, counted.
                    self.edges[edge_index].dropped += 1;
                    stage.pending_reached += 1;
                    continue;
                }
                copy
            };
            let edge = &mut self.edges[edge_index];
            match push(edge, item) {
                Ok(()) => stage.pending_reached += 1,
                Err(item) => {
                    if last {
                        stage.pending = Some(item);
                    }
                    return false;
                }
            }
        }
        stage.pending = None;
        true
    }

    pub(super) fn finish(&mut self, index: usize) {
        let stage = &mut self.stages[index];
        if stage.finished {
            return;
        }
        stage.finished = true;
        self.finished += 1;
        if let Some(pace) = &mut stage.stats.pace {
            // How far behind a live source is, measured when it stops.
            pace.wall_ns = unix_now_ns();
        }
        stage.pending = None;
        stage.more_output = false;
        if let Some(edge) = stage.input_edge {
            // Upstream may still be running: what it sends now goes home,
            // and what was queued is let go, so it is never blocked on us.
            let edge = &mut self.edges[edge];
            edge.downstream_gone = true;
            while edge.consumer.pop().is_some() {
                edge.dropped += 1;
            }
        }
        self.progress.enter(index);
        let stopped = DataPlaneStage::stop(&mut stage.stage);
        self.progress.leave();
        if let Err(error) = stopped {
            tracing::error!(stage = %stage.id, "stop failed: {error}");
            let failure = format!(
                "stage `{}` ({}) failed to stop: {error}",
                stage.id, stage.recipe.kind
            );
            self.stop_failures.push(failure);
        }
        for &edge in &stage.output_edges {
            // Downstream sees the end once it has drained this edge.
            self.edges[edge].producer = None;
        }
        // The control stages reading it see the end too.
        stage.tap = None;
        if let Some(replacement) = stage.replacement.take() {
            self.retire_refused(replacement, "the stage finished first");
        }
    }
}
