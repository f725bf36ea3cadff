//! Configuring a server before it runs: limits, listen addresses, TLS.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use baton_tls::rustls::ServerConfig;

use crate::{Config, Server, Service};

/// Collects configuration and listen addresses; [`build`](Builder::build)
/// makes the server on the calling thread.
///
/// Setters apply in any order: [`io_threads`](Self::io_threads) given
/// before or after [`config`](Self::config) wins over the configuration's
/// own `io_threads`.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    config: Config,
    io_threads: Option<usize>,
    addrs: Vec<(SocketAddr, Option<Arc<ServerConfig>>)>,
}

impl Builder {
    /// Replaces the whole configuration (an [`io_threads`](Self::io_threads)
    /// given separately still applies).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Number of IO threads (0: all IO inline on the loop).
    pub fn io_threads(mut self, n: usize) -> Self {
        self.io_threads = Some(n);
        self
    }

    /// Adds a plain TCP listen address (IPv4 or IPv6; port 0 picks a free
    /// port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.addrs.push((addr, None));
        self
    }

    /// Adds a TLS listen address. Build `tls` with
    /// [`TlsSettings::build`](baton_tls::TlsSettings::build); replace it at run
    /// time with [`LoopHandle::reload_tls`](crate::LoopHandle::reload_tls).
    pub fn listen_tls(mut self, addr: SocketAddr, tls: Arc<ServerConfig>) -> Self {
        self.addrs.push((addr, Some(tls)));
        self
    }

    /// Binds the listeners, creates the poller and starts the IO threads.
    ///
    /// The returned server is `!Send`: it must run on the thread that built
    /// it, which becomes the loop's thread.
    pub fn build<S: Service>(mut self, service: S) -> io::Result<Server<S>> {
        if let Some(n) = self.io_threads {
            self.config.io_threads = n;
        }
        Server::new(self.config, &self.addrs, service)
    }
}

impl Server<()> {
    /// Starts configuring a server.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

/// The unit service exists only so that `Server::builder()` needs no type
/// annotation; it accepts connections and ignores them.
impl Service for () {
    type Codec = NoCodec;
    type ConnState = ();
    type Command = ();
    fn codec(&mut self, _: &crate::ConnInfo) -> NoCodec {
        NoCodec
    }
    fn on_open(&mut self, _: &mut crate::Ctx<'_, Self>, _: crate::ConnId) {}
    fn on_frame(&mut self, _: &mut crate::Ctx<'_, Self>, _: crate::ConnId, _: &mut (), _: ()) {}
}

/// The codec of the unit service `()`. Decodes nothing.
#[derive(Debug)]
pub struct NoCodec;

impl crate::Codec for NoCodec {
    type In = ();
    type Out = ();
    fn decode(&mut self, _: &mut baton_tls::RecvBuf) -> Result<Option<()>, crate::ProtocolError> {
        Ok(None)
    }
    fn encode(&mut self, _: (), _: &mut Vec<u8>) {}
    fn encoded_len(_: &()) -> usize {
        0
    }
}
