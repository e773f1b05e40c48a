//! Settings shared by clients and servers: compression, timeouts and limits, with Python
//! `websockets`' defaults.

use std::time::Duration;

use ws_deflate::Memory;

use crate::error::{Error, Result, Timeout};

/// Which compression to negotiate by default (`None` in the builders: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// permessage-deflate (RFC 7692) with Python `websockets`' defaults, its zlib streams kept
    /// as [`Memory`] says. The default, `Deflate(Memory::Dedicated)`, keeps context takeover:
    /// a busy connection owns its zlib streams (~210 KiB); a quiet one releases them after
    /// `idle_release`, keeping only its compression history (a few KiB).
    /// `Deflate(Memory::Shared)` is the memory-lean mode: no context takeover, zlib streams
    /// shared per thread, a few hundred bytes per connection.
    Deflate(Memory),
}

impl Default for Compression {
    fn default() -> Self {
        Self::Deflate(Memory::Dedicated)
    }
}

impl Compression {
    pub(crate) fn memory(self) -> Memory {
        match self {
            Self::Deflate(memory) => memory,
        }
    }
}

/// Write buffer water marks: once more than `high` bytes wait to be written, `send` waits
/// until the peer has taken all but `low`. Python `websockets`' `write_limit`: from one number
/// (`low` is a quarter of it) or from `(high, low)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimit {
    /// Above this many buffered bytes, `send` waits.
    pub high: usize,
    /// It resumes once no more than this many are left (at most `high`).
    pub low: usize,
}

impl Default for WriteLimit {
    /// 32 KiB and 8 KiB.
    fn default() -> Self {
        Self::from(32 * 1024)
    }
}

impl From<usize> for WriteLimit {
    fn from(high: usize) -> Self {
        Self { high, low: high / 4 }
    }
}

impl From<(usize, usize)> for WriteLimit {
    fn from((high, low): (usize, usize)) -> Self {
        Self { high, low: low.min(high) }
    }
}

/// Timeouts and limits of a connection. The defaults are Python `websockets`' own.
///
/// The connection is driven whether or not the application reads: pings are answered,
/// keepalive runs and the closing handshake advances while the application only sends, or
/// waits on something else entirely.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
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
    /// Write buffer water marks (default 32 KiB and 8 KiB), see [`WriteLimit`].
    pub write_limit: WriteLimit,
    /// How long a connection may be quiet before it frees the memory it keeps for speed
    /// (default 1 s; `None`: never): its output buffer and the extensions' state that the next
    /// message can rebuild, such as permessage-deflate's zlib streams (about 190 KiB per
    /// connection at the default settings, of which only the compression history, 4 KiB, is
    /// kept). The read buffer goes as soon as nothing is buffered. A connection that wakes up
    /// pays once for rebuilding (some tens of microseconds with deflate); a busy one never does.
    pub idle_release: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            open_timeout: Some(Duration::from_secs(10)),
            ping_interval: Some(Duration::from_secs(20)),
            ping_timeout: Some(Duration::from_secs(20)),
            close_timeout: Some(Duration::from_secs(10)),
            max_queue: Some(16),
            max_size: Some(1 << 20),
            max_frame_size: None,
            write_limit: WriteLimit::default(),
            idle_release: Some(Duration::from_secs(1)),
        }
    }
}

impl Config {
    pub(crate) fn proto_config(&self) -> ws_proto::Config {
        ws_proto::Config::default()
            .with_max_size(self.max_size)
            .with_max_frame_size(self.max_frame_size)
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
macro_rules! config_setters {
    () => {
        /// Sets `open_timeout` (see [`Config::open_timeout`](crate::Config::open_timeout)).
        pub fn open_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.config.open_timeout = timeout;
            self
        }

        /// Sets `ping_interval` (see [`Config::ping_interval`](crate::Config::ping_interval)).
        pub fn ping_interval(mut self, interval: Option<std::time::Duration>) -> Self {
            self.config.ping_interval = interval;
            self
        }

        /// Sets `ping_timeout` (see [`Config::ping_timeout`](crate::Config::ping_timeout)).
        pub fn ping_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.config.ping_timeout = timeout;
            self
        }

        /// Sets `close_timeout` (see [`Config::close_timeout`](crate::Config::close_timeout)).
        pub fn close_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.config.close_timeout = timeout;
            self
        }

        /// Sets `max_queue` (see [`Config::max_queue`](crate::Config::max_queue)).
        pub fn max_queue(mut self, max: Option<usize>) -> Self {
            self.config.max_queue = max;
            self
        }

        /// Sets the message size limit (see [`Config::max_size`](crate::Config::max_size)).
        pub fn max_size(mut self, max: Option<usize>) -> Self {
            self.config.max_size = max;
            self
        }

        /// Sets the wire frame size limit (see [`Config::max_frame_size`](crate::Config::max_frame_size)).
        pub fn max_frame_size(mut self, max: Option<usize>) -> Self {
            self.config.max_frame_size = max;
            self
        }

        /// Sets the write buffer water marks: `32768` (low: a quarter) or `(32768, 8192)`
        /// (see [`WriteLimit`](crate::WriteLimit)).
        pub fn write_limit(mut self, limit: impl Into<crate::WriteLimit>) -> Self {
            self.config.write_limit = limit.into();
            self
        }

        /// Sets `idle_release` (see [`Config::idle_release`](crate::Config::idle_release)).
        pub fn idle_release(mut self, after: Option<std::time::Duration>) -> Self {
            self.config.idle_release = after;
            self
        }

        /// Replaces all timeouts and limits at once.
        pub fn config(mut self, config: crate::Config) -> Self {
            self.config = config;
            self
        }
    };
}
pub(crate) use config_setters;
