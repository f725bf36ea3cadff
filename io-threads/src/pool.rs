//! N IO threads, each with its own bounded job queue, and one completion
//! queue back to the main loop.
//!
//! Queues, by direction and shape:
//! * main loop -> worker `i`: bounded, SPSC (`jobs`). Full means "do it
//!   inline": [`IoPool::dispatch`] hands the job back, it never waits.
//! * workers -> main loop: unbounded, MPSC (`completions`), each push followed
//!   by [`LoopSignal::notify`]. Unbounded is safe because each value has at
//!   most one job in flight, so completions never outnumber values.

use crate::queue::{Bounded, Unbounded};
use crate::signal::LoopSignal;
use crate::sync::{spin_hint, thread, Arc, AtomicBool, AtomicU64, Ordering, Parker};
use crate::wake_state::WakeState;

/// How the pool is sized and how its idle workers behave.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Number of worker threads. Zero is allowed: every dispatch then hands
    /// the job back and the caller runs it inline.
    pub threads: usize,
    /// Capacity of each worker's job queue.
    pub queue_capacity: usize,
    /// How many times an idle worker checks its queue (with a CPU spin hint)
    /// before it parks. Short: an idle IO thread must not burn a core.
    pub spin: u32,
    /// Thread name prefix (`{name}-{i}`).
    pub name: String,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            queue_capacity: 1024,
            spin: 2000,
            name: "baton-io".into(),
        }
    }
}

/// Per-worker counters, read at any time from any thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Jobs this worker has completed.
    pub jobs: u64,
    /// Times this worker parked (went to sleep with an empty queue).
    pub parks: u64,
    /// Jobs whose handler panicked (the job's value was dropped on the worker).
    pub panics: u64,
}

/// A worker's counters; kept apart from its queue so a [`PoolStatsReader`]
/// can read them without knowing the job type.
#[derive(Debug, Default)]
struct Counters {
    done: AtomicU64,
    parks: AtomicU64,
    panics: AtomicU64,
}

/// Reads every worker's counters from any thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct PoolStatsReader(Arc<Vec<Counters>>);

impl PoolStatsReader {
    /// Counters of each worker, in index order (empty with zero workers).
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.0
            .iter()
            .map(|c| WorkerStats {
                jobs: c.done.load(Ordering::Relaxed),
                parks: c.parks.load(Ordering::Relaxed),
                panics: c.panics.load(Ordering::Relaxed),
            })
            .collect()
    }
}

struct Worker<J> {
    jobs: Bounded<J>,
    /// Whether the worker is running, parked, or notified since it last
    /// drained its queue. A dispatcher whose `notify` returns `true` owes
    /// the worker one `unpark`.
    state: WakeState,
    parker: Parker,
}

struct Shared<J, D> {
    workers: Vec<Worker<J>>,
    counters: Arc<Vec<Counters>>,
    completions: Unbounded<D>,
    signal: Arc<LoopSignal>,
    /// Set once by `shutdown`; a worker exits when it sees it with an empty queue.
    stop: AtomicBool,
    spin: u32,
}

/// The IO thread pool. Owned by the main loop; `dispatch`, `pop_completion`
/// and `shutdown` are called only from the thread that owns it (the type is
/// `Send`, so it may be created on one thread and moved to the loop's).
///
/// Generic over the job `J` and its completion `D`: the pool moves values
/// and never looks inside them.
pub struct IoPool<J, D> {
    shared: Arc<Shared<J, D>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl<J, D> std::fmt::Debug for IoPool<J, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoPool")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl<J: Send + 'static, D: Send + 'static> IoPool<J, D> {
    /// Starts `config.threads` workers. Each runs `handler(worker_index, job)`
    /// for every job dispatched to it and pushes the result as a completion,
    /// then notifies `signal`.
    ///
    /// `handler` should not panic; if it does, the panic is caught and
    /// counted, the job's value is dropped on the worker, and the worker goes on.
    pub fn new<H>(config: &PoolConfig, signal: Arc<LoopSignal>, handler: H) -> std::io::Result<Self>
    where
        H: Fn(usize, J) -> D + Send + Sync + 'static,
    {
        let workers = (0..config.threads)
            .map(|_| Worker {
                jobs: Bounded::new(config.queue_capacity),
                state: WakeState::new(),
                parker: Parker::default(),
            })
            .collect();
        let counters = Arc::new((0..config.threads).map(|_| Counters::default()).collect());
        let shared = Arc::new(Shared {
            workers,
            counters,
            completions: Unbounded::new(),
            signal,
            stop: AtomicBool::new(false),
            spin: config.spin,
        });
        let handler = Arc::new(handler);
        let mut threads = Vec::with_capacity(config.threads);
        for index in 0..config.threads {
            let shared = Arc::clone(&shared);
            let handler = Arc::clone(&handler);
            let run = move || worker_loop(&shared, index, &*handler);
            threads.push(spawn(format!("{}-{index}", config.name), run)?);
        }
        Ok(Self { shared, threads })
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Queues `job` for worker `worker` (taken modulo the thread count) and
    /// unparks it if it sleeps. `Err(job)` if that queue is full or there are
    /// no workers: the caller still owns the job and should run it inline.
    pub fn dispatch(&self, worker: usize, job: J) -> Result<(), J> {
        if self.threads.is_empty() {
            return Err(job);
        }
        let index = worker % self.threads.len();
        let target = &self.shared.workers[index];
        target.jobs.push(job)?;
        if target.state.notify() {
            target.parker.unpark(self.threads[index].thread());
        }
        Ok(())
    }

    /// Takes one completion, if any. Called by the main loop.
    pub fn pop_completion(&self) -> Option<D> {
        self.shared.completions.pop()
    }

    /// Whether a completion is waiting.
    pub fn has_completions(&self) -> bool {
        !self.shared.completions.is_empty()
    }

    /// A reader of the workers' counters that other threads may hold.
    pub fn stats_reader(&self) -> PoolStatsReader {
        PoolStatsReader(Arc::clone(&self.shared.counters))
    }

    /// Stops the workers and joins them. Jobs already queued are run first and
    /// their completions stay poppable. Takes no lock; returns once every
    /// worker thread has exited.
    pub fn shutdown(mut self) -> Vec<D> {
        self.stop_and_join();
        let mut left = Vec::new();
        while let Some(done) = self.shared.completions.pop() {
            left.push(done);
        }
        left
    }
}

impl<J, D> IoPool<J, D> {
    /// Idempotent: a second call finds no threads left to join.
    fn stop_and_join(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for (worker, handle) in self.shared.workers.iter().zip(&self.threads) {
            worker.state.notify();
            worker.parker.unpark(handle.thread());
        }
        for handle in self.threads.drain(..) {
            // A worker only panics outside the handler on a bug in this file;
            // joining must still finish for the others.
            let _ = handle.join();
        }
    }
}

impl<J, D> Drop for IoPool<J, D> {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn worker_loop<J, D, H>(shared: &Shared<J, D>, index: usize, handler: &H)
where
    H: Fn(usize, J) -> D,
{
    let me = &shared.workers[index];
    let counters = &shared.counters[index];
    loop {
        me.state.begin_drain();
        // Read `stop` *before* draining: its acquire makes every job pushed
        // before `shutdown` visible to this drain. (Checking it after the
        // drain lost a job; the loom model `shutdown_racing_completions`
        // found that.)
        let stopping = shared.stop.load(Ordering::Acquire);
        while let Some(job) = me.jobs.pop() {
            let run = std::panic::AssertUnwindSafe(|| handler(index, job));
            match std::panic::catch_unwind(run) {
                Ok(done) => {
                    shared.completions.push(done);
                    shared.signal.notify();
                    counters.done.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    counters.panics.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if stopping {
            return;
        }
        if spin_until_work(me, shared.spin) || !me.state.try_sleep() {
            continue;
        }
        counters.parks.fetch_add(1, Ordering::Relaxed);
        // Spurious returns are fine: the loop drains and re-checks. An unpark
        // that came before this call is remembered by the thread's token.
        me.parker.park();
    }
}

/// Spins up to `spin` times waiting for a job; `true` if one arrived.
fn spin_until_work<J>(me: &Worker<J>, spin: u32) -> bool {
    for _ in 0..spin {
        if !me.jobs.is_empty() {
            return true;
        }
        spin_hint();
    }
    false
}

#[cfg(not(loom))]
fn spawn(
    name: String,
    run: impl FnOnce() + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name(name).spawn(run)
}

#[cfg(loom)]
fn spawn(
    _name: String,
    run: impl FnOnce() + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    Ok(thread::spawn(run))
}
