//! Counters and gauges through the [`metrics`](https://docs.rs/metrics) facade, with the
//! cargo feature `metrics` (off by default: then none of this code is compiled in). Install
//! any `metrics` recorder (Prometheus exporter, StatsD, …) and these appear:
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `ws_connections_open` | gauge | `role` | connections open now (after their opening handshake, until their driver is dropped) |
//! | `ws_connections_opened_total` | counter | `role` | connections opened |
//! | `ws_connections_closed_total` | counter | `role` | connections ended (driver dropped) |
//! | `ws_close_codes_total` | counter | `role`, `code` | connections whose transport finished, by close code (`1000`, `1001`, `1006`, …) |
//! | `ws_messages_received_total` | counter | `role` | messages handed to the application |
//! | `ws_messages_sent_total` | counter | `role` | messages queued for sending (the final frame of each; broadcasts included) |
//! | `ws_bytes_received_total` | counter | `role` | bytes read from the transport after the handshake, counted per read |
//! | `ws_bytes_sent_total` | counter | `role` | bytes written to the transport after the handshake, counted per write |
//! | `ws_handshake_rejections_total` | counter | `status` | server handshakes answered with an HTTP error (`400`, `403`, `426`, …) |
//! | `ws_handshake_failures_total` | counter | `reason` | connections accepted by `serve*` and dropped before an answer: `proxy_header` (no valid PROXY header), `timeout` (`open_timeout`), `io` |
//!
//! `role` is `server` or `client`. The per-connection handles are registered once, when the
//! connection opens; counting a message, a read or a write is then one increment through the
//! recorder's handle (an atomic add with the usual recorders). Bytes are counted per read and
//! per write of the transport, not per frame.
//!
//! ```toml
//! [dependencies]
//! ws-tokio = { version = "0.1", features = ["metrics"] }
//! ```
//!
//! Then install a recorder at start-up, e.g. `metrics_exporter_prometheus::PrometheusBuilder::new().install()`.
#[cfg(feature = "metrics")]
mod on {
    use metrics::{Counter, Gauge, counter, gauge};
    use ws_proto::{CloseCode, Role};

    fn role_label(role: Role) -> &'static str {
        match role {
            Role::Server => "server",
            Role::Client => "client",
        }
    }

    pub(crate) fn handshake_rejected(status: http::StatusCode) {
        counter!("ws_handshake_rejections_total", "status" => status.as_u16().to_string()).increment(1);
    }

    /// A server connection that ended before its handshake was answered.
    pub(crate) fn handshake_failed(error: &crate::Error) {
        let reason = match error {
            crate::Error::Rejected(_) => return, // counted with its status
            crate::Error::Timeout(_) => "timeout",
            crate::Error::Io(e)
                if e.get_ref().is_some_and(|e| e.is::<crate::proxy_protocol::ProxyHeaderError>()) =>
            {
                "proxy_header"
            }
            _ => "io",
        };
        counter!("ws_handshake_failures_total", "reason" => reason).increment(1);
    }

    /// One connection's handles, registered when it opens.
    pub(crate) struct ConnMetrics {
        role: &'static str,
        open: Gauge,
        messages_in: Counter,
        messages_out: Counter,
        bytes_in: Counter,
        bytes_out: Counter,
    }

    impl ConnMetrics {
        pub(crate) fn new(role: Role) -> Self {
            let role = role_label(role);
            counter!("ws_connections_opened_total", "role" => role).increment(1);
            let open = gauge!("ws_connections_open", "role" => role);
            open.increment(1.0);
            Self {
                role,
                open,
                messages_in: counter!("ws_messages_received_total", "role" => role),
                messages_out: counter!("ws_messages_sent_total", "role" => role),
                bytes_in: counter!("ws_bytes_received_total", "role" => role),
                bytes_out: counter!("ws_bytes_sent_total", "role" => role),
            }
        }

        #[inline]
        pub(crate) fn message_in(&self) {
            self.messages_in.increment(1);
        }

        #[inline]
        pub(crate) fn message_out(&self) {
            self.messages_out.increment(1);
        }

        #[inline]
        pub(crate) fn bytes_in(&self, n: usize) {
            self.bytes_in.increment(n as u64);
        }

        #[inline]
        pub(crate) fn bytes_out(&self, n: usize) {
            self.bytes_out.increment(n as u64);
        }

        /// The transport is finished: count the close code (once per connection).
        pub(crate) fn finished(&self, code: Option<CloseCode>) {
            let code = code.map_or_else(|| "none".to_owned(), |c| c.to_string());
            counter!("ws_close_codes_total", "role" => self.role, "code" => code).increment(1);
        }
    }

    impl Drop for ConnMetrics {
        fn drop(&mut self) {
            self.open.decrement(1.0);
            counter!("ws_connections_closed_total", "role" => self.role).increment(1);
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod on {
    //! Without the feature: nothing, inlined away.
    use ws_proto::{CloseCode, Role};

    pub(crate) fn handshake_rejected(_: http::StatusCode) {}

    pub(crate) fn handshake_failed(_: &crate::Error) {}

    pub(crate) struct ConnMetrics;

    impl ConnMetrics {
        #[inline(always)]
        pub(crate) fn new(_: Role) -> Self {
            Self
        }
        #[inline(always)]
        pub(crate) fn message_in(&self) {}
        #[inline(always)]
        pub(crate) fn message_out(&self) {}
        #[inline(always)]
        pub(crate) fn bytes_in(&self, _: usize) {}
        #[inline(always)]
        pub(crate) fn bytes_out(&self, _: usize) {}
        #[inline(always)]
        pub(crate) fn finished(&self, _: Option<CloseCode>) {}
    }
}

pub(crate) use on::{ConnMetrics, handshake_failed, handshake_rejected};
