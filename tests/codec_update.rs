//! `Ctx::update_codec`, end to end over loopback: a codec that stops at a
//! frame until the service has handled it decodes what followed that frame
//! (sent in the same packet) with the change, inline and on IO threads; a
//! change to another connection reaches it whether it is home or away; a
//! panicking change closes only its connection; a closed id is `Gone`.
//!
//! Every wait is bounded (socket timeouts, deadlines); a hang is a failure.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use baton::{
    CloseReason, Codec, Config, ConnId, Ctx, IoActivation, ProtocolError, RecvBuf, SendError,
    Service,
};
use util::spawn_server;

const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Lines, each decoded with the codec's current prefix in front. After a
/// `switch` line it decodes nothing more until the service changes it.
struct Prefixed {
    prefix: &'static str,
    held: bool,
}

impl Codec for Prefixed {
    type In = String;
    type Out = String;

    fn decode(&mut self, src: &mut RecvBuf) -> Result<Option<String>, ProtocolError> {
        if self.held {
            return Ok(None);
        }
        let Some(end) = src.as_slice().iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&src.as_slice()[..end]).into_owned();
        src.consume(end + 1);
        self.held = line == "switch";
        Ok(Some(format!("{}{line}", self.prefix)))
    }

    fn encode(&mut self, line: String, dst: &mut Vec<u8>) {
        dst.extend_from_slice(line.as_bytes());
        dst.push(b'\n');
    }

    fn encoded_len(line: &String) -> usize {
        line.len() + 1
    }
}

/// Echoes each frame. `switch` changes its own connection's codec;
/// `flip` changes every other connection's; `boom` asks for a change that
/// panics; `gone` changes a connection that has closed.
#[derive(Default)]
struct Switcher {
    conns: Vec<ConnId>,
    closed: Vec<ConnId>,
}

impl Service for Switcher {
    type Codec = Prefixed;
    type ConnState = ();
    type Command = ();

    fn codec(&mut self, _: &baton::ConnInfo) -> Prefixed {
        Prefixed {
            prefix: "old:",
            held: false,
        }
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId) {
        self.conns.push(conn);
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: String) {
        let command = line.split_once(':').map_or("", |(_, c)| c);
        let mut reply = line.clone();
        match command {
            "switch" => ctx
                .update_codec(conn, |c| {
                    c.prefix = "new:";
                    c.held = false;
                })
                .unwrap(),
            "flip" => {
                for &other in self.conns.iter().filter(|&&c| c != conn) {
                    ctx.update_codec(other, |c| c.prefix = "flipped:").unwrap();
                }
            }
            "boom" => ctx
                .update_codec(conn, |_| panic!("test codec change told to panic"))
                .unwrap(),
            "gone" => {
                let answer = self
                    .closed
                    .first()
                    .map(|&id| ctx.update_codec(id, |c| c.prefix = "never:"));
                reply = format!("{answer:?}");
            }
            _ => {}
        }
        let _ = ctx.send(conn, reply);
    }

    fn on_close(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId, _: (), _: CloseReason) {
        self.conns.retain(|&c| c != conn);
        self.closed.push(conn);
    }
}

fn configs() -> [Config; 2] {
    [
        Config::default().io_threads(0),
        Config::default()
            .io_threads(2)
            .io_activation(IoActivation::Always),
    ]
}

fn client(addr: std::net::SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    BufReader::new(stream)
}

fn read_lines(client: &mut BufReader<TcpStream>, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut line = String::new();
            client.read_line(&mut line).expect("a reply in time");
            line.trim_end().to_owned()
        })
        .collect()
}

#[test]
fn input_held_at_a_frame_is_decoded_by_the_changed_codec() {
    for config in configs() {
        let server = spawn_server(config, Switcher::default);
        let mut c = client(server.addr);
        // One write: the lines after `switch` arrive with it, and are
        // decoded only after the service changed the codec.
        c.get_mut().write_all(b"a\nswitch\nb\nc\n").unwrap();
        assert_eq!(
            read_lines(&mut c, 4),
            ["old:a", "old:switch", "new:b", "new:c"]
        );
        // And again on the same connection, from a later read.
        c.get_mut().write_all(b"switch\nd\n").unwrap();
        assert_eq!(read_lines(&mut c, 2), ["new:switch", "new:d"]);
    }
}

#[test]
fn a_change_to_another_connection_reaches_it_home_or_away() {
    for config in configs() {
        let server = spawn_server(config, Switcher::default);
        for round in 0..20 {
            let mut busy = client(server.addr);
            let mut flipper = client(server.addr);
            // A burst keeps `busy` stepping (on an IO thread with them)
            // while the flip is asked for.
            let burst: String = (0..200).map(|i| format!("{round}-{i}\n")).collect();
            busy.get_mut().write_all(burst.as_bytes()).unwrap();
            flipper.get_mut().write_all(b"flip\n").unwrap();
            assert_eq!(read_lines(&mut flipper, 1), ["old:flip"]);
            let mut replies = read_lines(&mut busy, 200);
            // A step already running on an IO thread when the flip was
            // asked for may still read and decode with the codec as it
            // was; a later step must see the change.
            for _ in 0..100 {
                if replies.last().is_some_and(|r| r.starts_with("flipped:")) {
                    break;
                }
                busy.get_mut().write_all(b"after\n").unwrap();
                replies.extend(read_lines(&mut busy, 1));
            }
            // In order: never an old prefix after a flipped one.
            let first_flipped = replies
                .iter()
                .position(|r| r.starts_with("flipped:"))
                .unwrap_or_else(|| panic!("the change never reached it: {replies:?}"));
            assert!(
                replies[first_flipped..]
                    .iter()
                    .all(|r| r.starts_with("flipped:")),
                "{replies:?}"
            );
        }
    }
}

#[test]
fn a_panicking_change_closes_only_its_connection() {
    for config in configs() {
        let server = spawn_server(config, Switcher::default);
        let mut victim = client(server.addr);
        let mut bystander = client(server.addr);
        victim.get_mut().write_all(b"boom\n").unwrap();
        let mut rest = String::new();
        // Its reply may or may not have gone out before the close.
        while victim.read_line(&mut rest).is_ok_and(|n| n > 0) {}
        server.wait_for("the close counted", IO_TIMEOUT, |s| {
            s.closed_for(&CloseReason::CodecPanic) == 1
        });
        bystander.get_mut().write_all(b"still\n").unwrap();
        assert_eq!(read_lines(&mut bystander, 1), ["old:still"]);
        // A closed connection's id is refused, never reused.
        bystander.get_mut().write_all(b"gone\n").unwrap();
        assert_eq!(
            read_lines(&mut bystander, 1),
            [format!("{:?}", Some(Err::<(), _>(SendError::Gone)))]
        );
    }
}
