//! N IO threads, each with its own bounded job queue, and one completion
//! queue back to the main loop.
//!
//! Queues, by direction and shape:
//! * main loop -> worker `i`: bounded, SPSC (`jobs`). Full means "do it
//!   inline": [`IoPool::dispatch`] hands the job back, it never waits.
//! * workers -> main loop: unbounded, MPSC (`completions`), each push followed
//!   by [`LoopSignal::notify`]. Unbounded is safe because each value has at
//!   most one job in flight, so completions never outnumber values.
//!
//! A job's value is never lost: the worker owns the job while its handler
//! works on it (`handler(index, &mut job)`), and sends it home whatever the
//! handler did, marked [`Completion::panicked`] if the handler panicked.

use crate::queue::{Bounded, Unbounded};
use crate::signal::LoopSignal;
use crate::sync::{spin_hint, thread, Arc, AtomicBool, AtomicU64, Ordering, Parker};
use crate::wake_state::WakeState;
use std::panic::{catch_unwind, AssertUnwindSafe};

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
    /// Called on a worker right before it parks (its queue empty, its spin
    /// done): the place to give back per-thread caches an idle thread should
    /// not hold (baton's runtime releases the thread's receive-buffer pool).
    /// It must not panic: it runs outside the catch that guards jobs, and a
    /// panic there ends the worker.
    pub before_park: fn(),
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            queue_capacity: 1024,
            spin: 2000,
            name: "baton-io".into(),
            before_park: || {},
        }
    }
}

/// Per-worker counters, read at any time from any thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Jobs this worker has completed without a panic.
    pub jobs: u64,
    /// Times this worker parked (went to sleep with an empty queue).
    pub parks: u64,
    /// Jobs whose handler panicked (each was still sent home, marked
    /// [`Completion::panicked`]).
    pub panics: u64,
}

/// A worker's counters; kept apart from its queue so a [`PoolStatsReader`]
/// can read them without knowing the job type. Each is a plain count,
/// written only by its worker, `Relaxed`: statistics that order nothing.
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

struct Shared<J> {
    workers: Vec<Worker<J>>,
    counters: Arc<Vec<Counters>>,
    completions: Unbounded<Completion<J>>,
    signal: Arc<LoopSignal>,
    /// `false` until `shutdown` stores `true` (once, before it notifies the
    /// workers). Invariant: a worker exits only after a drain that began
    /// after it read `true` (the store's release, the load's acquire), so
    /// every job dispatched before the shutdown is run and sent home.
    stop: AtomicBool,
    spin: u32,
    before_park: fn(),
}

/// A job handed back to the loop by a worker: always the job itself, so its
/// value is never lost, whatever the handler did.
#[derive(Debug)]
pub struct Completion<J> {
    /// The job, as the handler left it.
    pub job: J,
    /// The handler panicked while working on `job` (the panic was caught on
    /// the worker, which goes on): `job` may be half updated, and the owner
    /// should treat it as failed.
    pub panicked: bool,
}

/// The IO thread pool. Owned by the main loop; `dispatch`, `pop_completion`
/// and `shutdown` are called only from the thread that owns it (the type is
/// `Send`, so it may be created on one thread and moved to the loop's).
///
/// Generic over the job `J`: the pool moves jobs and never looks inside them.
pub struct IoPool<J> {
    shared: Arc<Shared<J>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl<J> std::fmt::Debug for IoPool<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoPool")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl<J: Send + 'static> IoPool<J> {
    /// Starts `config.threads` workers. Each runs `handler(worker_index, &mut
    /// job)` for every job dispatched to it, pushes the job back as a
    /// [`Completion`], then notifies `signal`.
    ///
    /// If `handler` panics, the panic is caught and counted
    /// ([`WorkerStats::panics`]), the job is still sent home with
    /// `panicked: true`, and the worker goes on with its next job.
    pub fn new<H>(config: &PoolConfig, signal: Arc<LoopSignal>, handler: H) -> std::io::Result<Self>
    where
        H: Fn(usize, &mut J) + Send + Sync + 'static,
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
            before_park: config.before_park,
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
    pub fn pop_completion(&self) -> Option<Completion<J>> {
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

    /// Stops the workers and joins them. Jobs already queued are run first;
    /// returns every completion not popped yet (so with the ones popped
    /// before, every dispatched job comes back exactly once). Takes no lock;
    /// returns once every worker thread has exited.
    pub fn shutdown(mut self) -> Vec<Completion<J>> {
        self.stop_and_join();
        let mut left = Vec::new();
        while let Some(done) = self.shared.completions.pop() {
            left.push(done);
        }
        left
    }
}

impl<J> IoPool<J> {
    /// Idempotent: a second call finds no threads left to join.
    fn stop_and_join(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
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

impl<J> Drop for IoPool<J> {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn worker_loop<J, H>(shared: &Shared<J>, index: usize, handler: &H)
where
    H: Fn(usize, &mut J),
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
        while let Some(mut job) = me.jobs.pop() {
            let ran = catch_unwind(AssertUnwindSafe(|| handler(index, &mut job)));
            let panicked = ran.is_err();
            // Home first, whatever happened: the job's value must reach the
            // loop even if dropping the panic's payload panics too.
            shared.completions.push(Completion { job, panicked });
            shared.signal.notify();
            let counter = if panicked {
                &counters.panics
            } else {
                &counters.done
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if let Err(payload) = ran {
                drop_payload(payload);
            }
        }
        if stopping {
            return;
        }
        if spin_until_work(me, shared.spin) || !me.state.try_sleep() {
            continue;
        }
        counters.parks.fetch_add(1, Ordering::Relaxed);
        // A notify from here on is not lost: it unparks the token, and
        // `park` returns at once.
        (shared.before_park)();
        // Spurious returns are fine: the loop drains and re-checks. An unpark
        // that came before this call is remembered by the thread's token.
        me.parker.park();
    }
}

/// Drops a caught panic's payload, which is user code too: a panic in its
/// `Drop` must not end the worker (its queue would never be drained).
fn drop_payload(payload: Box<dyn std::any::Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        // Not dropped again: that could panic a third time.
        std::mem::forget(again);
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::Wake;
    use std::time::{Duration, Instant};

    struct NoWake;
    impl Wake for NoWake {
        fn wake(&self) {}
    }

    /// Pops `n` completions, or panics after a generous "did not hang" bound.
    fn pop_n<J: Send + 'static>(pool: &IoPool<J>, n: usize) -> Vec<Completion<J>> {
        let start = Instant::now();
        let mut got = Vec::new();
        while got.len() < n {
            match pool.pop_completion() {
                Some(done) => got.push(done),
                None => {
                    assert!(
                        start.elapsed() < Duration::from_secs(10),
                        "completions lost"
                    );
                    std::thread::yield_now();
                }
            }
        }
        got
    }

    #[test]
    fn a_panicking_handler_still_sends_its_job_home_marked_and_the_worker_goes_on() {
        let config = PoolConfig {
            threads: 2,
            ..PoolConfig::default()
        };
        let signal = Arc::new(LoopSignal::new(NoWake));
        let pool = IoPool::new(&config, signal, |_, job: &mut (u32, bool)| {
            job.1 = true;
            assert!(!job.0.is_multiple_of(3), "handler told to panic");
        })
        .unwrap();
        // The payload's message goes to stderr; that is expected here.
        for id in 0..12 {
            pool.dispatch(id as usize, (id, false)).expect("room");
        }
        let mut done = pop_n(&pool, 12);
        done.sort_by_key(|c| c.job.0);
        for (id, c) in done.iter().enumerate() {
            assert_eq!(c.job.0 as usize, id, "every job came home once");
            assert!(c.job.1, "the handler worked on the job in place");
            assert_eq!(c.panicked, id.is_multiple_of(3), "job {id}");
        }
        let stats = pool.stats_reader().worker_stats();
        assert_eq!(stats.iter().map(|s| s.panics).sum::<u64>(), 4);
        assert_eq!(stats.iter().map(|s| s.jobs).sum::<u64>(), 8);
        assert!(pool.shutdown().is_empty());
    }

    #[test]
    fn a_payload_whose_drop_panics_does_not_end_the_worker() {
        struct Nasty;
        impl Drop for Nasty {
            fn drop(&mut self) {
                panic!("payload drop panics");
            }
        }
        let config = PoolConfig {
            threads: 1,
            ..PoolConfig::default()
        };
        let signal = Arc::new(LoopSignal::new(NoWake));
        let pool = IoPool::new(&config, signal, |_, job: &mut u32| {
            if *job == 0 {
                std::panic::panic_any(Nasty);
            }
        })
        .unwrap();
        pool.dispatch(0, 0).unwrap();
        pool.dispatch(0, 1).unwrap();
        let done = pop_n(&pool, 2);
        assert!(done[0].panicked && !done[1].panicked);
        assert!(pool.shutdown().is_empty());
    }

    #[test]
    fn shutdown_runs_queued_jobs_and_returns_their_completions() {
        let config = PoolConfig {
            threads: 1,
            ..PoolConfig::default()
        };
        let signal = Arc::new(LoopSignal::new(NoWake));
        let pool = IoPool::new(&config, signal, |_, job: &mut u32| *job += 100).unwrap();
        for job in 0..5 {
            pool.dispatch(0, job).unwrap();
        }
        let mut seen: Vec<u32> = pool.pop_completion().into_iter().map(|c| c.job).collect();
        seen.extend(pool.shutdown().into_iter().map(|c| c.job));
        seen.sort_unstable();
        assert_eq!(seen, vec![100, 101, 102, 103, 104]);
    }

    #[test]
    fn a_worker_runs_before_park_on_its_own_thread_each_time_it_parks() {
        use std::cell::Cell;
        thread_local! { static ON_THIS_THREAD: Cell<u32> = const { Cell::new(0) }; }
        fn count() {
            ON_THIS_THREAD.with(|c| c.set(c.get() + 1));
        }
        let config = PoolConfig {
            threads: 1,
            spin: 1,
            before_park: count,
            ..PoolConfig::default()
        };
        let signal = Arc::new(LoopSignal::new(NoWake));
        let pool = IoPool::new(&config, signal, |_, job: &mut u32| {
            // The job sees how often this thread ran the hook. The park was
            // counted before the hook ran, but the job runs only after `park`
            // returns, so by then the hook has run.
            *job = ON_THIS_THREAD.with(Cell::get);
        })
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let stats = pool.stats_reader();
        while stats.worker_stats()[0].parks == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the idle worker never parked"
            );
            std::thread::yield_now();
        }
        pool.dispatch(0, 0).unwrap();
        let done = pop_n(&pool, 1);
        assert!(
            done[0].job >= 1,
            "the hook ran on the worker's thread before it parked"
        );
        assert_eq!(ON_THIS_THREAD.with(Cell::get), 0, "not on the caller's");
        assert!(pool.shutdown().is_empty());
    }
}
