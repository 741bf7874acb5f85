//! Watching the pipeline file's directory and the plugin directories.
//!
//! Directories, not files: editors save by writing a temporary file and
//! renaming it over the old one, and a watch on the file itself dies with the
//! old inode after the first save. Events are debounced, then sorted into
//! "the pipeline file changed" and "this library changed".

use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

/// How long a burst of file events must be quiet before it is handled.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// A change worth acting on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The pipeline file was saved.
    Pipeline,
    /// A library in a plugin directory appeared or changed.
    Plugin(PathBuf),
}

/// Keeps the watches alive; dropping it stops them.
pub struct Watcher {
    _debouncer: Debouncer<RecommendedWatcher>,
}

/// Watches `pipeline`'s directory and `plugin_dirs` (those that exist);
/// changes arrive on the returned channel.
pub fn watch(
    pipeline: &Path,
    plugin_dirs: &[PathBuf],
) -> Result<(Watcher, mpsc::UnboundedReceiver<Change>), String> {
    let pipeline = absolute(pipeline);
    let pipeline_dir = pipeline
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let plugin_dirs: Vec<PathBuf> = plugin_dirs
        .iter()
        .filter(|d| d.is_dir())
        .map(|d| absolute(d))
        .collect();
    let (tx, rx) = mpsc::unbounded_channel();
    let classify_pipeline = pipeline.clone();
    let classify_dirs = plugin_dirs.clone();
    let mut debouncer = new_debouncer(DEBOUNCE, move |result: DebounceEventResult| {
        let events = match result {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!("file watcher: {error}");
                return;
            }
        };
        let changes: BTreeSet<_> = events
            .iter()
            .filter_map(|event| classify(&event.path, &classify_pipeline, &classify_dirs))
            .map(|change| match change {
                Change::Pipeline => (0, PathBuf::new()),
                Change::Plugin(path) => (1, path),
            })
            .collect();
        for (kind, path) in changes {
            let change = if kind == 0 {
                Change::Pipeline
            } else {
                Change::Plugin(path)
            };
            let _ = tx.send(change);
        }
    })
    .map_err(|e| format!("cannot start the file watcher: {e}"))?;
    let watcher = debouncer.watcher();
    watcher
        .watch(&pipeline_dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", pipeline_dir.display()))?;
    for dir in &plugin_dirs {
        if *dir != pipeline_dir {
            if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!("cannot watch plugin directory {}: {error}", dir.display());
            }
        }
    }
    tracing::info!(
        "watching {} and {} plugin director{} for changes",
        pipeline.display(),
        plugin_dirs.len(),
        if plugin_dirs.len() == 1 { "y" } else { "ies" }
    );
    Ok((
        Watcher {
            _debouncer: debouncer,
        },
        rx,
    ))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// What a changed `path` means, if anything.
fn classify(path: &Path, pipeline: &Path, plugin_dirs: &[PathBuf]) -> Option<Change> {
    if path == pipeline {
        return Some(Change::Pipeline);
    }
    let is_library = path
        .extension()
        .is_some_and(|e| e == std::env::consts::DLL_EXTENSION);
    let in_plugin_dir = path
        .parent()
        .is_some_and(|parent| plugin_dirs.iter().any(|d| d == parent));
    (is_library && in_plugin_dir).then(|| Change::Plugin(path.to_path_buf()))
}

/// When `path` was last written, as an `Instant` (for "ms after the save").
pub fn saved_at(path: &Path) -> Option<Instant> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let age = SystemTime::now().duration_since(modified).ok()?;
    Instant::now().checked_sub(age)
}

/// Waits until `path` has stopped changing: the same non-zero size and
/// modification time twice, `interval` apart. `None` if it disappears or
/// keeps changing for `give_up`.
pub async fn wait_until_stable(path: &Path, interval: Duration, give_up: Duration) -> Option<()> {
    let started = Instant::now();
    let snapshot = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    };
    let mut last = snapshot(path)?;
    loop {
        tokio::time::sleep(interval).await;
        let now = snapshot(path)?;
        if now == last && now.0 > 0 {
            return Some(());
        }
        if started.elapsed() > give_up {
            return None;
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pipeline_file_and_libraries_in_plugin_dirs_count() {
        let pipeline = Path::new("/p/pipe.toml");
        let dirs = [PathBuf::from("/plugins")];
        let lib = format!("/plugins/libx.{}", std::env::consts::DLL_EXTENSION);
        assert_eq!(classify(pipeline, pipeline, &dirs), Some(Change::Pipeline));
        assert_eq!(
            classify(Path::new(&lib), pipeline, &dirs),
            Some(Change::Plugin(PathBuf::from(&lib)))
        );
        assert_eq!(
            classify(Path::new("/p/.pipe.toml.swp"), pipeline, &dirs),
            None
        );
        assert_eq!(
            classify(Path::new("/plugins/notes.txt"), pipeline, &dirs),
            None
        );
        assert_eq!(
            classify(Path::new("/elsewhere/libx.so"), pipeline, &dirs),
            None
        );
    }
}
