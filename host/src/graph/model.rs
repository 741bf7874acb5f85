//! `PipelineGraph`: a pipeline file after parsing and validation, ready to
//! run. Everything here has been checked against the loaded plugins.

use super::recipe::StageRecipe;
use hsp_sdk::{PacketKind, StreamFormat};
use std::path::PathBuf;

/// A validated pipeline: stages in topological order (every stage after the
/// stages it reads from), each with its negotiated input and output format.
#[derive(Debug, Clone)]
pub struct PipelineGraph {
    /// `[pipeline] name`, or the file stem.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// `[pipeline]` settings.
    pub settings: PipelineSettings,
    /// The stages, upstream before downstream.
    pub stages: Vec<StageNode>,
    /// What the file should change though it runs (a deprecated stage
    /// kind), each with its place: `file:line:col: warning: ...`.
    pub warnings: Vec<String>,
}

/// `[pipeline]` settings, with their defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSettings {
    /// Packets in each stage's output pool (`pool_size`, default 64).
    pub pool_size: usize,
    /// How the data-plane thread waits when no stage is ready (`idle`).
    pub idle: IdleStrategy,
    /// Data-plane threads (`data_plane_threads`, default 1; only 1 supported).
    pub data_plane_threads: usize,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            pool_size: 64,
            idle: IdleStrategy::Park,
            data_plane_threads: 1,
        }
    }
}

/// What the data-plane thread does when no stage had work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Spin forever: lowest latency, one whole core (benchmarks).
    Spin,
    /// Spin briefly, then yield the core to the OS scheduler.
    Yield,
    /// Spin briefly, yield a few times, then sleep in short naps (default):
    /// a 250 Hz pipeline costs a few percent of a core.
    Park,
}

/// Where a stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageType {
    /// On the data-plane thread (`stage_type = "data_plane"`, the default).
    DataPlane,
    /// As a tokio task on the control plane (`stage_type = "control"`).
    Control,
}

/// What happens when a stage returns an error or panics (`on_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Stop the pipeline; `host run` exits 1 (default).
    Stop,
    /// Rebuild the stage from its config and carry on.
    Restart,
    /// Forward its input unchanged (when the types allow) and carry on.
    Bypass,
}

/// What a full edge queue does to its producer (`policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgePolicy {
    /// Wait: lossless (default).
    Block,
    /// Drop the oldest queued packet to make room, and count it (live views).
    DropOldest,
}

/// One edge into a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct InputEdge {
    /// Index in [`PipelineGraph::stages`] of the upstream stage.
    pub from: usize,
    /// Which of its output ports.
    pub from_port: usize,
    /// Queue capacity in packets (`queue.capacity`, default 16).
    pub capacity: usize,
    /// Full-queue policy (`queue.policy`).
    pub policy: EdgePolicy,
    /// Into a control stage: pass one packet in this many (`queue.decimate`,
    /// default 1, every packet).
    pub decimate: usize,
}

/// A place in the pipeline file, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// One stage of the graph.
#[derive(Debug, Clone)]
pub struct StageNode {
    /// `id`, unique in the file.
    pub id: String,
    /// `stage_type`.
    pub stage_type: StageType,
    /// `inputs`, resolved.
    pub inputs: Vec<InputEdge>,
    /// How to build it: kind, config, error policy, formats, plugin.
    pub recipe: StageRecipe,
    /// Where its `[[stage]]` table starts in the file.
    pub location: Location,
}

impl StageNode {
    /// `plugin`: the stage kind.
    pub fn kind(&self) -> &str {
        &self.recipe.kind
    }
}

impl PipelineGraph {
    /// The name of output port `port` of stage `index` as the control plane
    /// knows the stream: the stage's id for its first port, `id.port` for
    /// the others.
    pub fn stream_name(&self, index: usize, port: usize) -> String {
        let stage = &self.stages[index];
        if port == 0 {
            stage.id.clone()
        } else {
            format!("{}.{}", stage.id, stage.recipe.output_port_name(port))
        }
    }

    /// Indices of the stages that read from stage `index`.
    pub fn consumers(&self, index: usize) -> Vec<usize> {
        self.stages
            .iter()
            .enumerate()
            .filter(|(_, stage)| stage.inputs.iter().any(|edge| edge.from == index))
            .map(|(i, _)| i)
            .collect()
    }
}

/// A one-line description of a stream format, e.g.
/// `raw_eeg, 8 ch x 32 samples @ 250 Hz, 7.8125 packets/s` or
/// `fft, 8 ch x 129 bins from 250 Hz EEG, 2 packets/s`.
pub fn describe_format(format: &StreamFormat) -> String {
    let shape = |values: &str| {
        format!(
            "{}, {} ch x {} {values}",
            format.kind, format.channels, format.values_per_channel
        )
    };
    let mut text = match format.kind {
        PacketKind::RawEeg | PacketKind::FilteredEeg => {
            format!("{} @ {} Hz", shape("samples"), format.sample_rate_hz)
        }
        PacketKind::Fft => format!("{} from {} Hz EEG", shape("bins"), format.sample_rate_hz),
        PacketKind::Features => format!(
            "{} from {} Hz EEG",
            shape("features"),
            format.sample_rate_hz
        ),
        PacketKind::Event => "events".to_string(),
    };
    if format.packet_rate_hz > 0.0 {
        text.push_str(&format!(", {} packets/s", format.packet_rate_hz));
    }
    text
}
