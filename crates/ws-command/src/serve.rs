//! `ws serve ADDR --echo | --broadcast`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tracing::{info, warn};
use ws_tokio::{Broadcaster, Compression, Error, ServerBuilder, WebSocket};

use crate::{parse_size, tls};

/// `ws serve` options.
#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["echo", "broadcast"]))]
pub(crate) struct Args {
    /// Where to listen, e.g. 127.0.0.1:8765 (port 0: any free port, printed at start).
    addr: String,
    /// Send every message back to its sender.
    #[arg(long)]
    echo: bool,
    /// Send every message to every connected client, the sender included.
    #[arg(long)]
    broadcast: bool,
    /// TLS certificate chain (PEM); with --tls-key, serves wss://.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The largest message accepted (e.g. 1MiB); larger ones close the connection with 1009.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_size)]
    max_size: usize,
    /// Do not accept permessage-deflate.
    #[arg(long)]
    no_compression: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    init_logging();
    let tls = args.tls_cert.is_some();
    let mut builder = ServerBuilder::new().max_size(Some(args.max_size));
    if args.no_compression {
        builder = builder.compression(None);
    } else {
        builder = builder.compression(Some(Compression::default()));
    }
    let builder = tls::server(builder, args.tls_cert, args.tls_key)?;
    crate::runtime()?.block_on(async move {
        let server = if args.echo {
            builder.serve(|ws| logged(ws, "echo", echo), args.addr.as_str()).await
        } else {
            let hub = Broadcaster::default();
            builder
                .serve(
                    move |ws| {
                        let hub = hub.clone();
                        logged(ws, "broadcast", move |ws| broadcast(ws, hub))
                    },
                    args.addr.as_str(),
                )
                .await
        }
        .map_err(|e| {
            format!("cannot listen on {}: {e}; is the address right, and the port free?", args.addr)
        })?;
        let addr = server.local_addr().map_or(args.addr.clone(), |a| a.to_string());
        // Scripts and tests read this line for the port.
        println!("listening on {}://{addr}", tls::scheme(tls));
        let _ = std::io::Write::flush(&mut std::io::stdout());
        info!(%addr, mode = if args.echo { "echo" } else { "broadcast" }, "serving; Ctrl-C stops");
        tokio::signal::ctrl_c().await.map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
        info!(connections = server.connections(), "stopping: closing connections with 1001");
        server.shutdown(SHUTDOWN).await;
        Ok(ExitCode::SUCCESS)
    })
}

/// `RUST_LOG` decides what is logged; `info` (connections) by default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// Runs `handler` with a log line when the connection opens and one when it ends.
async fn logged<F, Fut>(ws: WebSocket, mode: &'static str, handler: F)
where
    F: FnOnce(WebSocket) -> Fut,
    Fut: Future<Output = (u64, Error)>,
{
    let info = ws.info();
    let (id, remote) = (info.id(), info.remote_addr());
    let path = info.request().map(|r| r.uri().to_string()).unwrap_or_default();
    let extensions = info.extensions().join(", ");
    info!(id, ?remote, %path, subprotocol = info.subprotocol(), %extensions, "{mode}: open");
    let (messages, end) = handler(ws).await;
    match end {
        Error::Closed(c) if c.ok => info!(id, messages, code = %c.code, reason = %c.reason, "closed"),
        Error::Closed(c) => warn!(id, messages, code = %c.code, reason = %c.reason, "closed with an error"),
        other => warn!(id, messages, error = %other, "failed"),
    }
}

/// Echoes until the connection ends; returns the messages echoed and how it ended.
async fn echo(mut ws: WebSocket) -> (u64, Error) {
    let mut n = 0;
    loop {
        let message = match ws.recv().await {
            Ok(m) => m,
            Err(e) => return (n, e),
        };
        if let Err(e) = ws.send(message).await {
            return (n, e);
        }
        n += 1;
    }
}

/// Broadcasts each message to every member until the connection ends.
async fn broadcast(mut ws: WebSocket, hub: Broadcaster) -> (u64, Error) {
    let _member = hub.join(&ws);
    let mut n = 0;
    loop {
        match ws.recv().await {
            Ok(m) => {
                hub.broadcast(m);
                n += 1;
            }
            Err(e) => return (n, e),
        }
    }
}

/// How long connections get to close (1001) after Ctrl-C.
const SHUTDOWN: Duration = Duration::from_secs(2);
