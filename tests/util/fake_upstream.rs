//! A TCP server whose every connection is handed to a function of the
//! test's on a thread of its own: an upstream that misbehaves exactly as a
//! test asks (closes mid-reply, resets, streams without end), or hands its
//! sockets to the test.

use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A loopback listener; each accepted connection runs `handler` on a new
/// thread. Stops accepting when dropped (handlers run to their own end).
pub struct FakeUpstream {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeUpstream {
    pub fn spawn(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Non-blocking, polled: a blocking accept could not be told to stop.
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("fake-upstream".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                stream.set_nonblocking(false).unwrap();
                                let handler = Arc::clone(&handler);
                                std::thread::spawn(move || handler(stream));
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(1)),
                        }
                    }
                })
                .unwrap()
        };
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Hands each accepted connection to the test, matched by the 8-byte tag
/// the connection's first bytes carry (so a test running many pairs at
/// once knows which upstream socket belongs to which client).
#[derive(Clone, Default)]
pub struct Tagged {
    waiting: Arc<Mutex<HashMap<u64, Sender<TcpStream>>>>,
}

impl Tagged {
    /// The handler for [`FakeUpstream::spawn`]: reads the tag (a
    /// connection that ends first, or sends an unknown tag, is dropped).
    pub fn handler(&self) -> impl Fn(TcpStream) + Send + Sync + 'static {
        let waiting = Arc::clone(&self.waiting);
        move |mut stream: TcpStream| {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut tag = [0u8; 8];
            if stream.read_exact(&mut tag).is_err() {
                return;
            }
            stream.set_read_timeout(None).unwrap();
            let sender = waiting.lock().unwrap().remove(&u64::from_le_bytes(tag));
            if let Some(sender) = sender {
                let _ = sender.send(stream);
            }
        }
    }

    /// Where the upstream connection tagged `tag` will arrive.
    pub fn expect(&self, tag: u64) -> Receiver<TcpStream> {
        let (tx, rx) = mpsc::channel();
        self.waiting.lock().unwrap().insert(tag, tx);
        rx
    }
}
