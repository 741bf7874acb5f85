//! The counting allocator `host` installs counts per thread, so the runtime's
//! "0 allocations after warm-up" line can be trusted.

use hsp_sdk::runtime::{CountingAllocator, thread_allocations};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn counts_this_threads_allocations_and_not_others() {
    let before = thread_allocations();
    let boxed = std::hint::black_box(Box::new([1u8; 32]));
    assert_eq!(thread_allocations(), before + 1);
    drop(boxed);

    let mine = thread_allocations();
    std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 1024])))
        .join()
        .unwrap();
    // Spawning may allocate here; the other thread's vector is not ours.
    let spawned = thread_allocations() - mine;
    let again = thread_allocations();
    std::thread::spawn(|| {
        for _ in 0..100 {
            drop(std::hint::black_box(vec![0u8; 64]));
        }
    })
    .join()
    .unwrap();
    assert_eq!(
        thread_allocations() - again,
        spawned,
        "another thread's allocations leaked into this thread's count"
    );
}
