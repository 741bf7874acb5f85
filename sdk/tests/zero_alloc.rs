//! After warm-up, acquire -> push -> pop -> drop allocates nothing.
//!
//! Its own test binary: the counting allocator is global to the process; it
//! counts per thread, so the harness and other tests do not disturb it.

use hsp_sdk::runtime::{MemoryPool, PipelineData, StageQueue};
use hsp_sdk::{EegPacket, PlanarBlock};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    // Const-initialised and without `Drop`: touching them never allocates.
    static ALLOCATED_BYTES: Cell<usize> = const { Cell::new(0) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    ALLOCATIONS.with(|n| n.set(n.get() + 1));
    ALLOCATED_BYTES.with(|n| n.set(n.get() + bytes));
}

fn counters() -> (usize, usize) {
    (ALLOCATIONS.with(Cell::get), ALLOCATED_BYTES.with(Cell::get))
}

// SAFETY: forwards every call unchanged to the system allocator, which upholds
// `GlobalAlloc`'s contract; the counters have no effect on the memory returned.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn cycle(pool: &MemoryPool<EegPacket>, queue: &mut StageQueue<PipelineData>, i: u64) {
    let mut packet = pool.try_acquire().expect("one packet is out at most");
    packet.sequence = i;
    packet.values_mut()[0] = i as f32;
    queue
        .push(PipelineData::RawEeg(packet))
        .expect("queue has room");
    let item = queue.pop().expect("just pushed");
    assert_eq!(item.timestamp_ns(), 0);
    drop(item);
}

#[test]
fn a_million_cycles_allocate_zero_bytes_after_warm_up() {
    let pool = MemoryPool::with_init(4, |_| EegPacket::with_capacity(8, 32));
    let mut queue = StageQueue::new(4);
    for i in 0..1_000 {
        cycle(&pool, &mut queue, i);
    }
    let (count_before, bytes_before) = counters();
    for i in 0..1_000_000 {
        cycle(&pool, &mut queue, i);
    }
    let (count_after, bytes_after) = counters();
    assert_eq!(
        (count_after - count_before, bytes_after - bytes_before),
        (0, 0),
        "(allocations, bytes) in steady state"
    );
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let (before, _) = counters();
    let boxed = std::hint::black_box(Box::new([0u8; 64]));
    drop(boxed);
    assert_eq!(counters().0, before + 1);
}
