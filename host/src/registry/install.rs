//! `host plugins install`: put a library into a plugin directory so that a
//! running host never sees it half-written.

use std::path::{Path, PathBuf};

/// Copies `file` into `dir` under a temporary name, then renames it into
/// place (atomic on one filesystem). Returns the installed path.
pub fn install(file: &Path, dir: &Path) -> Result<PathBuf, String> {
    let name = file
        .file_name()
        .ok_or_else(|| format!("{}: not a file", file.display()))?;
    if !super::search_path::is_library_name(file) {
        return Err(format!(
            "{}: not a .{} library",
            file.display(),
            std::env::consts::DLL_EXTENSION
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let target = dir.join(name);
    // A dot name and no library extension: the host ignores it while copying.
    let temporary = dir.join(format!(
        ".{}.installing-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::copy(file, &temporary).map_err(|e| format!("{}: {e}", file.display()))?;
    std::fs::rename(&temporary, &target).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        format!("{}: {e}", target.display())
    })?;
    Ok(target)
}
