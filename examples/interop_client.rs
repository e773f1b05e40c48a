//! Interop client: the same checks as `tests-interop/python/client.py` (see
//! `tests-interop/README.md`), run by `cargo xtask interop` against Python and Node servers.
//!
//! `cargo run --release --example interop_client -- URI [--no-compression]
//!  [--server-max-window-bits N] [--client-max-window-bits N] [--server-no-context-takeover]
//!  [--client-no-context-takeover] [--timeout SECS]`

use std::sync::Arc;
use std::time::Duration;

use ws_deflate::ClientPerMessageDeflateFactory;
use ws_tokio::{Bytes, ClientBuilder, CloseCode, Error, Message, WebSocket};

const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];

fn binary(n: usize) -> Vec<u8> {
    let half = n / 2;
    let mut out: Vec<u8> = (0..half).map(|i| (i % 251) as u8).collect();
    let mut x = n as u32;
    for _ in half..n {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        out.push((x >> 16) as u8);
    }
    out
}

fn text(n: usize) -> String {
    let unit = "ws interop: h\u{e9}llo \u{20ac} \u{1F600} \u{65e5}\u{672c}. ";
    let mut out = unit.repeat(n / unit.len());
    out.push_str(&"x".repeat(n - out.len()));
    out
}

#[derive(Default)]
struct Args {
    uri: String,
    no_compression: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<u8>,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    timeout: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { timeout: 60, ..Args::default() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--no-compression" => args.no_compression = true,
            "--server-no-context-takeover" => args.server_no_context_takeover = true,
            "--client-no-context-takeover" => args.client_no_context_takeover = true,
            "--server-max-window-bits" => args.server_max_window_bits = value()?.parse().ok(),
            "--client-max-window-bits" => args.client_max_window_bits = value()?.parse().ok(),
            "--timeout" => args.timeout = value()?.parse().map_err(|_| "bad --timeout")?,
            _ => args.uri = arg,
        }
    }
    if args.uri.is_empty() { Err("usage: interop_client URI [flags]".into()) } else { Ok(args) }
}

struct Checks {
    failures: Vec<String>,
    count: usize,
}

impl Checks {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        self.count += 1;
        if !ok {
            self.failures.push(what.into());
        }
    }
}

fn negotiation_problems(header: Option<&str>, a: &Args) -> Vec<String> {
    if a.no_compression {
        return header.map(|h| vec![format!("unexpected extension negotiated: {h}")]).unwrap_or_default();
    }
    let Some(header) = header.filter(|h| h.contains("permessage-deflate")) else {
        return vec![format!("permessage-deflate not negotiated (got {header:?})")];
    };
    let params: Vec<(&str, Option<&str>)> = header
        .split(';')
        .skip(1)
        .map(|p| {
            let mut kv = p.trim().splitn(2, '=');
            (kv.next().unwrap_or(""), kv.next().map(|v| v.trim_matches('"')))
        })
        .collect();
    let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let mut problems = Vec::new();
    if a.server_no_context_takeover && get("server_no_context_takeover").is_none() {
        problems.push("server_no_context_takeover requested but not in response".into());
    }
    if let Some(max) = a.server_max_window_bits {
        let got = get("server_max_window_bits").flatten().and_then(|v| v.parse::<u8>().ok());
        if !got.is_some_and(|bits| (8..=max).contains(&bits)) {
            problems.push(format!("server_max_window_bits {max} requested, response has {got:?}"));
        }
    }
    problems
}

async fn run(
    a: &Args,
    checks: &mut Checks,
    extensions: &mut Option<String>,
) -> Result<Option<(u16, String)>, Error> {
    let mut builder = ClientBuilder::new().max_size(Some(4 << 20));
    if a.no_compression {
        builder = builder.compression(None);
    } else {
        builder = builder.extension(Arc::new(ClientPerMessageDeflateFactory {
            server_no_context_takeover: a.server_no_context_takeover,
            client_no_context_takeover: a.client_no_context_takeover,
            server_max_window_bits: a.server_max_window_bits,
            client_max_window_bits: a.client_max_window_bits,
            ..Default::default()
        }));
    }
    let mut ws: WebSocket<_> = builder.connect(&a.uri).await?;
    *extensions = ws
        .info()
        .response()
        .and_then(|r| r.headers().get("sec-websocket-extensions"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let problems = negotiation_problems(extensions.as_deref(), a);
    checks.check(problems.is_empty(), problems.join("; "));

    for size in SIZES {
        let t = text(size);
        ws.send(t.as_str()).await?;
        let got = ws.recv().await?;
        checks.check(
            matches!(&got, Message::Text(g) if g.as_str() == t),
            format!("text {size}: echo mismatch"),
        );
        let b = binary(size);
        ws.send(b.clone()).await?;
        let got = ws.recv().await?;
        checks.check(
            matches!(&got, Message::Binary(g) if g[..] == b[..]),
            format!("binary {size}: echo mismatch"),
        );
    }

    // A text message in four frames, one of them an empty continuation.
    ws.send_fragmented(["frag-one h\u{e9}", " ", "", "frag-two"]).await?;
    let got = ws.recv().await?;
    checks.check(
        matches!(&got, Message::Text(g) if g.as_str() == "frag-one h\u{e9} frag-two"),
        "fragmented text",
    );
    let bparts = [binary(3), binary(70000), Vec::new(), binary(126)];
    ws.send_fragmented(bparts.iter().cloned()).await?;
    let got = ws.recv().await?;
    checks.check(matches!(&got, Message::Binary(g) if g[..] == bparts.concat()[..]), "fragmented binary");

    let (mut reader, mut writer) = ws.split();
    let mut pong = writer.ping(Some(Bytes::from_static(b"interop-ping"))).await?;
    // The read half must run for the pong to be seen.
    let latency = loop {
        tokio::select! {
            latency = &mut pong => break latency,
            received = reader.recv() => if let Err(e) = received { break Err(e) },
        }
    };
    checks.check(latency.is_ok(), "ping: no pong");

    writer.close(CloseCode(4000), "interop-bye").await?;
    match reader.recv().await {
        Err(Error::Closed(closed)) => {
            checks.check(closed.code == CloseCode(4000), format!("server close code {}", closed.code));
            Ok(Some((closed.code.0, closed.reason)))
        }
        other => {
            checks.check(false, format!("expected the connection closed, got {other:?}"));
            Ok(None)
        }
    }
}

#[tokio::main]
async fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut checks = Checks { failures: Vec::new(), count: 0 };
    let mut extensions = None;
    let outcome =
        tokio::time::timeout(Duration::from_secs(a.timeout), run(&a, &mut checks, &mut extensions)).await;
    let mut code = 0;
    let mut close = "null".to_owned();
    match outcome {
        Ok(Ok(Some((close_code, reason)))) => {
            close = format!("{{\"code\":{close_code},\"reason\":\"{}\"}}", reason.replace(['"', '\\'], ""));
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => {
            checks.failures.push(format!("error: {e}"));
            code = 2;
        }
        Err(_) => {
            checks.failures.push("error: timed out".into());
            code = 2;
        }
    }
    if code == 0 && !checks.failures.is_empty() {
        code = 1;
    }
    let json_str = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let failures: Vec<String> = checks.failures.iter().map(|f| json_str(f)).collect();
    println!(
        "{{\"peer\":\"ws-rust-client\",\"uri\":{},\"ok\":{},\"failures\":[{}],\"extensions\":{},\"close\":{},\"checks\":{}}}",
        json_str(&a.uri),
        code == 0,
        failures.join(","),
        extensions.as_deref().map_or("null".into(), json_str),
        close,
        checks.count
    );
    std::process::exit(code);
}
