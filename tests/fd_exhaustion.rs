//! Running out of descriptors: the echo example runs in its own process
//! with `ulimit -n 40`, and 60 clients connect. The server accepts what it
//! can; `accept` then fails (EMFILE), which it logs, while the other clients
//! wait in the backlog, unserved but not lost. Once the served clients leave,
//! descriptors are free again and a retry timer accepts every waiting client
//! (the listener's edge would not come again for them). Black-box, so the
//! test's own sockets do not share the server's limit.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: usize = 60;

/// The echo example `cargo test` built next to this test binary.
fn echo_binary() -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = deps.parent().unwrap().join("examples/echo");
    assert!(
        path.exists(),
        "{} missing: cargo test builds the examples",
        path.display()
    );
    path
}

/// Sends one byte and waits up to `wait` for its echo.
fn served_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(b"x").unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(1) => true,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        other => panic!("unexpected result {other:?}"),
    }
}

#[test]
fn out_of_descriptors_clients_wait_and_are_served_once_descriptors_free_up() {
    let script = format!(
        "ulimit -n 40 && exec {} --port 0 --tls-port 0 --io-threads 2",
        echo_binary().display()
    );
    let mut server = Command::new("bash")
        .args(["-c", &script])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain stdout all along (a full pipe would block the server's logging)
    // and keep it for the checks at the end.
    let mut stdout = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut banner = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut banner).unwrap();
    let log = std::thread::spawn(move || {
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        rest
    });
    let addr: SocketAddr = banner
        .split_whitespace()
        .nth(3)
        .and_then(|a| a.parse().ok())
        .expect("banner");

    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let mut served = Vec::new();
    let mut waiting = Vec::new();
    for mut stream in clients.drain(..) {
        if served_within(&mut stream, Duration::from_millis(150)) {
            served.push(stream);
        } else {
            waiting.push(stream);
        }
    }
    assert!(
        !served.is_empty() && !waiting.is_empty(),
        "{} served, {} waiting",
        served.len(),
        waiting.len()
    );
    // The served leave; their descriptors free up; the waiting get served.
    drop(served);
    let start = Instant::now();
    let mut unserved = 0;
    for mut stream in waiting {
        let mut byte = [0u8; 1];
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        // Its byte was sent before; the echo comes once it is accepted.
        match stream.read_exact(&mut byte) {
            Ok(()) => assert_eq!(&byte, b"x"),
            Err(_) => unserved += 1,
        }
    }

    Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .unwrap();
    let rest = log.join().unwrap();
    assert_eq!(
        unserved, 0,
        "waiting clients never served; server said:\n{rest}"
    );
    assert!(start.elapsed() < Duration::from_secs(20));
    let out = server.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the server exits cleanly: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        rest.contains(&format!("echo stopped: {CLIENTS} connections served")),
        "{rest}"
    );
    // The log goes to stdout (tracing-subscriber's default): each failing
    // spell is announced once, not once per failed accept (they retry every
    // 100 ms), and its end once. The last spell may still be open at exit:
    // Linux's accept takes a descriptor before it looks at the backlog, so a
    // server at its limit fails even with nobody waiting.
    let spells = rest.matches("accept failed").count();
    let ended = rest.matches("accept works again").count();
    assert!(ended >= 1, "a spell ended: {rest}");
    assert!(
        spells == ended || spells == ended + 1,
        "one line per spell: {rest}"
    );
    assert!(
        rest.contains("failures"),
        "the recovery line counts the failures: {rest}"
    );
}
