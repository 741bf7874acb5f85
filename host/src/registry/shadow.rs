//! Shadow copies: the only files this process ever maps as plugins.
//!
//! Guarantees:
//! - the directory is created fresh for this process, with an unpredictable
//!   name and mode 0700, under `$XDG_RUNTIME_DIR` when that is a private
//!   directory of ours, else under the temporary directory; it is checked to
//!   be ours, a real directory (not a symlink) and private before each use;
//! - each copy is created with `O_CREAT | O_EXCL | O_NOFOLLOW`, so an
//!   existing file or symlink of that name is never written through;
//! - the file that is probed and then mapped is the very file that was
//!   written: its device and inode are compared with the open descriptor
//!   before the probe and again before the load;
//! - the directory is removed when the process ends normally, on a drained
//!   signal, and on the second-signal exit ([`remove_shadow_dir`]).

use super::error::LoadError;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);
static DIR: Mutex<Option<tempfile::TempDir>> = Mutex::new(None);

/// A private copy of a plugin file, removed when dropped.
pub struct ShadowCopy {
    path: PathBuf,
    /// Kept open: the identity the copy must still have when it is loaded.
    file: File,
}

impl ShadowCopy {
    /// Copies `source` into the shadow directory.
    pub fn create(source: &Path) -> Result<Self, LoadError> {
        let dir = shadow_dir()?;
        let stem = source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".to_string());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{stem}-{n}.{}", std::env::consts::DLL_EXTENSION));
        let mut input = File::open(source).map_err(|e| io_error(source, e))?;
        let mut file = create_private(&path).map_err(|e| io_error(&path, e))?;
        // File to file: the kernel copies (copy_file_range), nothing is
        // synced: the copy is read back at once and unlinked after.
        std::io::copy(&mut input, &mut file).map_err(|e| io_error(source, e))?;
        Ok(Self { path, file })
    }

    /// The copy's path (for the probe child and the loader).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that the path still names the file this process wrote, in a
    /// directory that is still private: nothing was swapped in between.
    pub fn verify(&self, original: &Path) -> Result<(), LoadError> {
        let tampered = |detail: String| LoadError::Untrusted {
            path: original.to_path_buf(),
            reason: format!("its shadow copy {} {detail}", self.path.display()),
        };
        check_private_dir(self.path.parent().unwrap_or(Path::new("/")))
            .map_err(|reason| tampered(format!("lies in a directory that {reason}")))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let written = self.file.metadata().map_err(|e| io_error(&self.path, e))?;
            let named = std::fs::symlink_metadata(&self.path)
                .map_err(|_| tampered("was removed".into()))?;
            if (named.dev(), named.ino()) != (written.dev(), written.ino()) {
                return Err(tampered(
                    "was replaced by another file after it was written".into(),
                ));
            }
            if named.uid() != effective_uid() || named.mode() & 0o022 != 0 {
                return Err(tampered("changed owner or mode".into()));
            }
        }
        Ok(())
    }
}

impl Drop for ShadowCopy {
    fn drop(&mut self) {
        // Mapped or refused, the copy is no longer needed: a mapping keeps
        // its inode alive.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn io_error(path: &Path, source: std::io::Error) -> LoadError {
    LoadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// This process's shadow directory, created on first use.
fn shadow_dir() -> Result<PathBuf, LoadError> {
    let mut dir = DIR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(existing) = dir.as_ref() {
        let path = existing.path().to_path_buf();
        check_private_dir(&path).map_err(|reason| LoadError::Untrusted {
            path: path.clone(),
            reason: format!("the shadow directory {reason}"),
        })?;
        return Ok(path);
    }
    let base = shadow_base();
    // A random name, created with mkdir (never reusing anything that
    // exists), with mode 0700 from the start.
    let mut builder = tempfile::Builder::new();
    builder.prefix("hsp-shadow-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    let created = builder.tempdir_in(&base).map_err(|e| io_error(&base, e))?;
    let path = created.path().to_path_buf();
    check_private_dir(&path).map_err(|reason| LoadError::Untrusted {
        path: path.clone(),
        reason: format!("the new shadow directory {reason}"),
    })?;
    *dir = Some(created);
    Ok(path)
}

/// `$XDG_RUNTIME_DIR` when it is a private directory of ours, else the
/// temporary directory.
fn shadow_base() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && check_private_dir(dir).is_ok())
        .unwrap_or_else(std::env::temp_dir)
}

/// `Ok` for a real directory (not a symlink) owned by us and closed to
/// group and others; else what is wrong with it.
fn check_private_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot be read ({e})"))?;
    if !meta.is_dir() {
        return Err("is not a directory (a symlink?)".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != effective_uid() {
            return Err(format!("is owned by uid {}, not us", meta.uid()));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(format!(
                "is open to others (mode {:o})",
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// This process's effective user id.
#[cfg(unix)]
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory
    // of ours.
    unsafe { libc::geteuid() }
}

/// Removes this process's shadow directory and whatever is left in it.
/// Safe to call more than once, and from a signal-watching thread before
/// `exit`.
pub fn remove_shadow_dir() {
    let taken = DIR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    if let Some(dir) = taken {
        let _ = dir.close();
    }
}

/// The shadow directory, if this process made one (tests).
pub fn current_shadow_dir() -> Option<PathBuf> {
    DIR.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .as_ref()
        .map(|dir| dir.path().to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_private_and_detect_a_swap() {
        let source = tempfile::NamedTempFile::new().expect("source");
        std::fs::write(source.path(), b"library bytes").expect("write");
        let copy = ShadowCopy::create(source.path()).expect("copy");
        let dir = copy.path().parent().expect("dir").to_path_buf();
        assert!(check_private_dir(&dir).is_ok());
        assert_eq!(std::fs::read(copy.path()).unwrap(), b"library bytes");
        copy.verify(source.path()).expect("untouched copy verifies");

        // Replace the copy by another file of the same name: refused.
        std::fs::remove_file(copy.path()).unwrap();
        std::fs::write(copy.path(), b"other bytes").unwrap();
        let error = copy.verify(source.path()).expect_err("swapped copy");
        assert!(error.to_string().contains("replaced"), "{error}");
    }

    #[test]
    fn an_existing_symlink_is_never_written_through() {
        let scratch = tempfile::tempdir().expect("scratch");
        let victim = scratch.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = scratch.path().join("link.so");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let error = create_private(&link).expect_err("a symlink is refused");
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn a_directory_open_to_others_is_not_private() {
        let scratch = tempfile::tempdir().expect("scratch");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o777))
                .unwrap();
            assert!(check_private_dir(scratch.path()).is_err());
            std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o700))
                .unwrap();
        }
        assert!(check_private_dir(scratch.path()).is_ok());
    }
}
