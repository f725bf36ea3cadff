//! The two example protocols as [`Workload`]s for the fault harness.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::Rng;

use super::faults::{Stream, Workload};
use super::ClientMode;

/// The echo example: every byte comes back.
pub struct EchoWorkload;

impl Workload for EchoWorkload {
    fn batch(&self, client: usize, round: u64, depth: usize) -> (Vec<u8>, Vec<u8>) {
        let mut request = Vec::with_capacity(depth * 64);
        for i in 0..depth {
            let line = format!("client {client} round {round} message {i} ");
            request.extend_from_slice(line.as_bytes());
            request.resize(request.len() + 64 - line.len() % 64, b'.');
        }
        let expected = request.clone();
        (request, expected)
    }

    fn partial(&self) -> Vec<u8> {
        b"no frame boundary in echo".to_vec()
    }

    fn garbage(&self, rng: &mut SmallRng) -> Vec<u8> {
        (0..rng.random_range(1..4096))
            .map(|_| rng.random())
            .collect()
    }

    fn oversized(&self) -> Vec<u8> {
        vec![b'x'; 2 << 20]
    }

    fn big_reply_request(&self) -> Vec<u8> {
        vec![b'y'; 128 << 10]
    }
}

/// One RESP multibulk command.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The KV example: SET then GET of keys only this client touches, so every
/// reply is known exactly. `prepare` stores the large value `big`.
pub struct KvWorkload {
    /// The server's `proto-max-bulk-len`.
    pub max_bulk: usize,
}

/// Size of the value stored under `big`.
pub const KV_BIG_VALUE: usize = 256 << 10;

impl KvWorkload {
    /// Stores `big`; call once before a storm.
    pub fn prepare(&self, mode: &ClientMode, addr: SocketAddr) {
        let mut stream = Stream::connect(mode, addr, Duration::from_secs(10)).unwrap();
        stream
            .write_all(&resp(&[b"SET", b"big", &vec![b'b'; KV_BIG_VALUE]]))
            .unwrap();
        let mut ok = [0u8; 5];
        stream.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"+OK\r\n");
    }
}

impl Workload for KvWorkload {
    fn batch(&self, client: usize, round: u64, depth: usize) -> (Vec<u8>, Vec<u8>) {
        let mut request = Vec::new();
        let mut expected = Vec::new();
        for i in 0..depth {
            let key = format!("client:{client}:{i}");
            let value = format!("round {round} item {i}");
            request.extend(resp(&[b"SET", key.as_bytes(), value.as_bytes()]));
            request.extend(resp(&[b"GET", key.as_bytes()]));
            expected.extend_from_slice(b"+OK\r\n");
            expected.extend_from_slice(format!("${}\r\n{value}\r\n", value.len()).as_bytes());
        }
        (request, expected)
    }

    fn partial(&self) -> Vec<u8> {
        b"*3\r\n$3\r\nSET\r\n$5\r\nab".to_vec()
    }

    fn garbage(&self, rng: &mut SmallRng) -> Vec<u8> {
        // A multibulk whose first argument is not a bulk string: a protocol
        // error whatever follows.
        let mut bytes = b"*1\r\n+".to_vec();
        bytes.extend((0..rng.random_range(1..512)).map(|_| rng.random::<u8>()));
        bytes
    }

    fn oversized(&self) -> Vec<u8> {
        format!("*2\r\n$3\r\nSET\r\n${}\r\n", self.max_bulk + 1).into_bytes()
    }

    fn big_reply_request(&self) -> Vec<u8> {
        resp(&[b"GET", b"big"])
    }
}
