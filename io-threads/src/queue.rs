//! The two queue shapes the handoff uses, behind one small API.
//!
//! Production: `crossbeam-queue`'s lock-free `ArrayQueue` (bounded; a full
//! queue gives the value back) and `SegQueue` (unbounded). Under loom those are
//! replaced by loom-instrumented stand-ins with the same contract, because
//! crossbeam itself is not loom-aware.
//!
//! The stand-ins promise no more than crossbeam's contract does: a push
//! happens before the pop that returns its value, and nothing else. They are
//! built of loom atomics with the weakest orderings that keep each queue
//! itself correct, and loom lets a load read any value its orderings allow,
//! so a pop may see a stale, empty queue. Whether a pop *finds* an item
//! pushed on another thread is thus decided by baton's own atomics
//! (`WakeState`, the inbox's state word, the pool's stop flag): weaken one
//! of those and a model misses the item. The stand-ins take no lock a model
//! can see, so no model lock hands out happens-before edges that production
//! code does not have.

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
    //! Each slot keeps its value in a `std` mutex, which loom does not see
    //! (it never contends: a loom model runs one thread at a time, and the
    //! mutex is never held across a loom operation) and which therefore adds
    //! no happens-before edge to the model. Every read and write of a slot's
    //! value is also recorded on a loom `UnsafeCell<()>`, so a pop that is
    //! not ordered after the push of its value is reported as a data race.

    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Pushes one model may make to one unbounded queue. Models are small;
    /// going past this is a bug in the model, reported as such.
    const MODEL_UNBOUNDED_CAPACITY: usize = 4;

    /// One slot: its value and the loom cell that records each access to
    /// it. Both sit in the invisible mutex, which also makes the slot
    /// `Sync` without `unsafe`.
    #[derive(Debug)]
    struct Cell<T>(std::sync::Mutex<(Option<T>, UnsafeCell<()>)>);

    impl<T> Cell<T> {
        fn new() -> Self {
            Self(std::sync::Mutex::new((None, UnsafeCell::new(()))))
        }
        fn put(&self, value: T) {
            let mut slot = self.0.lock().unwrap();
            slot.1.with_mut(|_| ());
            let old = slot.0.replace(value);
            assert!(old.is_none(), "queue stand-in overwrote a value");
        }
        fn take(&self) -> T {
            let mut slot = self.0.lock().unwrap();
            slot.1.with_mut(|_| ());
            slot.0.take().expect("queue stand-in popped an empty slot")
        }
    }

    /// Loom stand-in for `ArrayQueue`, used single-producer single-consumer
    /// as the pool uses it (only the loop dispatches to a worker; only that
    /// worker pops): a ring whose indexes are published with
    /// `Release`/`Acquire`.
    #[derive(Debug)]
    pub(crate) struct Bounded<T> {
        slots: Box<[Cell<T>]>,
        /// Pops so far; written only by the consumer.
        head: AtomicUsize,
        /// Pushes so far; written only by the producer.
        tail: AtomicUsize,
    }

    impl<T> Bounded<T> {
        pub(crate) fn new(capacity: usize) -> Self {
            Self {
                slots: (0..capacity.max(1)).map(|_| Cell::new()).collect(),
                head: AtomicUsize::new(0),
                tail: AtomicUsize::new(0),
            }
        }
        pub(crate) fn push(&self, value: T) -> Result<(), T> {
            let tail = self.tail.load(Ordering::Relaxed);
            // Acquire: the pop that freed a slot is done with it.
            let head = self.head.load(Ordering::Acquire);
            if tail - head == self.slots.len() {
                return Err(value);
            }
            self.slots[tail % self.slots.len()].put(value);
            self.tail.store(tail + 1, Ordering::Release);
            Ok(())
        }
        pub(crate) fn pop(&self) -> Option<T> {
            let head = self.head.load(Ordering::Relaxed);
            let tail = self.tail.load(Ordering::Acquire);
            if head == tail {
                return None;
            }
            let value = self.slots[head % self.slots.len()].take();
            self.head.store(head + 1, Ordering::Release);
            Some(value)
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.head.load(Ordering::Relaxed) == self.tail.load(Ordering::Relaxed)
        }
    }

    /// Loom stand-in for `SegQueue`: any number of producers and consumers.
    /// A push reserves a slot (`tail`), writes it and publishes it (`ready`,
    /// `Release`); a pop claims the next reserved slot (`head`) and, like
    /// `SegQueue`, waits for a reserved slot's write to land.
    #[derive(Debug)]
    pub(crate) struct Unbounded<T> {
        slots: Box<[(Cell<T>, AtomicBool)]>,
        /// Slots claimed by pops.
        head: AtomicUsize,
        /// Slots reserved by pushes.
        tail: AtomicUsize,
    }

    impl<T> Unbounded<T> {
        pub(crate) fn new() -> Self {
            Self {
                slots: (0..MODEL_UNBOUNDED_CAPACITY)
                    .map(|_| (Cell::new(), AtomicBool::new(false)))
                    .collect(),
                head: AtomicUsize::new(0),
                tail: AtomicUsize::new(0),
            }
        }
        pub(crate) fn push(&self, value: T) {
            let index = self.tail.fetch_add(1, Ordering::Relaxed);
            assert!(
                index < self.slots.len(),
                "a model pushed more than {MODEL_UNBOUNDED_CAPACITY} values to one queue"
            );
            let (cell, ready) = &self.slots[index];
            cell.put(value);
            ready.store(true, Ordering::Release);
        }
        pub(crate) fn pop(&self) -> Option<T> {
            let mut head = self.head.load(Ordering::Relaxed);
            loop {
                if head >= self.tail.load(Ordering::Relaxed) {
                    return None;
                }
                match self.head.compare_exchange(
                    head,
                    head + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => head = now,
                }
            }
            let (cell, ready) = &self.slots[head];
            while !ready.load(Ordering::Acquire) {
                loom::thread::yield_now();
            }
            Some(cell.take())
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.head.load(Ordering::Relaxed) >= self.tail.load(Ordering::Relaxed)
        }
    }
}

pub(crate) use imp::{Bounded, Unbounded};
