//! Hot reload: runs a pipeline while watching its file and the plugin
//! directories (`watch.rs`), and applies each change to the running pipeline
//! (`diff.rs` says what changed).
//!
//! What a change does:
//! - an invalid file: its errors are logged with line:column, the running
//!   pipeline is untouched;
//! - a changed control stage (config, inputs, kind, policy, or plugin code):
//!   only that stage restarts, taking over its input channel;
//! - added / removed control stages: started / stopped;
//! - a data-plane stage with a new config or new plugin code: rebuilt off the
//!   data plane and swapped in between two packets, nothing lost;
//! - a structural data-plane change (stages, edges, stream shapes, pipeline
//!   settings): refused as "needs restart", the old graph runs on.
//!
//! Every new piece is built before anything is applied; if one fails, the
//! whole change is dropped and the running pipeline is untouched.

mod diff;
mod watch;

pub use diff::{GraphDiff, diff};
pub use watch::{Change, DEBOUNCE};

use crate::graph::{PipelineGraph, StageType, load_pipeline};
use crate::registry::{LoadPolicy, PluginRegistry, Probe, mapped_libraries};
use crate::runtime::{
    ControlSpec, DataPlaneError, HybridRuntime, PipelineEvent, RunOptions, RunOutcome, SignalWatch,
    duration_elapsed,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Plugin reloads one run may do: abi_stable never unloads a library, so
/// every reload leaves one mapping behind for the life of the process.
pub const MAX_PLUGIN_RELOADS: usize = 64;

/// Where to look for changes.
pub struct WatchSetup {
    /// The plugin directories to watch.
    pub plugin_dirs: Vec<PathBuf>,
    /// How to check a new library before loading it.
    pub policy: LoadPolicy,
}

/// Runs `graph` (loaded from `file`) to its end: until its finite sources
/// finish and every queue drains, or a signal or `options.duration` stops
/// the sources. With `setup`, every change to the file or to the plugins in
/// its directories is applied while it runs.
pub fn run(
    file: &Path,
    graph: PipelineGraph,
    registry: PluginRegistry,
    setup: Option<WatchSetup>,
    options: &RunOptions,
    signals: SignalWatch,
) -> Result<RunOutcome, DataPlaneError> {
    // One worker thread runs the control plane's tasks; control stages'
    // calls run on the blocking pool beside it (see `control_plane/`).
    let control = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("hsp-control")
        .enable_all()
        .build()
        .map_err(|e| DataPlaneError::RunFailed(format!("cannot start the control plane: {e}")))?;
    let outcome = control.block_on(supervise(file, graph, registry, setup, options, signals));
    // A control stage stuck in a plugin call holds a blocking-pool thread;
    // do not wait for it to exit.
    control.shutdown_timeout(Duration::from_millis(100));
    outcome
}

/// What the supervising loop keeps between events.
struct Supervisor<'a> {
    file: &'a Path,
    pipeline: HybridRuntime,
    registry: PluginRegistry,
    policy: LoadPolicy,
    /// The file's content as last applied (or found unchanged).
    last_seen: Option<Vec<u8>>,
    reloads: Reloads,
    /// Plugin files that became complete (`true`) or never did.
    ready: tokio::sync::mpsc::UnboundedSender<(PathBuf, bool)>,
}

/// Starts `graph` and serves it until it ends: signals, `--duration`, the
/// watchdog, changes to the file and its plugins, and the pipeline's own
/// events.
async fn supervise(
    file: &Path,
    graph: PipelineGraph,
    registry: PluginRegistry,
    setup: Option<WatchSetup>,
    options: &RunOptions,
    mut signals: SignalWatch,
) -> Result<RunOutcome, DataPlaneError> {
    let pipeline = HybridRuntime::start(graph, options)?;
    signals.attach(pipeline.stop_handle());
    let watching = setup.as_ref().map(|s| watch::watch(file, &s.plugin_dirs));
    let (_watcher, mut changes) = match watching {
        Some(Ok((watcher, changes))) => (Some(watcher), Some(changes)),
        Some(Err(error)) => {
            tracing::warn!("{error}; running without hot reload");
            (None, None)
        }
        None => (None, None),
    };
    let (ready, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut this = Supervisor {
        file,
        pipeline,
        registry,
        policy: setup.map_or_else(|| LoadPolicy::new(Probe::None), |s| s.policy),
        last_seen: std::fs::read(file).ok(),
        reloads: Reloads {
            loaded: mapped_libraries(),
            count: 0,
            failed: Default::default(),
        },
        ready,
    };
    let elapsed = duration_elapsed(options.duration);
    tokio::pin!(elapsed);
    let mut watchdog = tokio::time::interval(Duration::from_millis(250));
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopped_by = None;
    loop {
        tokio::select! {
            Some(reason) = signals.next_stop(), if stopped_by.is_none() => {
                // The signal thread has stopped the sources already.
                tracing::info!("{reason}: stopping the sources and draining");
                stopped_by = Some(reason);
            }
            () = &mut elapsed, if stopped_by.is_none() => {
                let reason = "--duration elapsed";
                tracing::info!("{reason}: stopping the sources and draining");
                stopped_by = Some(reason);
                this.pipeline.stop_sources();
            }
            _ = watchdog.tick() => {
                // Stopping, and the drain cannot move: give up on the data
                // plane, not on the control stages.
                if let (Some(message), Some(_)) = (this.pipeline.check_watchdog().map(stuck_message), stopped_by) {
                    tracing::error!("{message}");
                    let table = this.pipeline.abandon_data_plane().await;
                    crate::err!("{table}");
                    return Err(DataPlaneError::RunFailed(message));
                }
            }
            Some(change) = async { changes.as_mut()?.recv().await }, if !this.pipeline.data_plane_ended() => {
                this.on_change(change).await;
            }
            Some((path, stable)) = ready_rx.recv() => this.on_plugin_ready(&path, stable).await,
            event = this.pipeline.next_event() => match event {
                PipelineEvent::DataPlaneEnded => break,
                PipelineEvent::Fatal(message) => {
                    tracing::error!("{message}");
                    this.pipeline.stop_sources();
                    let _ = this.pipeline.finish().await;
                    return Err(DataPlaneError::RunFailed(message));
                }
                PipelineEvent::Param(request) => this.pipeline.apply_param(request),
                PipelineEvent::Retired(item) => this.pipeline.on_retired(item),
            },
        }
    }
    let (report, control_table) = this.pipeline.finish().await?;
    Ok(RunOutcome {
        report,
        control_table,
        stopped_by,
    })
}

/// What the host says when it gives up on a stuck data plane.
fn stuck_message((id, kind, lasted): (String, String, Duration)) -> String {
    format!(
        "stage `{id}` ({kind}) has been stuck in a call for {:.1} s; the data plane could not drain and its queued packets are lost",
        lasted.as_secs_f64()
    )
}

impl Supervisor<'_> {
    /// The pipeline file or a plugin file changed on disk.
    async fn on_change(&mut self, change: Change) {
        match change {
            Change::Pipeline => {
                // Reading the file (ours, an editor's, a `cat`) is an event
                // too: act on new content only.
                let text = std::fs::read(self.file).ok();
                if text == self.last_seen {
                    tracing::debug!("{}: touched, content unchanged", self.file.display());
                    return;
                }
                self.last_seen = text;
                let saved = watch::saved_at(self.file);
                let pipeline = &mut self.pipeline;
                apply_file(pipeline, &self.registry, self.file, saved, &HashSet::new()).await;
            }
            Change::Plugin(path) => {
                // Waiting for the file to be complete can take a while: wait
                // in a task, and keep serving the rest.
                let ready = self.ready.clone();
                tokio::spawn(async move {
                    let poll = Duration::from_millis(50);
                    let stable =
                        watch::wait_until_stable(&path, poll, Duration::from_secs(10)).await;
                    let _ = ready.send((path, stable.is_some()));
                });
            }
        }
    }

    /// A changed plugin file is complete (`stable`) or never became so.
    async fn on_plugin_ready(&mut self, path: &Path, stable: bool) {
        if !stable {
            tracing::warn!(
                "{}: still changing after 10 s (or gone); not loaded",
                path.display()
            );
        } else if let Some(kinds) =
            reload_plugin(&mut self.registry, &self.policy, path, &mut self.reloads)
        {
            let saved = watch::saved_at(path);
            apply_file(&mut self.pipeline, &self.registry, self.file, saved, &kinds).await;
        }
    }
}

struct Reloads {
    /// Libraries mapped before the run started.
    loaded: usize,
    /// Successful reloads.
    count: usize,
    /// Files that failed to load, with the stamp they had: the same bytes
    /// are not tried again (each try would map another copy).
    failed: std::collections::HashMap<PathBuf, Option<(u64, std::time::SystemTime)>>,
}

impl Reloads {
    /// Mappings this run has added, loaded or refused after mapping.
    fn mappings(&self) -> usize {
        mapped_libraries().saturating_sub(self.loaded)
    }
}

/// Loads a new or changed library, now completely written; returns the
/// stage kinds it provides, or `None` (logged) if it cannot be used.
fn reload_plugin(
    registry: &mut PluginRegistry,
    policy: &LoadPolicy,
    path: &Path,
    reloads: &mut Reloads,
) -> Option<HashSet<String>> {
    if !path.exists() {
        tracing::info!(
            "{} was removed; stages using it keep running on the code already loaded",
            path.display()
        );
        return None;
    }
    let stamp = crate::registry::file_stamp(path);
    if reloads.failed.get(path) == Some(&stamp) {
        tracing::debug!(
            "{}: failed before and unchanged since; not tried again",
            path.display()
        );
        return None;
    }
    if reloads.mappings() >= MAX_PLUGIN_RELOADS {
        tracing::error!(
            "{}: not loaded: this run has already mapped {MAX_PLUGIN_RELOADS} plugin versions, each a mapping that cannot be unloaded; restart the host to reclaim them",
            path.display()
        );
        return None;
    }
    let began = Instant::now();
    match registry.reload_file(path, policy) {
        Ok(None) => {
            tracing::debug!("{}: unchanged, not reloaded", path.display());
            None
        }
        Ok(Some(kinds)) => {
            reloads.count += 1;
            reloads.failed.remove(path);
            tracing::info!(
                "plugin {} loaded in {:.1} ms: {}; {} plugin reload(s) this run have left {} library mapping(s) behind",
                path.display(),
                began.elapsed().as_secs_f64() * 1000.0,
                kinds.join(", "),
                reloads.count,
                reloads.mappings(),
            );
            Some(kinds.into_iter().collect())
        }
        Err(error) => {
            reloads.failed.insert(path.to_path_buf(), stamp);
            tracing::error!("{error}; the running pipeline is unchanged");
            None
        }
    }
}

/// Reads `file` again and applies what changed; `reloaded` are stage kinds
/// whose plugin was just loaded again (their stages count as changed).
async fn apply_file(
    pipeline: &mut HybridRuntime,
    registry: &PluginRegistry,
    file: &Path,
    saved: Option<Instant>,
    reloaded: &HashSet<String>,
) {
    let new = match load_pipeline(file, registry) {
        Ok(graph) => graph,
        Err(errors) => {
            for error in &errors {
                tracing::error!("{error}");
            }
            tracing::error!(
                "{}: {} error(s) in the new version; the running pipeline is unchanged",
                file.display(),
                errors.len()
            );
            return;
        }
    };
    let diff = diff::diff(pipeline.graph(), &new, reloaded);
    if !diff.needs_restart.is_empty() {
        tracing::error!(
            "{}: this change needs a restart ({}); the running pipeline is unchanged",
            file.display(),
            diff.needs_restart.join("; ")
        );
        return;
    }
    if diff.is_empty() {
        tracing::info!("{}: saved with no change to apply", file.display());
        return;
    }
    // Build every new piece before touching the running pipeline.
    let built = build_pieces(pipeline, &new, &diff);
    let (data_plane, control) = match built {
        Ok(pieces) => pieces,
        Err(error) => {
            tracing::error!(
                "{}: {error}; the change is rolled back and the running pipeline is unchanged",
                file.display()
            );
            return;
        }
    };
    for consumer in new
        .stages
        .iter()
        .filter(|n| n.stage_type == StageType::Control)
    {
        for edge in &consumer.inputs {
            let from = &new.stages[edge.from];
            if from.stage_type == StageType::DataPlane {
                let stream = new.stream_name(edge.from, edge.from_port);
                if let Err(error) = pipeline.ensure_bridge(&from.id, edge.from_port, &stream) {
                    tracing::error!("cannot bridge `{stream}` to the control plane: {error}");
                }
            }
        }
    }
    let mut not_sent = Vec::new();
    for (id, replacement) in data_plane {
        let what = if reloaded.contains(&pipeline_kind(&new, &id)) {
            "new plugin code"
        } else {
            "new config"
        };
        if let Err(error) = pipeline.send_replacement(replacement, &id, what.into(), saved) {
            tracing::error!("stage `{id}` keeps its old config: {error}");
            not_sent.push(id);
        }
    }
    for id in &diff.control_removed {
        pipeline.remove_control_stage(id).await;
        tracing::info!("control stage `{id}` stopped (removed from the file)");
    }
    for (spec, stage, why) in control {
        let id = spec.id.clone();
        pipeline.run_control_stage(spec, stage).await;
        let since = saved
            .map(|saved| format!(", {:.1} ms after the save", ms(saved.elapsed())))
            .unwrap_or_default();
        tracing::info!("control stage `{id}` {why}{since}");
    }
    pipeline.set_graph(new);
    for id in &not_sent {
        pipeline.roll_back(id);
    }
}

type Built = (
    Vec<(String, Box<crate::runtime::Replacement>)>,
    Vec<(
        crate::runtime::ControlSpec,
        hsp_sdk::abi::FfiControlStageBox,
        &'static str,
    )>,
);

fn build_pieces(
    pipeline: &HybridRuntime,
    new: &PipelineGraph,
    diff: &GraphDiff,
) -> Result<Built, String> {
    let node = |id: &str| {
        new.stages
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| format!("stage `{id}` vanished"))
    };
    let failed = |id: &str, error: &dyn std::fmt::Display| {
        format!("building the new `{id}` failed: {error}")
    };
    let mut data_plane = Vec::new();
    for id in &diff.data_plane {
        let node = node(id)?;
        let replacement = pipeline
            .prepare_replacement(id, node.recipe.clone())
            .map_err(|e| failed(id, &e))?;
        data_plane.push((id.clone(), replacement));
    }
    let mut control = Vec::new();
    let changed = diff.control_changed.iter().map(|id| (id, "restarted"));
    let added = diff.control_added.iter().map(|id| (id, "started"));
    for (id, why) in changed.chain(added) {
        let spec = ControlSpec::of(new, node(id)?);
        let stage = spec.build().map_err(|e| failed(id, &e))?;
        control.push((spec, stage, why));
    }
    Ok((data_plane, control))
}

fn pipeline_kind(graph: &PipelineGraph, id: &str) -> String {
    graph
        .stages
        .iter()
        .find(|n| n.id == id)
        .map(|n| n.kind().to_string())
        .unwrap_or_default()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
