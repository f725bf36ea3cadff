//! `Ctx::abort`: the service closes a connection at once, dropping what was
//! queued for it (nothing of it reaches the peer), counted under the reason
//! it gives; later frames of the same batch are not delivered; a closed id
//! is `Gone`. Inline and on IO threads.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use baton::{CloseReason, Config, ConnId, Ctx, IoActivation, SendError, Service};
use util::lines::Lines;
use util::spawn_server;

const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Echoes lines; `abort` queues a large reply, then aborts; lines after
/// it would be echoed if they were delivered.
#[derive(Default)]
struct Aborter {
    aborted: Option<ConnId>,
}

impl Service for Aborter {
    type Codec = Lines;
    type ConnState = ();
    type Command = ();

    fn codec(&mut self, _: &baton::ConnInfo) -> Lines {
        Lines
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        match line.as_slice() {
            b"abort" => {
                let _ = ctx.send(conn, vec![b'x'; 100_000]);
                ctx.abort(conn, CloseReason::OutputLimit).unwrap();
                self.aborted = Some(conn);
            }
            b"again" => {
                let id = self.aborted.expect("aborted one first");
                let answer = format!("{:?}", ctx.abort(id, CloseReason::OutputLimit));
                let _ = ctx.send(conn, answer.into_bytes());
            }
            _ => {
                let _ = ctx.send(conn, line);
            }
        }
    }
}

#[test]
fn an_aborted_connection_gets_nothing_queued_for_it() {
    for config in [
        Config::default().io_threads(0),
        Config::default()
            .io_threads(2)
            .io_activation(IoActivation::Always),
    ] {
        let server = spawn_server(config, Aborter::default);
        let mut victim = TcpStream::connect(server.addr).unwrap();
        victim.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        victim.write_all(b"abort\nlater\n").unwrap();
        let mut got = Vec::new();
        match victim.read_to_end(&mut got) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
        assert!(got.is_empty(), "{} bytes reached the peer", got.len());
        server.wait_for("the abort counted", IO_TIMEOUT, |s| {
            s.closed_for(&CloseReason::OutputLimit) == 1 && s.connections_open == 0
        });
        let mut other = TcpStream::connect(server.addr).unwrap();
        other.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        other.write_all(b"again\n").unwrap();
        let mut reply = [0u8; 64];
        let n = other.read(&mut reply).unwrap();
        assert_eq!(
            &reply[..n],
            format!("{:?}\n", Err::<(), _>(SendError::Gone)).as_bytes()
        );
        let stats = server.handle.stats();
        assert_eq!(stats.frames_in, 2, "`later` was never delivered: {stats:?}");
    }
}
