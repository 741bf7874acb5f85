//! Allocations on the data-plane thread, counted where they happen: the
//! host's own allocator, and each plugin library's (every library has its
//! own allocator, so the host's counter never sees a plugin's allocations;
//! `export_plugin!` installs a counting one and publishes its per-thread
//! counter in the root module).

use crate::graph::AllocationCounter;
use hsp_sdk::runtime::thread_allocations;

/// The counters of the libraries whose code runs on this thread.
#[derive(Default)]
pub(super) struct Allocations {
    /// One per library, in the order first seen.
    plugins: Vec<AllocationCounter>,
}

/// Allocations counted at one moment: the host's, and the sum of every
/// library's. A sum is enough: a library counted later (a stage swapped in
/// from it) never ran on this thread before, so it counts from zero.
#[derive(Default, Clone, Copy)]
pub(super) struct Reading {
    pub(super) host: u64,
    pub(super) plugins: u64,
}

/// Allocations made between two readings.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    /// By the host's code.
    pub(super) host: u64,
    /// By plugin code.
    pub(super) plugins: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.host += other.host;
        self.plugins += other.plugins;
    }
}

impl Allocations {
    /// Adds `counter` if its library is not counted yet (a stage swapped in
    /// from a newly loaded library brings a new one).
    pub(super) fn add(&mut self, counter: Option<AllocationCounter>) {
        if let Some(counter) = counter {
            let known = self
                .plugins
                .iter()
                .any(|c| std::ptr::fn_addr_eq(*c, counter));
            if !known {
                self.plugins.push(counter);
            }
        }
    }

    /// The counters now. Reading allocates nothing.
    pub(super) fn read(&self) -> Reading {
        Reading {
            host: thread_allocations(),
            plugins: self.plugins.iter().map(|counter| counter()).sum(),
        }
    }

    /// What was allocated since `before`.
    pub(super) fn since(&self, before: &Reading) -> Tally {
        let now = self.read();
        Tally {
            host: now.host.saturating_sub(before.host),
            plugins: now.plugins.saturating_sub(before.plugins),
        }
    }
}
