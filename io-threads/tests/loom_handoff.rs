//! Loom models of the handoff protocol, run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p baton-io-threads --test loom_handoff --release`.
//!
//! The models drive the production `IoPool`, `LoopSignal` and `Slot` (their
//! atomics, threads and queue stand-ins come from loom under `--cfg loom`).
//! The "poller" is modelled as a flag plus park/unpark of the loop thread,
//! which is the contract `Poller::notify` gives: a notify before or during a
//! wait makes that wait return.
//!
//! Outside the models: the real crossbeam queues (replaced by a
//! loom-instrumented stand-in with the same contract), the real poller and
//! sockets, and the runtime's service callbacks (single-threaded code on the
//! loop, tested by the integration tests).
#![cfg(loom)]

use baton_io_threads::{IoPool, LoopSignal, PoolConfig, Slot, Wake};
use loom::sync::atomic::Ordering;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// Stands in for the poller's `notify` + `wait`: a notification that comes
/// before the wait is remembered (as the poller's eventfd does).
#[derive(Default)]
struct ModelPoller {
    notified: Mutex<bool>,
    wake: Condvar,
}

struct ModelWaker(Arc<ModelPoller>);

impl Wake for ModelWaker {
    fn wake(&self) {
        *self.0.notified.lock().unwrap() = true;
        self.0.wake.notify_one();
    }
}

impl ModelPoller {
    /// Blocks until notified (a notify that came first counts).
    fn wait(&self) {
        let mut notified = self.notified.lock().unwrap();
        while !*notified {
            notified = self.wake.wait(notified).unwrap();
        }
        *notified = false;
    }
}

#[derive(Debug)]
struct Conn {
    id: usize,
    /// How many jobs ran on this connection.
    jobs: usize,
    /// Output that reached the connection.
    output: Vec<u32>,
}

#[derive(Debug, Default)]
struct WhileAway {
    pending: Vec<u32>,
    close: bool,
}

fn config(threads: usize) -> PoolConfig {
    PoolConfig {
        threads,
        queue_capacity: 1,
        spin: 1,
        name: "model".into(),
    }
}

fn new_loop() -> (Arc<ModelPoller>, Arc<LoopSignal>) {
    let poller = Arc::new(ModelPoller::default());
    let signal = Arc::new(LoopSignal::new(ModelWaker(Arc::clone(&poller))));
    (poller, signal)
}

fn run_job(_worker: usize, mut conn: Conn) -> Conn {
    conn.jobs += 1;
    conn
}

/// Two connections are handed to two IO threads. While they are away the
/// loop queues output for one and requests a close of the other; it sleeps
/// with the real wake protocol until both come home. Every connection comes
/// back exactly once, the output joins it exactly once, the close is applied
/// only after it is home, and shutdown joins both workers.
#[test]
fn handoff_with_output_and_close_while_away() {
    loom::model(|| {
        let (poller, signal) = new_loop();
        let pool = IoPool::new(&config(2), Arc::clone(&signal), run_job).unwrap();
        let mut table: Vec<Slot<Conn, WhileAway>> = (0..2)
            .map(|id| {
                Slot::Home(Conn {
                    id,
                    jobs: 0,
                    output: Vec::new(),
                })
            })
            .collect();
        let mut away = 0;
        let mut finished: Vec<Conn> = Vec::new();
        for (id, slot) in table.iter_mut().enumerate() {
            let conn = slot.take().expect("home");
            match pool.dispatch(id, conn) {
                Ok(()) => away += 1,
                // Full queue: run inline and put it straight back.
                Err(conn) => {
                    let conn = run_job(id, conn);
                    slot.restore(conn).unwrap();
                }
            }
        }
        if let Some(record) = table[0].away_mut() {
            record.pending.push(10);
        } else if let Some(conn) = table[0].home_mut() {
            conn.output.push(10);
        }
        if let Some(record) = table[1].away_mut() {
            record.close = true;
        }

        while away > 0 {
            signal.begin_drain();
            while let Some(conn) = pool.pop_completion() {
                away -= 1;
                let id = conn.id;
                let record = table[id].restore(conn).expect("the slot was away");
                let conn = table[id].home_mut().expect("just restored");
                conn.output.extend(record.pending);
                if record.close {
                    // The deferred close, applied now that it is home.
                    let closed =
                        std::mem::replace(&mut table[id], Slot::Away(WhileAway::default()));
                    if let Slot::Home(conn) = closed {
                        finished.push(conn);
                    }
                }
            }
            if away > 0 && signal.try_sleep() {
                poller.wait();
            }
        }
        assert!(pool.shutdown().is_empty(), "no completion left behind");

        for slot in table.iter_mut() {
            if let Some(conn) = slot.home_mut() {
                finished.push(Conn {
                    id: conn.id,
                    jobs: conn.jobs,
                    output: std::mem::take(&mut conn.output),
                });
            }
        }
        finished.sort_by_key(|c| c.id);
        assert_eq!(finished.len(), 2);
        assert!(
            finished.iter().all(|c| c.jobs == 1),
            "each job ran exactly once: {finished:?}"
        );
        assert_eq!(
            finished[0].output,
            vec![10],
            "output queued while away joined exactly once"
        );
    });
}

/// Shutdown races completions: the loop asks the pool to stop while jobs are
/// still in flight. Every job's value is returned exactly once, either as a
/// completion or from `shutdown`, and both workers are joined.
#[test]
fn shutdown_racing_completions_loses_nothing() {
    loom::model(|| {
        let (_poller, signal) = new_loop();
        let pool = IoPool::new(&config(2), Arc::clone(&signal), run_job).unwrap();
        let mut inline = 0;
        for id in 0..2 {
            if let Err(conn) = pool.dispatch(
                id,
                Conn {
                    id,
                    jobs: 0,
                    output: Vec::new(),
                },
            ) {
                run_job(id, conn);
                inline += 1;
            }
        }
        let mut seen = 0;
        if pool.pop_completion().is_some() {
            seen += 1;
        }
        let left = pool.shutdown();
        assert!(left.iter().all(|c| c.jobs == 1));
        assert_eq!(
            seen + left.len() + inline,
            2,
            "every job handed back exactly once"
        );
    });
}

/// Two producers notify while the loop goes to sleep at every possible point:
/// the loop never sleeps through an item, and the number of wake-ups sent is
/// at most the number of sleeps.
#[test]
fn wakeups_coalesce_and_none_is_lost() {
    loom::model(|| {
        let (poller, signal) = new_loop();
        let items = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let signal = Arc::clone(&signal);
                let items = Arc::clone(&items);
                thread::spawn(move || {
                    items.fetch_add(1, Ordering::SeqCst);
                    signal.notify();
                })
            })
            .collect();
        let mut sleeps = 0;
        loop {
            signal.begin_drain();
            if items.load(Ordering::SeqCst) == 2 {
                break;
            }
            if signal.try_sleep() {
                sleeps += 1;
                poller.wait();
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        let stats = signal.stats();
        assert_eq!(stats.wakeups_sent + stats.wakeups_coalesced, 2);
        assert!(
            stats.wakeups_sent <= sleeps,
            "at most one wake-up per sleep"
        );
    });
}
