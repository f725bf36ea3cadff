//! Every byte an echo client sends comes back, in order, whatever the
//! payload size and however it is chunked, with 0, 1 and 4 IO threads.

mod util;

#[path = "../examples/echo/service.rs"]
mod echo;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use baton::tls::Transport;
use baton::{recycle_buffer, Codec, Config, IoActivation, RecvBuf};
use util::{run_echo_clients, spawn_server, EchoPlan};

const CLIENTS: usize = 500;
const MAX_PAYLOAD: usize = 1 << 20;

fn echo_integrity(io_threads: usize, seed: u64) {
    let server = spawn_server(
        Config::default()
            .io_threads(io_threads)
            .io_activation(IoActivation::Always),
        || echo::Echo,
    );
    let mut rng = util::rng(seed);
    let mut plans: Vec<EchoPlan> = (0..CLIENTS)
        .map(|_| EchoPlan::random(&mut rng, MAX_PAYLOAD))
        .collect();
    // Always include both extremes.
    plans[0] = EchoPlan {
        payload: vec![42],
        chunks: vec![1],
    };
    plans[1] = EchoPlan {
        payload: util::random_bytes(&mut rng, MAX_PAYLOAD),
        chunks: vec![MAX_PAYLOAD],
    };
    let total: usize = plans.iter().map(|p| p.payload.len()).sum();
    run_echo_clients(server.addr, plans, Duration::from_secs(120));
    server.wait_for("all bytes counted", Duration::from_secs(10), |s| {
        s.bytes_out == total as u64
    });
    let report = server.stop(Duration::from_secs(5));
    assert_eq!(report.stats.bytes_in, total as u64);
    assert_eq!(report.stats.connections_accepted, CLIENTS as u64);
    if io_threads > 0 {
        let jobs: u64 = report.stats.io_threads.iter().map(|w| w.jobs).sum();
        assert!(
            jobs > 0,
            "IO threads did the work: {:?}",
            report.stats.io_threads
        );
        assert_eq!(report.stats.io_threads.len(), io_threads);
    } else {
        assert!(report.stats.io_threads.is_empty());
        assert!(report.stats.inline_steps > 0);
    }
}

#[test]
fn echo_integrity_inline() {
    echo_integrity(0, 1);
}

#[test]
fn echo_integrity_one_io_thread() {
    echo_integrity(1, 2);
}

#[test]
fn echo_integrity_four_io_threads() {
    echo_integrity(4, 3);
}

/// The codec recycles buffers (a sent frame's write buffer receives the
/// next frame): a recycled buffer must carry none of its old bytes, and it
/// must actually be reused, not reallocated.
#[test]
fn the_echo_codec_reuses_the_written_buffer_and_never_its_bytes() {
    let mut codec = echo::EchoCodec::default();
    let mut src = RecvBuf::new();
    let mut wbuf: Vec<u8> = Vec::with_capacity(4096);
    wbuf.extend_from_slice(b"already written");
    wbuf.clear();
    let written_at = wbuf.as_ptr();
    src.extend_from_slice(b"first frame");
    let first = codec.decode(&mut src).unwrap().expect("a frame");
    assert_eq!(first, b"first frame");
    assert!(src.is_empty());
    codec.encode(first, &mut wbuf);
    assert_eq!(wbuf, b"first frame", "sent as it was decoded");
    src.extend_from_slice(b"2nd");
    let second = codec.decode(&mut src).unwrap().expect("a frame");
    assert_eq!(second, b"2nd", "no byte of an earlier use");
    assert_eq!(second.as_ptr(), written_at, "the written buffer was reused");
    // Appended behind unwritten output, a frame is copied, in order.
    codec.encode(second, &mut wbuf);
    assert_eq!(wbuf, b"first frame2nd");
    assert_eq!(codec.decode(&mut src).unwrap(), None);
}

/// A large read is the frame itself: the receive buffer's storage is handed
/// over, not copied, and sent as it is; once written, the runtime gives it
/// back to the thread's pool (`recycle_buffer`) and the next read takes it
/// from there. A stream of large frames neither copies nor allocates.
#[test]
fn a_large_read_is_the_frame_itself_and_its_buffer_serves_the_next_read() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let mut server = Transport::Plain(server);
    let mut codec = echo::EchoCodec::default();
    let mut src = RecvBuf::new();
    let pooled = Vec::with_capacity(128 * 1024);
    let storage = pooled.as_ptr();
    recycle_buffer(pooled);
    for round in 0..3u8 {
        let batch: Vec<u8> = (0..100_000u32).map(|i| (i as u8) ^ round).collect();
        client.write_all(&batch).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while src.len() < batch.len() {
            assert!(
                std::time::Instant::now() < deadline,
                "the batch never arrived"
            );
            server.read(&mut src, 1 << 20).unwrap();
        }
        assert_eq!(
            src.as_slice().as_ptr(),
            storage,
            "round {round}: read into the pooled buffer"
        );
        let frame = codec.decode(&mut src).unwrap().expect("a frame");
        assert!(src.is_empty());
        assert_eq!(
            frame, batch,
            "round {round}: every byte, none of an earlier round"
        );
        assert_eq!(
            frame.as_ptr(),
            storage,
            "round {round}: handed over, not copied"
        );
        let mut wbuf = Vec::new();
        codec.encode(frame, &mut wbuf);
        assert_eq!(wbuf.as_ptr(), storage, "round {round}: sent as it is");
        // What `Conn::flush` does once a large write buffer is written out.
        recycle_buffer(wbuf);
    }
}
