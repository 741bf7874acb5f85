//! The runtimes: [`HybridRuntime`] owns a whole pipeline as two planes, the
//! [`DataPlane`] on its own thread (`data_plane/`) and the tokio control plane
//! with its control stages (`control_plane.rs`), joined by bridges
//! (`bridge.rs`); `live_change.rs` carries changes into a running pipeline.

mod bridge;
mod control_plane;
mod data_plane;
mod hybrid;
mod live_change;
mod packets;
mod run_flags;
mod signals;
mod stats;

pub use control_plane::{ControlSpec, ParamRequest};
pub use data_plane::{DataPlane, DataPlaneError, DataPlaneReport, Replacement, Retired};
pub use hybrid::{
    DEFAULT_WATCHDOG, HybridRuntime, PipelineEvent, RunOptions, RunOutcome, StopHandle,
    duration_elapsed,
};
pub use live_change::ChangeError;
pub use run_flags::RunFlags;
pub use signals::{ABORT_GRACE, EXIT_INTERRUPTED, SignalWatch, interrupted_twice, watch_signals};
