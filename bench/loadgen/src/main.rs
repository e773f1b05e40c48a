//! WebSocket echo load generator for `cargo xtask bench`: the command line and the one JSON line
//! that `xtask/src/bench.rs` reads, around the `ws-load` crate (shared with `ws bench`).
//!
//! Throughput mode prints one JSON line:
//! `{"msgs":..,"secs":..,"msg_per_s":..,"mb_per_s":..,"p50_us":..,"p99_us":..,"conns":..,..}`,
//! with the CPU time (user and system seconds) the load generator and, given `--server-pid`, the
//! server used during the measured window: which of the two was busy, and each one's cost per echo.
//! Idle mode (`--idle N`) opens N connections, echoes one message on each (none with
//! `--no-echo`), prints `READY` and holds them until stdin closes.

use ws_load::{Options, Report};

const USAGE: &str = "usage: ws-loadgen --addr HOST:PORT [--conns N] [--size BYTES] [--binary]
                  [--inflight K] [--warmup SECS] [--duration SECS] [--deflate]
                  [--server-pid PID] [--idle N [--no-echo]]";

fn parse_args() -> Result<(Options, usize, bool), String> {
    let mut a = Options::default();
    let (mut idle, mut no_echo) = (0, false);
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
            "--idle" => idle = num(val()?)? as usize,
            "--no-echo" => no_echo = true,
            "--server-pid" => a.server_pid = Some(num(val()?)? as u32),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok((a, idle, no_echo))
}

fn print(r: &Report) {
    let cpu = |c: Option<[f64; 2]>| match c {
        Some([u, s]) => format!("[{u:.3},{s:.3}]"),
        None => "null".into(),
    };
    println!(
        "{{\"msgs\":{},\"secs\":{:.3},\"msg_per_s\":{:.1},\"mb_per_s\":{:.3},\"p50_us\":{:.1},\"p99_us\":{:.1},\"conns\":{},\"inflight\":{},\"frame_len\":{},\"loadgen_cpu\":{},\"server_cpu\":{}}}",
        r.msgs,
        r.secs,
        r.msg_per_s,
        r.mb_per_s,
        r.p50_us,
        r.p99_us,
        r.conns,
        r.inflight,
        r.frame_len,
        cpu(r.loadgen_cpu),
        cpu(r.server_cpu),
    );
}

fn main() {
    let (args, idle, no_echo) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let res = ws_load::block_on(async move {
        if idle > 0 {
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
