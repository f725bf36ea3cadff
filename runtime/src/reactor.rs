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
    /// The edge reported the peer's end: a FIN (`EPOLLRDHUP`), a hang-up or
    /// an error (a reset). The end sits behind any data that came with it,
    /// and no later edge reports it again, so whoever reads must read to it.
    pub(crate) peer_end: bool,
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
    /// The caller must call [`deregister`](Self::deregister) before the
    /// source is dropped; baton's single close path does.
    pub(crate) fn register(&self, source: &impl AsRawFd, key: usize) -> io::Result<()> {
        self.assert_owner();
        self.stats.poller_ctl_calls.add(1);
        // SAFETY: `polling` requires the source to be deleted from the poller
        // before it is closed. Every socket registered here is owned by a
        // listener or connection whose only close path calls `deregister`
        // first (`EventLoop::close_now`, `EventLoop::stop_listening`).
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
            peer_end: e.is_interrupt() || e.is_err().unwrap_or(false),
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
        let reactor = Reactor::new(Arc::new(Stats::default())).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        reactor.register(&server, 7).unwrap();
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
            got.len() == 1 && got[0].readable && !got[0].peer_end,
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
            got.len() == 1 && got[0].readable && got[0].peer_end,
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
            got.len() == 1 && got[0].readable && got[0].peer_end,
            "{got:?}"
        );
    }
}
