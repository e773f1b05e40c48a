//! `ws connect URL`: an interactive client, or a line-per-message pipe when stdin is not a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rustyline_async::{Readline, ReadlineEvent};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use ws_tokio::http::{HeaderName, HeaderValue};
use ws_tokio::{
    ClientBuilder, ClientPerMessageDeflateFactory, CloseCode, ConnectionClosed, Error, Message, ReadHalf,
    WebSocket,
};

use crate::{explain, parse_duration, parse_size, tls};

/// `ws connect` options.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The server, e.g. ws://127.0.0.1:8765/ or wss://example.com/socket.
    url: String,
    /// An extra request header, `Name: value` (repeatable), e.g. for authentication.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// A subprotocol to offer (repeatable, in order of preference).
    #[arg(long = "subprotocol", value_name = "NAME")]
    subprotocols: Vec<String>,
    /// Do not offer permessage-deflate.
    #[arg(long)]
    no_compression: bool,
    /// Offer permessage-deflate with this LZ77 window (9-15) both ways.
    #[arg(long, value_name = "N", conflicts_with = "no_compression", value_parser = clap::value_parser!(u8).range(9..=15))]
    deflate_window_bits: Option<u8>,
    /// Keepalive ping interval (e.g. 20s, 500ms); 0 turns keepalive off.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    ping_interval: Duration,
    /// The largest message accepted (e.g. 1MiB).
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_size)]
    max_size: usize,
    /// With stdin not a terminal: once stdin ends, how long to wait for outstanding replies (one
    /// per line sent) while the server is silent, before closing.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    linger: Duration,
    /// Accept any TLS certificate (self-signed servers); never for production.
    #[arg(long, short = 'k')]
    insecure: bool,
}

fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = s.split_once(':').ok_or_else(|| format!("`{s}`: expected `Name: value`"))?;
    let name = HeaderName::try_from(name.trim()).map_err(|e| format!("`{}`: {e}", name.trim()))?;
    let value = HeaderValue::try_from(value.trim()).map_err(|e| format!("`{}`: {e}", value.trim()))?;
    Ok((name, value))
}

fn builder(args: &Args) -> Result<ClientBuilder, String> {
    let mut builder = ClientBuilder::new()
        .ping_interval((!args.ping_interval.is_zero()).then_some(args.ping_interval))
        .max_size(Some(args.max_size));
    for (name, value) in &args.headers {
        builder = builder.header(name.clone(), value.clone());
    }
    if !args.subprotocols.is_empty() {
        builder = builder.subprotocols(args.subprotocols.iter().cloned());
    }
    if args.no_compression {
        builder = builder.compression(None);
    } else if let Some(bits) = args.deflate_window_bits {
        builder = builder.extension(Arc::new(ClientPerMessageDeflateFactory {
            server_max_window_bits: Some(bits),
            client_max_window_bits: Some(bits),
            ..Default::default()
        }));
    }
    tls::client(builder, args.insecure)
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    crate::runtime()?.block_on(async {
        let ws =
            builder(&args)?.connect(&args.url).await.map_err(|e| explain::connect_error(&args.url, &e))?;
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            interactive(ws, &args.url).await
        } else {
            piped(ws, args.linger).await
        }
    })
}

/// How a received message is shown: text as is, binary as hex (short) or a size summary.
fn show(message: &Message) -> String {
    match message {
        Message::Text(text) => text.as_str().to_owned(),
        Message::Binary(data) if data.len() <= 32 => {
            format!("[binary, {} bytes] {}", data.len(), hex(data))
        }
        Message::Binary(data) => format!("[binary, {} bytes] {}…", data.len(), hex(&data[..16])),
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// How the connection ended, and the exit code: 0 for a normal closure.
fn closed(closed: &ConnectionClosed) -> (String, ExitCode) {
    let line = if closed.reason.is_empty() {
        format!("connection closed: code {}", closed.code)
    } else {
        format!("connection closed: code {}, reason \"{}\"", closed.code, closed.reason)
    };
    (line, if closed.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The end of the read half: the closure, or the error that ended it.
fn ended(e: &Error) -> (String, ExitCode) {
    match e {
        Error::Closed(c) => closed(c),
        other => (format!("connection failed: {other}"), ExitCode::FAILURE),
    }
}

async fn interactive(ws: WebSocket, url: &str) -> Result<ExitCode, String> {
    let info = ws.info();
    let mut hello = format!("connected to {url}");
    if let Some(protocol) = info.subprotocol() {
        hello.push_str(&format!(", subprotocol {protocol}"));
    }
    if !info.extensions().is_empty() {
        hello.push_str(&format!(", {}", info.extensions().join(", ")));
    }
    println!("{hello}\n(type a line to send it, Ctrl-D to close)");
    let (mut rx, mut tx) = ws.split();
    let (mut rl, mut out) =
        Readline::new("> ".into()).map_err(|e| format!("cannot read the terminal: {e}"))?;
    let end = loop {
        tokio::select! {
            event = rl.readline() => match event {
                Ok(ReadlineEvent::Line(line)) => {
                    rl.add_history_entry(line.clone());
                    if let Err(e) = tx.send(line).await {
                        break ended(&e);
                    }
                }
                Ok(ReadlineEvent::Eof | ReadlineEvent::Interrupted) => {
                    // Close (1000) and print what arrived until the peer's close frame.
                    let _ = tx.close(CloseCode::NORMAL, "").await;
                    let end = drain(&mut rx, |m| { let _ = writeln!(out, "< {}", show(&m)); }).await;
                    break end;
                }
                Err(e) => {
                    let _ = tx.close(CloseCode::NORMAL, "").await;
                    drop(rl);
                    return Err(format!("cannot read the terminal: {e}"));
                }
            },
            message = rx.recv() => match message {
                Ok(m) => { let _ = writeln!(out, "< {}", show(&m)); }
                Err(e) => break ended(&e),
            },
        }
    };
    // Prints what the writer still holds and leaves raw mode before the last line.
    let _ = rl.flush();
    drop(rl);
    println!("{}", end.0);
    Ok(end.1)
}

/// Reads until the connection ends, handing each message to `each`.
async fn drain(rx: &mut ReadHalf, mut each: impl FnMut(Message)) -> (String, ExitCode) {
    loop {
        match rx.recv().await {
            Ok(m) => each(m),
            Err(e) => return ended(&e),
        }
    }
}

async fn piped(ws: WebSocket, linger: Duration) -> Result<ExitCode, String> {
    let (mut rx, mut tx) = ws.split();
    // How many messages arrived, for waiting on the replies before closing.
    let (count, mut received) = tokio::sync::watch::channel(0u64);
    let printer = tokio::spawn(async move {
        let mut stdout = std::io::stdout();
        drain(&mut rx, |m| {
            let _ = writeln!(stdout, "{}", show(&m));
            let _ = stdout.flush();
            count.send_modify(|n| *n += 1);
        })
        .await
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut sent = 0u64;
    let mut send_failed = false;
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                if tx.send(line).await.is_err() {
                    send_failed = true;
                    break;
                }
                sent += 1;
            }
            Ok(None) => break,
            Err(e) => return Err(format!("cannot read stdin: {e}")),
        }
    }
    if !send_failed {
        // A server stops sending once it has our close frame: wait for one reply per line sent
        // first, or until the server has been silent for `linger`.
        while *received.borrow_and_update() < sent {
            match tokio::time::timeout(linger, received.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
        let _ = tx.close(CloseCode::NORMAL, "").await;
    }
    let (line, code) = printer.await.map_err(|e| format!("the reader task failed: {e}"))?;
    eprintln!("{line}");
    Ok(code)
}
