//! Fault injection: honest clients whose every reply is checked, and faulty
//! clients of every kind, plain or TLS, against any protocol described by a
//! [`Workload`]. Shared by the storm tests, the bug-class regression tests
//! and the soak benchmark.
//!
//! Every client here is blocking and bounded by socket timeouts, so a storm
//! ends by itself even when the server misbehaves (the honest clients then
//! fail the test instead of hanging it).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::tls::rustls::pki_types::ServerName;
use baton::tls::rustls::{ClientConnection, StreamOwned};
use rand::rngs::SmallRng;
use rand::Rng;

use super::{reset, ClientMode};

/// What the faulty clients send, for one protocol.
pub trait Workload: Send + Sync + 'static {
    /// One honest pipelined batch for `client` in `round`: the bytes to send
    /// and exactly the bytes the server must answer.
    fn batch(&self, client: usize, round: u64, depth: usize) -> (Vec<u8>, Vec<u8>);
    /// The first part of a valid frame: the server must wait for the rest.
    fn partial(&self) -> Vec<u8>;
    /// Bytes the protocol rejects (or, for echo, arbitrary bytes).
    fn garbage(&self, rng: &mut SmallRng) -> Vec<u8>;
    /// A frame larger than the server accepts (or, for echo, a burst
    /// larger than its output soft limit).
    fn oversized(&self) -> Vec<u8>;
    /// A request whose reply is large (at least 64 KiB).
    fn big_reply_request(&self) -> Vec<u8>;
}

/// One kind of misbehaving client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Connects, then resets (SO_LINGER 0) at once.
    ResetAfterConnect,
    /// TLS: sends a ClientHello and resets before the handshake ends.
    /// Plain: resets after connecting.
    ResetMidHandshake,
    /// Sends part of a frame, then resets.
    ResetMidRequest,
    /// Asks for a large reply, reads a little of it, then resets.
    ResetMidReply,
    /// Sends a whole batch, shuts down its sending side, and must still get
    /// the whole reply and then an orderly end of stream.
    HalfClose,
    /// Sends part of a frame and stalls until the server gives up on it
    /// (idle or handshake timeout), which it must do.
    StallPartial,
    /// Sends bytes the protocol rejects.
    Garbage,
    /// TLS only: sends bytes that are not TLS at all.
    NotTls,
    /// Sends a frame over the server's size limit.
    Oversized,
    /// Keeps asking for large replies and never reads one.
    NeverRead,
    /// Connects and disconnects in a tight loop (TLS: after the handshake).
    Churn,
}

impl Fault {
    /// Every kind, in a fixed order.
    pub const ALL: [Fault; 11] = [
        Fault::ResetAfterConnect,
        Fault::ResetMidHandshake,
        Fault::ResetMidRequest,
        Fault::ResetMidReply,
        Fault::HalfClose,
        Fault::StallPartial,
        Fault::Garbage,
        Fault::NotTls,
        Fault::Oversized,
        Fault::NeverRead,
        Fault::Churn,
    ];

    /// Whether this kind means anything for `mode`.
    pub fn applies(self, mode: &ClientMode) -> bool {
        match self {
            Fault::NotTls | Fault::ResetMidHandshake => matches!(mode, ClientMode::Tls(_)),
            _ => true,
        }
    }
}

/// A blocking client connection, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// Connects with read and write timeouts of `timeout`. A TLS handshake
    /// happens on first use (or [`Stream::handshake`]).
    pub fn connect(mode: &ClientMode, addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(timeout))?;
        tcp.set_write_timeout(Some(timeout))?;
        Ok(match mode {
            ClientMode::Plain => Stream::Plain(tcp),
            ClientMode::Tls(config) => {
                let name = ServerName::try_from("localhost").unwrap();
                let conn = ClientConnection::new(Arc::clone(config), name)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
            }
        })
    }

    /// Finishes the TLS handshake (nothing for plain).
    pub fn handshake(&mut self) -> io::Result<()> {
        if let Stream::Tls(s) = self {
            while s.conn.is_handshaking() {
                s.conn.complete_io(&mut s.sock)?;
            }
        }
        Ok(())
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    /// Closes abortively (RST), without a TLS goodbye.
    pub fn reset(self) {
        match self {
            Stream::Plain(s) => reset(s),
            Stream::Tls(s) => reset(s.sock),
        }
    }

    /// Ends the sending side: TLS close_notify, then a TCP FIN.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        if let Stream::Tls(s) = self {
            s.conn.send_close_notify();
            s.flush()?;
        }
        self.tcp().shutdown(Shutdown::Write)
    }

    /// Reads until the peer ends the stream. `Ok(bytes)` on an orderly end
    /// (for TLS, a close_notify or, leniently, a bare FIN).
    pub fn read_to_end_lenient(&mut self) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        let mut buf = [0u8; 16 << 10];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return Ok(all),
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(all),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Whether an IO error is the server closing on us (expected for faulty
/// clients), as opposed to a timeout (the server stopped answering).
fn closed_by_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset
            | ErrorKind::BrokenPipe
            | ErrorKind::ConnectionAborted
            | ErrorKind::UnexpectedEof
            | ErrorKind::InvalidData
    )
}

/// Reads until the server closes the connection, discarding what comes.
/// Panics if it is still open after `limit`: the server must close a
/// connection it has rejected or given up on, not leave it hanging.
fn expect_closed(stream: &mut Stream, limit: Duration, what: &str) {
    let start = Instant::now();
    let mut buf = [0u8; 64 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if closed_by_peer(&e) => return,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{what}: unexpected error {e}"),
        }
        assert!(
            start.elapsed() < limit,
            "{what}: the server did not close the connection within {limit:?}"
        );
    }
}

/// How long a faulty client waits for the server to close it. Generous:
/// the storm server's idle and handshake timeouts are 1 s.
const CLOSE_WAIT: Duration = Duration::from_secs(20);

/// Runs one fault against `addr`. `client` is unique among the clients
/// running at once (a half-closing client sends an honest batch under it).
/// Connection refusals are errors (the server is up for the whole storm);
/// everything the server does to a faulty client is allowed except hanging
/// it or answering wrongly.
pub fn inject(
    fault: Fault,
    mode: &ClientMode,
    addr: SocketAddr,
    workload: &dyn Workload,
    rng: &mut SmallRng,
    client: usize,
) {
    // Generous: a timeout here fails the test only where the server must
    // answer (a half-close's reply, part of a large reply).
    let timeout = Duration::from_secs(10);
    let connect = || Stream::connect(mode, addr, timeout).expect("connect");
    match fault {
        Fault::ResetAfterConnect => connect().reset(),
        Fault::ResetMidHandshake => {
            let mut stream = connect();
            if let Stream::Tls(s) = &mut stream {
                // Sends the ClientHello, then stops before the server's
                // reply is processed.
                s.conn.write_tls(&mut s.sock).expect("send ClientHello");
                if rng.random_bool(0.5) {
                    let mut some = [0u8; 100];
                    let _ = s.sock.read(&mut some);
                }
            }
            stream.reset();
        }
        Fault::ResetMidRequest => {
            let mut stream = connect();
            let partial = workload.partial();
            let cut = rng.random_range(1..=partial.len());
            if stream.write_all(&partial[..cut]).is_ok() {
                let _ = stream.flush();
            }
            stream.reset();
        }
        Fault::ResetMidReply => {
            let mut stream = connect();
            stream
                .write_all(&workload.big_reply_request())
                .expect("send request");
            let mut some = vec![0u8; rng.random_range(1..4096)];
            stream
                .read_exact(&mut some)
                .expect("read part of the reply");
            stream.reset();
        }
        Fault::HalfClose => {
            let mut stream = connect();
            let (request, expected) = workload.batch(client, rng.random(), 4);
            stream.write_all(&request).expect("send batch");
            stream.shutdown_write().expect("half-close");
            let got = stream
                .read_to_end_lenient()
                .expect("the reply after a half-close");
            assert!(
                got == expected,
                "half-closed client: reply {:?}, expected {:?}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected)
            );
        }
        Fault::StallPartial => {
            let mut stream = connect();
            if rng.random_bool(0.5) {
                if let Stream::Tls(s) = &mut stream {
                    // Stall in the middle of the handshake instead.
                    s.conn.write_tls(&mut s.sock).expect("send ClientHello");
                    expect_closed(
                        &mut Stream::Plain(s.sock.try_clone().unwrap()),
                        CLOSE_WAIT,
                        "stalled handshake",
                    );
                    return;
                }
            }
            stream
                .write_all(&workload.partial())
                .expect("send part of a frame");
            stream.flush().unwrap();
            expect_closed(&mut stream, CLOSE_WAIT, "stalled request");
        }
        Fault::Garbage => {
            let mut stream = connect();
            if stream.write_all(&workload.garbage(rng)).is_ok() {
                let _ = stream.flush();
                // Echo answers garbage and keeps the connection; a protocol
                // server answers with an error and closes. Either way only
                // a bounded wait here, then the client leaves.
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
            }
            drop(stream);
        }
        Fault::NotTls => {
            let mut tcp = TcpStream::connect(addr).expect("connect");
            tcp.set_read_timeout(Some(timeout)).unwrap();
            let junk: Vec<u8> = (0..rng.random_range(1..2000))
                .map(|_| rng.random())
                .collect();
            let _ = tcp.write_all(&junk);
            expect_closed(&mut Stream::Plain(tcp), CLOSE_WAIT, "not TLS");
        }
        Fault::Oversized => {
            let mut stream = connect();
            // The server may close while this is still being written.
            let _ = stream.write_all(&workload.oversized());
            let _ = stream.flush();
            expect_closed(&mut stream, CLOSE_WAIT, "oversized frame");
        }
        Fault::NeverRead => {
            let mut stream = connect();
            // The server stops reading from a client that does not read
            // (backpressure): a write that blocks this long ends the fault.
            stream
                .tcp()
                .set_write_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            let one = workload.big_reply_request();
            let request = one.repeat((64 << 10) / one.len() + 1);
            // Until the server stops reading (writes time out) or closes us
            // (output limit), bounded by a total.
            let mut sent = 0usize;
            while sent < 64 << 20 {
                match stream.write_all(&request) {
                    Ok(()) => sent += request.len(),
                    Err(_) => break,
                }
            }
            drop(stream);
        }
        Fault::Churn => {
            for _ in 0..10 {
                let mut stream = connect();
                if rng.random_bool(0.5) {
                    stream.handshake().expect("handshake");
                }
                drop(stream);
            }
        }
    }
}

/// One honest client: `rounds` pipelined batches, each reply checked byte
/// for byte. Panics on a wrong reply or any error.
pub fn honest_client(
    mode: &ClientMode,
    addr: SocketAddr,
    workload: &dyn Workload,
    client: usize,
    depth: usize,
    keep_going: &dyn Fn(u64) -> bool,
) -> u64 {
    let mut stream = Stream::connect(mode, addr, Duration::from_secs(20)).expect("connect");
    let mut round = 0;
    while keep_going(round) {
        let (request, expected) = workload.batch(client, round, depth);
        stream.write_all(&request).expect("honest send");
        let mut got = vec![0u8; expected.len()];
        stream.read_exact(&mut got).expect("honest reply");
        assert!(
            got == expected,
            "client {client} round {round}: wrong reply {:?}, expected {:?}",
            String::from_utf8_lossy(&got[..got.len().min(200)]),
            String::from_utf8_lossy(&expected[..expected.len().min(200)])
        );
        round += 1;
    }
    round
}

/// Client ids from here up belong to faulty clients (honest ones count
/// from 0).
pub const FAULTY_CLIENT_IDS: usize = 1_000_000;

/// A storm's shape.
#[derive(Debug, Clone)]
pub struct Storm {
    pub honest_clients: usize,
    pub depth: usize,
    /// How long the honest clients keep sending batches (at least one
    /// each). Faulty clients run until then, each kind at least once.
    pub duration: Duration,
    /// Threads per fault kind.
    pub faulty_per_kind: usize,
    pub seed: u64,
}

/// What a storm did.
#[derive(Debug, Default)]
pub struct StormReport {
    /// Checked honest batches.
    pub honest_batches: u64,
    /// Faults injected, per kind, in [`Fault::ALL`] order.
    pub faults: Vec<(Fault, u64)>,
}

/// Runs honest clients (every reply checked) and faulty clients of every
/// kind that applies to `mode` at once, until the honest clients have done
/// their time; then waits for the faulty ones to finish their current
/// fault. Panics if any honest reply is wrong or any client hangs.
pub fn run_storm(
    mode: &ClientMode,
    addr: SocketAddr,
    workload: Arc<dyn Workload>,
    storm: &Storm,
) -> StormReport {
    let done = Arc::new(AtomicBool::new(false));
    let kinds: Vec<Fault> = Fault::ALL.into_iter().filter(|f| f.applies(mode)).collect();
    let counts: Arc<Vec<AtomicU64>> = Arc::new(kinds.iter().map(|_| AtomicU64::new(0)).collect());
    let mut faulty = Vec::new();
    for (k, &fault) in kinds.iter().enumerate() {
        for t in 0..storm.faulty_per_kind {
            let (mode, workload, done, counts) = (
                mode.clone(),
                Arc::clone(&workload),
                Arc::clone(&done),
                Arc::clone(&counts),
            );
            let seed = storm.seed ^ ((k as u64) << 32) ^ t as u64;
            faulty.push(
                std::thread::Builder::new()
                    .name(format!("fault-{fault:?}"))
                    .spawn(move || {
                        let mut rng = super::rng(seed);
                        // At least one of each kind, however short the storm.
                        loop {
                            let client = FAULTY_CLIENT_IDS + k * 100 + t;
                            inject(fault, &mode, addr, &*workload, &mut rng, client);
                            counts[k].fetch_add(1, Ordering::Relaxed);
                            if done.load(Ordering::Relaxed) {
                                break;
                            }
                        }
                    })
                    .unwrap(),
            );
        }
    }
    let honest: Vec<_> = (0..storm.honest_clients)
        .map(|client| {
            let (mode, workload) = (mode.clone(), Arc::clone(&workload));
            let (depth, duration) = (storm.depth, storm.duration);
            let start = Instant::now();
            std::thread::spawn(move || {
                honest_client(&mode, addr, &*workload, client, depth, &|round| {
                    round == 0 || start.elapsed() < duration
                })
            })
        })
        .collect();
    let mut report = StormReport::default();
    let mut failure = None;
    for h in honest {
        match h.join() {
            Ok(batches) => report.honest_batches += batches,
            Err(panic) => failure = failure.or(Some(panic)),
        }
    }
    done.store(true, Ordering::Relaxed);
    for f in faulty {
        if let Err(panic) = f.join() {
            failure = failure.or(Some(panic));
        }
    }
    if let Some(panic) = failure {
        std::panic::resume_unwind(panic);
    }
    report.faults = kinds
        .iter()
        .zip(counts.iter())
        .map(|(&f, c)| (f, c.load(Ordering::Relaxed)))
        .collect();
    report
}
