//! `ws`: a layered WebSocket stack (RFC 6455, RFC 7692).
//!
//! This umbrella crate re-exports the layers so that `ws::connect` / `ws::serve` work out of the
//! box; depend on a single layer (`ws-proto`, `ws-handshake`, ...) when you bring your own I/O.
#![forbid(unsafe_code)]

pub use ws_deflate as deflate;
pub use ws_extensions as extensions;
pub use ws_handshake as handshake;
pub use ws_proto as proto;
pub use ws_tokio::*;

/// Scale-out through Redis pub/sub: the `ws-redis` crate (feature `redis`).
#[cfg(feature = "redis")]
pub use ws_redis as redis;

/// The README's snippets, compiled as doctests so that they keep up with the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The guides in `docs/` and the crates' READMEs, compiled as doctests (`cargo test --doc -p ws`):
/// this crate depends on every layer, so their snippets can use any of them. `ws-deflate`'s
/// README is its crate documentation, tested there.
#[cfg(doctest)]
pub mod guides {
    macro_rules! doctests {
        ($($name:ident = $path:literal,)*) => {
            $(
                #[doc = include_str!($path)]
                pub struct $name;
            )*
        };
    }

    doctests! {
        GettingStarted = "../docs/getting-started.md",
        ComingFrom = "../docs/coming-from.md",
        HowtoTls = "../docs/howto/tls.md",
        HowtoReverseProxy = "../docs/howto/reverse-proxy.md",
        HowtoAuthentication = "../docs/howto/authentication.md",
        HowtoBroadcast = "../docs/howto/broadcast.md",
        HowtoReconnecting = "../docs/howto/reconnecting.md",
        HowtoShutdown = "../docs/howto/shutdown.md",
        HowtoSansIo = "../docs/howto/sans-io.md",
        TopicExtensions = "../docs/topics/extensions.md",
        TopicCompression = "../docs/topics/compression.md",
        TopicKeepalive = "../docs/topics/keepalive.md",
        TopicLayering = "../docs/topics/layering.md",
        WritingAnExtension = "../docs/writing-an-extension.md",
        Security = "../docs/security.md",
        ScaleOut = "../docs/scale-out.md",
        CommonMistakes = "../docs/common-mistakes.md",
        ReadmeWsProto = "../crates/ws-proto/README.md",
        ReadmeWsHandshake = "../crates/ws-handshake/README.md",
        ReadmeWsExtensions = "../crates/ws-extensions/README.md",
        ReadmeWsTokio = "../crates/ws-tokio/README.md",
        ReadmeWsAxum = "../crates/ws-axum/README.md",
        ReadmeWsRedis = "../crates/ws-redis/README.md",
    }
}
