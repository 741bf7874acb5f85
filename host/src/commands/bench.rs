//! `host bench`: what the runtime costs per packet, against a baseline
//! measured in the same run.
//!
//! The pipeline is `pipelines/passthrough_bench.toml`'s: a do-nothing source,
//! three passthroughs and a null sink, all plugin stages. The baseline calls
//! the very same five plugin stages in a plain loop, with one pool acquire
//! and release per packet: the floor the plugin boundary and the pool set,
//! with no queues, scheduling or bookkeeping. The runtime figure is the
//! whole `DataPlane` on its spinning thread. Machines here are shared and
//! noisy, so each is the median of several alternating runs, and the ratio
//! is what to compare across machines.

use crate::graph::parse_pipeline;
use crate::registry::PluginRegistry;
use crate::runtime::DataPlane;
use hsp_sdk::runtime::{DataPlaneStage, MemoryPool, PacketMut};
use hsp_sdk::{EegPacket, Outcome, PacketRef, PortPacket};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The benchmark pipeline; `{packets}` is filled in.
const PIPELINE: &str = r#"
[pipeline]
name = "bench"
idle = "spin"

[[stage]]
id = "source"
plugin = "counter_source"
[stage.config]
packets = {packets}
channels = 8
block_size = 32

[[stage]]
id = "a"
plugin = "passthrough"
inputs = ["source"]

[[stage]]
id = "b"
plugin = "passthrough"
inputs = ["a"]

[[stage]]
id = "c"
plugin = "passthrough"
inputs = ["b"]

[[stage]]
id = "sink"
plugin = "null_sink"
inputs = ["c"]
"#;

/// A stage with one input port (`passthrough` run out of place: `restart`
/// rules out working in place), copying every packet.
const ONE_INPUT: &str = r#"
[pipeline]
name = "one-input"
idle = "spin"

[[stage]]
id = "source"
plugin = "counter_source"
[stage.config]
packets = {packets}
channels = 8
block_size = 32

[[stage]]
id = "copy"
plugin = "passthrough"
inputs = ["source"]
on_error = "restart"

[[stage]]
id = "sink"
plugin = "null_sink"
inputs = ["copy"]
"#;

/// A stage with two input ports (`merge`), copying every packet, fed half
/// the packets on each.
const TWO_INPUTS: &str = r#"
[pipeline]
name = "two-inputs"
idle = "spin"

[[stage]]
id = "a"
plugin = "counter_source"
[stage.config]
packets = {half}
channels = 8
block_size = 32

[[stage]]
id = "b"
plugin = "counter_source"
[stage.config]
packets = {half}
channels = 8
block_size = 32

[[stage]]
id = "merge"
plugin = "merge"
inputs = ["a", "b"]

[[stage]]
id = "sink"
plugin = "null_sink"
inputs = ["merge"]
"#;

/// One measurement: nanoseconds per packet.
#[derive(Debug, Clone, Copy)]
pub struct BenchResult {
    /// The plain loop over the same stages.
    pub baseline_ns: f64,
    /// The runtime.
    pub runtime_ns: f64,
    /// The runtime, source -> a copying stage with one input -> sink.
    pub one_input_ns: f64,
    /// The runtime, two sources -> a copying stage with two inputs -> sink.
    pub two_inputs_ns: f64,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Its plugins are not loaded.
    #[error("the benchmark needs the shipped passthrough and null_sink plugins:\n{}", .0.join("\n"))]
    MissingPlugins(Vec<String>),
    /// A stage failed, or the data plane did.
    #[error("{0}")]
    Failed(String),
    /// The data plane did not deliver every packet.
    #[error("the runtime delivered {delivered} of {packets} packets")]
    Lost {
        /// Packets that reached the sink.
        delivered: u64,
        /// Packets the source emitted.
        packets: u64,
    },
}

fn failed(error: impl ToString) -> BenchError {
    BenchError::Failed(error.to_string())
}

/// Runs the benchmark `runs` times with `packets` packets each; the medians.
pub fn bench(
    registry: &PluginRegistry,
    packets: u64,
    runs: usize,
) -> Result<BenchResult, BenchError> {
    let text = PIPELINE.replace("{packets}", &packets.to_string());
    let graph = parse_pipeline(Path::new("bench.toml"), &text, registry).map_err(|errors| {
        BenchError::MissingPlugins(errors.iter().map(ToString::to_string).collect())
    })?;
    let packets = packets.max(2) / 2 * 2;
    let load = |template: &str| {
        let text = template
            .replace("{packets}", &packets.to_string())
            .replace("{half}", &(packets / 2).to_string());
        parse_pipeline(Path::new("bench.toml"), &text, registry).map_err(|errors| {
            BenchError::MissingPlugins(errors.iter().map(ToString::to_string).collect())
        })
    };
    let one_input = load(ONE_INPUT)?;
    let two_inputs = load(TWO_INPUTS)?;
    let (mut baseline, mut runtime, mut one, mut two) = (vec![], vec![], vec![], vec![]);
    // Alternated, so that a burst of load elsewhere falls on all of them.
    for _ in 0..runs.max(1) {
        baseline.push(plain_loop(&graph, packets)?);
        runtime.push(run_data_plane(&graph, packets)?);
        one.push(run_data_plane(&one_input, packets)?);
        two.push(run_data_plane(&two_inputs, packets)?);
    }
    Ok(BenchResult {
        baseline_ns: median(&mut baseline),
        runtime_ns: median(&mut runtime),
        one_input_ns: median(&mut one),
        two_inputs_ns: median(&mut two),
    })
}

/// Runs `graph` on a data plane; ns per packet delivered, all `packets` of them.
fn run_data_plane(graph: &crate::graph::PipelineGraph, packets: u64) -> Result<f64, BenchError> {
    let (data_plane, _link) = DataPlane::build(graph, None).map_err(failed)?;
    let handle = data_plane
        .spawn(Arc::new(crate::runtime::RunFlags::default()))
        .map_err(failed)?;
    let report = handle
        .join()
        .map_err(|_| failed("the data-plane thread panicked"))?
        .map_err(failed)?;
    if report.delivered != packets {
        let delivered = report.delivered;
        return Err(BenchError::Lost { delivered, packets });
    }
    Ok(per_packet(report.elapsed, packets))
}

/// The five stages called directly: acquire, source, three passthroughs
/// in place, sink, release.
fn plain_loop(graph: &crate::graph::PipelineGraph, packets: u64) -> Result<f64, BenchError> {
    let mut stages = Vec::new();
    for node in &graph.stages {
        let mut stage = node.recipe.build().map_err(failed)?;
        DataPlaneStage::start(&mut stage).map_err(failed)?;
        stages.push(stage);
    }
    let format = graph.stages[0]
        .recipe
        .output_format()
        .cloned()
        .ok_or_else(|| failed("the source declares no output"))?;
    let pool = MemoryPool::with_init(4, |_| EegPacket::for_format(&format));
    let [source, passthroughs @ .., sink] = &mut stages[..] else {
        return Err(failed("the benchmark pipeline has five stages"));
    };
    let started = Instant::now();
    for _ in 0..packets {
        let mut packet = pool
            .try_acquire()
            .ok_or_else(|| failed("the pool ran dry"))?;
        let processed = DataPlaneStage::process(
            source,
            0,
            PacketRef::None,
            &mut [PacketMut::RawEeg(&mut packet)],
        )
        .map_err(failed)?;
        if processed.outcome != Outcome::Emitted {
            return Err(failed(format!("the source said {:?}", processed.outcome)));
        }
        for stage in passthroughs.iter_mut() {
            DataPlaneStage::process_in_place(stage, PacketMut::RawEeg(&mut packet))
                .map_err(failed)?;
        }
        DataPlaneStage::process(sink, 0, PacketRef::RawEeg(&packet), &mut []).map_err(failed)?;
    }
    let elapsed = started.elapsed();
    for stage in &mut stages {
        let _notes = DataPlaneStage::stop(stage).map_err(failed)?;
    }
    Ok(per_packet(elapsed, packets))
}

fn per_packet(elapsed: Duration, packets: u64) -> f64 {
    elapsed.as_secs_f64() * 1e9 / packets.max(1) as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The report `host bench` prints.
pub fn render(result: &BenchResult, packets: u64, runs: usize) -> String {
    format!(
        "5 plugin stages (source, 3 passthroughs in place, sink), {packets} packets of 8x32 samples, median of {runs} run(s):\n  \
         baseline, the same stages called in a plain loop: {:.1} ns per packet\n  \
         DataPlane, one spinning data-plane thread:         {:.1} ns per packet ({:.0} packets/s)\n  \
         runtime / baseline: {:.2}x\n\
         a copying stage between a source and a sink, per packet through it:\n  \
         one input  (source -> passthrough -> sink):     {:.1} ns\n  \
         two inputs (2 sources -> merge -> sink, half each): {:.1} ns\n  \
         two inputs / one input: {:.2}x\n",
        result.baseline_ns,
        result.runtime_ns,
        1e9 / result.runtime_ns,
        result.runtime_ns / result.baseline_ns,
        result.one_input_ns,
        result.two_inputs_ns,
        result.two_inputs_ns / result.one_input_ns,
    )
}
