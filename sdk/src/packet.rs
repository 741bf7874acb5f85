//! `Packet<T>`: exclusive, movable ownership of one pool slot.

use crate::pool::PoolShared;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// One slot of a [`MemoryPool`](crate::runtime::MemoryPool), owned exclusively.
///
/// **Guarantees.** A packet is the only way to reach its slot while it lives;
/// dropping it (normally, during a panic's unwinding, or inside a queue that
/// is dropped) returns the slot to its pool and wakes one waiter. Moving a
/// packet moves a pointer, never the payload.
///
/// `Packet<T>` is `Send` when `T` is, so it can travel through queues between
/// threads, but never `Sync`: two threads can never see the same packet.
///
/// ```compile_fail
/// fn needs_sync<S: Sync>() {}
/// needs_sync::<hsp_sdk::runtime::Packet<u32>>();
/// ```
///
/// It derefs to `T`:
///
/// ```
/// use hsp_sdk::runtime::MemoryPool;
///
/// let pool: MemoryPool<u64> = MemoryPool::new(1);
/// let mut count = pool.try_acquire().unwrap();
/// *count += 41;
/// *count += 1;
/// assert_eq!(*count, 42);
/// ```
pub struct Packet<T> {
    // The seed called this a `&'static mut T`. It is a pointer into storage
    // shared with the pool (`pool` below keeps it alive), not a true 'static:
    // that is what makes dropping the pool before its packets sound.
    slot: NonNull<T>,
    index: u32,
    /// The storage, kept alive by this packet's claim (see `PoolState`).
    pool: NonNull<PoolShared<T>>,
}

// SAFETY: a packet has exclusive access to its slot (see `MemoryPool`), so
// sending it sends a `T`; `PoolShared<T>` is `Send + Sync` when `T: Send`.
// It is deliberately not `Sync` (the `NonNull` keeps it `!Sync`).
unsafe impl<T: Send> Send for Packet<T> {}

impl<T> Packet<T> {
    /// # Safety
    ///
    /// `slot` must point to slot `index` of `pool`'s storage, `index` must
    /// have just been taken off the free list, so nothing else can reach it,
    /// and a claim on the storage must have been counted for this packet
    /// (it is given up in `drop`).
    pub(crate) unsafe fn from_slot(
        slot: NonNull<T>,
        index: u32,
        pool: NonNull<PoolShared<T>>,
    ) -> Self {
        Self { slot, index, pool }
    }
}

impl<T> Deref for Packet<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the slot is ours alone until drop (see `from_slot`) and its
        // storage is kept alive by this packet's claim.
        unsafe { self.slot.as_ref() }
    }
}

impl<T> DerefMut for Packet<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the borrow unique.
        unsafe { self.slot.as_mut() }
    }
}

impl<T> Drop for Packet<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: a packet is dropped once, and nothing of it is used after.
        unsafe { PoolShared::release(self.pool, self.index) };
    }
}

impl<T: fmt::Debug> fmt::Debug for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("slot", &self.index)
            .field("value", &**self)
            .finish()
    }
}
