//! What other threads tell the data plane, and what it tells them back,
//! without locks: one flag word it reads once per pass, and a progress
//! record a watchdog reads.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Requests to the data-plane thread, read once per pass.
#[derive(Debug, Default)]
pub struct RunFlags(AtomicU8);

impl RunFlags {
    /// Stop the sources; the rest drains.
    pub const STOP: u8 = 1;
    /// Stop every stage now: queued packets are let go (counted as dropped),
    /// every stage's `stop` runs, so sinks flush what they hold.
    pub const ABORT: u8 = 2;
    /// Print the stats table once (SIGUSR1).
    pub const REPORT: u8 = 4;

    /// Raises `flag`.
    pub fn raise(&self, flag: u8) {
        self.0.fetch_or(flag, Ordering::Relaxed);
    }

    /// The raised flags.
    #[inline]
    pub fn get(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }

    /// Lowers `flag` (a one-shot request was served).
    pub fn lower(&self, flag: u8) {
        self.0.fetch_and(!flag, Ordering::Relaxed);
    }
}

/// What the data-plane thread is doing, for the watchdog: a pass counter and
/// the stage whose plugin code it entered last. One relaxed store per
/// plugin call and one per pass; no fences on the data plane.
///
/// The hot path does not clear the stage after a call: while passes or
/// calls go on, the pair keeps changing and nothing is stuck; when it stops
/// changing, the data plane is in that stage's code (or, were the host
/// itself stuck between calls, just after it). Rare calls (`start`, `stop`,
/// a rebuild) clear it, and an idle data plane then waits with 0 there.
#[derive(Debug, Default)]
pub struct Progress {
    passes: AtomicU64,
    /// Data-plane index + 1 of the stage entered last; 0 when cleared.
    in_call: AtomicU32,
}

impl Progress {
    /// The data plane starts a pass.
    #[inline]
    pub fn pass(&self) {
        self.passes
            .store(self.passes.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// The data plane enters stage `index`'s code.
    #[inline]
    pub fn enter(&self, index: usize) {
        self.in_call.store(
            u32::try_from(index + 1).unwrap_or(u32::MAX),
            Ordering::Relaxed,
        );
    }

    /// The data plane is back from a stage's code.
    #[inline]
    pub fn leave(&self) {
        self.in_call.store(0, Ordering::Relaxed);
    }

    fn snapshot(&self) -> (u64, u32) {
        (
            self.passes.load(Ordering::Relaxed),
            self.in_call.load(Ordering::Relaxed),
        )
    }
}

/// Watches a [`Progress`] from another thread: a stage whose call has not
/// returned within the deadline is stuck.
pub struct Watchdog {
    last: (u64, u32),
    since: Instant,
    deadline: Duration,
    reported: bool,
}

/// A stage call that has not returned within the deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stuck {
    /// Data-plane index of the stage.
    pub stage: usize,
    /// How long the call has lasted (at least).
    pub for_: Duration,
    /// `true` the first time this stall is seen (log it once).
    pub new: bool,
}

impl Watchdog {
    /// A watchdog with `deadline`.
    pub fn new(deadline: Duration) -> Self {
        Self {
            last: (0, 0),
            since: Instant::now(),
            deadline,
            reported: false,
        }
    }

    /// Looks at `progress` now: `Some` while one stage call has lasted
    /// longer than the deadline.
    pub fn check(&mut self, progress: &Progress) -> Option<Stuck> {
        let now = progress.snapshot();
        if now != self.last {
            self.last = now;
            self.since = Instant::now();
            self.reported = false;
            return None;
        }
        let (_, in_call) = now;
        let lasted = self.since.elapsed();
        if in_call == 0 || lasted < self.deadline {
            return None;
        }
        let new = !self.reported;
        self.reported = true;
        Some(Stuck {
            stage: in_call as usize - 1,
            for_: lasted,
            new,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_does_not_return_is_named_once_and_progress_clears_it() {
        let progress = Progress::default();
        let mut watchdog = Watchdog::new(Duration::from_millis(20));
        progress.pass();
        progress.enter(3);
        assert_eq!(watchdog.check(&progress), None);
        std::thread::sleep(Duration::from_millis(30));
        let stuck = watchdog.check(&progress).expect("stuck");
        assert_eq!((stuck.stage, stuck.new), (3, true));
        assert!(!watchdog.check(&progress).expect("still stuck").new);
        progress.leave();
        progress.pass();
        assert_eq!(watchdog.check(&progress), None);
    }

    #[test]
    fn an_idle_data_plane_is_not_stuck() {
        let progress = Progress::default();
        let mut watchdog = Watchdog::new(Duration::from_millis(1));
        progress.pass();
        watchdog.check(&progress);
        std::thread::sleep(Duration::from_millis(5));
        // No pass, but no stage call either: waiting, not stuck.
        assert_eq!(watchdog.check(&progress), None);
    }

    #[test]
    fn flags_are_raised_and_lowered_independently() {
        let flags = RunFlags::default();
        flags.raise(RunFlags::STOP);
        flags.raise(RunFlags::REPORT);
        flags.lower(RunFlags::REPORT);
        assert_eq!(flags.get(), RunFlags::STOP);
    }
}
