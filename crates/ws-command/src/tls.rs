//! TLS options, in one place: `--insecure` for `ws connect`, `--tls-cert/--tls-key` for `ws serve`.
//!
//! ws-tokio has no TLS on this branch yet (wss:// is refused with an invalid-URI error): both
//! options are accepted by the parser and refused here with a clear message until it does.

use std::path::PathBuf;

use ws_tokio::{ClientBuilder, ServerBuilder};

/// Applies `--insecure` (accept any server certificate) to a client.
pub(crate) fn client(builder: ClientBuilder, insecure: bool) -> Result<ClientBuilder, String> {
    if insecure {
        return Err("--insecure: this build of ws has no TLS (wss://) support yet".into());
    }
    Ok(builder)
}

/// Applies `--tls-cert/--tls-key` (PEM files) to a server.
pub(crate) fn server(
    builder: ServerBuilder,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<ServerBuilder, String> {
    match (cert, key) {
        (None, None) => Ok(builder),
        (Some(_), Some(_)) => {
            Err("--tls-cert/--tls-key: this build of ws has no TLS (wss://) support yet".into())
        }
        _ => Err("--tls-cert and --tls-key go together: give both PEM files".into()),
    }
}

/// The scheme clients use to reach a server.
pub(crate) fn scheme(tls: bool) -> &'static str {
    if tls { "wss" } else { "ws" }
}
