//! `MemoryPool<T>`: a fixed set of packets, allocated once, handed out and
//! taken back without allocating.

use crate::packet::Packet;
use crate::sync::{Arc, AtomicU64, AtomicUsize, FreeList, Ordering, Signal};
use std::cell::UnsafeCell;
use std::fmt;
use std::ptr::NonNull;

/// A bounded pool of `T` slots, allocated once at construction.
///
/// **Guarantees.** Every slot is handed out to at most one [`Packet`] at a
/// time; dropping the packet returns the slot, from any thread. Acquiring and
/// releasing never allocate. When the pool is empty, [`acquire`] waits without
/// spinning (under tokio or any other executor) and [`acquire_blocking`] parks
/// the thread; a release wakes one waiter and no waiter is forgotten.
///
/// **Dropping the pool while packets are out is sound**: the slots live in
/// storage shared (reference-counted) by the pool and every packet, freed when
/// the last of them goes. A packet that outlives its pool still derefs to
/// valid memory and its drop simply returns the slot to the orphaned storage.
///
/// Slots are not reset on release: a packet comes back with whatever its last
/// holder left in it, so a producer writes every field it means to publish.
///
/// [`acquire`]: MemoryPool::acquire
/// [`acquire_blocking`]: MemoryPool::acquire_blocking
///
/// # Example
///
/// ```
/// use hsp_sdk::MemoryPool;
///
/// let pool: MemoryPool<[f32; 32]> = MemoryPool::new(2);
/// let mut block = pool.try_acquire().expect("a fresh pool is full");
/// block[0] = 1.5;
/// assert_eq!(pool.available(), 1);
/// drop(block); // back to the pool
/// assert_eq!(pool.available(), 2);
/// ```
pub struct MemoryPool<T> {
    shared: Arc<PoolShared<T>>,
}

pub(crate) struct PoolShared<T> {
    slots: Box<[UnsafeCell<T>]>,
    free: FreeList,
    released: Signal,
    low_water: AtomicUsize,
    waits: AtomicU64,
}

// SAFETY: a slot is reachable only through the one `Packet` that popped its
// index from `free` (each index is in `free` at most once), so the shared
// storage never hands out aliasing access; moving `T` between threads through
// a packet needs `T: Send`, and nothing else in `PoolShared` is thread-bound.
unsafe impl<T: Send> Sync for PoolShared<T> {}
// SAFETY: as above; the storage owns `T`s, which may be dropped on any thread.
unsafe impl<T: Send> Send for PoolShared<T> {}

impl<T: Default> MemoryPool<T> {
    /// A pool of `capacity` slots, each `T::default()`.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0 or does not fit in a `u32`.
    pub fn new(capacity: usize) -> Self {
        Self::with_init(capacity, |_| T::default())
    }
}

impl<T> MemoryPool<T> {
    /// A pool of `capacity` slots, slot `i` initialised to `init(i)`.
    ///
    /// Use it for packets whose size is known only at run time, e.g. an EEG
    /// block whose channel count comes from the pipeline.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0 or does not fit in a `u32`.
    ///
    /// ```
    /// use hsp_sdk::{EegPacket, MemoryPool};
    ///
    /// let pool = MemoryPool::with_init(8, |_| EegPacket::with_capacity(32, 16));
    /// assert_eq!(pool.try_acquire().unwrap().capacity(), 32 * 16);
    /// ```
    pub fn with_init(capacity: usize, mut init: impl FnMut(usize) -> T) -> Self {
        assert!(capacity > 0, "a MemoryPool needs at least one slot");
        let index_limit = u32::try_from(capacity).expect("MemoryPool capacity must fit in a u32");
        let slots: Box<[UnsafeCell<T>]> = (0..capacity).map(|i| UnsafeCell::new(init(i))).collect();
        let free = FreeList::new(capacity);
        for index in 0..index_limit {
            // A fresh queue of exactly `capacity` places cannot be full yet.
            let _ = free.push(index);
        }
        Self {
            shared: Arc::new(PoolShared {
                slots,
                free,
                released: Signal::new(),
                low_water: AtomicUsize::new(capacity),
                waits: AtomicU64::new(0),
            }),
        }
    }

    /// Takes a free packet, or `None` at once if all are out. Never allocates.
    #[inline]
    pub fn try_acquire(&self) -> Option<Packet<T>> {
        PoolShared::try_acquire(&self.shared)
    }

    /// Takes a free packet, waiting without spinning until one is released.
    ///
    /// Works under any executor: the wake-up comes from whichever thread
    /// drops a packet. Cancel-safe: dropping the future loses nothing.
    pub async fn acquire(&self) -> Packet<T> {
        if let Some(packet) = self.try_acquire() {
            return packet;
        }
        self.shared.waits.fetch_add(1, Ordering::Relaxed);
        self.shared.released.wait_until(|| self.try_acquire()).await
    }

    /// Like [`acquire`](Self::acquire) for plain threads: parks until a packet
    /// is released.
    pub fn acquire_blocking(&self) -> Packet<T> {
        if let Some(packet) = self.try_acquire() {
            return packet;
        }
        self.shared.waits.fetch_add(1, Ordering::Relaxed);
        self.shared
            .released
            .wait_until_blocking(|| self.try_acquire())
    }

    /// Number of slots, fixed at construction.
    pub fn capacity(&self) -> usize {
        self.shared.slots.len()
    }

    /// Packets in the pool right now (a snapshot: others may move it at once).
    pub fn available(&self) -> usize {
        self.shared.free.len()
    }

    /// The fewest packets that were ever left in the pool after an acquire.
    pub fn low_water_mark(&self) -> usize {
        self.shared.low_water.load(Ordering::Relaxed)
    }

    /// How many `acquire` calls found the pool empty and had to wait.
    pub fn waits(&self) -> u64 {
        self.shared.waits.load(Ordering::Relaxed)
    }

    /// A snapshot of the counters, for stats tables.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            capacity: self.capacity(),
            available: self.available(),
            low_water_mark: self.low_water_mark(),
            waits: self.waits(),
        }
    }
}

impl<T> PoolShared<T> {
    #[inline]
    fn try_acquire(this: &Arc<Self>) -> Option<Packet<T>> {
        let index = this.free.pop()?;
        let left = this.free.len();
        if left < this.low_water.load(Ordering::Relaxed) {
            this.low_water.fetch_min(left, Ordering::Relaxed);
        }
        let slot = NonNull::new(this.slots[index as usize].get())
            .expect("UnsafeCell::get never returns null");
        // SAFETY: `index` was just popped from the free list, so no other
        // packet holds this slot until this one is dropped and pushes it back.
        Some(unsafe { Packet::from_slot(slot, index, Arc::clone(this)) })
    }

    /// Gives a slot back and wakes one waiter. Called by `Packet::drop` only.
    #[inline]
    pub(crate) fn release(&self, index: u32) {
        // Cannot fail: each index is handed out once and `free` has room for all.
        let pushed = self.free.push(index);
        debug_assert!(pushed.is_ok(), "slot {index} released twice");
        self.released.notify_one();
    }
}

impl<T> fmt::Debug for MemoryPool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.stats().fmt(f)
    }
}

/// A snapshot of a pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Slots in the pool.
    pub capacity: usize,
    /// Slots free at the time of the snapshot.
    pub available: usize,
    /// Fewest slots ever left free after an acquire.
    pub low_water_mark: usize,
    /// Acquires that had to wait for a release.
    pub waits: u64,
}
