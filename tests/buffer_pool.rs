//! The loop's receive-buffer pool (`baton::recycle_buffer`) serves a busy
//! server's reads, and an idle server gives it back: a second after the last
//! readiness event, with no event to wake it, the loop frees it.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

use baton::{ByteStream, Config, ConnId, ConnInfo, Ctx, Service};
use util::spawn_server;

/// Echoes, and answers a posted probe with the bytes the loop thread's pool
/// holds.
struct PoolProbe;

impl Service for PoolProbe {
    type Codec = ByteStream;
    type ConnState = ();
    type Command = Sender<usize>;

    fn codec(&mut self, _: &ConnInfo) -> ByteStream {
        ByteStream::default()
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), frame: Vec<u8>) {
        let _ = ctx.send(conn, frame);
    }

    fn on_command(&mut self, _: &mut Ctx<'_, Self>, reply: Sender<usize>) {
        let _ = reply.send(baton_tls::pooled_bytes());
    }
}

#[test]
fn an_idle_loop_frees_its_buffer_pool_without_being_woken() {
    let server = spawn_server(Config::default(), || PoolProbe);
    let probe = || {
        let (tx, rx) = channel();
        server.handle.post(tx).expect("loop running");
        rx.recv_timeout(Duration::from_secs(10))
            .expect("probe answered")
    };
    let mut client = TcpStream::connect(server.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Large batches: each is read into pooled or fresh storage, handed over
    // as the frame, written back, and pooled again.
    let batch = vec![7u8; 200_000];
    let mut back = vec![0u8; batch.len()];
    for _ in 0..5 {
        client.write_all(&batch).unwrap();
        client.read_exact(&mut back).unwrap();
        assert_eq!(back, batch);
    }
    let busy = probe();
    assert!(busy > 0, "written-out buffers went to the loop's pool");
    // Nothing wakes the loop now but its own deadline for the pool. A probe
    // is answered before the iteration that carries it checks for idleness,
    // so it reports what the deadline's wake-up did, not what it caused.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(probe(), 0, "the idle loop released its pool by itself");
    // Released, not lost: the server still serves.
    client.write_all(b"still here").unwrap();
    let mut reply = [0u8; 10];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"still here");
    drop(client);
    server.stop(Duration::from_secs(5));
}
