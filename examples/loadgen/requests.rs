//! The bytes one batch of requests puts on the wire.
//!
//! A batch is built once per connection; each new batch only rewrites the
//! key digits in place (as redis-benchmark does with `__rand_int__`), so the
//! generator spends its CPU on the wire, not on formatting.

/// What the load generator asks of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Raw bytes, expected back unchanged (the echo examples).
    Echo,
    /// `SET key:NNNNNNNNNNNN <value>`, expecting `+OK`.
    Set,
    /// `GET key:NNNNNNNNNNNN`, expecting a bulk string (or nil for a miss).
    Get,
    /// `PING`, expecting any reply.
    Ping,
}

impl Workload {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Echo => "echo",
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::Ping => "ping",
        }
    }
}

/// Digits in a key: `key:` plus 12 digits, like redis-benchmark's keys.
const KEY_DIGITS: usize = 12;

/// One connection's batch: `depth` requests back to back.
#[derive(Debug)]
pub struct Batch {
    /// The requests, ready to write.
    pub bytes: Vec<u8>,
    /// Where each request's key digits start.
    key_at: Vec<usize>,
    keyspace: u64,
    rng: u64,
    /// Counting keys (0, 1, 2, ...) instead of drawing them: for prefilling.
    sequential: Option<u64>,
}

impl Batch {
    /// A batch of `depth` requests of `workload`: `size` is the echo message
    /// or SET value size; keys are drawn from `0..keyspace`; `seed` makes
    /// connections draw different keys.
    pub fn new(workload: Workload, depth: usize, size: usize, keyspace: u64, seed: u64) -> Self {
        Self::build(workload, depth, size, keyspace, seed, None)
    }

    /// A batch whose keys count up from 0 (wrapping at `keyspace`) instead
    /// of being drawn at random: one connection sets every key once.
    pub fn sequential(workload: Workload, depth: usize, size: usize, keyspace: u64) -> Self {
        Self::build(workload, depth, size, keyspace, 0, Some(0))
    }

    fn build(
        workload: Workload,
        depth: usize,
        size: usize,
        keyspace: u64,
        seed: u64,
        sequential: Option<u64>,
    ) -> Self {
        let mut bytes = Vec::new();
        let mut key_at = Vec::new();
        for _ in 0..depth {
            match workload {
                Workload::Echo => bytes.extend(std::iter::repeat_n(b'x', size)),
                Workload::Ping => bytes.extend_from_slice(b"*1\r\n$4\r\nPING\r\n"),
                Workload::Set | Workload::Get => {
                    let (argc, verb) = if workload == Workload::Set {
                        (3, "SET")
                    } else {
                        (2, "GET")
                    };
                    bytes.extend_from_slice(
                        format!("*{argc}\r\n$3\r\n{verb}\r\n${}\r\nkey:", 4 + KEY_DIGITS)
                            .as_bytes(),
                    );
                    key_at.push(bytes.len());
                    bytes.extend_from_slice(&[b'0'; KEY_DIGITS]);
                    bytes.extend_from_slice(b"\r\n");
                    if workload == Workload::Set {
                        bytes.extend_from_slice(format!("${size}\r\n").as_bytes());
                        bytes.extend(std::iter::repeat_n(b'x', size));
                        bytes.extend_from_slice(b"\r\n");
                    }
                }
            }
        }
        let mut batch = Batch {
            bytes,
            key_at,
            keyspace: keyspace.max(1),
            // Any odd, non-zero state works for xorshift.
            rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            sequential,
        };
        batch.next_keys();
        batch
    }

    /// Draws new random keys for the next round of this batch.
    pub fn next_keys(&mut self) {
        for i in 0..self.key_at.len() {
            let key = match &mut self.sequential {
                Some(next) => {
                    let key = *next % self.keyspace;
                    *next += 1;
                    key
                }
                None => self.random() % self.keyspace,
            };
            write_digits(&mut self.bytes[self.key_at[i]..][..KEY_DIGITS], key);
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64: fast, and quality enough to spread keys.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

fn write_digits(dst: &mut [u8], mut n: u64) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}
