//! TLS on every path: integrity over TLS 1.3 and 1.2 with 0, 1 and 4 IO
//! threads; clients nobody here wrote (`openssl s_client`, Python's `ssl`);
//! mTLS; failures that close only their own connection with a counted
//! reason; a handshake flight that blocks and comes back to the loop as
//! state; certificate reload under load; aborted and stalled handshakes.

mod util;

#[path = "../examples/echo/service.rs"]
mod echo;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::tls::rustls;
use baton::tls::{ClientAuth, IoState, SniCert, TlsSettings};
use baton::{CloseReason, Config, IoActivation, RecvBuf, TlsFailure};
use util::{
    open_fds, reset, run_echo_clients_with, spawn_tls_server, wait_for_fds, ClientMode, EchoPlan,
    TestCert,
};

fn tls_echo_integrity(
    version: &'static rustls::SupportedProtocolVersion,
    io_threads: usize,
    seed: u64,
) {
    let (cert, server) = tls_echo(&format!("integrity-{seed}"), io_threads);
    let mut rng = util::rng(seed);
    let plans: Vec<EchoPlan> = (0..500)
        .map(|_| EchoPlan::random(&mut rng, 1 << 20))
        .collect();
    let total: u64 = plans.iter().map(|p| p.payload.len() as u64).sum();
    run_echo_clients_with(
        &cert.client(Some(version)),
        server.addr,
        plans,
        Duration::from_secs(180),
    );
    server.wait_for("all bytes counted", Duration::from_secs(10), |s| {
        s.bytes_out == total
    });
    let report = server.stop(Duration::from_secs(5));
    assert_eq!(report.stats.handshakes_ok, 500);
    let by_version = if version == &rustls::version::TLS13 {
        report.stats.tls13_handshakes
    } else {
        report.stats.tls12_handshakes
    };
    assert_eq!(by_version, 500, "{:?}", report.stats);
    assert_eq!(report.stats.handshakes_failed, 0);
    assert!(!report.stats.cipher_suites.is_empty());
}

#[test]
fn tls13_echo_integrity_at_0_1_4_io_threads() {
    for (i, io_threads) in [0, 1, 4].into_iter().enumerate() {
        tls_echo_integrity(&rustls::version::TLS13, io_threads, 10 + i as u64);
    }
}

#[test]
fn tls12_echo_integrity_at_0_1_4_io_threads() {
    for (i, io_threads) in [0, 1, 4].into_iter().enumerate() {
        tls_echo_integrity(&rustls::version::TLS12, io_threads, 20 + i as u64);
    }
}

/// Runs `openssl s_client` with `args`, sends `line`, returns what came back
/// (empty if the connection was refused).
fn s_client(addr: SocketAddr, args: &[&str], line: &str) -> String {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "localhost",
            "-quiet",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is installed");
    // When the server refuses the handshake, s_client may have exited
    // before the line is written (a broken pipe): what it printed decides.
    let _ = child.stdin.as_mut().unwrap().write_all(line.as_bytes());
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = String::new();
        let _ = BufReader::new(stdout).read_line(&mut got);
        let _ = tx.send(got);
    });
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    got
}

#[test]
fn openssl_s_client_on_tls12_and_tls13() {
    let (cert, server) = tls_echo("openssl", 2);
    let ca = cert.cert.to_str().unwrap();
    for version in ["-tls1_3", "-tls1_2"] {
        let got = s_client(
            server.addr,
            &[version, "-CAfile", ca, "-verify_return_error"],
            "hello openssl\n",
        );
        assert_eq!(got, "hello openssl\n", "{version}");
    }
    server.wait_for("both handshakes", Duration::from_secs(10), |s| {
        s.tls13_handshakes == 1 && s.tls12_handshakes == 1
    });
}

#[test]
fn python_ssl_client_verifies_and_echoes() {
    let (cert, server) = tls_echo("python", 0);
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"hello python")
        got = b""
        while len(got) < 12:
            got += s.recv(100)
        print(s.version(), got.decode())
"#;
    assert_eq!(
        python_client(script, server.addr, &cert)
            .wait_with_output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap(),
        "TLSv1.3 hello python\n"
    );
}

/// A fresh certificate and a TLS echo server using it, with `io_threads`.
fn tls_echo(name: &str, io_threads: usize) -> (TestCert, util::TestServer<()>) {
    let cert = TestCert::new(name);
    let server = spawn_tls_server(
        Config::default()
            .io_threads(io_threads)
            .io_activation(IoActivation::Always),
        cert.server_config(),
        || echo::Echo,
    );
    (cert, server)
}

/// Runs a Python `ssl` client script with the server's port and the CA file
/// as arguments; stdout is piped, stderr shown.
fn python_client(script: &str, addr: SocketAddr, cert: &TestCert) -> std::process::Child {
    Command::new("python3")
        .args([
            "-c",
            script,
            &addr.port().to_string(),
            cert.cert.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is installed")
}

/// A CA and a client certificate it signed, as PEM files in `dir`.
fn client_ca(
    dir: &Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} CA"));
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let client_params = rcgen::CertificateParams::new(vec![format!("{name}-client")]).unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();
    let paths = (
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}-client.pem")),
        dir.join(format!("{name}-client.key")),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, client_cert.pem()).unwrap();
    std::fs::write(&paths.2, client_key.serialize_pem()).unwrap();
    paths
}

#[test]
fn mtls_accepts_a_good_client_certificate_and_refuses_none_or_a_wrong_one() {
    let cert = TestCert::new("mtls");
    let (ca, client_cert, client_key) = client_ca(&cert.dir, "trusted");
    let (_, stranger_cert, stranger_key) = client_ca(&cert.dir, "stranger");
    let settings = TlsSettings {
        ca_file: Some(ca),
        client_auth: ClientAuth::Required,
        ..cert.settings()
    };
    let server = spawn_tls_server(Config::default(), settings.build().unwrap(), || echo::Echo);
    let ca_arg = cert.cert.to_str().unwrap();
    let with_client_cert = |cert: &Path, key: &Path, line: &str| {
        let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
        s_client(
            server.addr,
            &["-CAfile", ca_arg, "-cert", cert, "-key", key],
            line,
        )
    };
    assert_eq!(
        with_client_cert(
            &client_cert,
            &client_key,
            "with a certificate
"
        ),
        "with a certificate
"
    );
    assert_eq!(
        s_client(
            server.addr,
            &["-CAfile", ca_arg],
            "without
"
        ),
        ""
    );
    assert_eq!(
        with_client_cert(
            &stranger_cert,
            &stranger_key,
            "wrong
"
        ),
        ""
    );
    server.wait_for("both refusals counted", Duration::from_secs(10), |s| {
        s.closed_for(&CloseReason::Tls(TlsFailure::NoClientCertificate)) == 1
            && s.closed_for(&CloseReason::Tls(TlsFailure::BadClientCertificate)) == 1
    });
    assert_eq!(server.handle.stats().handshakes_ok, 1);
}

/// One TLS echo round trip on a fresh connection, through baton's own client.
fn tls_roundtrip(mode: &ClientMode, addr: SocketAddr, msg: &[u8]) -> Result<(), String> {
    roundtrip_on(&mut mode.connect(addr), msg)
}

/// Sends `msg` on `t` (handshaking first if it must) and reads its echo.
fn roundtrip_on(t: &mut baton::tls::Transport, msg: &[u8]) -> Result<(), String> {
    let mut buf = RecvBuf::new();
    let mut sent = false;
    let start = Instant::now();
    while buf.len() < msg.len() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err("timed out".into());
        }
        if t.wants_write() {
            t.flush().map_err(|e| e.to_string())?;
        }
        if !sent && t.accepts_app_data() {
            t.write(msg).map_err(|e| e.to_string())?;
            sent = true;
        }
        match t.read(&mut buf, 1 << 20).map_err(|e| e.to_string())?.state {
            IoState::Eof => return Err("closed".into()),
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    (buf.as_slice() == msg)
        .then_some(())
        .ok_or_else(|| "wrong echo".into())
}

#[test]
fn bad_handshakes_close_only_their_connection_with_a_counted_reason() {
    let cert = TestCert::new("failures");
    let settings = TlsSettings {
        sni: vec![SniCert {
            name: "localhost".into(),
            cert_file: cert.cert.clone(),
            key_file: cert.key.clone(),
        }],
        ..cert.settings()
    };
    let config = Config::default()
        .io_threads(2)
        .io_activation(IoActivation::Always)
        .handshake_timeout(Duration::from_millis(300));
    let server = spawn_tls_server(config, settings.build().unwrap(), || echo::Echo);
    let client = cert.client(None);
    tls_roundtrip(&client, server.addr, b"before").unwrap();

    let mut garbage = TcpStream::connect(server.addr).unwrap();
    garbage
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    let mut plaintext = TcpStream::connect(server.addr).unwrap();
    plaintext.write_all(b"PING\r\n").unwrap();
    let _stalled = TcpStream::connect(server.addr).unwrap();
    let ClientMode::Tls(config) = &client else {
        unreachable!()
    };
    let other_name = rustls::pki_types::ServerName::try_from("elsewhere.example").unwrap();
    let stream = TcpStream::connect(server.addr).unwrap();
    stream.set_nonblocking(true).unwrap();
    let mut unknown =
        baton::tls::Transport::tls_client(stream, Arc::clone(config), other_name).unwrap();
    unknown.flush().unwrap();

    server.wait_for("every failure counted", Duration::from_secs(10), |s| {
        s.closed_for(&CloseReason::Tls(TlsFailure::NotTls)) == 2
            && s.closed_for(&CloseReason::Tls(TlsFailure::UnknownServerName)) == 1
            && s.closed_for(&CloseReason::HandshakeTimeout) == 1
    });
    for stream in [&mut garbage, &mut plaintext] {
        let mut rest = Vec::new();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = stream.read_to_end(&mut rest); // the alert, then EOF
    }
    tls_roundtrip(&client, server.addr, b"after").unwrap();
    let stats = server.handle.stats();
    assert_eq!(stats.handshakes_failed, 4, "{stats:?}");
    assert_eq!(stats.handshakes_ok, 2);
}

/// An open connection keeps no deadline of its handshake: it would wake
/// the loop for nothing when it fell due (and, for a connection on an IO
/// thread then, again every 10 ms until it came home). Inline and on IO
/// threads, since the handshake completes on either.
#[test]
fn an_open_connection_holds_no_handshake_deadline() {
    let cert = TestCert::new("no-stale-deadline");
    for config in [
        Config::default().io_threads(0),
        Config::default()
            .io_threads(2)
            .io_activation(IoActivation::Always),
    ] {
        let config = config.handshake_timeout(Duration::from_secs(600));
        assert_eq!(config.idle_timeout, None, "no idle deadline either");
        let server = spawn_tls_server(config, cert.settings().build().unwrap(), || echo::Echo);
        let client = cert.client(None);
        let mut open = Vec::new();
        for i in 0..3 {
            let mut t = client.connect(server.addr);
            roundtrip_on(&mut t, format!("hello {i}").as_bytes()).unwrap();
            open.push(t);
        }
        // The gauge is refreshed at the end of each loop iteration, which
        // may come just after the client has its reply.
        server.wait_for("no timer pending", Duration::from_secs(10), |s| {
            s.connections_open == 3 && s.timers_pending == 0
        });
        // Still served: nothing about the connection depended on it.
        for t in &mut open {
            roundtrip_on(t, b"again").unwrap();
        }
        assert_eq!(server.handle.stats().handshakes_ok, 3);
    }
}

/// A certificate for localhost padded with many extra names, so the
/// server's first flight is larger than the client's tiny receive window.
fn big_certificate(dir: &Path) -> TlsSettings {
    let mut names: Vec<String> = (0..1500)
        .map(|i| format!("name-{i:04}.padding.example"))
        .collect();
    names.push("localhost".into());
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("big.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("big.key"), key.serialize_pem()).unwrap();
    TlsSettings::from_files(dir.join("big.pem"), dir.join("big.key"))
}

/// The server's handshake flight does not fit the socket: the IO step
/// stops with rustls still wanting to write, that want travels back to the
/// loop with the connection, and the loop plans a write step on the next
/// writable edge. The handshake then completes and data flows.
#[test]
fn a_blocked_handshake_flight_comes_back_to_the_loop_as_a_write_step() {
    let cert = TestCert::new("bigflight");
    let settings = big_certificate(&cert.dir);
    let trust = TestCert {
        dir: cert.dir.join("trust"),
        cert: cert.dir.join("big.pem"),
        key: cert.dir.join("big.key"),
    };
    let config = Config::default()
        .io_threads(2)
        .io_activation(IoActivation::Always)
        .socket_send_buffer(Some(4096));
    let server = spawn_tls_server(config, settings.build().unwrap(), || echo::Echo);
    let ClientMode::Tls(config) = trust.client(None) else {
        unreachable!()
    };
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let stream = TcpStream::from(socket);
    stream.set_nonblocking(true).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut t = baton::tls::Transport::tls_client(stream, config, name).unwrap();
    t.flush().unwrap(); // ClientHello; now do not read for a while
    std::thread::sleep(Duration::from_millis(300));
    let mut buf = RecvBuf::new();
    let start = Instant::now();
    let mut sent = false;
    while buf.len() < 5 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "handshake never completed"
        );
        if t.wants_write() {
            t.flush().unwrap();
        }
        if !sent && t.accepts_app_data() {
            t.write(b"fresh").unwrap();
            sent = true;
        }
        t.read(&mut buf, 1 << 20).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(buf.as_slice(), b"fresh");
    let stats = server.handle.stats();
    assert!(
        stats.tls_write_steps >= 1,
        "the flight was finished by a loop-planned write step: {stats:?}"
    );
    assert_eq!(
        stats.poller_ctl_calls, 2,
        "and never by a poller call (only the listener and this socket's add)"
    );
    drop(trust);
}

#[test]
fn certificate_reload_under_load_keeps_connections_and_refuses_a_bad_file() {
    let old = TestCert::new("reload-old");
    let new = TestCert::new("reload-new");
    let server = spawn_tls_server(
        Config::default()
            .io_threads(2)
            .io_activation(IoActivation::Always),
        old.server_config(),
        || echo::Echo,
    );
    let addr = server.addr;
    // Established connections stream through the reload.
    let old_client = old.client(None);
    let load = std::thread::spawn(move || {
        let mut rng = util::rng(99);
        let plans = (0..50)
            .map(|_| EchoPlan {
                payload: util::random_bytes(&mut rng, 4 << 20),
                chunks: vec![4096; 1024],
            })
            .collect();
        run_echo_clients_with(&old_client, addr, plans, Duration::from_secs(120));
    });
    // Established means handshaken: a connection accepted after the reload
    // rightly gets the new certificate.
    server.wait_for("the 50 handshakes", Duration::from_secs(30), |s| {
        s.handshakes_ok == 50
    });
    server.handle.reload_tls(&new.settings()).unwrap();
    let new_client = new.client(None);
    let start = Instant::now();
    while tls_roundtrip(&new_client, addr, b"new cert").is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "new handshakes never got the new certificate"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        tls_roundtrip(&old.client(None), addr, b"old cert").is_err(),
        "the old certificate is no longer served"
    );
    std::fs::write(new.dir.join("junk.pem"), "junk").unwrap();
    let err = server
        .handle
        .reload_tls(&TlsSettings::from_files(new.dir.join("junk.pem"), &new.key))
        .unwrap_err();
    assert!(err.to_string().contains("junk.pem"), "{err}");
    tls_roundtrip(&new_client, addr, b"still serving").unwrap();
    load.join()
        .expect("established connections were not disturbed");
    server.wait_for("every connection closed", Duration::from_secs(10), |s| {
        s.connections_open == 0
    });
    let stats = server.handle.stats();
    let refused_old = stats.closed_for(&CloseReason::Tls(TlsFailure::AlertReceived));
    assert!(
        refused_old >= 1,
        "the client trusting only the old certificate refused the new one"
    );
    assert_eq!(
        stats.closed_for(&CloseReason::PeerClosed) + refused_old,
        stats.closed_total(),
        "every other close was orderly: {stats:?}"
    );
}

/// The bytes of a real ClientHello, to cut at random points.
fn client_hello(cert: &TestCert) -> Vec<u8> {
    let ClientMode::Tls(config) = cert.client(None) else {
        unreachable!()
    };
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

#[test]
fn ten_thousand_handshakes_aborted_at_random_points() {
    let (cert, server) = tls_echo("aborts", 2);
    let baseline = open_fds();
    let hello = client_hello(&cert);
    let mut rng = util::rng(5);
    let client = cert.client(None);
    for i in 0..10_000 {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        match i % 4 {
            0 => {}
            // Mid-ClientHello.
            1 => stream
                .write_all(&hello[..rand::Rng::random_range(&mut rng, 1..hello.len())])
                .unwrap(),
            // After the server's flight started to arrive.
            2 => {
                stream.write_all(&hello).unwrap();
                let mut some = [0u8; 64];
                stream.read_exact(&mut some).unwrap();
            }
            // Mid-record garbage after a good hello.
            _ => {
                stream.write_all(&hello).unwrap();
                stream
                    .write_all(&[0x17, 0x03, 0x03, 0x40, 0x00, 1, 2, 3])
                    .unwrap();
            }
        }
        reset(stream);
        if i % 1000 == 0 {
            tls_roundtrip(&client, server.addr, b"still up").unwrap();
        }
    }
    server.wait_for("every connection closed", Duration::from_secs(30), |s| {
        s.connections_open == 0
    });
    wait_for_fds(baseline, Duration::from_secs(10));
    let stats = server.handle.stats();
    assert_eq!(stats.handshakes_ok, 10);
    // A client reset can reach the kernel before the connection leaves its
    // SYN queue; such a connection is never accepted. Every accepted one
    // either completed its handshake or is counted as failed.
    assert_eq!(
        stats.handshakes_failed + stats.handshakes_ok,
        stats.connections_accepted,
        "{stats:?}"
    );
    assert!(
        stats.connections_accepted >= 9_900 + 10,
        "most aborts reached the server: {stats:?}"
    );
}

#[test]
fn slowloris_handshakes_are_closed_by_the_timeout_while_others_are_served() {
    let cert = TestCert::new("slowloris");
    let config = Config::default()
        .io_threads(2)
        .io_activation(IoActivation::Always)
        .handshake_timeout(Duration::from_millis(500));
    let server = spawn_tls_server(config, cert.server_config(), || echo::Echo);
    let baseline = open_fds();
    let hello = client_hello(&cert);
    let stalled: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(&hello[..1]).unwrap();
            s
        })
        .collect();
    let client = cert.client(None);
    for _ in 0..5 {
        tls_roundtrip(&client, server.addr, b"served").unwrap();
    }
    server.wait_for(
        "every stalled handshake timed out",
        Duration::from_secs(30),
        |s| s.closed_for(&CloseReason::HandshakeTimeout) == 1000,
    );
    drop(stalled);
    server.wait_for("all closed", Duration::from_secs(10), |s| {
        s.connections_open == 0
    });
    wait_for_fds(baseline, Duration::from_secs(10));
}

#[test]
fn sessions_resume_with_tls13_tickets_and_tls12_session_ids() {
    let (cert, server) = tls_echo("resume", 0);
    for (i, version) in [&rustls::version::TLS13, &rustls::version::TLS12]
        .into_iter()
        .enumerate()
    {
        // One client config = one client session store: its second and
        // third connections resume the first one's session.
        let client = cert.client(Some(version));
        for _ in 0..3 {
            tls_roundtrip(&client, server.addr, b"again").unwrap();
        }
        server.wait_for("the resumed handshakes", Duration::from_secs(10), |s| {
            s.handshakes_ok == 3 * (i as u64 + 1) && s.handshakes_resumed == 2 * (i as u64 + 1)
        });
    }
}

#[test]
fn alpn_is_negotiated_with_a_python_client() {
    let cert = TestCert::new("alpn");
    let settings = TlsSettings {
        alpn: vec![b"baton-echo".to_vec(), b"http/1.1".to_vec()],
        ..cert.settings()
    };
    let server = spawn_tls_server(Config::default(), settings.build().unwrap(), || echo::Echo);
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.set_alpn_protocols(["h2", "baton-echo"])
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        print(s.selected_alpn_protocol())
"#;
    assert_eq!(
        python_client(script, server.addr, &cert)
            .wait_with_output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap(),
        "baton-echo\n"
    );
}

/// A graceful shutdown sends close_notify: Python's `ssl` sees a clean end
/// of stream (`recv` returns b""), where a bare TCP close would raise
/// `SSLEOFError`.
#[test]
fn graceful_shutdown_sends_close_notify() {
    let (cert, server) = tls_echo("close-notify", 2);
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as raw:
    # Without suppress_ragged_eofs=False a bare TCP close also reads as b"".
    with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as s:
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"
        print("ready", flush=True)
        try:
            print("clean" if s.recv(100) == b"" else "data")
        except ssl.SSLEOFError:
            print("no close_notify")
"#;
    let mut child = python_client(script, server.addr, &cert);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let report = server.stop(Duration::from_secs(5));
    assert_eq!(lines.next().unwrap().unwrap(), "clean");
    assert!(child.wait().unwrap().success());
    assert_eq!(report.stats.closed_for(&CloseReason::Shutdown), 1);
    assert_eq!(report.closed_at_deadline, 0);
}
