//! `PipelineRuntime`: owns a whole pipeline on a tokio control plane. It
//! starts the data plane, stops it on SIGINT / SIGTERM or after `--duration`,
//! and waits for it to drain.

use super::data_plane::{DataPlaneError, DataPlaneReport, HybridRuntime};
use crate::graph::PipelineGraph;
use crate::registry::PluginRegistry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop the sources after this long (then drain).
    pub duration: Option<Duration>,
    /// Print the stats table this often (and always at exit).
    pub stats_interval: Option<Duration>,
}

/// How a run ended.
pub struct RunOutcome {
    /// The data plane's final report.
    pub report: DataPlaneReport,
    /// What stopped it early, if anything did (a signal, `--duration`).
    pub stopped_by: Option<&'static str>,
}

/// A pipeline being run.
pub struct PipelineRuntime;

impl PipelineRuntime {
    /// Runs `graph` to its end: until its finite sources finish and every
    /// queue drains, or a signal or `options.duration` stops the sources.
    pub fn run(
        graph: &PipelineGraph,
        registry: &PluginRegistry,
        options: &RunOptions,
    ) -> Result<RunOutcome, DataPlaneError> {
        let data_plane = HybridRuntime::build(graph, registry, options.stats_interval)?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle =
            data_plane
                .spawn(Arc::clone(&stop))
                .map_err(|e| DataPlaneError::StageFailed {
                    id: "-".into(),
                    kind: "-".into(),
                    message: format!("cannot start the data-plane thread: {e}"),
                })?;
        let data_plane_thread = handle.thread().clone();
        let control = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DataPlaneError::StageFailed {
                id: "-".into(),
                kind: "-".into(),
                message: format!("cannot start the control plane: {e}"),
            })?;
        let stopped_by = control.block_on(async {
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            let joiner = std::thread::spawn(move || {
                let result = handle.join();
                let _ = done_tx.send(());
                result
            });
            let reason = tokio::select! {
                _ = done_rx => None,
                reason = stop_signal(options.duration) => Some(reason),
            };
            if let Some(reason) = reason {
                tracing::info!("{reason}: stopping the sources and draining");
                stop.store(true, Ordering::Relaxed);
                data_plane_thread.unpark();
            }
            (reason, joiner)
        });
        let (reason, joiner) = stopped_by;
        let report = match joiner.join() {
            Ok(Ok(result)) => result?,
            Ok(Err(panic)) | Err(panic) => {
                return Err(DataPlaneError::StageFailed {
                    id: "-".into(),
                    kind: "-".into(),
                    message: format!(
                        "the data-plane thread panicked: {}",
                        hsp_sdk::export::panic_message(&*panic)
                    ),
                });
            }
        };
        Ok(RunOutcome {
            report,
            stopped_by: reason,
        })
    }
}

/// Resolves with the reason when the run should stop early.
async fn stop_signal(duration: Option<Duration>) -> &'static str {
    let elapsed = async {
        match duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = match signal(SignalKind::terminate()) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!("cannot listen for SIGTERM: {error}");
                return tokio::select! {
                    _ = tokio::signal::ctrl_c() => "SIGINT",
                    _ = elapsed => "--duration elapsed",
                };
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
            _ = elapsed => "--duration elapsed",
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = elapsed => "--duration elapsed",
        }
    }
}
