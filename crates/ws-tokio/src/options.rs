//! Settings shared by clients and servers: timeouts and limits, with Python `websockets`' defaults.

use std::time::Duration;

/// Timeouts and limits of a connection. The defaults are Python `websockets`' own.
///
/// There is no `max_queue`: reading is demand-driven. The transport is read only when the
/// application asks for the next message, so at most one read buffer (16 KiB, or one frame)
/// of unread messages is ever held, and a peer that sends faster than the application reads
/// meets TCP backpressure — Python's `max_queue` set as low as it goes.
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
        ws_proto::Config::default().with_max_message_size(self.max_size).with_max_frame_size(frame)
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
