//! One data-plane stage as the loop drives it: its object, its edges, its
//! pool and what it has in progress, and the per-call checks kept off the
//! hot path.

use super::commands::Replacement;
use crate::graph::{AllocationCounter, StageRecipe};
use crate::runtime::bridge::Tap;
use crate::runtime::packets::{OutputPool, as_output, shape_fits, shape_of};
use crate::runtime::stats::{SourcePace, StageStats};
use hsp_sdk::abi::FfiStageBox;
use hsp_sdk::runtime::{PacketMut, PipelineData};
use std::time::{SystemTime, UNIX_EPOCH};

pub(super) struct RunningStage {
    pub(super) id: String,
    /// Its place in the pipeline (the graph's order), for reports.
    pub(super) order: usize,
    /// What it was built from; a restart builds it again from this.
    pub(super) recipe: StageRecipe,
    pub(super) stage: FfiStageBox,
    /// The edge into each input port, in port order (none for a source).
    pub(super) inputs: Vec<usize>,
    /// Each output port: its pool, its edges, what it holds.
    pub(super) outputs: Vec<OutputPort>,
    /// The stage said `MoreOutput`: call it again with no input.
    pub(super) more_output: bool,
    /// Set whenever a port is left with a pending packet; cleared once
    /// every port's is pushed.
    pub(super) maybe_pending: bool,
    /// It turns each input packet into its output in place: no output
    /// packet is taken and nothing is copied. The recipe's answer, kept here
    /// because the loop reads it on every packet.
    pub(super) in_place: bool,
    pub(super) finished: bool,
    pub(super) stats: StageStats,
    pub(super) first_error_logged: bool,
    /// Which `process` calls are timed.
    pub(super) sampler: CallSampler,
    /// Its library's allocation counter, read around timed calls.
    pub(super) allocation_counter: Option<AllocationCounter>,
    /// That counter at its last reading (a timed call, an error).
    pub(super) allocations_seen: u64,
    /// A replacement waiting for the stage to finish its `MoreOutput` run.
    pub(super) replacement: Option<Box<Replacement>>,
}

/// One output port of a running stage.
pub(super) struct OutputPort {
    /// Its packets (none for an in-place stage that forwards what it gets).
    pub(super) pool: Option<OutputPool>,
    /// The edges it feeds.
    pub(super) edges: Vec<usize>,
    /// A packet taken from the pool for the stage to fill, kept across
    /// calls until the stage sends it.
    pub(super) held: Option<PipelineData>,
    /// A sent packet not yet pushed to every edge.
    pub(super) pending: Option<PipelineData>,
    /// Edges `pending` has already reached.
    pub(super) pending_reached: usize,
    /// The bridge to the control plane, if control stages read this port.
    pub(super) tap: Option<Tap>,
}

impl OutputPort {
    /// The held packet, for the stage to fill (none for a port without a
    /// pool).
    #[inline]
    pub(super) fn held_mut(&mut self) -> PacketMut<'_> {
        match &mut self.held {
            Some(held) => as_output(held),
            None => PacketMut::None,
        }
    }

    pub(super) fn new(pool: Option<OutputPool>) -> Self {
        Self {
            pool,
            edges: Vec::new(),
            held: None,
            pending: None,
            pending_reached: 0,
            tap: None,
        }
    }
}

impl RunningStage {
    /// A stage built from `recipe`, not yet wired to its edges, with one
    /// pool per output port (`None` where it needs none).
    pub(super) fn new(
        id: String,
        order: usize,
        recipe: StageRecipe,
        stage: FfiStageBox,
        pools: Vec<Option<OutputPool>>,
    ) -> Self {
        Self {
            id,
            order,
            in_place: recipe.runs_in_place(),
            stats: StageStats::new(recipe.output_formats.is_empty()),
            allocation_counter: recipe.allocation_counter(),
            allocations_seen: 0,
            recipe,
            stage,
            inputs: Vec::new(),
            outputs: pools.into_iter().map(OutputPort::new).collect(),
            more_output: false,
            maybe_pending: false,
            finished: false,
            first_error_logged: false,
            sampler: CallSampler::new(),
            replacement: None,
        }
    }

    /// A source: it has no input ports.
    #[inline]
    pub(super) fn is_source(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Whether any output port may have a sent packet still to push: a
    /// flag kept beside the ports, so the loop reads one byte, not every
    /// port, on every pass.
    #[inline]
    pub(super) fn has_pending(&self) -> bool {
        self.maybe_pending
    }

    /// Whether it can be handed an input packet now, bypassing its queue:
    /// it has one input, needs no output packet of its own (in place, or a
    /// sink) and has nothing in progress that must go first.
    #[inline]
    pub(super) fn takes_directly(&self) -> bool {
        (self.in_place || self.outputs.is_empty())
            && self.inputs.len() == 1
            && !self.finished
            && !self.more_output
            && self.replacement.is_none()
            && !self.has_pending()
    }

    /// A source emitted `packet`: remember where its data ends, and on
    /// sampled calls (`timed`) how far behind the wall clock it is.
    #[inline]
    pub(super) fn track_pace(&mut self, packet: &PipelineData, timed: bool) {
        let timestamp = packet.timestamp_ns();
        let pace = match &mut self.stats.pace {
            Some(pace) => pace,
            None => {
                // The first block decides whether the source is live, and
                // the declared block gives the length of every block.
                let now = unix_now_ns();
                let block_ns = self.recipe.output_format().map_or(0, |f| {
                    if f.sample_rate_hz > 0.0 {
                        (f.values_per_channel as f64 * 1e9 / f.sample_rate_hz) as u64
                    } else {
                        0
                    }
                });
                self.stats.pace.insert(SourcePace {
                    live: now.abs_diff(timestamp) < SourcePace::LIVE_WINDOW_NS,
                    wall_ns: now,
                    last_block: (timestamp, block_ns),
                    ..SourcePace::default()
                })
            }
        };
        pace.last_block.0 = timestamp;
        if timed && pace.live {
            let now = unix_now_ns();
            pace.wall_ns = now;
            let lag = now.saturating_sub(timestamp.saturating_add(pace.last_block.1));
            pace.worst_lag_ns = pace.worst_lag_ns.max(lag);
        }
    }
}

/// The wall clock, in ns since the Unix epoch.
#[inline]
pub(super) fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl RunningStage {
    /// Its library's allocations on this thread so far (0 when the library
    /// does not count them).
    #[inline]
    pub(super) fn library_allocations(&self) -> u64 {
        self.allocation_counter.map_or(0, |counter| counter())
    }

    /// After a timed call that began with `before` from
    /// [`library_allocations`](Self::library_allocations): counts what the
    /// call allocated.
    #[inline]
    pub(super) fn count_call_allocations(&mut self, before: u64) {
        let now = self.library_allocations();
        self.allocations_seen = now;
        let allocated = now.saturating_sub(before);
        if allocated > 0 {
            self.note_allocations(allocated);
        }
    }

    /// Its library's allocations since the last reading: after a failed
    /// call, what the failure cost (a panic's unwinding, its message), as
    /// calls that succeed allocate nothing (the timed ones show if they do).
    pub(super) fn allocations_since_seen(&mut self) -> u64 {
        let now = self.library_allocations();
        let since = now.saturating_sub(self.allocations_seen);
        self.allocations_seen = now;
        since
    }

    #[cold]
    #[inline(never)]
    fn note_allocations(&mut self, allocated: u64) {
        self.stats.allocating_calls += 1;
        self.stats.sampled_allocations += allocated;
    }
}

/// `Some(message)` if `packet` does not have the shape `stage` declared
/// for output port `port`.
#[inline]
pub(super) fn misshapen(
    stage: &mut RunningStage,
    port: usize,
    packet: &PipelineData,
) -> Option<String> {
    match stage.recipe.output_formats.get(port) {
        Some(format) if !shape_fits(packet, format) => Some(misshapen_message(stage, port, packet)),
        _ => None,
    }
}

/// Counts a misshapen packet and says what is wrong (out of the hot path).
#[cold]
#[inline(never)]
fn misshapen_message(stage: &mut RunningStage, port: usize, packet: &PipelineData) -> String {
    stage.stats.misshapen += 1;
    let (channels, values) = shape_of(packet).unwrap_or_default();
    let (declared_channels, declared_values) = stage
        .recipe
        .output_formats
        .get(port)
        .map_or((0, 0), |f| (f.channels, f.values_per_channel));
    format!(
        "emitted a packet of {channels} channel(s) x {values} value(s), but declared {declared_channels} x {declared_values}"
    )
}

/// Picks which calls of a stage are timed (and, for a sink, its latency
/// sampled). Reading the clock twice costs about 50 ns here, more than a
/// cheap stage, so calls are sampled: one in 8 on average for a stage's
/// first 8192 calls (a short or slow run still gets a usable histogram),
/// then one in 64.
///
/// The gaps between timed calls are random (uniform over 1 to twice the
/// mean, from a xorshift generator), not a fixed stride: a stage whose work
/// comes every k-th call (an FFT with hop 128 on 32-sample blocks works on
/// every 4th) would otherwise be timed on the same phase of its cycle every
/// time, and its percentiles would miss the calls that do the work.
pub(super) struct CallSampler {
    calls: u64,
    next: u64,
    state: u64,
}

impl CallSampler {
    pub(super) fn new() -> Self {
        Self {
            calls: 0,
            next: 1,
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Counts one call; `true` if it is to be timed.
    #[inline]
    pub(super) fn tick(&mut self) -> bool {
        self.calls += 1;
        if self.calls != self.next {
            return false;
        }
        let mean: u64 = if self.calls < 8192 { 8 } else { 64 };
        // xorshift64: a few cycles, once per timed call.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.next = self.calls + 1 + self.state % (2 * mean - 1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::CallSampler;

    #[test]
    fn sampled_calls_do_not_lock_onto_a_periodic_stage() {
        // A stage that works on every 4th call: a fixed stride of 8 would
        // time the same phase forever.
        let mut sampler = CallSampler::new();
        let mut phases = [0u32; 4];
        let mut timed = 0u32;
        for call in 0..8000u32 {
            if sampler.tick() {
                phases[(call % 4) as usize] += 1;
                timed += 1;
            }
        }
        // About one call in 8 is timed...
        assert!((800..1200).contains(&timed), "{timed} timed of 8000");
        // ...and each phase gets about a quarter of them.
        for count in phases {
            assert!(count > timed / 8, "phases {phases:?}");
        }
    }

    #[test]
    fn after_warm_up_about_one_call_in_64_is_timed() {
        let mut sampler = CallSampler::new();
        let warm = (0..8192).filter(|_| sampler.tick()).count();
        let later = (0..64_000).filter(|_| sampler.tick()).count();
        assert!((800..1250).contains(&warm), "{warm}");
        assert!((800..1250).contains(&later), "{later}");
    }
}
