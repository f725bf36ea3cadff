//! System calls per request, counted by `perf stat -e raw_syscalls:sys_enter`
//! attached to the server (all its threads) for a whole run.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::context::Ctx;
use crate::engine::{self, Live};
use crate::requests::Workload;
use crate::servers::{Contender, Server};

/// baton kv, redis, valkey and limit on SET at -P 1 and -P 16 (plain), and
/// TLS at -P 16.
pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let who = [
        Contender::single(Server::BatonKv),
        Contender::single(Server::Redis),
        Contender::single(Server::Valkey),
        Contender::single(Server::Limit),
        Contender::threaded(Server::BatonKv, 2),
        Contender::always(Server::BatonKv, 2),
    ];
    let cases = [(false, 1), (false, 16), (true, 16)];
    let mut rows = Vec::new();
    for (tls, pipeline) in cases {
        let mut row = Vec::new();
        for c in &who {
            if tls && !c.has_tls() {
                row.push(None);
                continue;
            }
            let server = ctx.env.start(*c, 16)?;
            let target = ctx.target(&server, tls, true)?;
            let out = ctx.env.dir.join("perf.txt");
            let mut perf = Command::new("perf")
                .args(["stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "-o"])
                .arg(&out)
                .args(["-p", &server.pid().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("perf (apt-get install linux-perf): {e}"))?;
            // perf needs a moment to attach to every thread.
            std::thread::sleep(Duration::from_millis(500));
            let mut plan = ctx.plan(Workload::Set, 50, pipeline, 16);
            plan.warmup = Duration::ZERO;
            let report = engine::run(&target, &plan, &Live::default())?;
            // SIGINT makes perf write its counts and exit.
            // SAFETY: kill(2) with a child's pid and a signal number.
            unsafe { libc::kill(perf.id() as i32, libc::SIGINT) };
            perf.wait().map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
            let count: f64 = text
                .lines()
                .find(|l| l.contains("raw_syscalls:sys_enter"))
                .and_then(|l| l.split(',').next())
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| format!("perf said: {text}"))?;
            let per = count / report.requests.max(1) as f64;
            println!(
                "syscalls {} SET -P {pipeline} {}: {per:.3} per request",
                if tls { "TLS" } else { "plain" },
                c.name()
            );
            ctx.json.push(format!(
                "{{\"section\":\"syscalls\",\"contender\":\"{}\",\"tls\":{tls},\"pipeline\":{pipeline},\"requests\":{},\"syscalls\":{count},\"per_request\":{per:.4}}}",
                c.name(),
                report.requests
            ));
            row.push(Some(per));
        }
        rows.push((tls, pipeline, row));
    }
    let md = &mut ctx.md;
    let _ = write!(md, "### System calls per request (SET, 50 connections; `perf stat -e raw_syscalls:sys_enter -p PID`)\n\n| case |");
    for c in &who {
        let _ = write!(md, " {} |", c.name());
    }
    let _ = writeln!(md, "\n|---|{}", "---|".repeat(who.len()));
    for (tls, pipeline, row) in &rows {
        let _ = write!(
            md,
            "| {} -P {pipeline} |",
            if *tls { "TLS" } else { "plain" }
        );
        for v in row {
            let _ = write!(md, " {} |", v.map_or("-".into(), |v| format!("{v:.3}")));
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(md);
    Ok(())
}
