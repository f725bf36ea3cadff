//! What the transport's integration tests share: a handshaken pair of
//! baton TLS transports over real non-blocking sockets, and a pump that
//! moves data between them until both go quiet.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use baton_tls::rustls::pki_types::ServerName;
use baton_tls::{client_config_trusting, generate_self_signed, RecvBuf, TlsSettings, Transport};

pub fn client_config(cert_file: &std::path::Path) -> Arc<baton_tls::rustls::ClientConfig> {
    Arc::new(client_config_trusting(cert_file, &[]).unwrap())
}

/// A TLS server and client transport, connected, handshake not yet run.
pub fn pair(dir: &std::path::Path) -> (Transport, Transport) {
    let (cert, key) = generate_self_signed(dir).unwrap();
    let server_config = TlsSettings::from_files(&cert, &key).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_nonblocking(true).unwrap();
    server.set_nonblocking(true).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    (
        Transport::tls_server(server, server_config).unwrap(),
        Transport::tls_client(client, client_config(&cert), name).unwrap(),
    )
}

/// Moves data both ways until neither side has anything to say.
pub fn pump(a: &mut Transport, a_in: &mut RecvBuf, b: &mut Transport, b_in: &mut RecvBuf) {
    for _ in 0..1000 {
        let mut moved = 0;
        for (t, buf) in [(&mut *a, &mut *a_in), (&mut *b, &mut *b_in)] {
            if t.wants_write() {
                t.flush().unwrap();
                moved += 1;
            }
            moved += t.read(buf, 1 << 20).unwrap().bytes;
        }
        if moved == 0
            && !a.wants_write()
            && !b.wants_write()
            && !a.is_handshaking()
            && !b.is_handshaking()
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("the two sides never went quiet");
}
