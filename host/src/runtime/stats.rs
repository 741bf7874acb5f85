//! Per-stage and per-edge counters kept by the data-plane thread, and the
//! table printed at exit and every `--stats-interval`.

use hdrhistogram::Histogram;
use hsp_sdk::runtime::PoolStats;
use std::fmt::Write as _;

/// Counters of one stage. Histograms are allocated up front; recording into
/// them never allocates.
pub struct StageStats {
    /// Packets taken from the input edge (or produced, for a source).
    pub packets_in: u64,
    /// Packets emitted.
    pub packets_out: u64,
    /// Errors and panics returned by the stage.
    pub errors: u64,
    /// Times the stage was rebuilt (`on_error = "restart"`).
    pub restarts: u64,
    /// Packets forwarded unprocessed (`on_error = "bypass"`).
    pub bypassed: u64,
    /// Times the stage was swapped for one with new parameters or new code.
    pub replaced: u64,
    /// Nanoseconds per `process` call.
    pub process_ns: Histogram<u64>,
    /// For sinks: nanoseconds from the source timestamp to the sink.
    pub latency_ns: Option<Histogram<u64>>,
    /// For sinks: packets whose source timestamp was still in the future
    /// (a source running faster than real time); not in `latency_ns`.
    pub ahead_of_clock: u64,
    /// For sinks: packets stamped further in the past than any latency
    /// (a source that stamps no wall-clock time, like `counter_source`'s 0);
    /// not in `latency_ns`.
    pub no_clock: u64,
    /// Packets lost to an error: the one a restarted in-place stage had
    /// half-transformed, or one a fresh stage failed on again.
    pub lost: u64,
    /// Shape errors: emitted packets that did not match the declared format.
    pub misshapen: u64,
    /// For sources: how they keep up with the wall clock.
    pub pace: Option<SourcePace>,
    /// Timed calls during which its library allocated on the data plane.
    pub allocating_calls: u64,
    /// Allocations its library made during those calls.
    pub sampled_allocations: u64,
    /// Of `packets_out`, those sent on its first output port (a source's
    /// signal, whose blocks say how much data went through).
    pub first_port_out: u64,
    /// Whether it runs on a thread of its own (it may block), where
    /// allocating holds up no other stage.
    pub own_thread: bool,
}

/// How a source keeps up with the wall clock. A source is *live* when its
/// first block is stamped within [`SourcePace::LIVE_WINDOW_NS`] of the wall
/// clock (a paced or an amplifier source); a replay of an old recording is
/// not, and gets no pace line.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourcePace {
    /// Decided at the first block.
    pub live: bool,
    /// Timestamp of the last block emitted, and its length.
    pub last_block: (u64, u64),
    /// When the source stopped (or now), unix ns.
    pub wall_ns: u64,
    /// The largest lag sampled: wall clock minus the end of the block just
    /// emitted.
    pub worst_lag_ns: u64,
}

impl SourcePace {
    /// How close to the wall clock a first block must be to count as live.
    pub const LIVE_WINDOW_NS: u64 = 5_000_000_000;

    /// How far behind the wall clock the source is at `wall_ns`: its data
    /// ends at the last block's end.
    pub fn behind_ns(&self) -> u64 {
        let (start, length) = self.last_block;
        self.wall_ns.saturating_sub(start.saturating_add(length))
    }
}

/// The largest latency recorded: an hour. A packet stamped earlier than
/// that comes from a source without a wall clock.
pub const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// Fewer latency samples than this make a p99 meaningless; the report says so.
const FEW_SAMPLES: u64 = 100;

impl StageStats {
    /// Empty counters; `sink` adds a latency histogram.
    pub fn new(sink: bool) -> Self {
        let histogram = |significant_digits| {
            Histogram::new_with_bounds(1, MAX_LATENCY_NS, significant_digits)
                .expect("static histogram bounds are valid")
        };
        Self {
            packets_in: 0,
            packets_out: 0,
            errors: 0,
            restarts: 0,
            bypassed: 0,
            replaced: 0,
            process_ns: histogram(2),
            // Three digits for what closed-loop users quote (256 KiB a sink).
            latency_ns: sink.then(|| histogram(3)),
            ahead_of_clock: 0,
            no_clock: 0,
            lost: 0,
            misshapen: 0,
            pace: None,
            allocating_calls: 0,
            sampled_allocations: 0,
            first_port_out: 0,
            own_thread: false,
        }
    }
}

/// One row of the report for a stage.
pub struct StageRow<'a> {
    /// Stage id.
    pub id: &'a str,
    /// Stage kind.
    pub kind: &'a str,
    /// Its counters.
    pub stats: &'a StageStats,
    /// Its output pool, if any.
    pub pool: Option<PoolStats>,
}

/// One row of the report for an edge.
pub struct EdgeRow<'a> {
    /// Upstream stage id.
    pub from: &'a str,
    /// Downstream stage id.
    pub to: &'a str,
    /// Packets pushed.
    pub pushed: u64,
    /// Packets dropped by `drop_oldest`.
    pub dropped: u64,
}

fn micros(histogram: &Histogram<u64>, quantile: f64) -> String {
    if histogram.is_empty() {
        return "-".to_string();
    }
    let ns = if quantile >= 1.0 {
        histogram.max()
    } else {
        histogram.value_at_quantile(quantile)
    };
    format!("{:.1}", ns as f64 / 1000.0)
}

/// The report as text.
pub fn render(title: &str, stages: &[StageRow<'_>], edges: &[EdgeRow<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    // Capped: a width past u16::MAX makes the formatter panic, and a very
    // long id only needs to break the columns, not the report.
    let id_width = stages
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(5)
        .clamp(5, 64);
    let kind_width = stages
        .iter()
        .map(|s| s.kind.len())
        .max()
        .unwrap_or(4)
        .clamp(4, 64);
    let _ = writeln!(
        out,
        "  {:iw$}  {:kw$}  {:>9}  {:>9}  {:>6}  {:>9}  {:>9}  {:>9}",
        "stage",
        "kind",
        "in",
        "out",
        "errors",
        "p50 us",
        "p99 us",
        "max us",
        iw = id_width,
        kw = kind_width
    );
    for row in stages {
        let s = row.stats;
        let _ = writeln!(
            out,
            "  {:iw$}  {:kw$}  {:>9}  {:>9}  {:>6}  {:>9}  {:>9}  {:>9}",
            row.id,
            row.kind,
            s.packets_in,
            s.packets_out,
            s.errors,
            micros(&s.process_ns, 0.5),
            micros(&s.process_ns, 0.99),
            micros(&s.process_ns, 1.0),
            iw = id_width,
            kw = kind_width
        );
    }
    for row in stages {
        notes(&mut out, row);
    }
    for edge in edges {
        let _ = writeln!(
            out,
            "  edge {} -> {}: {} pushed, {} dropped",
            edge.from, edge.to, edge.pushed, edge.dropped
        );
    }
    for row in stages {
        if let Some(pool) = row.pool {
            let _ = writeln!(
                out,
                "  pool {}: {}/{} free, low-water {}, waits {}",
                row.id, pool.available, pool.capacity, pool.low_water_mark, pool.waits
            );
        }
    }
    out
}

/// A sink's latency from its source's timestamps, or why there is none.
fn latency_line(out: &mut String, row: &StageRow<'_>, latency: &Histogram<u64>) {
    let id = row.id;
    if latency.is_empty() {
        let why = if row.stats.no_clock > 0 {
            "the source stamps no wall-clock time"
        } else if row.stats.ahead_of_clock > 0 {
            "the source runs faster than real time"
        } else {
            return;
        };
        let _ = writeln!(out, "  latency source -> {id}: n/a ({why})");
        return;
    }
    let few = if latency.len() < FEW_SAMPLES {
        format!(
            " ({} samples: too few for the p99 to mean much)",
            latency.len()
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  latency source -> {id}: p50 {} us, p99 {} us, max {} us{few}",
        micros(latency, 0.5),
        micros(latency, 0.99),
        micros(latency, 1.0)
    );
}

/// The lines about one stage below the table: its latency, and whatever
/// went wrong or changed (restarts, losses, shapes, pace, live swaps).
fn notes(out: &mut String, row: &StageRow<'_>) {
    if let Some(latency) = &row.stats.latency_ns {
        latency_line(out, row, latency);
    }
    if row.stats.restarts > 0 || row.stats.bypassed > 0 || row.stats.lost > 0 {
        let _ = writeln!(
            out,
            "  {}: {} restart(s), {} packet(s) bypassed, {} lost to errors",
            row.id, row.stats.restarts, row.stats.bypassed, row.stats.lost
        );
    }
    if row.stats.allocating_calls > 0 && row.stats.own_thread {
        let _ = writeln!(
            out,
            "  {}: allocated in {} timed call(s) ({} allocation(s)), on its own thread: no other stage waited",
            row.id, row.stats.allocating_calls, row.stats.sampled_allocations
        );
    } else if row.stats.allocating_calls > 0 {
        let _ = writeln!(
            out,
            "  {}: its plugin allocated on the data plane in {} timed call(s) ({} allocation(s)): a stage must not allocate in `process`",
            row.id, row.stats.allocating_calls, row.stats.sampled_allocations
        );
    }
    if row.stats.misshapen > 0 {
        let _ = writeln!(
            out,
            "  {}: {} packet(s) emitted with a shape other than declared",
            row.id, row.stats.misshapen
        );
    }
    // Only a source that fell a block or more behind gets a line: one
    // that keeps up (or runs ahead, unpaced) has nothing to report.
    let late = |p: &SourcePace| {
        let block = p.last_block.1.max(1);
        p.live && (p.behind_ns() >= block || p.worst_lag_ns >= block)
    };
    if let Some(pace) = row.stats.pace.filter(late) {
        let block = pace.last_block.1.max(1);
        let behind = pace.behind_ns();
        let _ = writeln!(
            out,
            "  source {}: {:.3} s behind real time at the end ({} block(s) of {:.1} ms due but not produced); worst lag seen {:.3} s",
            row.id,
            behind as f64 / 1e9,
            behind / block,
            block as f64 / 1e6,
            pace.worst_lag_ns as f64 / 1e9,
        );
    }
    if row.stats.replaced > 0 {
        let _ = writeln!(
            out,
            "  {}: replaced live {} time(s)",
            row.id, row.stats.replaced
        );
    }
}
