//! Loom models of the handoff protocol, run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p baton-io-threads --test loom_handoff --release`.
//!
//! The models drive the production `IoPool`, `LoopSignal`, `Inbox` and `Slot` (their
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

use baton_io_threads::{Inbox, IoPool, LoopSignal, PoolConfig, Slot, Wake};
use loom::sync::atomic::{AtomicUsize, Ordering};
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
///
/// Outside this model: the IO step itself (sockets, TLS), more than one job
/// per connection in flight (the loop never dispatches a connection that is
/// away, which `Slot::take` enforces), and queues longer than one.
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
///
/// Outside this model: what the runtime does with the returned connections
/// (closes them; covered by the shutdown integration tests) and the grace
/// period's clock.
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
///
/// Outside this model: the poller's own notify (an eventfd write, modelled
/// as a remembered flag) and a wait's timeout (the loop's timers).
#[test]
fn wakeups_coalesce_and_none_is_lost() {
    loom::model(|| {
        let (poller, signal) = new_loop();
        let items = Arc::new(AtomicUsize::new(0));
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

/// A TLS configuration generation that counts its own drop.
struct TlsConfig {
    generation: u32,
    dropped: Arc<AtomicUsize>,
}

impl Drop for TlsConfig {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// A connection in its handshake: it holds the configuration it was
/// accepted with, as a rustls `ServerConnection` holds its `ServerConfig`.
struct Handshake {
    id: usize,
    config: Arc<TlsConfig>,
    used: Option<u32>,
}

fn run_handshake(_worker: usize, mut h: Handshake) -> Handshake {
    h.used = Some(h.config.generation);
    h
}

/// Certificate reload races handshakes: an admin thread posts a new
/// configuration through the loop's `Inbox` while two accepted connections
/// handshake on an IO thread. The loop applies the reload between accepts,
/// as its run loop does each turn. Every handshake uses exactly the
/// configuration that was current when it was accepted (configurations only
/// move forward), the loop never sleeps through the reload or a completion,
/// and the old configuration is freed once, after its last handshake.
///
/// Outside this model: rustls itself, building the configuration from files
/// (done on the admin's thread before the push; a bad file never reaches the
/// inbox) and several TLS listeners (each takes the same `Arc`).
#[test]
fn reload_racing_handshakes() {
    loom::model(|| {
        let (poller, signal) = new_loop();
        let dropped = Arc::new(AtomicUsize::new(0));
        let inbox: Arc<Inbox<Arc<TlsConfig>>> = Arc::new(Inbox::new(Arc::clone(&signal)));
        let pool = IoPool::new(&config(1), Arc::clone(&signal), run_handshake).unwrap();
        let mut current = Arc::new(TlsConfig {
            generation: 1,
            dropped: Arc::clone(&dropped),
        });
        let admin = {
            let (inbox, dropped) = (Arc::clone(&inbox), Arc::clone(&dropped));
            thread::spawn(move || {
                let next = Arc::new(TlsConfig {
                    generation: 2,
                    dropped,
                });
                assert!(inbox.push(next).is_ok(), "the loop is running");
            })
        };
        let mut reloaded = false;
        let mut apply_reloads = |current: &mut Arc<TlsConfig>| {
            while let Some(next) = inbox.pop() {
                assert!(next.generation > current.generation);
                *current = next;
                reloaded = true;
            }
            reloaded
        };

        let mut accepted_with = Vec::new();
        let mut away = 0;
        let mut finished = Vec::new();
        for id in 0..2 {
            signal.begin_drain();
            apply_reloads(&mut current);
            accepted_with.push(current.generation);
            let h = Handshake {
                id,
                config: Arc::clone(&current),
                used: None,
            };
            match pool.dispatch(id, h) {
                Ok(()) => away += 1,
                Err(h) => finished.push(run_handshake(id, h)),
            }
        }
        loop {
            signal.begin_drain();
            let reloaded = apply_reloads(&mut current);
            while let Some(h) = pool.pop_completion() {
                away -= 1;
                finished.push(h);
            }
            if away == 0 && reloaded {
                break;
            }
            if signal.try_sleep() {
                poller.wait();
            }
        }
        admin.join().unwrap();
        assert!(pool.shutdown().is_empty());

        assert_eq!(finished.len(), 2);
        for h in &finished {
            assert_eq!(
                h.used,
                Some(accepted_with[h.id]),
                "used its accept-time config"
            );
        }
        assert!(
            accepted_with[0] <= accepted_with[1],
            "configs only move forward"
        );
        assert_eq!(current.generation, 2);
        let old_holders = accepted_with.iter().filter(|&&g| g == 1).count();
        // Freed at the reload if no handshake held it, else not yet.
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            usize::from(old_holders == 0),
            "{old_holders} finished handshakes still hold the old configuration"
        );
        drop(finished);
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the old configuration freed once its handshakes are gone"
        );
    });
}
