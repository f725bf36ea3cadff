//! Loom models of the handoff protocol, run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p baton-io-threads --test loom_handoff --release`.
//!
//! The models drive the production `IoPool`, `LoopSignal`, `Inbox` and
//! `Slot`. Under `--cfg loom` their atomics (`WakeState`, the inbox's state
//! word, the pool's stop flag and counters), threads and parking are loom's,
//! with the orderings production runs; a worker's park is a loom `Notify`
//! (see `sync::Parker`: loom's own `unpark` synchronizes too much). The
//! crossbeam queues, which loom
//! cannot instrument, are replaced by lock-free loom stand-ins that promise
//! only crossbeam's contract (a push happens before the pop that returns
//! it; see `src/queue.rs`), so whether a pop finds an item is decided by
//! baton's own atomics. The "poller" is a `loom::sync::Notify`: a notify
//! before or during a wait makes that wait return (as `Poller::notify`'s
//! eventfd does), and a wait may also return spuriously.
//!
//! Bookkeeping that only the assertions read (counts of drops, of inline
//! runs) uses `std` atomics, which loom does not see, so it adds no
//! happens-before edge between the modelled threads.
//!
//! Each model's doc says what it checks, what it leaves out, and a mutation
//! of the production code that was applied once and made loom fail (the
//! runs were: `cargo test ... --test loom_handoff --release MODEL_NAME`).
//!
//! Outside every model: the real crossbeam queues, the real poller and
//! sockets, memory orderings loom does not model (it treats `SeqCst` as
//! `AcqRel`; baton's protocol uses no `SeqCst`), and the runtime's service
//! callbacks (single-threaded code on the loop, tested by the integration
//! tests). Every model runs under `LOOM_MAX_PREEMPTIONS=2`: interleavings
//! that need three or more preemptions are not explored.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize as StdCount, Ordering::SeqCst as Std};
use std::sync::Once;

use baton_io_threads::{Completion, Inbox, IoPool, LoopSignal, PoolConfig, Slot, Wake};
use loom::sync::{Arc, Notify};
use loom::thread;

/// The payload of the panics the models throw on purpose.
const MODEL_PANIC: &str = "model handler panics on purpose";

/// Silences the expected panics (one per execution would flood the output);
/// every other panic still reaches the default hook.
fn quiet_model_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&MODEL_PANIC) {
                default(info);
            }
        }));
    });
}

/// Stands in for the poller's `notify`.
struct ModelWaker(Arc<Notify>);

impl Wake for ModelWaker {
    fn wake(&self) {
        self.0.notify();
    }
}

fn new_loop() -> (Arc<Notify>, Arc<LoopSignal>) {
    let poller = Arc::new(Notify::new());
    let signal = Arc::new(LoopSignal::new(ModelWaker(Arc::clone(&poller))));
    (poller, signal)
}

fn config(threads: usize, queue_capacity: usize) -> PoolConfig {
    PoolConfig {
        threads,
        queue_capacity,
        spin: 1,
        name: "model".into(),
        before_park: || {},
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

impl Conn {
    fn new(id: usize) -> Self {
        Self {
            id,
            jobs: 0,
            output: Vec::new(),
        }
    }
}

/// What the loop records for a connection while it is away.
#[derive(Debug, Default)]
struct WhileAway {
    pending: Vec<u32>,
    close: bool,
}

/// The connection table: `None` is a freed slot.
type Table = Vec<Option<Slot<Conn, WhileAway>>>;

fn table(n: usize) -> Table {
    (0..n).map(|id| Some(Slot::Home(Conn::new(id)))).collect()
}

fn run_job(_worker: usize, conn: &mut Conn) {
    conn.jobs += 1;
}

/// The loop hands connection `id` to worker `id % threads`, as the runtime
/// does; a full queue gives it back and the loop runs it inline and puts it
/// straight back (counted in `inline`). Returns whether it went away.
fn dispatch(
    pool: &IoPool<Conn>,
    table: &mut Table,
    id: usize,
    job: fn(usize, &mut Conn),
    inline: &StdCount,
) -> bool {
    let slot = table[id].as_mut().expect("live");
    let conn = slot.take().expect("home");
    match pool.dispatch(id, conn) {
        Ok(()) => true,
        Err(mut conn) => {
            job(id, &mut conn);
            inline.fetch_add(1, Std);
            let record = slot.restore(conn).expect("was away");
            assert!(record.pending.is_empty() && !record.close);
            false
        }
    }
}

/// Output from the service: joins the connection now if it is home, or
/// when it comes home.
fn send(table: &mut Table, id: usize, frame: u32) {
    let slot = table[id].as_mut().expect("live");
    if let Some(record) = slot.away_mut() {
        record.pending.push(frame);
    } else if let Some(conn) = slot.home_mut() {
        conn.output.push(frame);
    }
}

/// A close from the service: applied now if the connection is home
/// (returned), else recorded and applied when it comes home.
fn request_close(table: &mut Table, id: usize) -> Option<Conn> {
    let slot = table[id].as_mut()?;
    if let Some(record) = slot.away_mut() {
        record.close = true;
        return None;
    }
    match table[id].take() {
        Some(Slot::Home(conn)) => Some(conn),
        _ => unreachable!("home"),
    }
}

/// A completion comes home: the slot is restored and joins what was
/// recorded while away, in order. A close recorded meanwhile, or a panic on
/// the worker, closes it now: the slot is freed and the connection returned.
fn come_home(table: &mut Table, done: Completion<Conn>) -> Option<Conn> {
    let id = done.job.id;
    let slot = table[id].as_mut().expect("an away slot stays in the table");
    let record = slot.restore(done.job).expect("the slot was away");
    slot.home_mut()
        .expect("just restored")
        .output
        .extend(record.pending);
    if record.close || done.panicked {
        match table[id].take() {
            Some(Slot::Home(conn)) => return Some(conn),
            _ => unreachable!("just restored"),
        }
    }
    None
}

/// The loop's idle step: block in the poller unless something was notified
/// since `begin_drain`.
fn sleep(signal: &LoopSignal, poller: &Notify) {
    if signal.try_sleep() {
        poller.wait();
    }
}

fn home(table: &Table, id: usize) -> &Conn {
    match &table[id] {
        Some(Slot::Home(conn)) => conn,
        other => panic!("connection {id} is not home: {other:?}"),
    }
}

/// Three connections go to two IO threads with queues of one, so the third
/// finds its worker's queue full in some executions and runs inline (the
/// runtime's fallback; the model asserts that both branches ran). While
/// they are away the loop queues output for connection 0 and requests a
/// close of connection 1, then sleeps with the real wake protocol until all
/// are home. Every connection comes back exactly once and its job ran once;
/// the output joins connection 0 exactly once; the close of connection 1 is
/// applied when it comes home (its slot is freed), and only to it; shutdown
/// joins both workers with nothing left.
///
/// Mutation that fails it: `Slot::restore` returning `R::default()` instead
/// of the record made while away (the close join lost): "the close
/// requested while away was applied" fails. Also `WakeState::begin_drain`
/// with `Ordering::Relaxed`: a deadlock (the loop sleeps through a
/// completion).
///
/// Outside this model: the IO step itself (sockets, TLS), more than one
/// job per connection in flight (the loop never dispatches a connection
/// that is away, which `Slot::take` enforces), and the output and close
/// bookkeeping of the runtime's `Away` record beyond "joins once, in order".
#[test]
fn handoff_with_output_and_close_while_away() {
    static INLINE: StdCount = StdCount::new(0);
    static EXECUTIONS: StdCount = StdCount::new(0);
    loom::model(|| {
        EXECUTIONS.fetch_add(1, Std);
        let (poller, signal) = new_loop();
        let pool = IoPool::new(&config(2, 1), Arc::clone(&signal), run_job).unwrap();
        let mut table = table(3);
        let mut away = 0;
        for id in 0..3 {
            if dispatch(&pool, &mut table, id, run_job, &INLINE) {
                away += 1;
            }
        }
        send(&mut table, 0, 10);
        let mut closed: Vec<Conn> = request_close(&mut table, 1).into_iter().collect();

        while away > 0 {
            signal.begin_drain();
            while let Some(done) = pool.pop_completion() {
                assert!(!done.panicked);
                away -= 1;
                closed.extend(come_home(&mut table, done));
            }
            if away > 0 {
                sleep(&signal, &poller);
            }
        }
        assert!(pool.shutdown().is_empty(), "no completion left behind");

        assert_eq!(
            closed.iter().map(|c| (c.id, c.jobs)).collect::<Vec<_>>(),
            vec![(1, 1)],
            "the close requested while away was applied, to that connection only"
        );
        assert!(table[1].is_none(), "the closed connection's slot is free");
        assert_eq!(home(&table, 0).jobs, 1);
        assert_eq!(
            home(&table, 0).output,
            vec![10],
            "output queued while away joined exactly once"
        );
        assert_eq!(home(&table, 2).jobs, 1);
        assert!(home(&table, 2).output.is_empty());
    });
    let inline = INLINE.load(Std);
    assert!(
        inline > 0 && inline < EXECUTIONS.load(Std),
        "both the handoff and the full-queue inline fallback ran for connection 2"
    );
}

/// Shutdown races completions: the loop asks the pool to stop while jobs are
/// still in flight (three jobs over two workers with queues of one, so the
/// inline fallback runs in some executions; asserted). Every job runs once
/// and its value comes back exactly once: inline, as a completion popped
/// before the shutdown, or from `shutdown`; both workers are joined.
///
/// Mutation that fails it: the worker's read of `stop` with
/// `Ordering::Relaxed` (instead of `Acquire`), or `shutdown`'s store of it
/// with `Relaxed` (instead of `Release`): a worker sees `stop` without the
/// job dispatched before it, exits, and the job is lost. (With loom's own
/// `park` as the worker's parker this passed: see `sync::Parker`.)
///
/// Outside this model: what the runtime does with the returned connections
/// (closes them; covered by the shutdown integration tests) and the grace
/// period's clock.
#[test]
fn shutdown_racing_completions_loses_nothing() {
    static INLINE: StdCount = StdCount::new(0);
    static EXECUTIONS: StdCount = StdCount::new(0);
    loom::model(|| {
        EXECUTIONS.fetch_add(1, Std);
        let (_poller, signal) = new_loop();
        let pool = IoPool::new(&config(2, 1), Arc::clone(&signal), run_job).unwrap();
        let mut table = table(3);
        let mut back: Vec<Conn> = Vec::new();
        for id in 0..3 {
            if !dispatch(&pool, &mut table, id, run_job, &INLINE) {
                back.extend(table[id].take().and_then(|mut s| s.take()));
            }
        }
        if let Some(done) = pool.pop_completion() {
            back.push(done.job);
        }
        back.extend(pool.shutdown().into_iter().map(|c| c.job));
        back.sort_by_key(|c| c.id);
        assert_eq!(
            back.iter().map(|c| (c.id, c.jobs)).collect::<Vec<_>>(),
            vec![(0, 1), (1, 1), (2, 1)],
            "every job ran once and was handed back exactly once"
        );
    });
    let inline = INLINE.load(Std);
    assert!(inline > 0 && inline < EXECUTIONS.load(Std));
}

/// Two producers push through the production `Inbox` (so the queue
/// stand-in and the real `WakeState` orderings decide what the loop sees)
/// while the loop goes to sleep at every possible point: the loop never
/// sleeps through an item, and the number of wake-ups sent is at most the
/// number of sleeps.
///
/// Mutation that fails it: `WakeState::begin_drain` with
/// `Ordering::Relaxed` (instead of `AcqRel`): the loop's drain reads the
/// queue stale and empty, `try_sleep` succeeds, and loom reports the
/// deadlock. `WakeState::notify` with `Relaxed` or `Acquire` fails the same
/// way; the queue stand-in's slot publication with `Relaxed` is reported as
/// a data race.
///
/// Outside this model: the poller's own notify (an eventfd write, modelled
/// as a `Notify`) and a wait's timeout (the loop's timers).
#[test]
fn wakeups_coalesce_and_none_is_lost() {
    loom::model(|| {
        let (poller, signal) = new_loop();
        let inbox = Arc::new(Inbox::new(Arc::clone(&signal)));
        let producers: Vec<_> = (0..2)
            .map(|n| {
                let inbox = Arc::clone(&inbox);
                thread::spawn(move || assert!(inbox.push(n).is_ok()))
            })
            .collect();
        let mut got = Vec::new();
        let mut sleeps = 0;
        loop {
            signal.begin_drain();
            while let Some(n) = inbox.pop() {
                got.push(n);
            }
            if got.len() == 2 {
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
        got.sort_unstable();
        assert_eq!(got, vec![0, 1]);
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
    dropped: std::sync::Arc<StdCount>,
}

impl Drop for TlsConfig {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Std);
    }
}

/// A connection in its handshake: it holds the configuration it was
/// accepted with, as a rustls `ServerConnection` holds its `ServerConfig`.
struct Handshake {
    id: usize,
    config: Arc<TlsConfig>,
    used: Option<u32>,
}

fn run_handshake(_worker: usize, h: &mut Handshake) {
    h.used = Some(h.config.generation);
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
        let dropped = std::sync::Arc::new(StdCount::new(0));
        let inbox: Arc<Inbox<Arc<TlsConfig>>> = Arc::new(Inbox::new(Arc::clone(&signal)));
        let pool = IoPool::new(&config(1, 1), Arc::clone(&signal), run_handshake).unwrap();
        let mut current = Arc::new(TlsConfig {
            generation: 1,
            dropped: std::sync::Arc::clone(&dropped),
        });
        let admin = {
            let (inbox, dropped) = (Arc::clone(&inbox), std::sync::Arc::clone(&dropped));
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
                Err(mut h) => {
                    run_handshake(id, &mut h);
                    finished.push(h);
                }
            }
        }
        loop {
            signal.begin_drain();
            let reloaded = apply_reloads(&mut current);
            while let Some(done) = pool.pop_completion() {
                away -= 1;
                finished.push(done.job);
            }
            if away == 0 && reloaded {
                break;
            }
            sleep(&signal, &poller);
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
            dropped.load(Std),
            usize::from(old_holders == 0),
            "{old_holders} finished handshakes still hold the old configuration"
        );
        drop(finished);
        assert_eq!(
            dropped.load(Std),
            1,
            "the old configuration freed once its handshakes are gone"
        );
    });
}

/// Where the model's messages were dropped.
struct DropLog {
    loop_thread: thread::ThreadId,
    drops: [StdCount; 2],
    /// Drops on a pusher's thread: by the drain of the last push out of a
    /// closed inbox (or a refused message its pusher let go).
    off_loop: [StdCount; 2],
}

/// A message that records its drop.
struct Msg {
    from: usize,
    log: std::sync::Arc<DropLog>,
}

impl Drop for Msg {
    fn drop(&mut self) {
        self.log.drops[self.from].fetch_add(1, Std);
        if thread::current().id() != self.log.loop_thread {
            self.log.off_loop[self.from].fetch_add(1, Std);
        }
    }
}

/// `Inbox::close` races two pushes: the loop pops what it finds, then
/// closes (as `finish_shutdown` does), while two threads push. A push that
/// returned `Err` got its message back undropped; a push that returned `Ok`
/// had its message popped by the loop or dropped by the close, and never
/// left queued: once `close` and both pushes have returned, every accepted
/// message has been dropped exactly once while the inbox is still alive.
/// The model asserts that it reached both racing outcomes: a refused push,
/// and an accepted message dropped by the drain of the last push out of a
/// closed inbox.
///
/// Mutation that fails it: `Inbox::leave` without its drain (the last push
/// out of a closed inbox no longer empties it): an accepted message stays
/// queued after the close. Also: the leaving `fetch_sub` with
/// `Ordering::Relaxed` or `Release` (instead of `AcqRel`), or `close`'s
/// `fetch_or` with `Release`: the drainer sees the count it expects but
/// drains a stale, empty queue, and the message stays queued. And the old
/// design (check `is_open`, then enqueue) fails the same assertion.
///
/// Outside this model: more than two pushers (each extra one only adds to
/// the count in the same word), and pops after `close` (the loop makes
/// none).
#[test]
fn inbox_close_racing_pushes() {
    static REFUSED: StdCount = StdCount::new(0);
    static DRAINED_BY_PUSHER: StdCount = StdCount::new(0);
    loom::model(|| {
        let (_poller, signal) = new_loop();
        let inbox: Arc<Inbox<Msg>> = Arc::new(Inbox::new(signal));
        let log = std::sync::Arc::new(DropLog {
            loop_thread: thread::current().id(),
            drops: [StdCount::new(0), StdCount::new(0)],
            off_loop: [StdCount::new(0), StdCount::new(0)],
        });
        let pushers: Vec<_> = (0..2)
            .map(|from| {
                let inbox = Arc::clone(&inbox);
                let log = std::sync::Arc::clone(&log);
                thread::spawn(move || match inbox.push(Msg { from, log }) {
                    Ok(()) => true,
                    Err(msg) => {
                        assert_eq!(msg.log.drops[from].load(Std), 0, "given back undropped");
                        false
                    }
                })
            })
            .collect();
        while inbox.pop().is_some() {}
        inbox.close();
        assert!(!inbox.is_open());
        let accepted: Vec<bool> = pushers.into_iter().map(|p| p.join().unwrap()).collect();
        for (from, &accepted) in accepted.iter().enumerate() {
            assert_eq!(
                log.drops[from].load(Std),
                1,
                "message {from} (accepted: {accepted}) dropped exactly once, none left queued"
            );
            if !accepted {
                REFUSED.fetch_add(1, Std);
            } else if log.off_loop[from].load(Std) == 1 {
                DRAINED_BY_PUSHER.fetch_add(1, Std);
            }
        }
    });
    assert!(REFUSED.load(Std) > 0, "a push after the close was refused");
    assert!(
        DRAINED_BY_PUSHER.load(Std) > 0,
        "a push overlapping the close drained the inbox"
    );
}

fn run_job_panicking_on_1(_worker: usize, conn: &mut Conn) {
    conn.jobs += 1;
    if conn.id == 1 {
        std::panic::panic_any(MODEL_PANIC);
    }
}

/// A worker's handler panics on connection 1 (after it began changing the
/// connection) while connection 0 is on the other worker and the loop
/// queues output for both: the panicked job still comes home, exactly
/// once, marked `panicked`; the loop closes it (its slot is freed), and the
/// other connection comes home untouched by the panic, with its output; the
/// worker counted the panic and goes on (shutdown joins it).
///
/// Mutation that fails it: the worker dropping a panicked job instead of
/// pushing it home (the behaviour before `Completion`): the loop waits for
/// it forever and loom reports the deadlock.
///
/// Outside this model: a panic in the loop's own inline run of a job (on
/// the loop thread, not a worker), and what the runtime logs.
#[test]
fn worker_panic_sends_the_job_home() {
    quiet_model_panics();
    loom::model(|| {
        let (poller, signal) = new_loop();
        let pool = IoPool::new(&config(2, 1), Arc::clone(&signal), run_job_panicking_on_1).unwrap();
        let mut table = table(2);
        let unused = StdCount::new(0);
        let mut away = 0;
        for id in 0..2 {
            assert!(dispatch(
                &pool,
                &mut table,
                id,
                run_job_panicking_on_1,
                &unused
            ));
            away += 1;
        }
        send(&mut table, 0, 10);
        send(&mut table, 1, 11);
        let mut closed = Vec::new();
        let mut panicked = Vec::new();
        while away > 0 {
            signal.begin_drain();
            while let Some(done) = pool.pop_completion() {
                away -= 1;
                if done.panicked {
                    panicked.push(done.job.id);
                }
                closed.extend(come_home(&mut table, done));
            }
            if away > 0 {
                sleep(&signal, &poller);
            }
        }
        let stats = pool.stats_reader();
        assert!(pool.shutdown().is_empty());
        assert_eq!(panicked, vec![1], "the panicked job came home once, marked");
        assert_eq!(
            closed.iter().map(|c| (c.id, c.jobs)).collect::<Vec<_>>(),
            vec![(1, 1)],
            "the panicked connection was closed, and only it"
        );
        assert!(table[1].is_none(), "its slot is free");
        assert_eq!(home(&table, 0).jobs, 1);
        assert_eq!(home(&table, 0).output, vec![10]);
        let workers = stats.worker_stats();
        assert_eq!(workers.iter().map(|w| w.panics).sum::<u64>(), 1);
        assert_eq!(workers.iter().map(|w| w.jobs).sum::<u64>(), 1);
    });
}

/// A shutdown request from another thread (`LoopHandle::shutdown` pushes it
/// through the `Inbox`) arrives while connections are away, as in the
/// runtime's `begin_shutdown`: the loop requests a close of every live
/// connection (now if home, recorded if away) and runs until the table is
/// empty, then shuts the pool down and closes the inbox. Two connections on
/// one worker with a queue of one (so the second runs inline in some
/// executions). The loop never sleeps through the request or a completion,
/// every connection is closed exactly once after its job ran once (never
/// while away), nothing is left in the pool, and the request is accepted.
///
/// Mutation that fails it: `Inbox::push` calling `notify` before it
/// enqueues (instead of after): the loop drains, finds nothing, sleeps, and
/// loom reports the deadlock.
///
/// Outside this model: the grace deadline (closing connections still home
/// without flushing), more than one worker (covered by the models above),
/// and the close's effect on sockets.
#[test]
fn shutdown_with_connections_away() {
    loom::model(|| {
        let (poller, signal) = new_loop();
        let inbox: Arc<Inbox<()>> = Arc::new(Inbox::new(Arc::clone(&signal)));
        let pool = IoPool::new(&config(1, 1), Arc::clone(&signal), run_job).unwrap();
        let mut table = table(2);
        let unused = StdCount::new(0);
        let mut away = 0;
        for id in 0..2 {
            if dispatch(&pool, &mut table, id, run_job, &unused) {
                away += 1;
            }
        }
        let admin = {
            let inbox = Arc::clone(&inbox);
            thread::spawn(move || inbox.push(()).is_ok())
        };
        let mut shutting_down = false;
        let mut closed: Vec<Conn> = Vec::new();
        loop {
            signal.begin_drain();
            while inbox.pop().is_some() {
                shutting_down = true;
                for id in 0..table.len() {
                    closed.extend(request_close(&mut table, id));
                }
            }
            while let Some(done) = pool.pop_completion() {
                assert!(!done.panicked);
                away -= 1;
                closed.extend(come_home(&mut table, done));
            }
            if shutting_down && table.iter().all(Option::is_none) {
                break;
            }
            sleep(&signal, &poller);
        }
        assert_eq!(away, 0);
        assert!(
            pool.shutdown().is_empty(),
            "every connection came home first"
        );
        inbox.close();
        assert!(admin.join().unwrap(), "the request was accepted");
        closed.sort_by_key(|c| c.id);
        assert_eq!(
            closed.iter().map(|c| (c.id, c.jobs)).collect::<Vec<_>>(),
            vec![(0, 1), (1, 1)],
            "every connection closed once, after its job"
        );
    });
}
