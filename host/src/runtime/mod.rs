//! The runtimes: [`HybridRuntime`], the data plane on its own thread, and
//! [`PipelineRuntime`], the tokio control plane that owns a whole pipeline:
//! the data plane, the control stages (`control_plane.rs`) and the bridges
//! between them (`bridge.rs`).

mod bridge;
mod control_plane;
mod data_plane;
mod packets;
mod pipeline;
mod run_flags;
mod signals;
mod stats;

pub use control_plane::{ControlSpec, ParamRequest};
pub use data_plane::{DataPlaneError, DataPlaneReport, HybridRuntime, Replacement, Retired};
pub use pipeline::{
    DEFAULT_WATCHDOG, PipelineEvent, PipelineRuntime, RunOptions, RunOutcome, StopHandle,
    control_spec, duration_elapsed,
};
pub use run_flags::RunFlags;
pub use signals::{ABORT_GRACE, EXIT_INTERRUPTED, SignalWatch, interrupted_twice, watch_signals};
