//! The benchmark matrix: baton against real peers, measured side by side.
//!
//! ```text
//! cargo build --release --examples && cargo bench --bench matrix
//! cargo bench --bench matrix -- --only kv,echo --rounds 1 --seconds 1   # a quick look
//! ```
//!
//! Every server runs as its own process (started fresh for every run, so no
//! run inherits another's state); the load generator (`examples/loadgen`)
//! runs in this process, one thread, on the same machine. Contenders
//! alternate within each round (A B C A B C ...) and medians over rounds are
//! reported, because a shared machine drifts. Writes `report.md`,
//! `results.json` and SVG plots to `--out` (default `target/bench`).

#[path = "../../examples/loadgen/engine.rs"]
mod engine;
#[path = "../../examples/loadgen/replies.rs"]
mod replies;
#[path = "../../examples/loadgen/requests.rs"]
mod requests;
// The runner always verifies the certificate; `Trust::Insecure` is for the CLI.
#[allow(dead_code)]
#[path = "../../examples/loadgen/tls_client.rs"]
mod tls_client;

mod context;
mod echo;
mod handshakes;
mod kv;
mod measure;
mod memory;
mod plots;
mod procfs;
mod proxies;
mod proxy;
mod proxy_report;
mod redis_bench;
mod scaling;
mod servers;
mod syscalls;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::Parser;

/// baton against redis-server, valkey-server, tokio and a canned-reply limit.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Rounds per case; medians are over rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Warm-up seconds per run (not measured).
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Sections to run (default all): kv, io, echo, handshakes, memory,
    /// scaling, syscalls, proxy.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where report.md, results.json and the plots go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

type Section = fn(&mut context::Ctx) -> Result<(), String>;

const SECTIONS: [(&str, Section); 8] = [
    ("kv", kv::single_threaded),
    ("io", kv::io_threads),
    ("echo", echo::run),
    ("handshakes", handshakes::run),
    ("memory", memory::run),
    ("scaling", scaling::run),
    ("syscalls", syscalls::run),
    ("proxy", proxy::run),
];

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("matrix: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    for name in &args.only {
        if !SECTIONS.iter().any(|(s, _)| s == name) {
            return Err(format!("unknown section {name:?}"));
        }
    }
    raise_descriptor_limit();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        root.join(&args.out)
    };
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut ctx = context::Ctx {
        env: servers::Env::new(&root)?,
        rounds: args.rounds.max(1),
        seconds: args.seconds,
        warmup: args.warmup,
        out: out.clone(),
        md: String::new(),
        json: Vec::new(),
    };
    let started = Instant::now();
    let _ = writeln!(ctx.md, "{}", machine(args));
    for (name, section) in SECTIONS {
        if args.only.is_empty() || args.only.iter().any(|o| o == name) {
            println!("== {name}");
            section(&mut ctx)?;
            // Write as we go: a long run that fails late keeps what it had.
            write(&ctx)?;
        }
    }
    let _ = writeln!(
        ctx.md,
        "Whole run: {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    write(&ctx)?;
    println!(
        "wrote {}/report.md, results.json and the plots",
        out.display()
    );
    Ok(())
}

fn write(ctx: &context::Ctx) -> Result<(), String> {
    std::fs::write(ctx.out_file("report.md"), &ctx.md).map_err(|e| e.to_string())?;
    std::fs::write(
        ctx.out_file("results.json"),
        format!("[\n{}\n]\n", ctx.json.join(",\n")),
    )
    .map_err(|e| e.to_string())
}

/// What ran where, for the top of the report.
fn machine(args: &Args) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let version = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    };
    // The commit measured, and whether the tree had changes beyond it.
    let commit = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_string(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        );
    format!(
        "## Run\n\n- machine: {cpu}, {cores} cores; {}\n- {}\n- {}\n- baton: commit {commit}, aws-lc-rs provider, release build\n- {} rounds x {:.1} s measured (+{:.1} s warm-up) per run, contenders alternating; medians\n- load generator: `examples/loadgen` in the runner's process, 1 thread, closed loop, same machine\n",
        version("uname", "-sr"),
        version("redis-server", "--version"),
        version("valkey-server", "--version"),
        args.rounds,
        args.seconds,
        args.warmup
    )
}

fn raise_descriptor_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
