//! WebSocket echo load generator for `cargo xtask bench`: the command line and the one JSON line
//! that `xtask/src/bench.rs` reads, around the `ws-load` crate (shared with `ws bench`).
//!
//! Throughput mode prints one JSON line:
//! `{"msgs":..,"secs":..,"msg_per_s":..,"mb_per_s":..,"p50_us":..,"p99_us":..,"conns":..,..}`
//! (with the bytes on the wire per payload byte each way: `sent_wire_ratio`, `echo_wire_ratio`),
//! with the CPU time (user and system seconds) the load generator and, given `--server-pid`, the
//! server used during the measured window: which of the two was busy, and each one's cost per echo.
//! Idle mode (`--idle N`) opens N connections, echoes one message on each (none with
//! `--no-echo`), prints `READY` and holds them until stdin closes. With `--burst K` it echoes K
//! different messages on every connection at once instead (the client keeping its compression
//! context, as browsers do), then holds them the same way and closes them with 1000.
//! Broadcast mode (`--broadcast`) opens `--receivers N` connections (and `--stalled S` that
//! never read) to a fan-out server, sends it messages on `/control` and prints one JSON line:
//! `{"messages":..,"deliveries":..,"deliveries_per_s":..,"wire_bytes_per_delivery":..,..}`.
//! Soak mode (`--soak SECS`, for `cargo xtask soak`) keeps `--conns` connections coming and going
//! and prints tab-separated lines: once a second
//! `second T ECHOES P99_US OPEN OPENED ERRORS`, then at the end `echoes N`, `opened N`,
//! `outcome COUNT WHAT` per kind of ending and `error KIND COUNT FIRST-MESSAGE` per kind of error.
//! Hold mode (`--hold N [--sources IP,IP..] [--concurrency K] [--no-echo]`, the scale part) opens N
//! connections from those source addresses in turn, prints `OPEN {json}` after the handshakes,
//! echoes one message on each after a line on stdin, prints `READY {json}`, answers pings while
//! holding them, and prints `DONE {json}` (connections held and lost) when stdin closes.

use std::time::Duration;

use ws_load::hold::HoldOptions;
use ws_load::{BroadcastOptions, BroadcastReport, Options, Report, SoakOptions, SoakReport};

const USAGE: &str = "usage: ws-loadgen --addr HOST:PORT [--conns N] [--size BYTES] [--binary]
                  [--inflight K] [--warmup SECS] [--duration SECS]
                  [--deflate [--client-no-context-takeover]]
                  [--server-pid PID] [--idle N [--no-echo | --burst K]]
                  [--broadcast [--receivers N] [--stalled N] [--window K] [--until-dropped N]]
                  [--soak SECS [--ramp SECS] [--seed N]]
                  [--hold N [--sources IP,IP..] [--concurrency K] [--no-echo]]";

/// The command line: the echo options, and the other modes'.
struct Args {
    echo: Options,
    idle: usize,
    no_echo: bool,
    /// `--burst K`: K different messages on every idle connection at once.
    burst: usize,
    broadcast: Option<BroadcastOptions>,
    soak: Option<SoakOptions>,
    hold: HoldOptions,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Options::default();
    let (mut idle, mut no_echo, mut burst, mut broadcast) = (0, false, 0, false);
    let mut b = BroadcastOptions::default();
    let mut soak: Option<SoakOptions> = None;
    let (mut ramp, mut seed) = (None, None);
    let mut hold = HoldOptions { conns: 0, ..HoldOptions::default() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        let num = |s: String| s.parse::<f64>().map_err(|e| format!("{s}: {e}"));
        match arg.as_str() {
            "--addr" => a.addr = val()?,
            "--conns" => a.conns = num(val()?)? as usize,
            "--size" => a.size = num(val()?)? as usize,
            "--binary" => a.binary = true,
            "--inflight" => a.inflight = num(val()?)? as usize,
            "--warmup" => a.warmup = num(val()?)?,
            "--duration" => a.duration = num(val()?)?,
            "--deflate" => a.deflate = true,
            "--client-no-context-takeover" => a.client_no_context_takeover = true,
            "--idle" => idle = num(val()?)? as usize,
            "--no-echo" => no_echo = true,
            "--burst" => burst = num(val()?)? as usize,
            "--server-pid" => a.server_pid = Some(num(val()?)? as u32),
            "--broadcast" => broadcast = true,
            "--receivers" => b.receivers = num(val()?)? as usize,
            "--stalled" => b.stalled = num(val()?)? as usize,
            "--window" => b.window = num(val()?)? as usize,
            "--until-dropped" => b.until_dropped = num(val()?)? as u64,
            "--soak" => {
                let duration = Duration::from_secs_f64(num(val()?)?);
                soak = Some(SoakOptions { duration, ..SoakOptions::default() });
            }
            "--ramp" => ramp = Some(Duration::from_secs_f64(num(val()?)?)),
            "--seed" => seed = Some(num(val()?)? as u64),
            "--hold" => hold.conns = num(val()?)? as usize,
            "--concurrency" => hold.concurrency = num(val()?)? as usize,
            "--sources" => {
                hold.sources = val()?
                    .split(',')
                    .map(|ip| ip.parse().map_err(|e| format!("--sources {ip}: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let broadcast = broadcast.then(|| BroadcastOptions {
        addr: a.addr.clone(),
        size: a.size,
        deflate: a.deflate,
        warmup: a.warmup,
        duration: a.duration,
        server_pid: a.server_pid,
        ..b
    });
    if let Some(s) = &mut soak {
        s.addr = a.addr.clone();
        s.conns = a.conns;
        s.ramp = ramp.unwrap_or(s.ramp);
        s.seed = seed.unwrap_or(s.seed);
    }
    hold.echo = !no_echo;
    Ok(Args { echo: a, idle, no_echo, burst, broadcast, soak, hold })
}

fn cpu(c: Option<[f64; 2]>) -> String {
    match c {
        Some([u, s]) => format!("[{u:.3},{s:.3}]"),
        None => "null".into(),
    }
}

fn print_broadcast(r: &BroadcastReport) {
    let opt = |v: Option<u64>| v.map_or("null".into(), |v| v.to_string());
    println!(
        "{{\"messages\":{},\"deliveries\":{},\"secs\":{:.3},\"deliveries_per_s\":{:.1},\"wire_bytes_per_delivery\":{:.1},\"compressed\":{},\"server_no_context_takeover\":{},\"server_delivered\":{},\"server_dropped\":{},\"rss_start\":{},\"rss_max\":{},\"rss_end\":{},\"loadgen_cpu\":{},\"server_cpu\":{}}}",
        r.messages,
        r.deliveries,
        r.secs,
        r.deliveries_per_s,
        r.wire_bytes_per_delivery,
        r.compressed,
        r.server_no_context_takeover,
        r.server_delivered,
        r.server_dropped,
        opt(r.rss_start),
        opt(r.rss_max),
        opt(r.rss_end),
        cpu(r.loadgen_cpu),
        cpu(r.server_cpu),
    );
}

/// The soak's closing lines (tabs and line breaks in messages made spaces).
fn print_soak(r: &SoakReport) {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    println!("echoes\t{}", r.echoes);
    println!("opened\t{}", r.opened);
    for (what, n) in &r.outcomes {
        println!("outcome\t{n}\t{what}");
    }
    for (kind, (n, first)) in &r.errors {
        println!("error\t{kind}\t{n}\t{}", clean(first));
    }
}

fn print(r: &Report) {
    println!(
        "{{\"msgs\":{},\"secs\":{:.3},\"msg_per_s\":{:.1},\"mb_per_s\":{:.3},\"p50_us\":{:.1},\"p99_us\":{:.1},\"conns\":{},\"inflight\":{},\"frame_len\":{},\"pool\":{},\"sent_wire_ratio\":{:.4},\"echo_wire_ratio\":{:.4},\"loadgen_cpu\":{},\"server_cpu\":{}}}",
        r.msgs,
        r.secs,
        r.msg_per_s,
        r.mb_per_s,
        r.p50_us,
        r.p99_us,
        r.conns,
        r.inflight,
        r.frame_len,
        r.pool,
        r.sent_wire_ratio,
        r.echo_wire_ratio,
        cpu(r.loadgen_cpu),
        cpu(r.server_cpu),
    );
}

fn main() {
    let Args { echo: args, idle, no_echo, burst, broadcast, soak, hold } = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let res = ws_load::block_on(async move {
        if let Some(b) = broadcast {
            let report = ws_load::run_broadcast(&b).await?;
            report.check()?;
            print_broadcast(&report);
            Ok(())
        } else if let Some(soak) = soak {
            let report = ws_load::run_soak(&soak, |s| {
                println!(
                    "second\t{}\t{}\t{:.0}\t{}\t{}\t{}",
                    s.t, s.echoes, s.p99_us, s.open, s.opened, s.errors
                );
            })
            .await;
            print_soak(&report);
            Ok(())
        } else if hold.conns > 0 {
            let opened = |o: &ws_load::hold::Opened| println!("OPEN {}", o.json());
            let echoed = |e: &ws_load::hold::Echoed| println!("READY {}", e.json());
            let held = {
                let (echo_when, until) = ws_load::hold::stdin_signals();
                ws_load::hold::run_hold(&args, &hold, opened, echoed, echo_when, until).await?
            };
            println!("DONE {}", held.json());
            Ok(())
        } else if idle > 0 && burst > 0 {
            ws_load::run_burst(&args, idle, burst, |n| println!("READY {n}")).await
        } else if idle > 0 {
            ws_load::run_idle(&args, idle, no_echo, |n| println!("READY {n}")).await
        } else {
            let report = ws_load::run_load(&args, |_| {}).await?;
            report.check()?;
            print(&report);
            Ok(())
        }
    })
    .expect("runtime");
    if let Err(e) = res {
        eprintln!("ws-loadgen: {e}");
        std::process::exit(1);
    }
}
