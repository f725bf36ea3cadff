#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

// The surface a server author uses, named one by one so that nothing the
// runtime crate makes public for its own tests leaks into this crate's
// semver promise.
pub use baton_io_threads::WorkerStats;
pub use baton_runtime::recycle_buffer;
pub use baton_runtime::{
    AfterEof, Builder, ByteStream, CloseReason, ClosedCounts, Codec, Config, ConnId, ConnInfo,
    Connect, ConnectError, Ctx, IoActivation, LoopHandle, NoCodec, Origin, OutBuf, ProtocolError,
    ProtocolErrorKind, RecvBuf, RunReport, SendError, Server, Service, StatsSnapshot, Stopped,
    TimerId, TlsFailure,
};

pub mod tls {
    //! TLS settings: what [`Builder::listen_tls`](crate::Builder::listen_tls)
    //! and [`LoopHandle::reload_tls`](crate::LoopHandle::reload_tls) take,
    //! and what a handshake negotiated ([`TlsInfo`]).
    //!
    //! `rustls` is re-exported because its types appear in this surface
    //! (`ServerConfig`, `ProtocolVersion`, `CipherSuite`): use it rather than
    //! a rustls of your own so the versions cannot drift apart.

    pub use baton_tls::{
        client_config_trusting, crypto_provider, generate_self_signed, rustls, CertSource,
        ClientAuth, ClientTlsSettings, SniCert, TlsConfigError, TlsInfo, TlsSettings,
    };

    // The transport the runtime drives. Tests and load generators reuse it
    // as a non-blocking TLS client; it is not part of the serving API and
    // may change without a version bump.
    #[doc(hidden)]
    pub use baton_tls::{IoState, Progress, ReadMode, TlsStream, Transport, TransportError};
}

// The IO thread pool's machinery (pool, inbox, slots, signals). Internal:
// reachable for benches and tests that measure it, not part of the
// serving API and may change without a version bump.
#[doc(hidden)]
pub use baton_io_threads as io_threads;
