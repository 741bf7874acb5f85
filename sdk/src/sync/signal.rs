//! `Signal`: "something you were waiting for may have happened".
//!
//! The notifying side pays one uncontended atomic read-modify-write when nobody
//! waits, and never takes a lock then: that is what lets the data-plane thread
//! release packets and push to queues a control-plane task may be waiting on.
//!
//! Why no lost wake-up: a waiter increments `waiters` *before* it registers
//! its listener and re-checks its condition after; a notifier changes the
//! state *before* its read-modify-write of `waiters`. RMWs on one atomic are
//! totally ordered and each reads the latest value, so either
//! - the notifier's RMW comes first: the waiter's increment reads from it
//!   (Release -> Acquire), so the waiter's re-check sees the new state; or
//! - the waiter's increment comes first: the notifier sees a waiter and
//!   notifies under the event's lock, which orders it either after the
//!   listener's registration (it is woken) or before it (then the waiter's
//!   re-check, after that lock, sees the new state).
//!
//! A `fence(SeqCst)` + load would do on hardware, but loom models SeqCst as
//! AcqRel and rightly cannot prove that variant; this one it checks.

use super::{AtomicUsize, Ordering};
use event_listener::{Event, Listener};

pub(crate) struct Signal {
    /// Tasks or threads between "about to listen" and "done waiting".
    waiters: AtomicUsize,
    event: Event,
}

impl Signal {
    pub(crate) fn new() -> Self {
        Self {
            waiters: AtomicUsize::new(0),
            event: Event::new(),
        }
    }

    /// Wakes one waiter, if any. Call it after the state change it announces.
    #[inline]
    pub(crate) fn notify_one(&self) {
        if self.has_waiters() {
            self.event.notify_additional_relaxed(1);
        }
    }

    /// Wakes every waiter (close, shutdown).
    pub(crate) fn notify_all(&self) {
        if self.has_waiters() {
            self.event.notify_relaxed(usize::MAX);
        }
    }

    /// The notifier's half of the protocol in the module docs: an RMW, not a
    /// load, so that it is ordered against the waiters' increments.
    #[inline]
    fn has_waiters(&self) -> bool {
        self.waiters.fetch_add(0, Ordering::AcqRel) != 0
    }

    /// Waits, without spinning, until `attempt` returns `Some`.
    pub(crate) async fn wait_until<R>(&self, attempt: impl FnMut() -> Option<R>) -> R {
        wait_until(&self.event, &self.waiters, attempt).await
    }

    /// Blocks the calling thread, without spinning, until `attempt` returns `Some`.
    pub(crate) fn wait_until_blocking<R>(&self, attempt: impl FnMut() -> Option<R>) -> R {
        wait_until_blocking(&self.event, &self.waiters, attempt)
    }
}

/// A count of waiters that notifiers read with a read-modify-write (the
/// protocol in the module docs).
pub(crate) trait WaiterCount {
    /// Counts one more waiter (a read-modify-write).
    fn add_waiter(&self);
    /// Uncounts one.
    fn remove_waiter(&self);
}

impl WaiterCount for AtomicUsize {
    fn add_waiter(&self) {
        self.fetch_add(1, Ordering::AcqRel);
    }
    fn remove_waiter(&self) {
        self.fetch_sub(1, Ordering::Release);
    }
}

/// The waiter's half of the protocol: counted, then listening, then
/// re-checking, so that a notifier either sees the waiter or the re-check
/// sees the notifier's change.
pub(crate) async fn wait_until<R>(
    event: &Event,
    waiters: &impl WaiterCount,
    mut attempt: impl FnMut() -> Option<R>,
) -> R {
    loop {
        if let Some(ready) = attempt() {
            return ready;
        }
        let _registered = WaiterGuard::new(waiters);
        let listener = event.listen();
        if let Some(ready) = attempt() {
            return ready;
        }
        listener.await;
    }
}

/// [`wait_until`] for plain threads: parks instead of awaiting.
pub(crate) fn wait_until_blocking<R>(
    event: &Event,
    waiters: &impl WaiterCount,
    mut attempt: impl FnMut() -> Option<R>,
) -> R {
    loop {
        if let Some(ready) = attempt() {
            return ready;
        }
        let _registered = WaiterGuard::new(waiters);
        let listener = event.listen();
        if let Some(ready) = attempt() {
            return ready;
        }
        listener.wait();
    }
}

/// Counts a waiter for exactly as long as it may be listening, also when its
/// future is dropped mid-wait.
struct WaiterGuard<'a, W: WaiterCount>(&'a W);

impl<'a, W: WaiterCount> WaiterGuard<'a, W> {
    fn new(waiters: &'a W) -> Self {
        waiters.add_waiter();
        Self(waiters)
    }
}

impl<W: WaiterCount> Drop for WaiterGuard<'_, W> {
    fn drop(&mut self) {
        self.0.remove_waiter();
    }
}
