//! A reply goes out in the loop iteration that read its request: the
//! loop's second, write-only pass (`Server::advance_scheduled`) writes what
//! the service queued, instead of leaving it behind another poller wait,
//! and its third pass settles the connection without cutting the next wait
//! short. Counted with the loop's own iteration counter, not timed (one
//! pass: 498 iterations for 200 round trips; two: 400).

mod util;

#[path = "../examples/echo/service.rs"]
mod echo;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use baton::Config;
use util::spawn_server;

const ROUND_TRIPS: u64 = 200;

#[test]
fn an_inline_reply_is_written_in_the_iteration_that_read_its_request() {
    let server = spawn_server(Config::default().io_threads(0), || echo::Echo);
    let mut client = TcpStream::connect(server.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    client.set_nodelay(true).unwrap();
    let mut back = [0u8; 8];
    // The accept and the first exchange are not counted.
    client.write_all(b"warm-up!").unwrap();
    client.read_exact(&mut back).unwrap();
    let before = server.handle.stats().loop_iterations;
    for i in 0..ROUND_TRIPS {
        let message = format!("{i:08}");
        client.write_all(message.as_bytes()).unwrap();
        client.read_exact(&mut back).unwrap();
        assert_eq!(&back, message.as_bytes());
    }
    let iterations = server.handle.stats().loop_iterations - before;
    // One wait reports the request; the same iteration reads, delivers and
    // writes. Deferred to the next iteration, every reply would cost two.
    // The slack is for stray wake-ups (an edge from an ACK, say).
    assert!(
        iterations < ROUND_TRIPS * 3 / 2,
        "{iterations} loop iterations for {ROUND_TRIPS} request/reply round trips"
    );
    drop(client);
    server.stop(Duration::from_secs(5));
}
