//! `ws bench URL`: the load generator of `bench/loadgen` (the `ws-load` crate) with a progress
//! line and a table for a person, or one JSON object with `--json`.

use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ws_load::{Options, Payload, Progress, Report};
use ws_tokio::http::Uri;

use crate::{explain, parse_duration, parse_size};

/// `ws bench` options.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// An echo server, e.g. ws://127.0.0.1:8765/ (plain ws:// only).
    url: String,
    /// Connections.
    #[arg(long, default_value_t = 4)]
    conns: usize,
    /// Bytes per message (e.g. 64, 16KiB).
    #[arg(long, value_name = "BYTES", default_value = "64", value_parser = parse_size)]
    size: usize,
    /// How long to measure (after a warm-up of --warmup).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Load before measuring.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    warmup: Duration,
    /// Messages in flight per connection (default: 2 to 16, fewer for large messages).
    #[arg(long, value_name = "N")]
    in_flight: Option<usize>,
    /// Offer permessage-deflate and send compressed messages.
    #[arg(long)]
    compression: bool,
    /// What the messages carry: JSON-like text, or random bytes (binary, incompressible).
    #[arg(long, value_enum, default_value_t = PayloadArg::Json)]
    payload: PayloadArg,
    /// Print one JSON object instead of the progress line and the table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PayloadArg {
    Json,
    Random,
}

/// `host:port` and the request target of a `ws://` URL.
fn target(url: &str) -> Result<(String, String, String), String> {
    let uri: Uri =
        url.parse().map_err(|e| format!("invalid URL `{url}`: {e}; expected ws://host[:port][/path]"))?;
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => return Err(format!("`{url}`: ws bench speaks plain ws:// only (no TLS)")),
        _ => return Err(format!("invalid URL `{url}`: expected ws://host[:port][/path]")),
    }
    let authority = uri.authority().ok_or_else(|| format!("invalid URL `{url}`: no host"))?;
    let host = authority.host();
    let port = authority.port_u16().unwrap_or(80);
    // A bracketed IPv6 host keeps its brackets in `host:port`.
    let addr = format!("{host}:{port}");
    let path = uri.path_and_query().map_or("/".into(), |p| p.as_str().to_owned());
    Ok((addr, authority.as_str().to_owned(), if path.is_empty() { "/".into() } else { path }))
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    if args.conns == 0 {
        return Err("--conns must be at least 1".into());
    }
    let (addr, host, path) = target(&args.url)?;
    let options = Options {
        addr,
        host: Some(host),
        path,
        conns: args.conns,
        size: args.size,
        payload: match args.payload {
            PayloadArg::Json => Payload::Json,
            PayloadArg::Random => Payload::Random,
        },
        binary: false,
        inflight: args.in_flight.unwrap_or(0),
        warmup: args.warmup.as_secs_f64(),
        duration: args.duration.as_secs_f64(),
        deflate: args.compression,
        client_no_context_takeover: false,
        server_pid: None,
    };
    let total = args.warmup + args.duration;
    let bar = if args.json { ProgressBar::hidden() } else { ProgressBar::new(total.as_millis() as u64) };
    bar.set_style(
        ProgressStyle::with_template("{bar:24.cyan/blue} {elapsed:>3} {msg}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    bar.set_message(format!("connecting {} connection(s)…", args.conns));
    let mut last = (Duration::ZERO, 0u64);
    let on_progress = |p: Progress| {
        bar.set_position(p.elapsed.as_millis() as u64);
        let dt = (p.elapsed - last.0).as_secs_f64();
        if dt > 0.0 {
            let rate = (p.echoes - last.1) as f64 / dt;
            let phase = if p.measuring { "measuring" } else { "warming up" };
            bar.set_message(format!(
                "{phase}: {} msg/s, {:.1} MB/s",
                thousands(rate),
                rate * args.size as f64 / 1e6
            ));
        }
        last = (p.elapsed, p.echoes);
    };
    let result = ws_load::block_on(ws_load::run_load(&options, on_progress))
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    bar.finish_and_clear();
    let report = result.map_err(|e| explain::load_error(&args.url, &e))?;
    if report.msgs == 0 && report.errors.is_empty() {
        return Err(explain::load_error(&args.url, &ws_load::Error::NoEcho));
    }
    if args.json {
        println!("{}", json(&args, &report));
    } else {
        print!("{}", table(&args, &report));
    }
    if let Some(first) = report.errors.first() {
        eprintln!("ws: {} connection(s) failed during the run, the first: {first}", report.errors.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn payload_name(p: PayloadArg) -> &'static str {
    match p {
        PayloadArg::Json => "json",
        PayloadArg::Random => "random",
    }
}

fn json(args: &Args, r: &Report) -> String {
    let url = args.url.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "{{\"url\":\"{url}\",\"conns\":{},\"in_flight\":{},\"size\":{},\"payload\":\"{}\",\"compression\":{},\
         \"duration_s\":{:.3},\"messages\":{},\"messages_per_s\":{:.1},\"mb_per_s\":{:.3},\"p50_us\":{:.1},\
         \"p90_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\"sent_wire_ratio\":{:.4},\"echo_wire_ratio\":{:.4},\"errors\":{}}}",
        r.conns,
        r.inflight,
        args.size,
        payload_name(args.payload),
        args.compression,
        r.secs,
        r.msgs,
        r.msg_per_s,
        r.mb_per_s,
        r.p50_us,
        r.p90_us,
        r.p99_us,
        r.max_us,
        r.sent_wire_ratio,
        r.echo_wire_ratio,
        r.errors.len(),
    )
}

fn table(args: &Args, r: &Report) -> String {
    let mut out = format!(
        "ws bench {}: {} connection(s), {} in flight each, {}-byte {} messages{}, {:.1} s\n\n",
        args.url,
        r.conns,
        r.inflight,
        args.size,
        payload_name(args.payload),
        if args.compression { ", permessage-deflate" } else { "" },
        r.secs,
    );
    let mut rows = vec![
        ("messages", thousands(r.msgs as f64)),
        ("messages/s", thousands(r.msg_per_s)),
        ("MB/s", format!("{:.2}", r.mb_per_s)),
        ("latency p50", micros(r.p50_us)),
        ("latency p90", micros(r.p90_us)),
        ("latency p99", micros(r.p99_us)),
        ("latency max", micros(r.max_us)),
        ("errors", r.errors.len().to_string()),
    ];
    if args.compression {
        // Bytes on the wire per payload byte: a speed bought with weaker compression shows here.
        rows.push(("wire / sent", format!("{:.3}", r.sent_wire_ratio)));
        rows.push(("wire / echo", format!("{:.3}", r.echo_wire_ratio)));
    }
    for (name, value) in rows {
        out.push_str(&format!("  {name:<12} {value:>12}\n"));
    }
    out
}

/// A latency, in µs below a millisecond, else in ms.
fn micros(us: f64) -> String {
    if us < 1000.0 { format!("{us:.0} µs") } else { format!("{:.2} ms", us / 1000.0) }
}

/// A count with thousands separators, rounded.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_numbers() {
        assert_eq!(
            target("ws://127.0.0.1:8765/chat?x=1"),
            Ok(("127.0.0.1:8765".into(), "127.0.0.1:8765".into(), "/chat?x=1".into()))
        );
        assert_eq!(target("ws://localhost"), Ok(("localhost:80".into(), "localhost".into(), "/".into())));
        assert!(target("wss://localhost").is_err());
        assert!(target("http://localhost").is_err());
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(micros(45.2), "45 µs");
        assert_eq!(micros(1500.0), "1.50 ms");
    }
}
