//! The two queue shapes the handoff uses, behind one small API.
//!
//! Production: `crossbeam-queue`'s lock-free `ArrayQueue` (bounded; a full
//! queue gives the value back) and `SegQueue` (unbounded). Under loom those are
//! replaced by a loom-instrumented stand-in with the same contract, because
//! crossbeam itself is not loom-aware. The stand-in's lock exists only inside
//! models; production code has no lock.

#[cfg(not(loom))]
mod imp {
    use crossbeam_queue::{ArrayQueue, SegQueue};

    /// Bounded multi-producer multi-consumer queue; baton uses it SPSC
    /// (main loop -> one IO thread).
    #[derive(Debug)]
    pub(crate) struct Bounded<T>(ArrayQueue<T>);

    impl<T> Bounded<T> {
        pub(crate) fn new(capacity: usize) -> Self {
            Self(ArrayQueue::new(capacity.max(1)))
        }
        /// `Err(value)` when full: nothing is ever dropped.
        pub(crate) fn push(&self, value: T) -> Result<(), T> {
            self.0.push(value)
        }
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.pop()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    /// Unbounded lock-free queue (IO threads -> main loop, MPSC).
    #[derive(Debug)]
    pub(crate) struct Unbounded<T>(SegQueue<T>);

    impl<T> Unbounded<T> {
        pub(crate) fn new() -> Self {
            Self(SegQueue::new())
        }
        pub(crate) fn push(&self, value: T) {
            self.0.push(value)
        }
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.pop()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }
}

#[cfg(loom)]
mod imp {
    use loom::sync::Mutex;
    use std::collections::VecDeque;

    /// Loom stand-in for `ArrayQueue`: same contract, instrumented lock.
    #[derive(Debug)]
    pub(crate) struct Bounded<T> {
        items: Mutex<VecDeque<T>>,
        capacity: usize,
    }

    impl<T> Bounded<T> {
        pub(crate) fn new(capacity: usize) -> Self {
            Self {
                items: Mutex::new(VecDeque::new()),
                capacity: capacity.max(1),
            }
        }
        pub(crate) fn push(&self, value: T) -> Result<(), T> {
            let mut items = self.items.lock().unwrap();
            if items.len() >= self.capacity {
                return Err(value);
            }
            items.push_back(value);
            Ok(())
        }
        pub(crate) fn pop(&self) -> Option<T> {
            self.items.lock().unwrap().pop_front()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.items.lock().unwrap().is_empty()
        }
    }

    /// Loom stand-in for `SegQueue`.
    #[derive(Debug)]
    pub(crate) struct Unbounded<T>(Mutex<VecDeque<T>>);

    impl<T> Unbounded<T> {
        pub(crate) fn new() -> Self {
            Self(Mutex::new(VecDeque::new()))
        }
        pub(crate) fn push(&self, value: T) {
            self.0.lock().unwrap().push_back(value)
        }
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.lock().unwrap().pop_front()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().unwrap().is_empty()
        }
    }
}

pub(crate) use imp::{Bounded, Unbounded};
