//! `MemoryPool<T>`: a fixed set of packets, allocated once, handed out and
//! taken back without allocating.

use crate::packet::Packet;
use crate::sync::{
    AtomicU64, AtomicUsize, FreeList, Ordering, PoolState, Release, wait_until, wait_until_blocking,
};
use event_listener::Event;
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
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
/// storage shared by the pool and every packet, freed when the last of them
/// goes (the reference count is one word with the waiter count, see
/// `sync/pool_state.rs`). A packet that outlives its pool still derefs to
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
/// use hsp_sdk::runtime::MemoryPool;
///
/// let pool: MemoryPool<[f32; 32]> = MemoryPool::new(2);
/// let mut block = pool.try_acquire().expect("a fresh pool is full");
/// block[0] = 1.5;
/// assert_eq!(pool.available(), 1);
/// drop(block); // back to the pool
/// assert_eq!(pool.available(), 2);
/// ```
pub struct MemoryPool<T> {
    /// Allocated by `with_init` (`Box::into_raw`), freed by whoever closes
    /// the last claim on it (see `PoolState`).
    shared: NonNull<PoolShared<T>>,
    _owns: PhantomData<PoolShared<T>>,
}

pub(crate) struct PoolShared<T> {
    slots: Box<[UnsafeCell<T>]>,
    free: FreeList,
    state: PoolState,
    released: Event,
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

// SAFETY: the handle is a claim on `PoolShared`, which is `Send + Sync` for
// `T: Send` (above); its methods take `&self` and synchronise through it.
unsafe impl<T: Send> Send for MemoryPool<T> {}
// SAFETY: as for `Send`: shared use goes through `PoolShared`'s atomics.
unsafe impl<T: Send> Sync for MemoryPool<T> {}

impl<T: Default> MemoryPool<T> {
    /// A pool of `capacity` slots, each `T::default()`.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0 or more than 2^31.
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
    /// If `capacity` is 0 or more than 2^31.
    ///
    /// ```
    /// use hsp_sdk::{EegPacket, PlanarBlock};
    /// use hsp_sdk::runtime::MemoryPool;
    ///
    /// let pool = MemoryPool::with_init(8, |_| EegPacket::with_capacity(32, 16));
    /// assert_eq!(pool.try_acquire().unwrap().capacity(), 32 * 16);
    /// ```
    pub fn with_init(capacity: usize, mut init: impl FnMut(usize) -> T) -> Self {
        assert!(capacity > 0, "a MemoryPool needs at least one slot");
        // The packets-out count has 32 bits in the pool's state word; half
        // that keeps a transient extra claim (a release waking a waiter)
        // far from the waiter bits.
        assert!(
            capacity <= 1 << 31,
            "MemoryPool capacity must be at most 2^31"
        );
        let index_limit = u32::try_from(capacity).expect("checked above");
        let slots: Box<[UnsafeCell<T>]> = (0..capacity).map(|i| UnsafeCell::new(init(i))).collect();
        let free = FreeList::new(capacity);
        for index in 0..index_limit {
            // A fresh queue of exactly `capacity` places cannot be full yet.
            let _ = free.push(index);
        }
        let shared = Box::new(PoolShared {
            slots,
            free,
            state: PoolState::new(),
            released: Event::new(),
            low_water: AtomicUsize::new(capacity),
            waits: AtomicU64::new(0),
        });
        Self {
            shared: NonNull::from(Box::leak(shared)),
            _owns: PhantomData,
        }
    }

    fn shared(&self) -> &PoolShared<T> {
        // SAFETY: the handle's claim keeps the storage alive until its drop
        // (see `PoolState`).
        unsafe { self.shared.as_ref() }
    }

    /// Takes a free packet, or `None` at once if all are out. Never allocates.
    #[inline]
    pub fn try_acquire(&self) -> Option<Packet<T>> {
        PoolShared::try_acquire(self.shared)
    }

    /// Takes a free packet, waiting without spinning until one is released.
    ///
    /// Works under any executor: the wake-up comes from whichever thread
    /// drops a packet. Cancel-safe: dropping the future loses nothing.
    pub async fn acquire(&self) -> Packet<T> {
        if let Some(packet) = self.try_acquire() {
            return packet;
        }
        let shared = self.shared();
        shared.waits.fetch_add(1, Ordering::Relaxed);
        wait_until(&shared.released, &shared.state, || self.try_acquire()).await
    }

    /// Like [`acquire`](Self::acquire) for plain threads: parks until a packet
    /// is released.
    pub fn acquire_blocking(&self) -> Packet<T> {
        if let Some(packet) = self.try_acquire() {
            return packet;
        }
        let shared = self.shared();
        shared.waits.fetch_add(1, Ordering::Relaxed);
        wait_until_blocking(&shared.released, &shared.state, || self.try_acquire())
    }

    /// Number of slots, fixed at construction.
    pub fn capacity(&self) -> usize {
        self.shared().slots.len()
    }

    /// Packets in the pool right now (a snapshot: others may move it at once).
    pub fn available(&self) -> usize {
        let out = usize::try_from(self.shared().state.out()).unwrap_or(usize::MAX);
        self.capacity().saturating_sub(out)
    }

    /// The fewest packets that were ever left in the pool after an acquire.
    pub fn low_water_mark(&self) -> usize {
        self.shared().low_water.load(Ordering::Relaxed)
    }

    /// How many `acquire` calls found the pool empty and had to wait.
    pub fn waits(&self) -> u64 {
        self.shared().waits.load(Ordering::Relaxed)
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

impl<T> Drop for MemoryPool<T> {
    fn drop(&mut self) {
        if self.shared().state.close() {
            // SAFETY: no packet is out and the handle is going, so this is
            // the last claim (see `PoolState`); the storage came from
            // `Box::leak` in `with_init`.
            drop(unsafe { Box::from_raw(self.shared.as_ptr()) });
        }
    }
}

impl<T> PoolShared<T> {
    #[inline]
    fn try_acquire(this: NonNull<Self>) -> Option<Packet<T>> {
        // SAFETY: called through a live pool handle, whose claim keeps the
        // storage alive.
        let shared = unsafe { this.as_ref() };
        let index = shared.free.pop()?;
        let out = shared.state.acquired();
        let left = shared.slots.len().saturating_sub(out as usize);
        if left < shared.low_water.load(Ordering::Relaxed) {
            shared.low_water.fetch_min(left, Ordering::Relaxed);
        }
        let slot = NonNull::new(shared.slots[index as usize].get())
            .expect("UnsafeCell::get never returns null");
        // SAFETY: `index` was popped from the free list, so no other packet
        // has this slot until this one is dropped; the claim just counted by
        // `acquired` keeps the storage alive for the packet.
        Some(unsafe { Packet::from_slot(slot, index, this) })
    }

    /// Returns slot `index` and gives up its packet's claim on the storage.
    ///
    /// # Safety
    ///
    /// Called once per packet, from its drop: `this` is alive until this
    /// call gives the packet's claim up, and nothing of it is used after.
    #[inline]
    pub(crate) unsafe fn release(this: NonNull<Self>, index: u32) {
        // SAFETY: the caller's claim keeps the storage alive until `released`.
        let shared = unsafe { this.as_ref() };
        let pushed = shared.free.push(index);
        debug_assert!(pushed.is_ok(), "slot {index} released twice");
        let released = &shared.released;
        let after = shared.state.released(|| {
            released.notify_additional_relaxed(1);
        });
        if let Release::FreeStorage = after {
            // SAFETY: this release took the last packet home after the pool
            // handle was dropped: nobody else can reach the storage, which
            // came from `Box::leak` in `MemoryPool::with_init`.
            drop(unsafe { Box::from_raw(this.as_ptr()) });
        }
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
