//! `ws`: talk to, serve and load WebSocket endpoints from a terminal, on ws-tokio.
//!
//! - `ws connect URL`: an interactive client (lines typed are sent as text, messages print as
//!   they arrive, Ctrl-D closes), or with stdin not a terminal, one message per input line;
//! - `ws serve ADDR --echo | --broadcast`: an echo or a broadcast server;
//! - `ws bench URL`: a load generator against an echo server, with a table of rates and latencies.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod connect;
mod explain;
mod serve;
mod tls;

/// With the `jemalloc` feature, `ws serve` gives the memory of a burst of busy connections back
/// to the system once they go quiet or close (see the feature's note in Cargo.toml).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "ws", version, about = "WebSocket client, servers and load generator", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to a server: type lines to send them, Ctrl-D to close.
    ///
    /// With stdin not a terminal, sends each input line as a text message, prints each message
    /// received on its own line, and closes (1000) once stdin ends.
    Connect(connect::Args),
    /// Run an echo or a broadcast server (logs through RUST_LOG, default info).
    Serve(serve::Args),
    /// Load an echo server: many connections, messages in flight, then a table of rates and
    /// latency percentiles.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Connect(args) => connect::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("ws: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A multi-threaded runtime for `connect` and `serve`.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))
}

/// Parses sizes such as `1048576`, `64KiB`, `1MiB`, `2MB`.
fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: usize = digits.parse().map_err(|_| format!("`{s}` is not a size (e.g. 1024, 64KiB, 1MiB)"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        _ => return Err(format!("`{s}`: unknown unit (B, KB, KiB, MB, MiB)")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses durations such as `20`, `20s`, `500ms`, `2m`.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: f64 = digits.parse().map_err(|_| format!("`{s}` is not a duration (e.g. 10, 10s, 500ms)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        _ => return Err(format!("`{s}`: unknown unit (ms, s, m)")),
    };
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_duration("500ms"), Ok(std::time::Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(std::time::Duration::from_secs(2)));
        assert!(parse_duration("2h").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
