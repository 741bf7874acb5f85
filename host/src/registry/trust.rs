//! Which plugin files the host agrees to run: a library is code that runs
//! with the host's rights, so, as ssh does with keys, files and directories
//! that someone else could have written are refused with a reason.
//!
//! Refused unless `--allow-insecure-plugins`:
//! - a plugin directory or file owned by another user (root is trusted);
//! - a plugin directory or file writable by others (`o+w`), or by a group
//!   other than our own (`g+w` with another gid);
//! - a library file that is a symbolic link (it may lead anywhere).
//!
//! The parents of a plugin directory are not walked: a directory the user
//! names is taken as theirs.

use std::path::Path;

/// How strict to be about who could have written a plugin file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trust {
    /// Refuse files and directories that others could have written.
    #[default]
    Strict,
    /// Load them anyway (`--allow-insecure-plugins`).
    AllowInsecure,
}

/// The flag that overrides the checks, named in every refusal.
pub const OVERRIDE_FLAG: &str = "--allow-insecure-plugins";

/// `Ok` if `dir` may hold plugins, else why not.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot be read ({e})"))?;
    check_owner_and_mode(&meta, "directory")
}

/// `Ok` if the library file at `path` may be loaded, else why not.
pub fn check_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot be read ({e})"))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "?".into());
        return Err(format!(
            "is a symbolic link (to {target}); install the library itself"
        ));
    }
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    check_owner_and_mode(&meta, "file")
}

#[cfg(unix)]
fn check_owner_and_mode(meta: &std::fs::Metadata, what: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let uid = super::shadow::effective_uid();
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(format!(
            "the {what} is owned by uid {}, not by you (uid {uid}) or root",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(format!(
            "the {what} is writable by others (mode {mode:o}; chmod o-w)"
        ));
    }
    // SAFETY: getegid takes no arguments, cannot fail and touches no memory
    // of ours.
    let gid = unsafe { libc::getegid() };
    if mode & 0o020 != 0 && meta.gid() != gid {
        return Err(format!(
            "the {what} is writable by group {} (mode {mode:o}; chmod g-w)",
            meta.gid()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_and_mode(_meta: &std::fs::Metadata, _what: &str) -> Result<(), String> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn files_and_directories_others_can_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libx.so");
        std::fs::write(&file, b"x").unwrap();
        chmod(dir.path(), 0o755);
        chmod(&file, 0o644);
        assert_eq!(check_dir(dir.path()), Ok(()));
        assert_eq!(check_file(&file), Ok(()));

        chmod(&file, 0o666);
        let reason = check_file(&file).unwrap_err();
        assert!(reason.contains("writable by others"), "{reason}");
        chmod(dir.path(), 0o777);
        let reason = check_dir(dir.path()).unwrap_err();
        assert!(reason.contains("writable by others"), "{reason}");
        chmod(dir.path(), 0o755);
    }

    #[test]
    fn a_symlinked_library_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.so");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.path().join("libx.so");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let reason = check_file(&link).unwrap_err();
        assert!(reason.contains("symbolic link"), "{reason}");
    }

    #[test]
    fn a_file_owned_by_someone_else_is_refused() {
        // Only root can give a file away; elsewhere this check is covered
        // by the mode tests above.
        if super::super::shadow::effective_uid() != 0 {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libx.so");
        std::fs::write(&file, b"x").unwrap();
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
        let reason = check_file(&file).unwrap_err();
        assert!(reason.contains("owned by uid 65534"), "{reason}");
    }
}
