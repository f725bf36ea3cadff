//! Differential tests of the KV example: the same raw commands sent to kv
//! and to a real `redis-server` must get the same bytes back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::real_redis::RealRedis;

/// A raw connection: sends commands as multibulk, reads whole RESP2/RESP3
/// values as bytes.
pub struct Raw(pub BufReader<TcpStream>);

impl Raw {
    pub fn connect(port: u16) -> Self {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw(BufReader::new(s))
    }

    pub fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.0.get_mut().write_all(&out).unwrap();
    }

    /// One complete value, bytes as received.
    pub fn read(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_into(&mut out);
        out
    }

    pub fn read_into(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        self.0.read_until(b'\n', out).expect("a reply line");
        assert!(out.len() > start, "connection closed before a reply");
        let line = out[start..].to_vec();
        let n = || -> i64 {
            std::str::from_utf8(&line[1..line.len() - 2])
                .unwrap()
                .parse()
                .unwrap()
        };
        match line[0] {
            b'$' | b'=' | b'!' if n() >= 0 => {
                let mut body = vec![0u8; n() as usize + 2];
                self.0.read_exact(&mut body).unwrap();
                out.extend_from_slice(&body);
            }
            b'*' | b'~' | b'>' => {
                for _ in 0..n().max(0) {
                    self.read_into(out);
                }
            }
            b'%' => {
                for _ in 0..2 * n() {
                    self.read_into(out);
                }
            }
            _ => {}
        }
    }

    pub fn call(&mut self, args: &[&str]) -> Vec<u8> {
        self.send(args);
        self.read()
    }
}

/// Splits a step's command on spaces; `''` is an empty argument.
pub fn words(command: &str) -> Vec<&str> {
    command
        .split(' ')
        .map(|w| if w == "''" { "" } else { w })
        .collect()
}

/// Runs `steps` (connection index, command) on a server; `SLEEP ms` waits.
pub fn transcript(port: u16, proto: &str, steps: &[(usize, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut conns: Vec<Raw> = (0..3).map(|_| Raw::connect(port)).collect();
    for c in &mut conns {
        let hello = c.call(&["HELLO", proto]);
        let head = if proto == "3" { "%7\r\n" } else { "*14\r\n" };
        assert!(
            hello.starts_with(format!("{head}$6\r\nserver\r\n$5\r\nredis\r\n").as_bytes()),
            "HELLO {proto}: {}",
            String::from_utf8_lossy(&hello)
        );
    }
    let mut out = Vec::new();
    for &(conn, command) in steps {
        if let Some(ms) = command.strip_prefix("SLEEP ") {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            continue;
        }
        let reply = conns[conn].call(&words(command));
        out.push((format!("[{conn}] {command}"), reply));
    }
    out
}

/// Sends the same steps to kv and to redis-server; every reply must be
/// byte-for-byte the same.
pub fn differential(kv: SocketAddr, proto: &str, steps: &[(usize, &str)]) {
    let real = RealRedis::start();
    let ours = transcript(kv.port(), proto, steps);
    let theirs = transcript(real.addr.port(), proto, steps);
    assert_same(proto, &ours, &theirs, |r| {
        format!("{:?}", String::from_utf8_lossy(r))
    });
}

/// Asserts two transcripts of (step, reply), kv's and redis-server's, are
/// the same, listing every step whose replies differ (`show` prints one).
pub fn assert_same<T: PartialEq>(
    proto: &str,
    ours: &[(String, T)],
    theirs: &[(String, T)],
    show: impl Fn(&T) -> String,
) {
    assert_eq!(ours.len(), theirs.len(), "RESP{proto}: transcript lengths");
    let diffs: Vec<String> = ours
        .iter()
        .zip(theirs)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((step, a), (_, b))| format!("{step}\n   kv:    {}\n   redis: {}", show(a), show(b)))
        .collect();
    assert!(
        diffs.is_empty(),
        "RESP{proto}: {} of {} replies differ from redis-server's:\n{}",
        diffs.len(),
        ours.len(),
        diffs.join("\n")
    );
}
