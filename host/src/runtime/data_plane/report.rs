//! What the data plane says: the stats table (at exit, on `SIGUSR1`, every
//! `--stats-interval`), the final report, and the allocations counted after
//! warm-up.

use super::DataPlane;
use super::allocations::{Allocations, Reading, Tally};
use super::edge::Edge;
use super::stage::{RunningStage, unix_now_ns};
use crate::runtime::packets::OutputPool;
use crate::runtime::stats::{self, EdgeRow, StageRow};
use std::time::{Duration, Instant};

/// What the data plane reports when it ends.
pub struct DataPlaneReport {
    /// The stats table.
    pub table: String,
    /// `true` if every pool was full again at the end.
    pub pools_full: bool,
    /// Allocations the data-plane thread made after warm-up on the packet
    /// path: by the host's code and by plugin code (each library counts its
    /// own), stage swaps and rebuilds excluded.
    pub steady_state_allocations: u64,
    /// Of those, by plugin code.
    pub steady_state_plugin_allocations: u64,
    /// Allocations on the data-plane thread after warm-up while swapping in
    /// a stage (a live change, new code) or handling a stage's error (its
    /// log line, a rebuild).
    pub control_path_allocations: u64,
    /// Packets processed after warm-up.
    pub steady_state_packets: u64,
    /// Packets that reached the sinks.
    pub delivered: u64,
    /// How long the data plane ran.
    pub elapsed: Duration,
    /// Stages whose `stop` failed (a sink that could not write what it
    /// held): the run must not end as a success.
    pub stop_failures: Vec<String>,
    /// Stopped at once by a second signal: queued packets were let go.
    pub aborted: bool,
}

impl DataPlane {
    /// What the run moved, per source packet (a fan-out delivers each
    /// several times; the cost that matters is per packet of data), and how
    /// much signal that was against the wall time.
    fn throughput(&self, elapsed: Duration, delivered: u64) -> String {
        let sources = || self.stages.iter().filter(|s| s.is_source());
        let emitted: u64 = sources().map(|s| s.stats.packets_out).sum();
        if emitted == 0 {
            return String::new();
        }
        let seconds = elapsed.as_secs_f64();
        let mut text = format!(
            "  throughput: {emitted} source packet(s) in {seconds:.3} s: {:.1} ns per source packet, {:.0} packets/s ({delivered} delivered into sinks)\n",
            seconds * 1e9 / emitted as f64,
            emitted as f64 / seconds
        );
        // The longest stream a source emitted, from its declared blocks on
        // its first port (not its events).
        let signal = sources()
            .filter_map(|s| {
                let format = s.recipe.output_format()?;
                (format.sample_rate_hz > 0.0).then(|| {
                    s.stats.first_port_out as f64 * format.values_per_channel as f64
                        / format.sample_rate_hz
                })
            })
            .fold(0.0, f64::max);
        if signal > 0.0 && seconds > 0.0 {
            text.push_str(&format!(
                "  signal: {signal:.1} s of data in {seconds:.3} s of wall time: {:.1}x real time\n",
                signal / seconds
            ));
        }
        text
    }

    /// The report at the end of a run that began at `started`.
    /// `planes` are those of the stages that ran on threads of their own:
    /// their rows join this plane's.
    /// `since_warm_up` is what this thread allocated after warm-up, read
    /// when its stages had finished (its own stages only: the others may
    /// allocate).
    pub(super) fn final_report(
        &mut self,
        started: Instant,
        warm: &WarmUp,
        since_warm_up: Tally,
        aborted: bool,
        planes: Vec<DataPlane>,
    ) -> DataPlaneReport {
        let elapsed = started.elapsed();
        let control = self.control_path;
        let steady_host = since_warm_up.host.saturating_sub(control.host);
        let steady_plugins = since_warm_up.plugins.saturating_sub(control.plugins);
        let steady_state_packets = warm.packets_since(&self.stages);
        for plane in planes {
            self.stages.extend(plane.stages);
            self.edges
                .extend(plane.edges.into_iter().filter(Edge::pushed_here));
            self.stop_failures.extend(plane.stop_failures);
        }
        // Every stage has finished: indices no longer matter, the file's
        // order does.
        self.stages.sort_by_key(|stage| stage.order);
        let mut table = self.report_table(started);
        let delivered: u64 = self
            .stages
            .iter()
            .filter(|s| s.outputs.is_empty())
            .map(|s| s.stats.packets_in)
            .sum();
        table.push_str(&self.throughput(elapsed, delivered));
        // Queues are drained and stages dropped: every packet is home.
        let pools_full = self
            .stages
            .iter()
            .flat_map(|s| s.outputs.iter())
            .filter_map(|port| port.pool.as_ref().map(OutputPool::stats))
            .all(|p| p.available == p.capacity);
        // A sink that failed under `bypass` or `restart` ran on, but what it
        // was given then may not be written: not a success.
        let mut stop_failures = std::mem::take(&mut self.stop_failures);
        stop_failures.extend(
            self.stages
                .iter()
                .filter(|s| s.outputs.is_empty() && s.stats.errors > 0)
                .map(|s| {
                    format!(
                        "sink `{}` ({}) failed {} time(s) under on_error = {:?}",
                        s.id, s.recipe.kind, s.stats.errors, s.recipe.on_error
                    )
                }),
        );
        DataPlaneReport {
            table,
            pools_full,
            steady_state_allocations: steady_host + steady_plugins,
            steady_state_plugin_allocations: steady_plugins,
            control_path_allocations: control.host + control.plugins,
            steady_state_packets,
            delivered,
            elapsed,
            stop_failures,
            aborted,
        }
    }

    pub(super) fn report_table(&mut self, started: Instant) -> String {
        let now = unix_now_ns();
        for stage in self.stages.iter_mut().filter(|s| !s.finished) {
            if let Some(pace) = &mut stage.stats.pace {
                pace.wall_ns = now;
            }
        }
        let rows: Vec<StageRow<'_>> = self
            .stages
            .iter()
            .map(|s| StageRow {
                id: &s.id,
                kind: &s.recipe.kind,
                stats: &s.stats,
                pool: s
                    .outputs
                    .first()
                    .and_then(|port| port.pool.as_ref())
                    .map(OutputPool::stats),
            })
            .collect();
        let edges: Vec<EdgeRow<'_>> = self
            .edges
            .iter()
            .filter(|e| e.pushed_here())
            .map(|e| EdgeRow {
                from: &e.names.0,
                to: &e.names.1,
                pushed: e.pushed,
                dropped: e.dropped,
            })
            .collect();
        stats::render(
            &format!(
                "pipeline `{}` after {:.1} s",
                self.name,
                started.elapsed().as_secs_f64()
            ),
            &rows,
            &edges,
        )
    }
}

/// Marks the end of warm-up (every stage has moved 16 packets, or one
/// second passed) and counts the data-plane thread's allocations after it.
pub(super) struct WarmUp {
    started: Instant,
    baseline: Option<(Reading, u64)>,
}

impl WarmUp {
    pub(super) fn new() -> Self {
        Self {
            started: Instant::now(),
            baseline: None,
        }
    }

    /// `true` when warm-up ends with this pass.
    pub(super) fn observe(&mut self, stages: &[RunningStage], allocations: &Allocations) -> bool {
        if self.baseline.is_some() {
            return false;
        }
        let warmed = stages
            .iter()
            .all(|s| s.stats.packets_in >= 16 || s.is_source() && s.stats.packets_out >= 16);
        if warmed || self.started.elapsed() > Duration::from_secs(1) {
            self.baseline = Some((allocations.read(), total_packets(stages)));
            return true;
        }
        false
    }

    pub(super) fn allocations_since(&self, allocations: &Allocations) -> Tally {
        self.baseline
            .as_ref()
            .map_or(Tally::default(), |(reading, _)| allocations.since(reading))
    }

    pub(super) fn packets_since(&self, stages: &[RunningStage]) -> u64 {
        self.baseline
            .as_ref()
            .map_or(0, |(_, packets)| total_packets(stages) - packets)
    }
}

fn total_packets(stages: &[RunningStage]) -> u64 {
    stages
        .iter()
        .map(|s| s.stats.packets_in + s.stats.packets_out)
        .sum()
}
