//! Where plugins are looked for, in order, and which files there count.

use std::path::{Path, PathBuf};

/// The environment variable holding extra plugin directories, `:`-separated.
pub const PLUGIN_PATH_ENV: &str = "HSP_PLUGIN_PATH";

/// The plugin directories, in search order: each `--plugins DIR`, then
/// `HSP_PLUGIN_PATH`, then the directory of the `host` executable (where
/// cargo puts the workspace's plugin libraries). Every path is made absolute
/// (so the registry and the file watcher name a file the same way), and
/// duplicates (after canonicalisation) are kept once, at their first place.
///
/// The current directory's `./plugins` is not searched unless named: running
/// `host validate` inside someone else's checkout must not run its code.
pub fn plugin_dirs(cli_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cli_dirs.to_vec();
    if let Some(env) = std::env::var_os(PLUGIN_PATH_ENV) {
        dirs.extend(std::env::split_paths(&env).filter(|p| !p.as_os_str().is_empty()));
    }
    for dir in &mut dirs {
        if let Ok(absolute) = std::path::absolute(&*dir) {
            *dir = absolute;
        }
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir);
    }
    let mut seen = Vec::new();
    dirs.retain(|dir| {
        let key = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    dirs
}

/// The plugin directories a running host watches for new libraries: the
/// search path without the executable's own directory, which is where cargo
/// writes its build outputs and installs put the shipped plugins.
pub fn drop_in_dirs(cli_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .and_then(|dir| dir.canonicalize().ok());
    plugin_dirs(cli_dirs)
        .into_iter()
        .filter(|dir| dir.canonicalize().ok() != exe_dir || exe_dir.is_none())
        .collect()
}

/// `true` for a file name that looks like a dynamic library on this platform.
pub fn is_library_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == std::env::consts::DLL_EXTENSION)
}

/// The library files directly inside `dir` (not in subdirectories, so that
/// plugin source crates kept in `./plugins` are ignored), sorted by name. A
/// missing directory has none.
pub fn library_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_type()
                .is_ok_and(|t| t.is_file() || t.is_symlink())
        })
        .map(|entry| entry.path())
        .filter(|path| is_library_name(path) && path.is_file())
        .collect();
    files.sort();
    files
}
