//! `host plugins install`: put a library into a plugin directory so that a
//! running host never sees it half-written.

use std::path::{Path, PathBuf};

/// Why a library could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The path names no file.
    #[error("{}: not a file", path.display())]
    NotAFile {
        /// The path given.
        path: PathBuf,
    },
    /// The file's name is not a library's.
    #[error("{}: not a .{} library", path.display(), std::env::consts::DLL_EXTENSION)]
    NotALibrary {
        /// The file given.
        path: PathBuf,
    },
    /// Reading, writing or renaming failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory at fault.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Copies `file` into `dir` under a temporary name, then renames it into
/// place (atomic on one filesystem). Returns the installed path.
pub fn install(file: &Path, dir: &Path) -> Result<PathBuf, InstallError> {
    let name = file.file_name().ok_or_else(|| InstallError::NotAFile {
        path: file.to_path_buf(),
    })?;
    if !super::search_path::is_library_name(file) {
        return Err(InstallError::NotALibrary {
            path: file.to_path_buf(),
        });
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let target = dir.join(name);
    // A dot name and no library extension: the host ignores it while copying.
    let temporary = dir.join(format!(
        ".{}.installing-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::copy(file, &temporary).map_err(io(file))?;
    std::fs::rename(&temporary, &target).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        io(&target)(e)
    })?;
    Ok(target)
}
