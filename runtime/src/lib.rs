//! baton's main event loop.
//!
//! One thread, the loop's, owns the poller, the connection table, timers,
//! listeners and the application's [`Service`]. IO threads (optional) do
//! socket reads and writes and run the [`Codec`]; a connection is *moved* to
//! one and moved back, never shared. IO threads cannot reach the poller: they
//! post completions to a lock-free queue and wake the loop through a handle
//! that can only notify.
//!
//! Start with [`Server::builder`], implement [`Service`] and [`Codec`], and
//! use [`LoopHandle`] from other threads. `ARCHITECTURE.md` in the
//! repository explains the design.
//!
//! Linux only: the read and write shortcuts and the handling of a peer's
//! end rely on what edge-triggered epoll reports (tested in the reactor's
//! `kernel_edges`), and the vendored `polling` patch is to its epoll backend.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "baton's runtime relies on Linux's epoll semantics; other platforms are not supported"
);

mod accept;
mod activation;
mod builder;
mod byte_stream;
mod close_reason;
mod config;
mod conn;
mod conn_id;
mod conn_timers;
mod connect;
mod context;
mod control;
mod core;
mod deliver;
mod handle;
mod lifecycle;
mod listener;
mod out_buf;
mod output;
mod plan;
mod reactor;
mod server;
mod service;
mod shutdown;
mod stats;
mod table;
mod timers;
mod tls_failure;

pub use activation::IoActivation;
pub use baton_tls::{recycle as recycle_buffer, RecvBuf};
pub use builder::{Builder, NoCodec};
pub use byte_stream::ByteStream;
pub use close_reason::CloseReason;
pub use config::Config;
pub use conn_id::ConnId;
pub use connect::{Connect, ConnectError};
pub use context::Ctx;
pub use handle::{LoopHandle, Stopped};
pub use out_buf::OutBuf;
pub use server::{RunReport, Server};
pub use service::{
    AfterEof, Codec, ConnInfo, Origin, ProtocolError, ProtocolErrorKind, SendError, Service,
};
pub use stats::{ClosedCounts, StatsSnapshot};
pub use timers::TimerId;
pub use tls_failure::TlsFailure;
