//! rustls over a non-blocking socket.
//!
//! The order of operations follows rustls's own guidance: after `read_tls`,
//! always `process_new_packets`, then drain `reader()`. An error from
//! `process_new_packets` is fatal and sticky: one last `write_tls` sends the
//! alert, then the stream is done. What rustls wants next (`wants_write`,
//! `is_handshaking`) is asked of rustls every time, never cached.

use std::io::{self, BufRead, IoSlice, Write};
use std::net::TcpStream;
#[cfg(test)]
use std::sync::Arc;

use std::cell::Cell;

use rustls::Connection;

use crate::socket_io::{recv_into_spare, SocketWriter};
use crate::transport::{progress, IoState, Progress, ReadMode, TransportError};
use crate::RecvBuf;

/// Most ciphertext one socket read takes: a 64 KiB batch of application
/// data as records (16 x 4,118 bytes for 4 KiB messages) with room to spare,
/// so the read that returns it is short and ends the step; below the
/// allocator's 128 KiB threshold for mapping fresh pages.
const CIPHERTEXT_READ: usize = 96 * 1024;

/// Least ciphertext one socket read offers, however little budget is left:
/// one full record (16 KiB of plaintext plus its header and tag).
const MIN_CIPHERTEXT_READ: usize = 16 * 1024 + 256;

thread_local! {
    /// This thread's ciphertext buffer: filled by one socket read and handed
    /// to rustls whole before the read returns, so it is empty between
    /// calls and no connection's bytes can reach another's.
    static CIPHERTEXT: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

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
        mode: ReadMode,
    ) -> Result<Progress, TransportError> {
        self.check_failed()?;
        let mut total = 0;
        let mut short = false;
        loop {
            // Plaintext rustls already holds comes first.
            match self.drain_plaintext(dst, &mut total)? {
                Some(state) => return Ok(progress(total, state)),
                None if total >= budget => return Ok(progress(total, IoState::Ready)),
                // The last socket read was short: the socket is empty (see
                // `ReadMode::ShortReadDrains` for when that may be trusted).
                None if short => return Ok(progress(total, IoState::Drained)),
                None => {}
            }
            let mut ciphertext = CIPHERTEXT.take();
            let room = budget.saturating_sub(total);
            let fed = self.read_and_feed(&mut ciphertext, room, dst, &mut total);
            // Empty even after an error: no bytes outlive the call.
            ciphertext.clear();
            CIPHERTEXT.set(ciphertext);
            match fed? {
                Fed::Records { short_read } => {
                    short = short_read && mode == ReadMode::ShortReadDrains;
                }
                Fed::Nothing => return Ok(progress(total, IoState::Drained)),
                Fed::End => return Ok(progress(total, IoState::Eof)),
            }
        }
    }

    /// One socket read into `buf` (this thread's, empty on return), every
    /// byte of it handed to rustls and decrypted into `dst` at once.
    ///
    /// rustls reads the socket itself only into the free space of its
    /// record buffer, 4 KiB at a time when it holds no partial record: a
    /// 4 KiB message (4,118 bytes as a record) took two `recv` calls, a
    /// 64 KiB batch about eight. One `recv` of up to `CIPHERTEXT_READ`
    /// bytes here, then rustls copies from memory.
    ///
    /// The read takes at most `room` (what is left of the step's budget),
    /// but never less than one full record, so a step overshoots its
    /// budget by less than a record, as when rustls read the socket.
    fn read_and_feed(
        &mut self,
        buf: &mut Vec<u8>,
        room: usize,
        dst: &mut RecvBuf,
        total: &mut usize,
    ) -> Result<Fed, TransportError> {
        buf.clear();
        buf.reserve_exact(CIPHERTEXT_READ);
        let offered = room.clamp(MIN_CIPHERTEXT_READ, CIPHERTEXT_READ);
        let n = loop {
            match recv_into_spare(&self.sock, buf, offered) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Fed::Nothing),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TransportError::Io(e)),
            }
        };
        if n == 0 {
            // The peer's FIN: an empty read tells rustls, which then says
            // whether a close_notify came first.
            let _ = self.conn.read_tls(&mut io::empty());
            self.process()?;
            self.drain_plaintext(dst, total)?;
            return Ok(Fed::End);
        }
        let mut rest = &buf[..];
        while !rest.is_empty() {
            // rustls takes what fits its record buffer (always some: it
            // holds at most one partial record once the complete ones are
            // processed); decrypted bytes are drained each round, so its
            // plaintext buffer never fills and refuses more.
            match self.conn.read_tls(&mut rest) {
                Ok(0) => {
                    return Err(TransportError::Io(io::Error::other(
                        "rustls took no ciphertext",
                    )))
                }
                Ok(_) => {
                    self.process()?;
                    // After close_notify, whatever follows is not the peer's
                    // data: the stream ends here.
                    if self.drain_plaintext(dst, total)?.is_some() {
                        return Ok(Fed::End);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TransportError::Io(e)),
            }
        }
        buf.clear();
        Ok(Fed::Records {
            short_read: n < offered,
        })
    }

    /// Moves decrypted bytes into `dst`. `Some(Eof)` once the peer closed
    /// (close_notify, or EOF without it).
    fn drain_plaintext(
        &mut self,
        dst: &mut RecvBuf,
        total: &mut usize,
    ) -> Result<Option<IoState>, TransportError> {
        // Copied from rustls's buffer straight into `dst`'s spare capacity
        // (`fill_buf`, not `read`: `read` wants initialised space).
        let mut reader = self.conn.reader();
        loop {
            match reader.fill_buf() {
                Ok([]) => return Ok(Some(IoState::Eof)),
                Ok(chunk) => {
                    let n = chunk.len();
                    dst.spare(n).extend_from_slice(chunk);
                    reader.consume(n);
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
            let _ = self.conn.write_tls(&mut SocketWriter(&self.sock));
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

    /// [`write`](Self::write) of `bufs` in order: rustls copies them into
    /// its records without their being joined first.
    pub(crate) fn write_vectored(
        &mut self,
        bufs: &[IoSlice<'_>],
    ) -> Result<Progress, TransportError> {
        self.check_failed()?;
        let taken = self
            .conn
            .writer()
            .write_vectored(bufs)
            .map_err(TransportError::Io)?;
        let state = self.flush()?;
        Ok(progress(taken, state))
    }

    /// Writes queued records until none are left (`Ready`) or the socket is
    /// full (`Drained`).
    pub(crate) fn flush(&mut self) -> Result<IoState, TransportError> {
        self.check_failed()?;
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut SocketWriter(&self.sock)) {
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

/// What one socket read gave rustls.
enum Fed {
    /// Records were read and processed; `short_read`: fewer bytes than
    /// offered (the socket held no more at that moment).
    Records { short_read: bool },
    /// The socket had nothing (`WouldBlock`).
    Nothing,
    /// The peer's end: a FIN, or a close_notify (what came before it is in
    /// `dst`).
    End,
}

#[cfg(test)]
mod tests {
    use std::net::Shutdown;
    use std::time::Duration;

    use rustls::pki_types::ServerName;

    use crate::{client_config_trusting, generate_self_signed, ReadMode, TlsSettings, Transport};

    use super::*;

    /// A TLS server transport and a client transport over loopback, with
    /// the handshake done.
    fn tls_pair(name: &str) -> (Transport, Transport) {
        let dir =
            std::env::temp_dir().join(format!("baton-tls-unit-{name}-{}", std::process::id()));
        let (cert, key) = generate_self_signed(&dir).unwrap();
        let server_config = TlsSettings::from_files(&cert, &key).build().unwrap();
        let client_config = Arc::new(client_config_trusting(&cert, &[]).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
        let listener = crate::test_sockets::roomy_listener();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        client.set_nonblocking(true).unwrap();
        let mut server = Transport::tls_server(server, server_config).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = Transport::tls_client(client, client_config, name).unwrap();
        let mut sink = RecvBuf::new();
        for _ in 0..10_000 {
            if !server.is_handshaking() && !client.is_handshaking() && !server.wants_write() {
                return (server, client);
            }
            client.flush().unwrap();
            server.read(&mut sink, 1 << 20).unwrap();
            server.flush().unwrap();
            client.read(&mut sink, 1 << 20).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("no handshake");
    }

    /// Sends `bytes` as one record, then a FIN without close_notify, and
    /// waits until the server's socket holds the record.
    fn record_then_fin(server: &Transport, client: &mut Transport, bytes: &[u8]) {
        client.write(bytes).unwrap();
        client.flush().unwrap();
        client.socket().shutdown(Shutdown::Write).unwrap();
        let mut peek = [0u8; 64];
        while server.socket().peek(&mut peek).unwrap_or(0) < bytes.len() {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    #[test]
    fn a_short_tls_read_drains_the_step_and_leaves_a_queued_fin_for_its_edge() {
        // The same kernel behaviour as a plain short read (transport.rs):
        // the record is read short, the FIN behind it is not seen, so the
        // shortcut is only sound while no edge reported the end.
        let (mut server, mut client) = tls_pair("short");
        record_then_fin(&server, &mut client, b"PING\r\n");
        let mut buf = RecvBuf::new();
        let first = server
            .read_with(&mut buf, 1 << 20, ReadMode::ShortReadDrains)
            .unwrap();
        assert_eq!(first, progress(6, IoState::Drained));
        assert_eq!(buf.as_slice(), b"PING\r\n");
        let second = server
            .read_with(&mut buf, 1 << 20, ReadMode::ShortReadDrains)
            .unwrap();
        assert_eq!(second, progress(0, IoState::Eof), "the FIN was still there");
    }

    #[test]
    fn a_tls_read_until_would_block_sees_the_record_and_the_fin_in_one_step() {
        let (mut server, mut client) = tls_pair("until");
        record_then_fin(&server, &mut client, b"PING\r\n");
        let mut buf = RecvBuf::new();
        let read = server
            .read_with(&mut buf, 1 << 20, ReadMode::UntilWouldBlock)
            .unwrap();
        assert_eq!(read, progress(6, IoState::Eof));
    }

    #[test]
    fn a_tls_read_that_fills_the_space_offered_reads_on() {
        // More than one socket read takes (96 KiB), all of it queued in the
        // server's socket (well under its receive buffer): full reads are
        // not short, so one step takes everything queued (a second may see
        // the FIN).
        let (mut server, mut client) = tls_pair("full");
        let sent = vec![b'x'; 300_000];
        let mut written = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while written < sent.len() || client.wants_write() {
            assert!(std::time::Instant::now() < deadline, "client stuck");
            if written < sent.len() {
                written += client.write(&sent[written..]).unwrap().bytes;
            }
            client.flush().unwrap();
        }
        wait_queued(server.socket(), sent.len());
        client.socket().shutdown(Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = RecvBuf::new();
        let mut got = 0;
        let mut first = None;
        let mut steps = 0;
        loop {
            let read = server
                .read_with(&mut buf, 1 << 20, ReadMode::ShortReadDrains)
                .unwrap();
            first.get_or_insert(read.bytes);
            got += read.bytes;
            steps += 1;
            if read.state == IoState::Eof || steps > 100 {
                break;
            }
        }
        assert_eq!(
            first,
            Some(sent.len()),
            "the first step takes everything queued"
        );
        assert_eq!(got, sent.len());
        assert!(steps <= 2, "{steps} steps: full reads must not end a step");
    }

    #[test]
    fn more_ciphertext_than_one_socket_read_arrives_whole_then_close_notify_ends_it() {
        // Over three times what one socket read takes, in records of every
        // size, interleaved with the server's reads; then close_notify and
        // FIN. Every byte arrives once, in order, and the stream ends.
        let (mut server, mut client) = tls_pair("bulk");
        let sent: Vec<u8> = (0..3 * CIPHERTEXT_READ as u32 + 777)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut buf = RecvBuf::new();
        let mut written = 0;
        let mut chunk = 1;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while buf.len() < sent.len() {
            assert!(
                std::time::Instant::now() < deadline,
                "stalled at {}",
                buf.len()
            );
            if written < sent.len() {
                let end = (written + chunk).min(sent.len());
                written += client.write(&sent[written..end]).unwrap().bytes;
                client.flush().unwrap();
                chunk = chunk * 3 % 40_000 + 1;
            }
            server
                .read_with(&mut buf, 1 << 20, ReadMode::UntilWouldBlock)
                .unwrap();
        }
        assert!(buf.as_slice() == &sent[..], "bytes differ");
        assert!(client.begin_close());
        client.flush().unwrap();
        client.socket().shutdown(Shutdown::Write).unwrap();
        let end = loop {
            assert!(std::time::Instant::now() < deadline, "no end seen");
            let read = server
                .read_with(&mut buf, 1 << 20, ReadMode::UntilWouldBlock)
                .unwrap();
            if read.state == IoState::Eof {
                break read;
            }
        };
        assert_eq!(end.bytes, 0);
        assert_eq!(buf.len(), sent.len(), "nothing after the data");
    }

    fn wait_queued(sock: &TcpStream, at_least: usize) {
        let mut peek = vec![0; at_least + 1];
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sock.peek(&mut peek).unwrap_or(0) < at_least {
            assert!(std::time::Instant::now() < deadline, "never queued");
            std::thread::yield_now();
        }
    }

    /// Data, close_notify and bytes after it arrive in one segment: the data
    /// is delivered, the stream ends, and what follows close_notify is
    /// ignored (no error).
    #[test]
    fn data_close_notify_and_bytes_after_it_in_one_read_end_the_stream_cleanly() {
        for mode in [ReadMode::ShortReadDrains, ReadMode::UntilWouldBlock] {
            let (mut server, mut client) = tls_pair("trail");
            let Transport::Tls(c) = &mut client else {
                unreachable!()
            };
            let data = vec![b'd'; 4000];
            c.conn.writer().write_all(&data).unwrap();
            c.conn.send_close_notify();
            let mut wire = Vec::new();
            while c.conn.wants_write() {
                c.conn.write_tls(&mut wire).unwrap();
            }
            // Past rustls's first 4 KiB chunk: bytes after close_notify
            // that reach `read_tls` again.
            wire.extend_from_slice(&[0x17, 3, 3, 1, 0xf0]);
            wire.extend_from_slice(&[0xAA; 0x1f0]);
            c.sock.set_nonblocking(false).unwrap();
            (&c.sock).write_all(&wire).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            let mut buf = RecvBuf::new();
            let read = server.read_with(&mut buf, 1 << 20, mode).unwrap();
            assert_eq!(buf.as_slice(), &data[..], "{mode:?}");
            assert_eq!(read.state, IoState::Eof, "{mode:?}");
            c.sock.shutdown(Shutdown::Write).unwrap();
        }
    }

    /// Each socket read is capped at the budget left, but takes at least
    /// one record: with a 1-byte budget one step read 90,000 bytes when the
    /// read took 96 KiB whatever the budget.
    #[test]
    fn a_tls_step_overshoots_its_budget_by_less_than_a_record() {
        let (mut server, mut client) = tls_pair("budget");
        let sent = vec![b'x'; 90_000];
        let mut written = 0;
        while written < sent.len() {
            written += client.write(&sent[written..]).unwrap().bytes;
            client.flush().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = RecvBuf::new();
        let read = server
            .read_with(&mut buf, 1, ReadMode::UntilWouldBlock)
            .unwrap();
        assert!(
            read.bytes <= 20_000,
            "one step with a 1-byte budget read {}",
            read.bytes
        );
    }
}
