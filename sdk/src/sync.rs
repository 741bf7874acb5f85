//! The few synchronisation primitives the pool and the queues are built on,
//! switched to `loom`'s models under `--cfg loom` so the model tests in
//! `tests/loom.rs` explore every interleaving of our own protocols.
//!
//! Under loom, the lock-free containers we build on (`crossbeam`'s
//! `ArrayQueue`, `rtrb`'s ring buffer) are replaced by lock-based models with
//! the same linearizable behaviour: their internals are their authors' to
//! check (and are not loom-aware); what loom checks here is *our* part, the
//! release/wake and close/drain protocols around them.

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

mod pool_state;
mod signal;
pub(crate) use pool_state::{PoolState, Release};
pub(crate) use signal::{Signal, wait_until, wait_until_blocking};

#[cfg(not(loom))]
pub(crate) type FreeList = crossbeam_queue::ArrayQueue<u32>;
#[cfg(loom)]
pub(crate) use loom_model::FreeList;

#[cfg(loom)]
pub(crate) use loom_model::{RingBuffer, RingConsumer, RingProducer};
#[cfg(not(loom))]
pub(crate) use rtrb::{Consumer as RingConsumer, Producer as RingProducer, RingBuffer};

#[cfg(loom)]
mod loom_model;
