//! Graceful shutdown under load returns by its deadline even when some
//! clients never read or keep the server writing to them, closes every
//! connection and joins every IO thread.

mod util;

#[path = "../examples/echo/service.rs"]
mod echo;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton::{CloseReason, Config, ConnId, ConnInfo, Ctx, IoActivation, Service, TimerId};
use util::{spawn_server, thread_names};

/// The tests here look at the process's thread names to see IO threads come
/// and go, so they run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

const BUSY: usize = 200;
const NEVER_READ: usize = 8;

/// The most a socket's send buffer grows to (Linux autotuning up to
/// `tcp_wmem`'s maximum). Output held for a client that never reads is
/// unflushable only beyond it: with less, the kernel takes it all and the
/// shutdown flushes that client after all.
fn max_send_buffer() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20)
}

#[test]
fn shutdown_under_load_meets_its_deadline_and_joins_io_threads() {
    let _serial = one_at_a_time();
    // Each never-reader's output reaches the soft limit before its reading
    // pauses: 2 MiB more than its socket can ever take, so it cannot be
    // flushed by the deadline. (At 256 KiB the kernel sometimes took all of
    // it, and the shutdown rightly flushed and closed those clients.)
    let config = Config::default()
        .io_threads(2)
        .io_activation(IoActivation::Always)
        .output_soft_limit(max_send_buffer() + (2 << 20));
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

/// One client that keeps the server writing to it: it sends far more than
/// the server buffers for it, then reads the echo back as it comes. It is
/// slow because the server is: with the smallest send buffer the kernel
/// allows and a loop busy with other work, the server writes about 4 KiB to
/// it per loop iteration, so 16 MiB of output take seconds to drain, and
/// each of those writes is answered by the client's read, which frees the
/// send buffer and raises a new writable edge. Returns its writer and
/// reader threads.
fn slow_reader(addr: SocketAddr, stop: Arc<AtomicBool>) -> [std::thread::JoinHandle<()>; 2] {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream = TcpStream::from(socket);
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let writer_stop = Arc::clone(&stop);
    let write = std::thread::spawn(move || {
        let chunk = vec![7u8; 64 << 10];
        // Bounded: at most 64 MiB, and nothing past the stop flag.
        for _ in 0..1024 {
            if writer_stop.load(Ordering::Relaxed) || writer.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut reader = stream;
    let read = std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        while !stop.load(Ordering::Relaxed) {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return, // closed by the shutdown
                Ok(_) => {}
            }
        }
    });
    [write, read]
}

const SLOW_READERS: usize = 8;

/// Echo on a loop that is busy: a periodic job (like Redis's `serverCron`
/// expiring keys) takes about 2 ms of every loop iteration. The
/// connection an IO thread writes to in one iteration is then still away
/// from home when its client's read raises the next writable edge: the
/// race that sent connections back to write again and again after the
/// shutdown deadline. (Without the busy loop the race is still there but
/// lost only now and then, depending on the machine's load.)
struct EchoWithCron;

const CRON_TOKEN: u64 = 1;

impl Service for EchoWithCron {
    type Codec = echo::EchoCodec;
    type ConnState = ();
    type Command = ();

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}
    fn codec(&mut self, _: &ConnInfo) -> echo::EchoCodec {
        echo::EchoCodec::default()
    }
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.set_timer(Duration::from_millis(1), CRON_TOKEN);
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), frame: Vec<u8>) {
        let _ = ctx.send(conn, frame);
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: TimerId, _: u64) {
        let work = Instant::now();
        while work.elapsed() < Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        // Due again in the next iteration (a zero delay would be due in
        // this one's pass over the timers, again and again).
        ctx.set_timer(Duration::from_micros(1), CRON_TOKEN);
    }
}

fn a_short_grace_is_met_while_clients_keep_the_server_writing(io_threads: usize) {
    let _serial = one_at_a_time();
    let config = Config::default()
        .io_threads(io_threads)
        .io_activation(IoActivation::Always)
        .output_soft_limit(16 << 20)
        // Rounded up to the kernel's minimum.
        .socket_send_buffer(Some(1));
    let server = spawn_server(config, || EchoWithCron);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..SLOW_READERS)
        .flat_map(|_| slow_reader(server.addr, Arc::clone(&stop)))
        .collect();
    // Each client has 16 MiB waiting: seconds of output at the rate the
    // server writes to it, so none can be flushed within the grace.
    server.wait_for("every slow reader paused", Duration::from_secs(60), |s| {
        s.connections_open == SLOW_READERS as u64 && s.connections_paused == SLOW_READERS as u64
    });

    let grace = Duration::from_millis(200);
    let begun = Instant::now();
    let report = server.stop(grace);
    let took = begun.elapsed();
    stop.store(true, Ordering::Relaxed);
    // Before the fix, connections on an IO thread at the deadline were sent
    // back to write again and again and stayed open until the 5 s close
    // flush timeout (or until drained).
    assert!(
        took < Duration::from_secs(2),
        "shutdown with a {grace:?} grace took {took:?}"
    );
    assert_eq!(report.stats.connections_open, 0);
    assert_eq!(
        report.stats.closed_for(&CloseReason::Shutdown),
        SLOW_READERS as u64
    );
    assert_eq!(report.stats.closed_for(&CloseReason::FlushTimeout), 0);
    assert_eq!(
        report.closed_at_deadline, SLOW_READERS,
        "none could be flushed: every one was closed at the deadline"
    );
    for client in clients {
        client.join().expect("client thread");
    }
}

#[test]
fn with_io_threads_a_short_grace_closes_busy_connections_at_the_deadline() {
    a_short_grace_is_met_while_clients_keep_the_server_writing(2);
}

#[test]
fn inline_a_short_grace_closes_busy_connections_at_the_deadline() {
    a_short_grace_is_met_while_clients_keep_the_server_writing(0);
}

/// A grace of `Duration::MAX` means no deadline (it used to overflow
/// computing one): idle connections close at once, one whose client holds
/// the server's output back stays until that client closes, and then `run`
/// returns.
#[test]
fn shutdown_with_a_grace_of_duration_max_completes_once_clients_close() {
    let _serial = one_at_a_time();
    let server = spawn_server(Config::default(), || echo::Echo);
    let mut idle: Vec<_> = (0..5)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    for stream in &mut idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"ping").unwrap();
        let mut back = [0u8; 4];
        stream.read_exact(&mut back).unwrap();
    }
    // A client that never reads: the server's echo backs up in its output.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let stuck = TcpStream::from(socket);
    stuck.set_nonblocking(true).unwrap();
    let chunk = vec![3u8; 64 << 10];
    let filling = Instant::now();
    while server.handle.stats().connections_paused == 0 {
        assert!(filling.elapsed() < Duration::from_secs(30), "never paused");
        match (&stuck).write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("write: {e}"),
        }
    }

    server.handle.shutdown(Duration::MAX);
    server.wait_for(
        "the idle connections closed",
        Duration::from_secs(10),
        |s| s.closed_for(&CloseReason::Shutdown) == 5,
    );
    for stream in &mut idle {
        let mut buf = [0u8; 16];
        assert_eq!(stream.read(&mut buf).unwrap(), 0, "closed after the echo");
    }
    // No deadline: the stuck connection's output waits for it.
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.handle.is_running());
    assert_eq!(server.handle.stats().connections_open, 1);
    drop(stuck);
    let report = server.stop(Duration::MAX);
    assert_eq!(report.stats.connections_open, 0);
    assert_eq!(report.closed_at_deadline, 0);
    assert_eq!(report.stats.closed_total(), 6);
    assert_eq!(report.stats.closed_for(&CloseReason::FlushTimeout), 0);
}
