//! Listeners: IPv4 and IPv6 on the same port at once (the IPv6 socket is
//! IPv6-only), and the addresses reported back.

#[path = "../examples/echo/service.rs"]
mod echo;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use baton::Server;

#[test]
fn ipv4_and_ipv6_listeners_share_a_port() {
    // A port free on IPv4 (taken and released), then both families on it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let server = Server::builder()
            .listen(v4)
            .listen(v6)
            .build(echo::Echo)
            .unwrap();
        tx.send((server.local_addrs(), server.handle())).unwrap();
        server.run().unwrap().map_service(drop)
    });
    let (addrs, handle) = rx.recv().unwrap();
    assert_eq!(addrs, vec![v4, v6]);
    for addr in addrs {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(addr.to_string().as_bytes()).unwrap();
        let mut back = vec![0; addr.to_string().len()];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, addr.to_string().as_bytes());
    }
    handle.shutdown(Duration::from_secs(1));
    let report = thread.join().unwrap();
    assert_eq!(report.stats.connections_accepted, 2);
}

/// Records each connection's own address as the runtime reports it.
struct Locals(Vec<SocketAddr>);

impl baton::Service for Locals {
    type Codec = baton::ByteStream;
    type ConnState = ();
    type Command = ();

    fn codec(&mut self, info: &baton::ConnInfo) -> baton::ByteStream {
        self.0.push(info.local);
        baton::ByteStream::default()
    }

    fn on_open(&mut self, _: &mut baton::Ctx<'_, Self>, _: baton::ConnId) {}

    fn on_frame(
        &mut self,
        ctx: &mut baton::Ctx<'_, Self>,
        conn: baton::ConnId,
        _: &mut (),
        frame: Vec<u8>,
    ) {
        let _ = ctx.send(conn, frame);
    }
}

#[test]
fn a_connection_s_own_address_is_the_one_its_listener_is_bound_to() {
    // The runtime takes it from the listener (no `getsockname` per
    // connection): it must be the listener's real address, its port
    // included, not the port-0 address it was asked to bind.
    let v4: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let v6: SocketAddr = "[::1]:0".parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let server = Server::builder()
            .listen(v4)
            .listen(v6)
            .build(Locals(Vec::new()))
            .unwrap();
        tx.send((server.local_addrs(), server.handle())).unwrap();
        server.run().unwrap()
    });
    let (addrs, handle) = rx.recv().unwrap();
    for addr in &addrs {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"ping").unwrap();
        let mut back = [0; 4];
        stream.read_exact(&mut back).unwrap();
    }
    handle.shutdown(Duration::from_secs(1));
    let report = thread.join().unwrap();
    assert_eq!(addrs.len(), 2);
    assert!(addrs.iter().all(|a| a.port() != 0));
    assert_eq!(report.service.0, addrs);
}
