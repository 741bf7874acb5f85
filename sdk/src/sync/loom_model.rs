//! Lock-based stand-ins for `ArrayQueue` and `rtrb`, with the subset of their
//! API we use, so loom can see every shared access (see `sync.rs`).

use loom::sync::{Arc, Mutex};
use std::collections::VecDeque;

pub(crate) struct FreeList {
    items: Mutex<VecDeque<u32>>,
    capacity: usize,
}

impl FreeList {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            items: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }
    pub(crate) fn push(&self, value: u32) -> Result<(), u32> {
        let mut items = self.items.lock().unwrap();
        if items.len() == self.capacity {
            return Err(value);
        }
        items.push_back(value);
        Ok(())
    }
    pub(crate) fn pop(&self) -> Option<u32> {
        self.items.lock().unwrap().pop_front()
    }
}

struct Ring<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
}

pub(crate) struct RingBuffer;

impl RingBuffer {
    #[allow(clippy::new_ret_no_self)]
    pub(crate) fn new<T>(capacity: usize) -> (RingProducer<T>, RingConsumer<T>) {
        let ring = Arc::new(Ring {
            items: Mutex::new(VecDeque::new()),
            capacity,
        });
        (RingProducer { ring: ring.clone() }, RingConsumer { ring })
    }
}

pub(crate) struct RingProducer<T> {
    ring: Arc<Ring<T>>,
}
pub(crate) struct RingConsumer<T> {
    ring: Arc<Ring<T>>,
}

impl<T> RingProducer<T> {
    pub(crate) fn push(&mut self, value: T) -> Result<(), rtrb::PushError<T>> {
        let mut items = self.ring.items.lock().unwrap();
        if items.len() == self.ring.capacity {
            return Err(rtrb::PushError::Full(value));
        }
        items.push_back(value);
        Ok(())
    }
    pub(crate) fn slots(&self) -> usize {
        self.ring.capacity - self.ring.items.lock().unwrap().len()
    }
}

impl<T> RingConsumer<T> {
    pub(crate) fn pop(&mut self) -> Result<T, rtrb::PopError> {
        self.ring
            .items
            .lock()
            .unwrap()
            .pop_front()
            .ok_or(rtrb::PopError::Empty)
    }
    pub(crate) fn slots(&self) -> usize {
        self.ring.items.lock().unwrap().len()
    }
}
