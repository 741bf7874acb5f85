//! How much memory may a pipeline's packets take? The limit a pipeline's
//! preallocated packets are checked against: the file's `memory_limit_mb`,
//! else [`MEMORY_LIMIT_ENV`], else half the machine's memory (or its
//! cgroup's limit, in a container).

use super::limits::{bytes_text, shorten};

/// The environment variable that sets the memory limit, in MiB, for files
/// without `[pipeline] memory_limit_mb`.
pub const MEMORY_LIMIT_ENV: &str = "HSP_MEMORY_LIMIT_MB";

/// The memory limit when neither the file nor the environment sets one and
/// the machine's memory cannot be read: 4 GiB.
const FALLBACK_LIMIT_BYTES: u64 = 4 << 30;

/// Which limit applies, and where it came from (for the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemoryLimit {
    /// In bytes.
    pub bytes: u64,
    /// Where it was set.
    pub source: LimitSource,
}

/// Where a [`MemoryLimit`] was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitSource {
    /// `[pipeline] memory_limit_mb` in the file.
    File,
    /// [`MEMORY_LIMIT_ENV`].
    Environment,
    /// Half of the machine's memory (or of the cgroup's limit, if lower).
    HalfOfMemory,
    /// [`FALLBACK_LIMIT_BYTES`]: the machine's memory could not be read.
    Fallback,
}

impl MemoryLimit {
    /// The limit for a file with `memory_limit_mb` (MiB) if it sets one:
    /// the file's own key, else [`MEMORY_LIMIT_ENV`], else half of this
    /// machine's memory. `Err` when the environment variable is not a
    /// whole number of MiB from 1 up.
    pub(crate) fn resolve(file_mb: Option<usize>) -> Result<Self, String> {
        if let Some(mb) = file_mb {
            return Ok(Self {
                bytes: mib(mb as u64),
                source: LimitSource::File,
            });
        }
        if let Some(value) = std::env::var_os(MEMORY_LIMIT_ENV) {
            let text = value.to_string_lossy();
            return match text.trim().parse::<u64>() {
                Ok(mb) if mb >= 1 => Ok(Self {
                    bytes: mib(mb),
                    source: LimitSource::Environment,
                }),
                _ => Err(format!(
                    "{MEMORY_LIMIT_ENV}={:?} is not a memory limit: give a whole number of MiB, from 1",
                    shorten(&text, 40)
                )),
            };
        }
        Ok(match machine_memory() {
            Some(bytes) => Self {
                bytes: bytes / 2,
                source: LimitSource::HalfOfMemory,
            },
            None => Self {
                bytes: FALLBACK_LIMIT_BYTES,
                source: LimitSource::Fallback,
            },
        })
    }

    pub(crate) fn describe(&self) -> String {
        let size = bytes_text(self.bytes);
        match self.source {
            LimitSource::File => format!("the file's `memory_limit_mb` of {size}"),
            LimitSource::Environment => format!("the limit of {size} set by {MEMORY_LIMIT_ENV}"),
            LimitSource::HalfOfMemory => {
                format!("the default limit of {size} (half of this machine's memory)")
            }
            LimitSource::Fallback => format!("the default limit of {size}"),
        }
    }
}

fn mib(mb: u64) -> u64 {
    mb.saturating_mul(1 << 20)
}

/// The machine's memory in bytes: `MemTotal` from `/proc/meminfo`, or the
/// cgroup's memory limit when that is lower (in a container). `None` when
/// neither can be read.
fn machine_memory() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text));
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|path| std::fs::read_to_string(path).ok())
    .filter_map(|text| text.trim().parse::<u64>().ok())
    .min();
    match (total, cgroup) {
        (Some(total), Some(cgroup)) => Some(total.min(cgroup)),
        (total, cgroup) => total.or(cgroup),
    }
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => value.checked_mul(1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_sizes_read_and_print() {
        assert_eq!(
            mem_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24576000 * 1024)
        );
        assert_eq!(mem_total("nothing"), None);
        assert_eq!(bytes_text(512), "512 bytes");
        assert_eq!(bytes_text(1536), "1.5 KiB");
        assert_eq!(bytes_text(128 << 30), "128.0 GiB");
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("abc", 3), "abc");
    }
}
