//! Settings shared by clients and servers: compression, timeouts and limits, with Python
//! `websockets`' defaults.

use std::time::Duration;

use crate::error::{Error, Result, Timeout};

/// Which compression to negotiate by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// permessage-deflate (RFC 7692) with Python `websockets`' defaults (the default), with
    /// context takeover: a busy connection owns its zlib streams (~210 KiB); a quiet one
    /// releases them after `idle_release`, keeping only its compression history (a few KiB).
    #[default]
    Deflate,
    /// permessage-deflate in the memory-lean mode (`ws_deflate::Memory::Shared`): no context
    /// takeover, zlib streams shared per thread, a few hundred bytes per connection.
    DeflateShared,
}

impl Compression {
    pub(crate) fn memory(self) -> ws_deflate::Memory {
        match self {
            Self::Deflate => ws_deflate::Memory::Dedicated,
            Self::DeflateShared => ws_deflate::Memory::Shared,
        }
    }
}

/// Timeouts and limits of a connection. The defaults are Python `websockets`' own.
///
/// The connection is driven whether or not the application reads: pings are answered,
/// keepalive runs and the closing handshake advances while the application only sends, or
/// waits on something else entirely.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// How long the opening handshake may take (default 10 s; `None`: forever). A peer that
    /// never finishes it (slowloris) is dropped.
    pub open_timeout: Option<Duration>,
    /// How often a keepalive ping is sent (default 20 s; `None` disables keepalive).
    pub ping_interval: Option<Duration>,
    /// How long to wait for the pong before closing with 1011 (default 20 s; `None`: keep
    /// pinging but never time out).
    pub ping_timeout: Option<Duration>,
    /// How long the closing handshake may take (default 10 s).
    pub close_timeout: Option<Duration>,
    /// How many received messages wait for the application before the connection stops
    /// reading from the transport (default 16; reading resumes once a quarter of that is left).
    /// The peer then meets TCP backpressure, and its pings go unanswered too: an application
    /// that never reads from a peer that keeps sending is closed by the peer's keepalive, as
    /// with Python `websockets`. Memory per connection is bounded by about
    /// (`max_queue` + 1) × (`max_size` + 64 KiB) (see `docs/security.md`). `None` never stops
    /// reading: memory then grows with whatever the peer sends — don't, unless the application
    /// reads as fast as any peer can send.
    pub max_queue: Option<usize>,
    /// The largest message accepted, after decompression (default 1 MiB; `None`: unlimited).
    /// Larger messages close the connection with 1009.
    pub max_size: Option<usize>,
    /// The largest frame accepted, as on the wire. `None` (the default) derives it from
    /// `max_size` plus deflate's worst-case expansion (a compressed frame of incompressible
    /// data is slightly larger than the message it carries); `max_size` itself is enforced on
    /// the message after decompression.
    pub max_frame_size: Option<usize>,
    /// Write buffer high and low water marks (default 32 KiB and 8 KiB): once more than `high`
    /// bytes wait to be written, `send` waits until the peer has taken all but `low`.
    pub write_limit: (usize, usize),
    /// How long a connection may be quiet before it frees the memory it keeps for speed
    /// (default 1 s; `None`: never): its output buffer and the extensions' state that the next
    /// message can rebuild, such as permessage-deflate's zlib streams (about 190 KiB per
    /// connection at the default settings, of which only the compression history, 4 KiB, is
    /// kept). The read buffer goes as soon as nothing is buffered. A connection that wakes up
    /// pays once for rebuilding (some tens of microseconds with deflate); a busy one never does.
    pub idle_release: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            open_timeout: Some(Duration::from_secs(10)),
            ping_interval: Some(Duration::from_secs(20)),
            ping_timeout: Some(Duration::from_secs(20)),
            close_timeout: Some(Duration::from_secs(10)),
            max_queue: Some(16),
            max_size: Some(1 << 20),
            max_frame_size: None,
            write_limit: (32 * 1024, 8 * 1024),
            idle_release: Some(Duration::from_secs(1)),
        }
    }
}

impl Options {
    pub(crate) fn proto_config(&self) -> ws_proto::Config {
        // Stored deflate blocks add 5 bytes per 16 KiB; a small window can cost a little more.
        let frame = self.max_frame_size.or(self.max_size.map(|max| max.saturating_add(max / 64 + 1024)));
        ws_proto::Config::default()
            .with_max_message_size(self.max_size)
            .with_max_frame_size(frame)
            .with_keepalive(self.ping_interval, self.ping_timeout)
            .with_close_timeout(self.close_timeout)
    }
}

/// Runs `work` (an opening handshake) within `timeout`.
pub(crate) async fn with_timeout<T>(
    timeout: Option<Duration>,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    // Boxed: the handshake's state (buffers, parsed request, timers) is large and short-lived;
    // inline, it would size every connection task for its whole life.
    let work = Box::pin(work);
    match timeout {
        Some(limit) => tokio::time::timeout(limit, work).await.map_err(|_| Error::Timeout(Timeout::Open))?,
        None => work.await,
    }
}

/// Builder methods shared by the client and server builders.
macro_rules! option_setters {
    () => {
        /// Sets `open_timeout` (see [`Options::open_timeout`](crate::Options::open_timeout)).
        pub fn open_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.options.open_timeout = timeout;
            self
        }

        /// Sets `ping_interval` (see [`Options::ping_interval`](crate::Options::ping_interval)).
        pub fn ping_interval(mut self, interval: Option<std::time::Duration>) -> Self {
            self.options.ping_interval = interval;
            self
        }

        /// Sets `ping_timeout` (see [`Options::ping_timeout`](crate::Options::ping_timeout)).
        pub fn ping_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.options.ping_timeout = timeout;
            self
        }

        /// Sets `close_timeout` (see [`Options::close_timeout`](crate::Options::close_timeout)).
        pub fn close_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.options.close_timeout = timeout;
            self
        }

        /// Sets `max_queue` (see [`Options::max_queue`](crate::Options::max_queue)).
        pub fn max_queue(mut self, max: Option<usize>) -> Self {
            self.options.max_queue = max;
            self
        }

        /// Sets the message size limit (see [`Options::max_size`](crate::Options::max_size)).
        pub fn max_size(mut self, max: Option<usize>) -> Self {
            self.options.max_size = max;
            self
        }

        /// Sets the wire frame size limit (see [`Options::max_frame_size`](crate::Options::max_frame_size)).
        pub fn max_frame_size(mut self, max: Option<usize>) -> Self {
            self.options.max_frame_size = max;
            self
        }

        /// Sets the write buffer water marks (see [`Options::write_limit`](crate::Options::write_limit)).
        pub fn write_limit(mut self, high: usize, low: usize) -> Self {
            self.options.write_limit = (high, low.min(high));
            self
        }

        /// Sets `idle_release` (see [`Options::idle_release`](crate::Options::idle_release)).
        pub fn idle_release(mut self, after: Option<std::time::Duration>) -> Self {
            self.options.idle_release = after;
            self
        }

        /// Replaces all timeouts and limits at once.
        pub fn options(mut self, options: crate::Options) -> Self {
            self.options = options;
            self
        }
    };
}
pub(crate) use option_setters;
