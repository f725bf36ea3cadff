//! 10,000 clients that reset (SO_LINGER 0) at every stage: right after
//! connecting, mid-request, and mid-reply, while honest clients keep
//! echoing. The server stays up, the honest clients get every byte back,
//! and open descriptors return to the baseline.

mod util;

#[path = "../examples/echo/service.rs"]
mod echo;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use baton::{Config, IoActivation};
use util::{open_fds, reset, run_echo_clients, spawn_server, wait_for_fds, EchoPlan};

const RESETS: usize = 10_000;

fn resets_under_load(io_threads: usize) {
    let server = spawn_server(
        Config::default()
            .io_threads(io_threads)
            .io_activation(IoActivation::Always),
        || echo::Echo,
    );
    let baseline = open_fds();
    let addr = server.addr;

    let honest = std::thread::spawn(move || {
        let mut rng = util::rng(7);
        for _ in 0..5 {
            let plans = (0..20)
                .map(|_| EchoPlan::random(&mut rng, 256 << 10))
                .collect();
            run_echo_clients(addr, plans, Duration::from_secs(60));
        }
    });

    let big = vec![9u8; 256 << 10];
    for i in 0..RESETS {
        let mut stream = TcpStream::connect(addr).expect("connect");
        match i % 3 {
            // Right after the handshake.
            0 => {}
            // Mid-request: part of a payload.
            1 => stream.write_all(&big[..1 + i % 1000]).unwrap(),
            // Mid-reply: a large payload, a little of its echo read.
            _ => {
                stream.write_all(&big).unwrap();
                let mut some = [0u8; 1024];
                stream.read_exact(&mut some).unwrap();
            }
        }
        reset(stream);
    }
    honest.join().expect("honest clients were served correctly");

    server.wait_for("every connection closed", Duration::from_secs(30), |s| {
        s.connections_open == 0
    });
    wait_for_fds(baseline, Duration::from_secs(10));
    let report = server.stop(Duration::from_secs(5));
    assert_eq!(report.stats.connections_accepted, (RESETS + 100) as u64);
    assert_eq!(
        report.stats.closed_total(),
        report.stats.connections_accepted
    );
}

#[test]
fn resets_under_load_inline() {
    resets_under_load(0);
}

#[test]
fn resets_under_load_with_io_threads() {
    resets_under_load(2);
}
