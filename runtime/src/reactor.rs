//! The only module that calls `polling`. Nothing else in baton registers,
//! modifies or deletes a source, or waits.
//!
//! Mode: every socket is registered once, **edge-triggered**, for both read
//! and write. An edge means "something changed"; the loop records it as
//! readiness on the connection and the IO step reads or writes until
//! `WouldBlock`. So steady state needs no `epoll_ctl` at all (oneshot would
//! need one per event to re-arm; level would keep reporting a connection
//! while it is away on an IO thread). See ARCHITECTURE.md.
//!
//! `Reactor` is `!Send` and `!Sync`: it stays on the thread that created it,
//! the loop's. IO threads get only a [`PollerWaker`].

use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use baton_io_threads::Wake;
use polling::{Event, Events, PollMode, Poller};

use crate::stats::Stats;

/// What the loop needs from one poller event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Readiness {
    pub(crate) key: usize,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// A short read would not prove the socket drained, so whoever reads
    /// must read until `WouldBlock`: the edge reported the peer's end (a FIN,
    /// `EPOLLRDHUP`; a hang-up; an error, such as a reset), which sits behind
    /// the data that came with it and is not reported again, or urgent data
    /// (`EPOLLPRI`), at whose mark the kernel ends a read early.
    pub(crate) read_to_would_block: bool,
}

pub(crate) struct Reactor {
    poller: Arc<Poller>,
    events: Events,
    /// Where `epoll_ctl` calls are counted.
    stats: Arc<Stats>,
    #[cfg(debug_assertions)]
    owner: std::thread::ThreadId,
    /// `*const ()` is neither `Send` nor `Sync`: the poller stays on the loop.
    _single_thread: PhantomData<*const ()>,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor").finish_non_exhaustive()
    }
}

impl Reactor {
    pub(crate) fn new(stats: Arc<Stats>) -> io::Result<Self> {
        Ok(Self {
            poller: Arc::new(Poller::new()?),
            events: Events::new(),
            stats,
            #[cfg(debug_assertions)]
            owner: std::thread::current().id(),
            _single_thread: PhantomData,
        })
    }

    /// The narrow handle other threads use: it can only wake the wait.
    pub(crate) fn waker(&self) -> PollerWaker {
        PollerWaker(Arc::clone(&self.poller))
    }

    /// Registers `source` under `key`, edge-triggered, for read and write.
    ///
    /// The caller should call [`deregister`](Self::deregister) before the
    /// source is dropped: connections do in `Server::close_now`, listeners
    /// in `Server::begin_shutdown`.
    pub(crate) fn register(&self, source: &impl AsRawFd, key: usize) -> io::Result<()> {
        self.assert_owner();
        self.stats.poller_ctl_calls.add(1);
        // SAFETY: `polling` asks that a source be deleted from the poller
        // before it is closed, because some of its backends keep state per
        // source. On the normal paths it is (see above). A few abnormal
        // paths drop registered sockets with the poller still alive: a
        // `build` that fails after a listener was registered, `run`
        // returning an error from the wait, and unwinding. baton runs only
        // on Linux (epoll), where closing the last descriptor of a socket
        // removes it from every epoll set and the backend keeps nothing per
        // source, so no event can name a closed descriptor: the keys are
        // slab indices checked against the connection's generation anyway.
        unsafe {
            self.poller
                .add_with_mode(source.as_raw_fd(), Event::all(key), PollMode::Edge)
        }
    }

    /// Removes `source` from the poller. Call before dropping it.
    pub(crate) fn deregister(&self, source: &impl std::os::fd::AsFd) -> io::Result<()> {
        self.assert_owner();
        self.stats.poller_ctl_calls.add(1);
        self.poller.delete(source)
    }

    /// Waits for events (or a wake-up) up to `timeout`; `None` waits forever.
    /// The events replace the previous batch in `out`.
    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Readiness>,
    ) -> io::Result<()> {
        self.assert_owner();
        self.events.clear();
        self.poller.wait(&mut self.events, timeout)?;
        out.clear();
        out.extend(self.events.iter().map(|e| Readiness {
            key: e.key,
            readable: e.readable,
            writable: e.writable,
            read_to_would_block: e.is_interrupt() || e.is_err().unwrap_or(false) || e.is_priority(),
        }));
        Ok(())
    }

    /// Debug builds check that every poller call comes from the loop's own
    /// thread: the type system already rules it out, this catches a future
    /// `unsafe impl Send` that would let it in.
    fn assert_owner(&self) {
        #[cfg(debug_assertions)]
        assert_eq!(
            std::thread::current().id(),
            self.owner,
            "poller used off the loop thread"
        );
    }
}

/// Wakes the loop's wait, and nothing else: the only piece of the poller an
/// IO thread or a [`LoopHandle`](crate::LoopHandle) can reach.
#[derive(Debug, Clone)]
pub(crate) struct PollerWaker(Arc<Poller>);

impl Wake for PollerWaker {
    fn wake(&self) {
        // `notify` fails only if its eventfd write fails, which needs a
        // counter near overflow; notifications coalesce long before that.
        let _ = self.0.notify();
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    /// A reactor smuggled past its `!Send` bound, the way a careless
    /// `unsafe impl Send` in the future would let one through.
    struct Smuggled(Reactor);

    // SAFETY: deliberately defeats the `!Send` design bound (not a memory
    // safety bound: `Poller` itself is `Send + Sync`) to show that the
    // debug check stops a poller call from another thread. Only one thread
    // touches the reactor at a time: the test waits on `join`.
    unsafe impl Send for Smuggled {}

    impl Smuggled {
        // A method, so the closure below captures the whole wrapper (a
        // pattern would capture only the `!Send` field).
        fn into_inner(self) -> Reactor {
            self.0
        }
    }

    #[test]
    fn a_poller_call_off_the_loop_thread_panics_in_debug_builds() {
        let smuggled = Smuggled(Reactor::new(Arc::new(Stats::default())).unwrap());
        let outcome = std::thread::spawn(move || {
            let mut reactor = smuggled.into_inner();
            let mut out = Vec::new();
            let _ = reactor.wait(Some(Duration::ZERO), &mut out);
        })
        .join();
        let panic = outcome.expect_err("the wait must be refused off the loop thread");
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        assert!(
            message.contains("poller used off the loop thread"),
            "{message}"
        );
    }

    #[test]
    fn the_loop_thread_itself_may_wait() {
        let mut reactor = Reactor::new(Arc::new(Stats::default())).unwrap();
        reactor.wait(Some(Duration::ZERO), &mut Vec::new()).unwrap();
    }
}

/// The kernel behaviour the loop relies on (Linux epoll, edge-triggered, as
/// registered here): when a peer's end arrives with or before the loop's
/// wait, the one edge that reports the data reports the end too.
#[cfg(test)]
mod kernel_edges {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};

    fn registered() -> (Reactor, TcpStream, TcpStream) {
        let mut reactor = Reactor::new(Arc::new(Stats::default())).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        reactor.register(&server, 7).unwrap();
        // Registration reports the socket writable: consume that edge, so
        // each test sees only the edges its own actions raise.
        let first = events(&mut reactor);
        assert!(first.len() == 1 && first[0].writable, "{first:?}");
        (reactor, server, client)
    }

    /// Waits until the server socket holds `n` bytes, then a little longer
    /// for what follows them (a FIN or reset) to be queued too.
    fn until_queued(server: &TcpStream, n: usize) {
        let mut peek = vec![0; n];
        while server.peek(&mut peek).unwrap_or(0) < n {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    fn events(reactor: &mut Reactor) -> Vec<Readiness> {
        let mut out = Vec::new();
        reactor
            .wait(Some(Duration::from_millis(50)), &mut out)
            .unwrap();
        out
    }

    #[test]
    fn data_alone_is_readable_without_an_end() {
        let (mut reactor, server, mut client) = registered();
        client.write_all(b"PING\r\n").unwrap();
        until_queued(&server, 6);
        let got = events(&mut reactor);
        assert!(
            got.len() == 1 && got[0].readable && !got[0].read_to_would_block,
            "{got:?}"
        );
    }

    #[test]
    fn data_then_fin_before_the_wait_is_one_edge_that_reports_the_end() {
        let (mut reactor, mut server, mut client) = registered();
        client.write_all(b"PING\r\n").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        until_queued(&server, 6);
        let got = events(&mut reactor);
        assert!(
            got.len() == 1 && got[0].readable && got[0].read_to_would_block,
            "{got:?}"
        );
        // Reading the data (a short read) raises no further edge: the end
        // was reported once, on the edge above.
        assert_eq!(server.read(&mut [0; 64]).unwrap(), 6);
        assert!(events(&mut reactor).is_empty());
        assert_eq!(server.read(&mut [0; 64]).unwrap(), 0, "the FIN was queued");
    }

    #[test]
    fn data_then_reset_before_the_wait_is_one_edge_that_reports_the_end() {
        let (mut reactor, server, client) = registered();
        (&client).write_all(b"PING\r\n").unwrap();
        until_queued(&server, 6);
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(client);
        std::thread::sleep(Duration::from_millis(20));
        let got = events(&mut reactor);
        assert!(
            got.len() == 1 && got[0].readable && got[0].read_to_would_block,
            "{got:?}"
        );
    }

    /// What makes the short-read shortcut sound while no end was reported:
    /// data that arrives after a short read raises a new edge.
    #[test]
    fn data_after_a_short_read_raises_a_new_edge() {
        let (mut reactor, mut server, mut client) = registered();
        client.write_all(b"PING\r\n").unwrap();
        until_queued(&server, 6);
        assert_eq!(events(&mut reactor).len(), 1);
        assert_eq!(server.read(&mut [0; 64]).unwrap(), 6, "a short read");
        assert!(events(&mut reactor).is_empty());
        client.write_all(b"PING\r\n").unwrap();
        until_queued(&server, 6);
        let got = events(&mut reactor);
        assert!(
            got.len() == 1 && got[0].readable && !got[0].read_to_would_block,
            "{got:?}"
        );
    }

    /// A FIN that comes after the data edge was consumed raises an edge of
    /// its own, reporting the end: a connection that read its data short
    /// learns of the end then.
    #[test]
    fn a_fin_after_the_data_edge_was_consumed_raises_a_new_edge_with_the_end() {
        let (mut reactor, mut server, mut client) = registered();
        client.write_all(b"PING\r\n").unwrap();
        until_queued(&server, 6);
        assert_eq!(events(&mut reactor).len(), 1);
        assert_eq!(server.read(&mut [0; 64]).unwrap(), 6);
        client.shutdown(Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let got = events(&mut reactor);
        assert!(
            got.len() == 1 && got[0].readable && got[0].read_to_would_block,
            "{got:?}"
        );
        assert_eq!(server.read(&mut [0; 64]).unwrap(), 0);
    }

    /// Urgent data (`MSG_OOB`, sent by any client that wants to) makes
    /// Linux end a read at the urgent mark, short, with data still queued
    /// behind it and no new edge for it. The edge reports `EPOLLPRI`, which
    /// the reactor turns into `read_to_would_block`.
    #[test]
    fn urgent_data_ends_a_read_early_and_its_edge_says_read_to_would_block() {
        let (mut reactor, mut server, client) = registered();
        let sock = socket2::SockRef::from(&client);
        // One segment train: data, the urgent byte, more data.
        sock.set_tcp_cork(true).unwrap();
        (&client).write_all(b"PING\r\n").unwrap();
        sock.send_out_of_band(b"X").unwrap();
        (&client).write_all(b"ECHO\r\n").unwrap();
        sock.set_tcp_cork(false).unwrap();
        until_queued(&server, 6);
        let got = events(&mut reactor);
        assert!(
            got.len() == 1 && got[0].readable && got[0].read_to_would_block,
            "{got:?}"
        );
        let mut buf = [0; 64];
        assert_eq!(server.read(&mut buf).unwrap(), 6, "stops at the mark");
        assert!(events(&mut reactor).is_empty(), "no edge for the rest");
        let n = server.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ECHO\r\n", "the rest was queued all along");
    }

    /// What makes the short-write shortcut sound: once a write was short
    /// (the send buffer full), space freed by the peer raises a new edge.
    #[test]
    fn space_freed_after_a_short_write_raises_a_writable_edge() {
        let (mut reactor, mut server, mut client) = registered();
        let chunk = vec![0u8; 1 << 20];
        let mut sent = 0;
        loop {
            match server.write(&chunk) {
                Ok(n) if n == chunk.len() => sent += n,
                Ok(n) => {
                    sent += n;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let _ = events(&mut reactor);
        assert!(events(&mut reactor).is_empty());
        let mut sink = vec![0u8; 1 << 20];
        let mut read = 0;
        while read < sent {
            read += client.read(&mut sink).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        let got = events(&mut reactor);
        assert!(got.len() == 1 && got[0].writable, "{got:?}");
    }

    #[test]
    fn a_reset_after_a_fin_that_was_read_raises_an_edge_but_only_so_error_tells() {
        // A half-closed connection kept open for writing: the peer's FIN was
        // read, then the peer resets. Linux raises an edge, but a read still
        // returns EOF (the FIN came first); the reset is in SO_ERROR
        // (`conn.rs` checks it on a read after the end).
        let (mut reactor, mut server, client) = registered();
        client.shutdown(Shutdown::Write).unwrap();
        let _ = events(&mut reactor);
        let mut buf = [0u8; 16];
        assert_eq!(server.read(&mut buf).unwrap(), 0, "the FIN");
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(client);
        std::thread::sleep(Duration::from_millis(20));
        let got = events(&mut reactor);
        assert!(got.len() == 1 && got[0].readable, "{got:?}");
        assert_eq!(server.read(&mut buf).unwrap(), 0, "still only the end");
        let error = server.take_error().unwrap().expect("the reset");
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }

    // Outbound connects (`connect.rs`) take no step until an edge comes,
    // then ask the kernel (`SO_ERROR`, the peer's address) what happened:
    // they rely only on an edge coming when the connect ends, either way,
    // and on none coming while it is pending.

    /// Waits (bounded) for the first edge of a socket registered as key 7.
    fn first_edge(reactor: &mut Reactor) -> Readiness {
        for _ in 0..100 {
            if let Some(edge) = events(reactor).first() {
                return *edge;
            }
        }
        panic!("no edge within 5 s");
    }

    #[test]
    fn a_connect_that_completes_raises_a_writable_edge() {
        let mut reactor = Reactor::new(Arc::new(Stats::default())).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let started = crate::connect::start(listener.local_addr().unwrap(), None).unwrap();
        assert!(started.result.is_ok(), "{:?}", started.result);
        reactor.register(&started.stream, 7).unwrap();
        let edge = first_edge(&mut reactor);
        assert!(edge.writable && !edge.read_to_would_block, "{edge:?}");
        assert!(crate::connect::finish(&started.stream).unwrap());
    }

    #[test]
    fn a_refused_connect_raises_an_edge_and_leaves_its_error_in_so_error() {
        let mut reactor = Reactor::new(Arc::new(Stats::default())).unwrap();
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let started = crate::connect::start(addr, None).unwrap();
        match started.result {
            // Refused at once: reported without waiting for an edge.
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
            Ok(_) => {
                reactor.register(&started.stream, 7).unwrap();
                let edge = first_edge(&mut reactor);
                assert!(edge.read_to_would_block, "an error edge: {edge:?}");
                let err = crate::connect::finish(&started.stream).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
            }
        }
    }

    #[test]
    fn a_connect_whose_syn_is_dropped_raises_no_edge_and_is_still_pending() {
        // Backlog 0 with its one slot taken: Linux drops further SYNs.
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).unwrap();
        socket.listen(0).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        let _first = TcpStream::connect(addr).unwrap();
        let _second = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        let mut reactor = Reactor::new(Arc::new(Stats::default())).unwrap();
        let started = crate::connect::start(addr, None).unwrap();
        assert!(matches!(started.result, Ok(false)), "{:?}", started.result);
        reactor.register(&started.stream, 7).unwrap();
        assert!(events(&mut reactor).is_empty());
        assert!(!crate::connect::finish(&started.stream).unwrap(), "pending");
    }
}

/// What the patched `polling` wait (vendor/polling/BATON-PATCH.md) must
/// still guarantee now that it makes one system call when nothing woke it:
/// `epoll_wait`'s own timeout never ends a wait before its deadline, and a
/// wake-up is neither lost nor reported twice.
#[cfg(test)]
mod wait_semantics {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_wait_never_ends_before_its_deadline() {
        let mut reactor = Reactor::new(Arc::new(Stats::default())).unwrap();
        let mut out = Vec::new();
        // Sub-millisecond parts: epoll_wait counts whole milliseconds, so
        // these are rounded up, never down.
        for micros in [300, 1_300, 2_700, 10_050] {
            let timeout = Duration::from_micros(micros);
            let started = Instant::now();
            reactor.wait(Some(timeout), &mut out).unwrap();
            assert!(out.is_empty(), "{out:?}");
            assert!(
                started.elapsed() >= timeout,
                "a {timeout:?} wait ended after {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn a_wake_ends_one_wait_and_the_next_wake_ends_the_next() {
        let mut reactor = Reactor::new(Arc::new(Stats::default())).unwrap();
        let waker = reactor.waker();
        let mut out = Vec::new();
        // Generous: a lost wake-up shows as the full minute.
        let forever = Some(Duration::from_secs(60));
        for round in 0..3 {
            let started = Instant::now();
            let wake = {
                let waker = waker.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(5));
                    waker.wake();
                })
            };
            reactor.wait(forever, &mut out).unwrap();
            wake.join().unwrap();
            assert!(out.is_empty(), "a wake-up is not an event: {out:?}");
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "round {round}: the wake-up was lost"
            );
            // Consumed: the next wait sleeps to its deadline.
            let started = Instant::now();
            let quiet = Duration::from_millis(30);
            reactor.wait(Some(quiet), &mut out).unwrap();
            assert!(started.elapsed() >= quiet, "round {round}: woken twice");
        }
    }

    /// A wake-up whose event did not fit in the event buffer is returned by
    /// the next wait, at once (the patch skips the notifier's re-arm when
    /// its event was not returned, so nothing else would report it).
    #[test]
    fn a_wake_that_did_not_fit_in_the_events_comes_with_the_next_wait() {
        let poller = Poller::new().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        // SAFETY: `server` outlives the poller's use of it (deleted below).
        unsafe { poller.add_with_mode(&server, Event::all(7), PollMode::Edge) }.unwrap();
        poller.notify().unwrap();
        let mut one = Events::with_capacity(std::num::NonZeroUsize::new(1).unwrap());
        let mut socket_seen = false;
        // The socket's edge and the wake-up, one per wait; a lost wake-up
        // makes the second wait last the full minute.
        for _ in 0..2 {
            one.clear();
            let started = Instant::now();
            poller
                .wait(&mut one, Some(Duration::from_secs(60)))
                .unwrap();
            assert!(started.elapsed() < Duration::from_secs(30), "lost");
            socket_seen |= one.iter().any(|e| e.key == 7);
        }
        assert!(socket_seen, "the socket's edge was reported");
        poller.delete(&server).unwrap();
    }

    /// A wake-up that arrives while the loop is busy (not in a wait) is
    /// kept for its next wait.
    #[test]
    fn a_wake_before_the_wait_is_kept_for_it() {
        let mut reactor = Reactor::new(Arc::new(Stats::default())).unwrap();
        let mut out = Vec::new();
        reactor.waker().wake();
        let started = Instant::now();
        reactor
            .wait(Some(Duration::from_secs(60)), &mut out)
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(30), "lost");
    }
}
