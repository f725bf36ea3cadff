//! Graceful shutdown under load returns by its deadline even when some
//! clients never read, closes every connection and joins every IO thread.

mod util;

#[path = "../examples/echo/service.rs"]
mod echo;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::{CloseReason, Config, IoActivation};
use util::{spawn_server, thread_names};

const BUSY: usize = 200;
const NEVER_READ: usize = 50;

#[test]
fn shutdown_under_load_meets_its_deadline_and_joins_io_threads() {
    let config = Config {
        io_threads: 2,
        io_activation: IoActivation::Always,
        output_soft_limit: 256 << 10,
        ..Config::default()
    };
    let server = spawn_server(config, || echo::Echo);
    let addr = server.addr;
    let started = Arc::new(AtomicBool::new(false));

    let mut clients = Vec::new();
    for _ in 0..BUSY {
        let started = Arc::clone(&started);
        clients.push(std::thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            let msg = [5u8; 4096];
            let mut back = [0u8; 4096];
            loop {
                if stream.write_all(&msg).is_err() || stream.read_exact(&mut back).is_err() {
                    return; // closed by the shutdown
                }
                assert_eq!(back, msg);
                started.store(true, Ordering::Relaxed);
            }
        }));
    }
    for _ in 0..NEVER_READ {
        clients.push(std::thread::spawn(move || {
            // A tiny receive window, so the server's replies back up into
            // its own output queue quickly.
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            socket.connect(&addr.into()).unwrap();
            let mut stream = TcpStream::from(socket);
            let chunk = vec![1u8; 1 << 20];
            loop {
                match stream.write(&chunk) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return, // closed by the shutdown
                }
            }
        }));
    }
    server.wait_for("every client connected", Duration::from_secs(30), |s| {
        s.connections_open == (BUSY + NEVER_READ) as u64
    });
    while !started.load(Ordering::Relaxed) {
        std::thread::yield_now();
    }
    // The scenario this test is about: the server holds output for the
    // clients that never read (it has stopped reading from them).
    server.wait_for("every non-reader paused", Duration::from_secs(60), |s| {
        s.connections_paused == NEVER_READ as u64
    });
    assert!(
        thread_names().iter().any(|n| n.starts_with("baton-io")),
        "IO threads are running"
    );

    let grace = Duration::from_secs(1);
    let begun = Instant::now();
    let report = server.stop(grace);
    let took = begun.elapsed();
    // The deadline is the contract; the slack only absorbs scheduling on a
    // loaded 2-core machine.
    assert!(
        took < grace + Duration::from_secs(2),
        "shutdown took {took:?}"
    );
    assert_eq!(report.stats.connections_open, 0);
    assert_eq!(
        report.stats.closed_for(&CloseReason::Shutdown),
        (BUSY + NEVER_READ) as u64
    );
    assert_eq!(
        report.closed_at_deadline, NEVER_READ,
        "clients that never read could not be flushed"
    );
    assert!(
        !thread_names().iter().any(|n| n.starts_with("baton-io")),
        "IO threads joined"
    );
    for client in clients {
        client
            .join()
            .expect("client saw only correct echoes, then a close");
    }
}
