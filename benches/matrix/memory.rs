//! Memory per connection: the server's resident memory with 10,000 idle
//! connections (each did a handshake, for TLS, and one PING) over without.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use baton::tls::rustls::{ClientConnection, StreamOwned};

use crate::context::{ratio, Ctx};
use crate::engine::Target;
use crate::servers::{Contender, Server};

const IDLE: usize = 10_000;

/// baton kv vs redis vs valkey, plain and TLS.
pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let who = [Server::BatonKv, Server::Redis, Server::Valkey];
    let mut per_conn = Vec::new();
    for tls in [false, true] {
        let mut row = Vec::new();
        for server in who {
            let running = ctx.env.start(Contender::single(server), 16)?;
            let target = ctx.target(&running, tls, true)?;
            drop(open_idle(&target, 1)?);
            std::thread::sleep(Duration::from_millis(300));
            let before = running.rss_bytes();
            let conns = open_idle(&target, IDLE)?;
            std::thread::sleep(Duration::from_millis(500));
            let after = running.rss_bytes();
            drop(conns);
            let bytes = after.saturating_sub(before) as f64 / IDLE as f64;
            println!(
                "memory {} {:?}: {:.0} B per idle connection ({} -> {} KiB)",
                if tls { "TLS" } else { "plain" },
                server,
                bytes,
                before / 1024,
                after / 1024
            );
            ctx.json.push(format!(
                "{{\"section\":\"memory\",\"contender\":\"{}\",\"tls\":{tls},\"idle_connections\":{IDLE},\"rss_before\":{before},\"rss_after\":{after},\"bytes_per_connection\":{bytes:.0}}}",
                Contender::single(server).name()
            ));
            row.push(bytes);
        }
        per_conn.push((tls, row));
    }
    let md = &mut ctx.md;
    let _ = writeln!(
        md,
        "### Memory per idle connection ({IDLE} connections; RSS after minus before, divided by {IDLE})\n\n\
         | transport | baton kv | redis | valkey | kv/redis | kv/valkey |\n|---|---|---|---|---|---|"
    );
    for (tls, row) in &per_conn {
        let _ = writeln!(
            md,
            "| {} | {:.1} KiB | {:.1} KiB | {:.1} KiB | {} | {} |",
            if *tls { "TLS" } else { "plain" },
            row[0] / 1024.0,
            row[1] / 1024.0,
            row[2] / 1024.0,
            ratio(Some(row[0]), Some(row[1])),
            ratio(Some(row[0]), Some(row[2])),
        );
    }
    let _ = writeln!(md);
    Ok(())
}

/// A connection held open and idle.
pub enum Idle {
    Plain(#[allow(dead_code)] TcpStream),
    Tls(#[allow(dead_code)] Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// Opens `n` connections, each answering one PING, and keeps them.
pub fn open_idle(target: &Target, n: usize) -> Result<Vec<Idle>, String> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let stream = TcpStream::connect(target.addr).map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        conns.push(match &target.tls {
            None => {
                let mut s = stream;
                ping(&mut s)?;
                Idle::Plain(s)
            }
            Some((config, name)) => {
                let conn = ClientConnection::new(config.clone(), name.clone())
                    .map_err(|e| e.to_string())?;
                let mut s = StreamOwned::new(conn, stream);
                ping(&mut s)?;
                Idle::Tls(Box::new(s))
            }
        });
    }
    Ok(conns)
}

/// Sends a PING and expects PONG.
pub fn ping(s: &mut (impl Read + Write)) -> Result<(), String> {
    s.write_all(b"*1\r\n$4\r\nPING\r\n")
        .map_err(|e| format!("PING: {e}"))?;
    let mut reply = [0u8; 7];
    s.read_exact(&mut reply)
        .map_err(|e| format!("PING reply: {e}"))?;
    if &reply != b"+PONG\r\n" {
        return Err(format!("PING got {:?}", String::from_utf8_lossy(&reply)));
    }
    Ok(())
}
