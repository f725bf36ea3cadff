//! rustls over a non-blocking socket.
//!
//! The order of operations follows rustls's own guidance: after `read_tls`,
//! always `process_new_packets`, then drain `reader()`. An error from
//! `process_new_packets` is fatal and sticky: one last `write_tls` sends the
//! alert, then the stream is done. What rustls wants next (`wants_write`,
//! `is_handshaking`) is asked of rustls every time, never cached.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use rustls::Connection;

use crate::transport::{progress, IoState, Progress, TransportError};
use crate::RecvBuf;

const READ_CHUNK: usize = 16 * 1024;

/// A TLS session over a socket; both are owned here. Reached through
/// [`Transport::Tls`](crate::Transport::Tls).
#[derive(Debug)]
pub struct TlsStream {
    pub(crate) sock: TcpStream,
    pub(crate) conn: Connection,
    /// The session's fatal error, returned again by every later step.
    failed: Option<rustls::Error>,
}

impl TlsStream {
    pub(crate) fn new(sock: TcpStream, conn: Connection) -> Self {
        Self {
            sock,
            conn,
            failed: None,
        }
    }

    /// After a fatal TLS error every step fails the same way: nothing more
    /// is read or written on a session rustls has given up on.
    fn check_failed(&self) -> Result<(), TransportError> {
        match &self.failed {
            Some(e) => Err(TransportError::Tls(e.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn read(
        &mut self,
        dst: &mut RecvBuf,
        budget: usize,
    ) -> Result<Progress, TransportError> {
        self.check_failed()?;
        let mut total = 0;
        loop {
            // Plaintext rustls already holds comes first.
            match self.drain_plaintext(dst, &mut total)? {
                Some(state) => return Ok(progress(total, state)),
                None if total >= budget => return Ok(progress(total, IoState::Ready)),
                None => {}
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => {
                    self.process()?;
                    self.drain_plaintext(dst, &mut total)?;
                    return Ok(progress(total, IoState::Eof));
                }
                Ok(_) => self.process()?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(progress(total, IoState::Drained));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TransportError::Io(e)),
            }
        }
    }

    /// Moves decrypted bytes into `dst`. `Some(Eof)` once the peer closed
    /// (close_notify, or EOF without it).
    fn drain_plaintext(
        &mut self,
        dst: &mut RecvBuf,
        total: &mut usize,
    ) -> Result<Option<IoState>, TransportError> {
        loop {
            let spare = dst.spare(READ_CHUNK);
            match self.conn.reader().read(spare) {
                Ok(0) => return Ok(Some(IoState::Eof)),
                Ok(n) => {
                    dst.filled(n);
                    *total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                // EOF without close_notify: the peer is gone all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(Some(IoState::Eof))
                }
                Err(e) => return Err(TransportError::Io(e)),
            }
        }
    }

    fn process(&mut self) -> Result<(), TransportError> {
        if let Err(e) = self.conn.process_new_packets() {
            // Sticky and fatal: try once to send the alert rustls queued.
            let _ = self.conn.write_tls(&mut self.sock);
            self.failed = Some(e.clone());
            return Err(TransportError::Tls(e));
        }
        Ok(())
    }

    /// Encrypts as much of `src` as rustls will buffer, then writes records.
    pub(crate) fn write(&mut self, src: &[u8]) -> Result<Progress, TransportError> {
        self.check_failed()?;
        let taken = self.conn.writer().write(src).map_err(TransportError::Io)?;
        let state = self.flush()?;
        Ok(progress(taken, state))
    }

    /// Writes queued records until none are left (`Ready`) or the socket is
    /// full (`Drained`).
    pub(crate) fn flush(&mut self) -> Result<IoState, TransportError> {
        self.check_failed()?;
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(TransportError::Io(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(IoState::Drained),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TransportError::Io(e)),
            }
        }
        Ok(IoState::Ready)
    }
}
