//! Adaptive IO-thread activation, end to end: a server with IO threads runs
//! IO inline while its loop has headroom, and tries the IO threads once the
//! loop is saturated. (Which mode wins a trial is decided by
//! `runtime/src/activation.rs`, unit-tested there against modelled
//! machines; the benchmark matrix measures the outcome.)

mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use baton::{Config, ConnId, ConnInfo, Ctx, IoActivation, Service};
use util::lines::Lines;
use util::spawn_server;

/// Echoes lines after keeping the loop busy for `per_line`.
struct Burner {
    per_line: Duration,
}

impl Service for Burner {
    type Codec = Lines;
    type ConnState = ();
    type Command = ();

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}
    fn codec(&mut self, _: &ConnInfo) -> Lines {
        Lines
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        let until = Instant::now() + self.per_line;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        let _ = ctx.send(conn, line);
    }
}

fn adaptive(per_line: Duration) -> util::TestServer<()> {
    let config = Config::default().io_threads(2);
    assert_eq!(config.io_activation, IoActivation::Adaptive, "the default");
    spawn_server(config, move || Burner { per_line })
}

#[test]
fn a_loop_with_headroom_does_its_io_inline() {
    let server = adaptive(Duration::ZERO);
    let mut client = BufReader::new(TcpStream::connect(server.addr).unwrap());
    for i in 0..40 {
        client
            .get_mut()
            .write_all(format!("ping {i}\n").as_bytes())
            .unwrap();
        let mut reply = String::new();
        client.read_line(&mut reply).unwrap();
        assert_eq!(reply, format!("ping {i}\n"));
        // A client that thinks between requests: the loop mostly waits.
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = server.stop(Duration::from_secs(5)).stats;
    assert_eq!(stats.jobs_dispatched, 0, "{stats:#?}");
    assert_eq!(stats.io_trials, 0, "never saturated: {stats:#?}");
    assert!(stats.inline_steps >= 40, "{stats:#?}");
    assert_eq!(stats.io_threads.len(), 2);
    assert!(stats.io_threads.iter().all(|w| w.jobs == 0), "{stats:#?}");
}

#[test]
fn a_saturated_loop_tries_its_io_threads() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        eprintln!("one core: adaptive activation never hands off; nothing to test");
        return;
    }
    let server = adaptive(Duration::from_micros(300));
    let deadline = Instant::now() + Duration::from_secs(20);
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let addr = server.addr;
            let handle = server.handle.clone();
            std::thread::spawn(move || {
                let mut stream = BufReader::new(TcpStream::connect(addr).unwrap());
                let batch: String = (0..16).map(|i| format!("c{c} {i}\n")).collect();
                // Keep the loop fed (16 lines in flight per client) until a
                // trial has run or the bound is reached.
                while handle.stats().io_trials == 0 && Instant::now() < deadline {
                    stream.get_mut().write_all(batch.as_bytes()).unwrap();
                    for i in 0..16 {
                        let mut reply = String::new();
                        stream.read_line(&mut reply).unwrap();
                        assert_eq!(reply, format!("c{c} {i}\n"));
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let stats = server.stop(Duration::from_secs(5)).stats;
    assert!(stats.io_trials >= 1, "saturated, no trial: {stats:#?}");
    assert!(
        stats.jobs_dispatched > 0,
        "the trial handed off: {stats:#?}"
    );
    assert!(stats.inline_steps > 0, "inline before it: {stats:#?}");
}
