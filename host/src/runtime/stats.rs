//! Per-stage and per-edge counters kept by the data-plane thread, and the
//! table printed at exit and every `--stats-interval`.

use hdrhistogram::Histogram;
use hsp_sdk::PoolStats;
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
}

impl StageStats {
    /// Empty counters; `sink` adds a latency histogram.
    pub fn new(sink: bool) -> Self {
        let histogram = || {
            Histogram::new_with_bounds(1, 3_600_000_000_000, 2)
                .expect("static histogram bounds are valid")
        };
        Self {
            packets_in: 0,
            packets_out: 0,
            errors: 0,
            restarts: 0,
            bypassed: 0,
            replaced: 0,
            process_ns: histogram(),
            latency_ns: sink.then(histogram),
            ahead_of_clock: 0,
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
    let id_width = stages.iter().map(|s| s.id.len()).max().unwrap_or(5).max(5);
    let kind_width = stages
        .iter()
        .map(|s| s.kind.len())
        .max()
        .unwrap_or(4)
        .max(4);
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
        if let Some(latency) = &row.stats.latency_ns {
            if latency.is_empty() && row.stats.ahead_of_clock > 0 {
                let _ = writeln!(
                    out,
                    "  latency source -> {}: n/a (the source runs faster than real time)",
                    row.id
                );
                continue;
            }
            let _ = writeln!(
                out,
                "  latency source -> {}: p50 {} us, p99 {} us, max {} us",
                row.id,
                micros(latency, 0.5),
                micros(latency, 0.99),
                micros(latency, 1.0)
            );
        }
        if row.stats.restarts > 0 || row.stats.bypassed > 0 {
            let _ = writeln!(
                out,
                "  {}: {} restart(s), {} packet(s) bypassed",
                row.id, row.stats.restarts, row.stats.bypassed
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
