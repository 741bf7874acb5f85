//! `PoolState`: one atomic word that is at once the pool storage's reference
//! count, its waiter count and its "pool handle dropped" flag, so that an
//! acquire costs one read-modify-write besides the free list's, and a
//! release one as well (it was three with an `Arc` and a separate waiter
//! count).
//!
//! Layout: bits 0..32 packets out, bits 32..63 waiters, bit 63 closed.
//!
//! **Storage lifetime.** The storage is freed by whoever makes "closed, and
//! no packet out" true: the pool's drop if no packet is out when it sets
//! `closed`, else the release that takes the last packet home. RMWs on one
//! word are totally ordered, so exactly one of them sees it. A release gives
//! up its claim on the storage with its RMW and touches nothing after it.
//!
//! **No lost wake-up** (as in `signal.rs`). A waiter adds itself with an RMW
//! before it listens and re-checks the free list after. A release returns its
//! slot to the free list, then decrements "out" with a compare-exchange that
//! succeeds only while no waiter is counted: that RMW reads the latest value,
//! so a waiter that adds itself later reads from it and its re-check sees the
//! slot. If a waiter is counted, the release wakes one *first*, while its
//! packet still keeps the storage alive, and then decrements.

use super::signal::WaiterCount;
use super::{AtomicU64, Ordering};

const OUT_ONE: u64 = 1;
const OUT_MASK: u64 = (1 << 32) - 1;
const WAITER_ONE: u64 = 1 << 32;
const WAITER_MASK: u64 = ((1 << 31) - 1) << 32;
const CLOSED: u64 = 1 << 63;

pub(crate) struct PoolState {
    word: AtomicU64,
}

/// What a release must do after returning its slot.
pub(crate) enum Release {
    /// Nothing more.
    Done,
    /// It took the last packet home after the pool was dropped: free the
    /// storage.
    FreeStorage,
}

impl PoolState {
    pub(crate) fn new() -> Self {
        Self {
            word: AtomicU64::new(0),
        }
    }

    /// Counts a packet handed out; returns the packets out now.
    #[inline]
    pub(crate) fn acquired(&self) -> u64 {
        // Relaxed, as `Arc::clone`: the claim is made through the pool
        // handle, whose drop is ordered after every use of it.
        (self.word.fetch_add(OUT_ONE, Ordering::Relaxed) & OUT_MASK) + 1
    }

    /// Gives a packet's claim back, after its slot is back in the free list;
    /// calls `wake` first if a waiter is counted.
    #[inline]
    pub(crate) fn released(&self, wake: impl FnOnce()) -> Release {
        let mut current = self.word.load(Ordering::Relaxed);
        loop {
            if current & WAITER_MASK != 0 {
                // `wake` is event-listener's notify, which takes the event's
                // lock: ordered either after the waiter's listener is
                // registered (it is woken) or before (its re-check, after
                // that lock, sees the slot). This relies on notify never
                // skipping the lock; see the module docs.
                wake();
                let before = self.word.fetch_sub(OUT_ONE, Ordering::AcqRel);
                return Self::after_release(before);
            }
            match self.word.compare_exchange_weak(
                current,
                current - OUT_ONE,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(before) => return Self::after_release(before),
                Err(actual) => current = actual,
            }
        }
    }

    #[inline]
    fn after_release(before: u64) -> Release {
        if before & CLOSED != 0 && before & OUT_MASK == 1 {
            Release::FreeStorage
        } else {
            Release::Done
        }
    }

    /// Marks the pool handle dropped; `true` if no packet is out, so the
    /// caller frees the storage now.
    pub(crate) fn close(&self) -> bool {
        self.word.fetch_or(CLOSED, Ordering::AcqRel) & OUT_MASK == 0
    }

    /// Packets out now (a snapshot).
    pub(crate) fn out(&self) -> u64 {
        self.word.load(Ordering::Relaxed) & OUT_MASK
    }
}

impl WaiterCount for PoolState {
    fn add_waiter(&self) {
        self.word.fetch_add(WAITER_ONE, Ordering::AcqRel);
    }
    fn remove_waiter(&self) {
        self.word.fetch_sub(WAITER_ONE, Ordering::Release);
    }
}
