//! The runtimes: [`HybridRuntime`], the data plane on its own thread, and
//! [`PipelineRuntime`], the tokio control plane that owns a whole pipeline.

mod data_plane;
mod packets;
mod pipeline;
mod stats;

pub use data_plane::{DataPlaneError, DataPlaneReport, HybridRuntime};
pub use pipeline::{PipelineRuntime, RunOptions, RunOutcome};
