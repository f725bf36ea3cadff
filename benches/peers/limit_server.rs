//! cargo run --release --example limit -- --port 16399 --value-size 16
//!
//! The "limit" in the benchmarks: how fast this machine and this client can
//! go at all. One thread, one epoll loop, edge-triggered, no allocation per
//! request: it reads, finds where each RESP command ends, and answers `GET`
//! with a canned bulk string of `--value-size` bytes and everything else
//! with `+OK`. It keeps nothing, checks nothing and speaks plain TCP only,
//! so no real server can be faster on the same load; the gap between a
//! server and this is what that server's work costs.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

use clap::Parser;

/// A canned-reply RESP server: the ceiling for the KV benchmarks.
#[derive(Debug, Parser)]
#[command(about = "A canned-reply RESP server on one epoll loop: the benchmarks' ceiling.")]
struct Args {
    /// Plain TCP port on 127.0.0.1.
    #[arg(long, default_value_t = 16399)]
    port: u16,
    /// Size of the bulk string every GET gets.
    #[arg(long, default_value_t = 16)]
    value_size: usize,
}

struct Client {
    stream: TcpStream,
    /// Bytes of a command not complete yet.
    partial: Vec<u8>,
    /// Replies the socket did not take yet.
    unsent: Vec<u8>,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(("127.0.0.1", args.port))?;
    listener.set_nonblocking(true)?;
    println!("limit listening on {}", listener.local_addr()?);
    let mut get_reply = format!("${}\r\n", args.value_size).into_bytes();
    get_reply.extend(std::iter::repeat_n(b'v', args.value_size));
    get_reply.extend_from_slice(b"\r\n");

    let epoll = Epoll::new()?;
    epoll.add(listener.as_raw_fd(), libc::EPOLLIN as u32)?;
    let mut clients: HashMap<RawFd, Client> = HashMap::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    loop {
        let ready = epoll.wait(&mut events)?;
        for ev in &events[..ready] {
            let fd = ev.u64 as RawFd;
            if fd == listener.as_raw_fd() {
                while let Ok((stream, _)) = listener.accept() {
                    stream.set_nonblocking(true)?;
                    stream.set_nodelay(true)?;
                    let fd = stream.as_raw_fd();
                    epoll.add(fd, (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET) as u32)?;
                    clients.insert(
                        fd,
                        Client {
                            stream,
                            partial: Vec::new(),
                            unsent: Vec::new(),
                        },
                    );
                }
                continue;
            }
            let Some(client) = clients.get_mut(&fd) else {
                continue;
            };
            if serve(client, &mut buf, &get_reply).is_err() {
                // Dropping the stream closes it, which also leaves the epoll set.
                clients.remove(&fd);
            }
        }
    }
}

/// Reads until the socket is empty, answering every complete command.
fn serve(client: &mut Client, buf: &mut [u8], get_reply: &[u8]) -> Result<(), ()> {
    flush(client)?;
    loop {
        let n = match client.stream.read(buf) {
            Ok(0) => return Err(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(()),
        };
        if client.partial.is_empty() {
            let used = answer(&buf[..n], get_reply, &mut client.unsent)?;
            client.partial.extend_from_slice(&buf[used..n]);
        } else {
            client.partial.extend_from_slice(&buf[..n]);
            let used = answer(&client.partial, get_reply, &mut client.unsent)?;
            client.partial.drain(..used);
        }
        flush(client)?;
        if n < buf.len() {
            return Ok(());
        }
    }
}

fn flush(client: &mut Client) -> Result<(), ()> {
    while !client.unsent.is_empty() {
        match client.stream.write(&client.unsent) {
            Ok(n) => {
                client.unsent.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(())
}

/// Appends a reply for every complete command in `input`; returns how many
/// bytes those commands took.
fn answer(input: &[u8], get_reply: &[u8], out: &mut Vec<u8>) -> Result<usize, ()> {
    let mut at = 0;
    while let Some((len, is_get)) = command(&input[at..])? {
        out.extend_from_slice(if is_get { get_reply } else { b"+OK\r\n" });
        at += len;
    }
    Ok(at)
}

/// The length of the RESP command at the front of `input` and whether it is
/// a GET; `None` while incomplete.
fn command(input: &[u8]) -> Result<Option<(usize, bool)>, ()> {
    let Some((args, mut at)) = header(input, b'*')? else {
        return Ok(None);
    };
    let mut is_get = false;
    for i in 0..args {
        let Some((len, head)) = header(&input[at..], b'$')? else {
            return Ok(None);
        };
        let start = at + head;
        if input.len() < start + len + 2 {
            return Ok(None);
        }
        if i == 0 {
            is_get = input[start..start + len].eq_ignore_ascii_case(b"GET");
        }
        at = start + len + 2;
    }
    Ok(Some((at, is_get)))
}

/// `<kind><number>\r\n` at the front: the number and the header's length.
fn header(input: &[u8], kind: u8) -> Result<Option<(usize, usize)>, ()> {
    let Some(end) = input.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    if input[0] != kind || end < 2 || input[end - 1] != b'\r' {
        return Err(());
    }
    let mut n = 0usize;
    for &d in &input[1..end - 1] {
        if !d.is_ascii_digit() {
            return Err(());
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add((d - b'0') as usize))
            .ok_or(())?;
    }
    Ok(Some((n, end + 1)))
}

/// The few epoll calls this server needs.
struct Epoll(RawFd);

impl Epoll {
    fn new() -> std::io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Epoll(fd))
    }

    fn add(&self, fd: RawFd, events: u32) -> std::io::Result<()> {
        let mut ev = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        if unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, events: &mut [libc::epoll_event]) -> std::io::Result<usize> {
        loop {
            // SAFETY: the pointer and length describe `events`, which the
            // kernel fills with at most that many entries.
            let n =
                unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), events.len() as i32, -1) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}
