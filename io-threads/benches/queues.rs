//! Micro-benchmarks of the hand-off machinery, without sockets:
//!
//! * `handoff_round_trip`: the loop dispatches a job to an IO thread and
//!   waits for its completion (what one connection's trip costs, excluding
//!   the IO itself);
//! * `command_queue`: messages through an [`Inbox`] (the loop's mailbox for
//!   commands from other threads), on one thread and across two.
//!
//! `cargo bench -p baton-io-threads --bench queues`

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_io_threads::{Inbox, IoPool, LoopSignal, PoolConfig, Wake};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The bench thread polls instead of sleeping, so waking it is a no-op.
struct Polling;

impl Wake for Polling {
    fn wake(&self) {}
}

fn handoff_round_trip(c: &mut Criterion) {
    let signal = Arc::new(LoopSignal::new(Polling));
    let config = PoolConfig {
        threads: 1,
        ..PoolConfig::default()
    };
    let pool: IoPool<u64> =
        IoPool::new(&config, Arc::clone(&signal), |_, job| *job += 1).expect("start the pool");
    c.bench_function("handoff_round_trip", |b| {
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            pool.dispatch(0, n).expect("queue has room");
            loop {
                if let Some(done) = pool.pop_completion() {
                    break black_box(done);
                }
                std::hint::spin_loop();
            }
        })
    });
    drop(pool.shutdown());
}

fn command_queue(c: &mut Criterion) {
    const BATCH: u64 = 1000;
    let mut group = c.benchmark_group("command_queue");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("same_thread", |b| {
        let inbox = Inbox::new(Arc::new(LoopSignal::new(Polling)));
        b.iter(|| {
            for i in 0..BATCH {
                inbox.push(i).expect("open");
            }
            while let Some(m) = inbox.pop() {
                black_box(m);
            }
        })
    });
    group.bench_function("cross_thread", |b| {
        b.iter_custom(|iters| {
            let inbox = Arc::new(Inbox::new(Arc::new(LoopSignal::new(Polling))));
            let total = iters * BATCH;
            let producer = {
                let inbox = Arc::clone(&inbox);
                std::thread::spawn(move || {
                    for i in 0..total {
                        inbox.push(i).expect("open");
                    }
                })
            };
            let start = Instant::now();
            let mut got = 0;
            while got < total {
                match inbox.pop() {
                    Some(m) => {
                        black_box(m);
                        got += 1;
                    }
                    None => std::hint::spin_loop(),
                }
            }
            let elapsed = start.elapsed();
            producer.join().expect("producer");
            elapsed
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = handoff_round_trip, command_queue
}
criterion_main!(benches);
