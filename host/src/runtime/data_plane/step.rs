//! The hot path: one stage's step, the call into its plugin, and the
//! packet's way on (a direct hand-off, its queue, or a fan-out of copies).

use super::edge::{Producer, push};
use super::stage::{RunningStage, misshapen, unix_now_ns};
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

/// The most output ports a stage may have (the SDK's derive refuses more).
const MAX_OUTPUT_PORTS: usize = 8;

impl DataPlane {
    /// Lets stage `index` do at most one packet's work; `true` if it did any.
    #[inline]
    pub(super) fn step(&mut self, index: usize) -> Result<bool, DataPlaneError> {
        let stage = &self.stages[index];
        if stage.finished {
            return Ok(false);
        }
        let mut worked = false;
        if stage.has_pending() {
            if !self.distribute_all(index) {
                return Ok(false);
            }
            worked = true;
        }
        let stage = &mut self.stages[index];
        if !stage.more_output && stage.replacement.is_some() {
            if let Some(replacement) = stage.replacement.take() {
                self.replace(index, replacement);
            }
        }
        let stage = &self.stages[index];
        let draining = stage.more_output;
        let port = match (&stage.inputs[..], draining) {
            (_, true) | ([], _) => None,
            (&[edge], false) => {
                if stage.in_place {
                    return match self.edges[edge].pop() {
                        Some(packet) => self.step_in_place(index, packet),
                        None => Ok(self.end_of_input(index) || worked),
                    };
                }
                if self.edges[edge].is_empty() {
                    return Ok(self.end_of_input(index) || worked);
                }
                Some(0)
            }
            (_, false) => match self.oldest_input(index) {
                Some(port) => Some(port),
                None => return Ok(self.end_of_input(index) || worked),
            },
        };
        // Every output port needs a packet to fill before the input is taken.
        for output in &mut self.stages[index].outputs {
            if output.held.is_none() {
                if let Some(pool) = &output.pool {
                    match pool.try_acquire() {
                        Some(packet) => output.held = Some(packet),
                        None => return Ok(worked),
                    }
                }
            }
        }
        let input = port.and_then(|port| {
            let edge = self.stages[index].inputs[port];
            self.edges[edge].pop().map(|packet| (port as u32, packet))
        });
        self.call_stage(index, input, worked)
    }

    /// The input port of stage `index` whose next packet is the oldest,
    /// among those that have one (the first such port on a tie).
    #[inline]
    fn oldest_input(&mut self, index: usize) -> Option<usize> {
        let mut oldest: Option<(usize, u64)> = None;
        for port in 0..self.stages[index].inputs.len() {
            let edge = self.stages[index].inputs[port];
            if let Some(timestamp) = self.edges[edge].next_timestamp() {
                if oldest.is_none_or(|(_, t)| timestamp < t) {
                    oldest = Some((port, timestamp));
                }
            }
        }
        oldest.map(|(port, _)| port)
    }

    /// Calls stage `index` on `input` (a packet and the port it came on, if
    /// any) with the packets its output ports hold, and acts on the outcome;
    /// `worked` is what to report for a source that had nothing ready.
    pub(super) fn call_stage(
        &mut self,
        index: usize,
        input: Option<(u32, PipelineData)>,
        worked: bool,
    ) -> Result<bool, DataPlaneError> {
        let stage = &mut self.stages[index];
        stage.stats.packets_in += u64::from(input.is_some());
        let (port, input_ref) = match &input {
            Some((port, packet)) => (*port, as_input(packet)),
            None => (0, PacketRef::None),
        };
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
        let result = {
            let RunningStage {
                stage: object,
                outputs,
                ..
            } = &mut *stage;
            match &mut outputs[..] {
                // A sink, and a stage with one output: no array to fill.
                [] => DataPlaneStage::process(object, port, input_ref, &mut []),
                [one] => DataPlaneStage::process(object, port, input_ref, &mut [one.held_mut()]),
                many => {
                    let mut packets: [PacketMut<'_>; MAX_OUTPUT_PORTS] =
                        std::array::from_fn(|_| PacketMut::None);
                    let count = many.len().min(MAX_OUTPUT_PORTS);
                    for (slot, output) in packets.iter_mut().zip(many.iter_mut()) {
                        *slot = output.held_mut();
                    }
                    DataPlaneStage::process(object, port, input_ref, &mut packets[..count])
                }
            }
        };
        if let Some(began) = began {
            stage
                .stats
                .process_ns
                .saturating_record(began.elapsed().as_nanos() as u64);
            stage.count_call_allocations(allocated_before);
        }
        if let (true, Some(latency), Some((_, item))) = (timed, &mut stage.stats.latency_ns, &input)
        {
            match unix_now_ns().checked_sub(item.timestamp_ns()) {
                Some(age) if age <= MAX_LATENCY_NS => latency.saturating_record(age),
                // Stamped before any real latency: no wall clock behind it.
                Some(_) => stage.stats.no_clock += 1,
                // A source faster than real time stamps data "in the future".
                None => stage.stats.ahead_of_clock += 1,
            }
        }
        let processed = match result {
            Ok(processed) => processed,
            Err(error) => {
                stage.more_output = false;
                self.on_stage_error(index, error.message(), input)?;
                return Ok(true);
            }
        };
        stage.more_output = processed.outcome == Outcome::MoreOutput;
        if processed.sent != 0 {
            self.send_outputs(index, processed.sent, timed, input)?;
        } else if processed.outcome == Outcome::NoOutput && self.stages[index].is_source() {
            // A source that had nothing ready yet is not work done.
            return Ok(worked);
        }
        if processed.outcome == Outcome::Finished {
            self.stages[index].more_output = false;
            self.finish(index);
        }
        Ok(true)
    }

    /// Sends the held packet of every output port in `sent` (one bit per
    /// port) on its way, after checking its shape; `input` is what the call
    /// was given, for the stage's policy if a packet is misshapen.
    #[inline]
    fn send_outputs(
        &mut self,
        index: usize,
        sent: u32,
        timed: bool,
        mut input: Option<(u32, PipelineData)>,
    ) -> Result<(), DataPlaneError> {
        let ports = self.stages[index].outputs.len();
        for port in 0..ports {
            if sent & (1 << port) == 0 {
                continue;
            }
            let stage = &mut self.stages[index];
            let Some(packet) = stage.outputs[port].held.take() else {
                continue;
            };
            if let Some(message) = misshapen(stage, port, &packet) {
                // The packet goes back to be filled again (or to take the
                // input under `bypass`).
                stage.more_output = false;
                stage.outputs[port].held = Some(packet);
                return self.on_stage_error(index, &message, input.take());
            }
            if port == 0 && stage.is_source() {
                stage.track_pace(&packet, timed);
            }
            self.emit(index, port, packet)?;
        }
        Ok(())
    }

    /// Stage `index` found no input waiting: if every producer is gone
    /// too, its input has ended and it finishes (`true`).
    #[inline]
    pub(super) fn end_of_input(&mut self, index: usize) -> bool {
        let ended = match self.stages[index].inputs[..] {
            [edge] => self.edges[edge].is_finished(),
            ref inputs => inputs.iter().all(|&edge| self.edges[edge].is_finished()),
        };
        if ended {
            self.finish(index);
        }
        ended
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
            Ok(Outcome::Emitted) => match misshapen(stage, 0, &packet) {
                None => self.emit(index, 0, packet)?,
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
        self.on_stage_error(index, message, None)
    }

    /// Stage `index` emitted `packet` on output port `port`: counts it,
    /// offers it to the control plane, and sends it on (straight into the
    /// queue when there is one consumer; a packet that does not fit waits as
    /// the port's pending one).
    ///
    /// With one consumer that could take the packet right now (its queue is
    /// empty, and it works in place or is a sink, so it needs no packet of
    /// its own), the packet is handed straight to it: depth first, the same
    /// order the queue would give, without the queue's push and pop.
    #[inline]
    pub(super) fn emit(
        &mut self,
        index: usize,
        port: usize,
        packet: PipelineData,
    ) -> Result<(), DataPlaneError> {
        let stage = &mut self.stages[index];
        stage.stats.packets_out += 1;
        stage.stats.first_port_out += u64::from(port == 0);
        let output = &mut stage.outputs[port];
        if let Some(tap) = &mut output.tap {
            tap.offer(&packet);
        }
        if let [edge_index] = output.edges[..] {
            let edge = &mut self.edges[edge_index];
            let direct = match (edge.to, &edge.producer) {
                (Some(to), Some(Producer::Local(_))) => {
                    self.stages[to].takes_directly()
                        && edge.is_empty()
                        && self.hand_off_depth < MAX_HAND_OFF_DEPTH
                }
                _ => false,
            };
            if let (true, Some(to)) = (direct, edge.to) {
                edge.pushed += 1;
                self.hand_off_depth += 1;
                let result = if self.stages[to].in_place {
                    self.step_in_place(to, packet).map(|_| ())
                } else {
                    self.call_stage(to, Some((0, packet)), true).map(|_| ())
                };
                self.hand_off_depth -= 1;
                return result;
            }
            if let Err(packet) = push(edge, packet) {
                let stage = &mut self.stages[index];
                stage.maybe_pending = true;
                let output = &mut stage.outputs[port];
                output.pending = Some(packet);
                output.pending_reached = 0;
            }
            return Ok(());
        }
        output.pending = Some(packet);
        output.pending_reached = 0;
        stage.maybe_pending = true;
        if self.distribute(index, port) {
            self.stages[index].maybe_pending = self.stages[index]
                .outputs
                .iter()
                .any(|p| p.pending.is_some());
        }
        Ok(())
    }

    /// [`distribute`](Self::distribute) for every output port with a
    /// pending packet; `false` if one still waits.
    pub(super) fn distribute_all(&mut self, index: usize) -> bool {
        let mut all = true;
        for port in 0..self.stages[index].outputs.len() {
            if self.stages[index].outputs[port].pending.is_some() {
                all &= self.distribute(index, port);
            }
        }
        self.stages[index].maybe_pending = !all;
        all
    }

    /// Pushes output port `port`'s pending packet to every edge it feeds
    /// (copies for all but the last); `false` if an edge is full under
    /// `block` and the packet stays pending.
    pub(super) fn distribute(&mut self, index: usize, port: usize) -> bool {
        let output = &mut self.stages[index].outputs[port];
        let edge_count = output.edges.len();
        if edge_count == 0 {
            output.pending = None;
            return true;
        }
        while output.pending_reached < edge_count {
            let edge_index = output.edges[output.pending_reached];
            let last = output.pending_reached + 1 == edge_count;
            let item = if last {
                match output.pending.take() {
                    Some(item) => item,
                    None => return true,
                }
            } else {
                let Some(pool) = &output.pool else {
                    return true;
                };
                let Some(mut copy) = pool.try_acquire() else {
                    return false;
                };
                let Some(original) = &output.pending else {
                    return true;
                };
                if !copy_into(original, &mut copy) {
                    // Cannot happen for packets of the stage's declared
                    // shape; a copy that does not fit is dropped, counted.
                    self.edges[edge_index].dropped += 1;
                    output.pending_reached += 1;
                    continue;
                }
                copy
            };
            let edge = &mut self.edges[edge_index];
            match push(edge, item) {
                Ok(()) => output.pending_reached += 1,
                Err(item) => {
                    if last {
                        output.pending = Some(item);
                    }
                    return false;
                }
            }
        }
        output.pending = None;
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
        stage.more_output = false;
        stage.maybe_pending = false;
        for output in &mut stage.outputs {
            output.pending = None;
            output.held = None;
        }
        for &edge in &stage.inputs {
            // Upstream may still be running: what it sends now goes home,
            // and what was queued is let go, so it is never blocked on us.
            self.edges[edge].let_go();
        }
        self.progress.enter(index);
        let stopped = DataPlaneStage::stop(&mut stage.stage);
        self.progress.leave();
        if let Ok(notes) = &stopped {
            for note in notes {
                tracing::warn!(stage = %stage.id, "{note}");
            }
        }
        if let Err(error) = stopped {
            tracing::error!(stage = %stage.id, "stop failed: {error}");
            let failure = format!(
                "stage `{}` ({}) failed to stop: {error}",
                stage.id, stage.recipe.kind
            );
            self.stop_failures.push(failure);
        }
        for output in &mut stage.outputs {
            for &edge in &output.edges {
                // Downstream sees the end once it has drained this edge.
                self.edges[edge].producer = None;
            }
            // The control stages reading it see the end too.
            output.tap = None;
        }
        if let Some(replacement) = stage.replacement.take() {
            self.retire_refused(replacement, "the stage finished first");
        }
    }
}
