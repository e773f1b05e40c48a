//! Drives the Autobahn|Testsuite fuzzing server: getCaseCount, runCase for each case (echoing
//! every message), updateReports.
//!
//! `cargo run --release --example autobahn_client -- [ws://127.0.0.1:9001] [AGENT]`

use ws_tokio::{ClientBuilder, Error, Message};

async fn echo_case(url: &str) -> Result<(), Error> {
    let mut ws = ClientBuilder::new().max_size(Some(64 << 20)).connect(url).await?;
    loop {
        match ws.recv().await {
            Ok(message) => ws.send(message).await?,
            Err(Error::Closed(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let base = base.trim_end_matches('/');
    let agent = args.next().unwrap_or_else(|| "ws".to_owned());

    let mut ws = ws_tokio::connect(&format!("{base}/getCaseCount")).await?;
    let count: u32 = match ws.recv().await? {
        Message::Text(text) => {
            text.as_str().trim().parse().map_err(|_| Error::InvalidUri("bad case count".into()))?
        }
        Message::Binary(_) => return Err(Error::InvalidUri("bad case count".into())),
    };
    let _ = ws.close(ws_tokio::CloseCode::NORMAL, "").await;
    eprintln!("autobahn_client: {count} cases");
    for case in 1..=count {
        if let Err(e) = echo_case(&format!("{base}/runCase?case={case}&agent={agent}")).await {
            eprintln!("case {case}: {e}");
        }
    }
    let mut ws = ws_tokio::connect(&format!("{base}/updateReports?agent={agent}")).await?;
    let _ = ws.close(ws_tokio::CloseCode::NORMAL, "").await;
    Ok(())
}
