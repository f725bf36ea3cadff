//! baton's transport: a non-blocking byte stream over a socket it owns,
//! plain TCP or TLS (rustls 0.23), and the TLS configuration that builds it.
//!
//! A [`Transport`] reads into a [`RecvBuf`] and writes from a byte slice. Each
//! step returns what it moved and whether the socket is drained (`WouldBlock`)
//! or closed, as a value; what the transport wants next
//! ([`Transport::wants_write`]) is recomputed from its state, never stored in
//! a flag that can drift. The caller (baton's runtime) turns that into
//! readiness it waits for.
//!
//! No threads, no poller: this crate cannot reach an event loop, so code
//! running it on an IO thread cannot either. The data path's socket calls
//! (`recv`, `send`, `sendmsg`) are in `socket_io.rs`, made directly (not
//! through glibc's cancellation-point wrappers), with the one `unsafe`
//! block: a read into a buffer's spare capacity, so a buffer handed on as a
//! frame is not replaced by zeroed storage.
//!
//! Contract shared by every step: it must be called repeatedly until it
//! reports [`IoState::Drained`] (or `Eof`) before waiting for readiness;
//! `Interrupted` is retried inside; any other error is fatal for the stream.
//! `Drained` may be reported after a short write, and after a short read in
//! [`ReadMode::ShortReadDrains`], without a final `WouldBlock` call: that is
//! only sound with **edge-triggered** readiness, which baton's runtime uses,
//! and for reads only while no edge has reported the peer's end or urgent
//! data.
#![deny(unsafe_code)]

mod client_config;
mod config;
mod recv_buf;
mod socket_io;
#[cfg(test)]
mod test_sockets;
mod tls_stream;
mod transport;

pub use client_config::ClientTlsSettings;
pub use config::{
    client_config_trusting, crypto_provider, generate_self_signed, CertSource, ClientAuth, SniCert,
    TlsConfigError, TlsSettings,
};
pub use recv_buf::{pooled_bytes, recycle, release_pooled, RecvBuf};
pub use rustls;
pub use tls_stream::TlsStream;
pub use transport::{IoState, Progress, ReadMode, TlsInfo, Transport, TransportError};
