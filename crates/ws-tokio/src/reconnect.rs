//! Reconnecting clients: Python's `async for websocket in connect(uri)` as a [`Stream`] of
//! connections.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use ws_handshake::ClientError;

use crate::client::ClientBuilder;
use crate::error::{Error, Result};
use crate::socket::WebSocket;

/// How long a reconnecting client waits between attempts: truncated exponential backoff, with
/// Python `websockets`' defaults and semantics (its `WEBSOCKETS_BACKOFF_*` variables).
///
/// After the first failure the client waits a random time between zero and `initial_delay`
/// (the jitter that spreads out clients that all lost the same server); after the second,
/// `min_delay`; after each further one, the previous delay times `factor`, at most
/// `max_delay`. With the defaults: 0–5 s, 3.1 s, 5.0 s, 8.1 s, 13.1 s, … 90 s, 90 s, …
/// The sequence starts over after a successful connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay is drawn uniformly from zero to this (default 5 s).
    pub initial_delay: Duration,
    /// The second delay (default 3.1 s).
    pub min_delay: Duration,
    /// Each further delay is the previous one times this (default 1.618).
    pub factor: f64,
    /// No delay is longer than this (default 90 s).
    pub max_delay: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_secs(5),
            min_delay: Duration::from_millis(3100),
            factor: 1.618,
            max_delay: Duration::from_secs(90),
        }
    }
}

impl Backoff {
    /// The delays before the second, third, ... attempt of one series of failures (endless; for
    /// other reconnecting code, such as `ws-redis`'s, to follow the same schedule).
    pub fn delays(self) -> impl Iterator<Item = Duration> {
        let first = self.initial_delay.mul_f64(fastrand::f64());
        let later = std::iter::successors(Some(self.min_delay.min(self.max_delay)), move |delay| {
            // A factor that overflows `Duration` (or is not a number) lands on the cap.
            let next =
                Duration::try_from_secs_f64(delay.as_secs_f64() * self.factor).unwrap_or(self.max_delay);
            Some(next.min(self.max_delay))
        });
        std::iter::once(first).chain(later)
    }
}

/// Whether a failed connection attempt is worth retrying: the default of
/// [`Reconnect::retry_if`], Python `websockets`' `process_exception`.
///
/// Transient (retried):
/// - network errors: the name did not resolve ([`Error::Resolve`], Python's `gaierror` is an
///   `OSError` too), the connection was refused, reset or unreachable ([`Error::Connect`],
///   [`Error::Io`]), the server closed it before answering
///   (`Error::Handshake(ClientError::UnexpectedEof)`), a timeout ([`Error::Timeout`]);
/// - the server or a proxy answered 500, 502, 503 or 504 — and, unlike Python, 429 (Too Many
///   Requests), which asks the client to come back later.
///
/// Fatal (the stream ends with the error): every other error, in particular any other HTTP
/// status (401, 403, 404, 501, redirects), an invalid URI or header, and a response that
/// breaks the WebSocket handshake (a wrong `Sec-WebSocket-Accept`, an extension or
/// subprotocol that was not offered): retrying with the same settings would fail the same way.
pub fn is_transient(error: &Error) -> bool {
    match error {
        Error::Io(_) | Error::Resolve { .. } | Error::Connect { .. } | Error::Timeout(_) => true,
        Error::Handshake(ClientError::UnexpectedEof) => true,
        Error::Handshake(ClientError::Rejected(response)) => {
            matches!(response.status().as_u16(), 429 | 500 | 502 | 503 | 504)
        }
        _ => false,
    }
}

type RetryIf = Arc<dyn Fn(&Error) -> bool + Send + Sync>;
type Attempt = Pin<Box<dyn Future<Output = Result<WebSocket>> + Send>>;

/// A [`Stream`] of connections to one URI that reconnects with exponential backoff: the Rust
/// spelling of Python's `async for websocket in connect(uri)`. Made by
/// [`ClientBuilder::reconnecting`].
///
/// Each item is the next connection, opened when asked for. When an attempt fails with a
/// [transient](is_transient) error, the stream logs it (`tracing`, INFO), waits as
/// [`Backoff`] says and tries again; the item is ready once an attempt succeeds. A fatal error
/// is the last item: the stream ends after it. The backoff starts over after every successful
/// connection, so the attempt after a connection that was open runs at once (as in Python),
/// and only then does a server that is still down make the stream wait.
///
/// Ask for the next connection once done with the previous one (after it closed, or drop it:
/// that closes it); nothing stops you from holding several.
///
/// ```no_run
/// # async fn demo() -> Result<(), ws_tokio::Error> {
/// let mut connections = ws_tokio::ClientBuilder::new().reconnecting("ws://127.0.0.1:8765");
/// // Ends only on a fatal error (403, invalid URI...): transient ones are retried.
/// while let Some(ws) = connections.next().await {
///     let mut ws = ws?;
///     while let Ok(message) = ws.recv().await {
///         println!("{message:?}");
///     }
///     // The connection closed (the server restarted, the network failed): reconnect.
/// }
/// # Ok(()) }
/// ```
pub struct Reconnect {
    builder: ClientBuilder,
    uri: Arc<str>,
    backoff: Backoff,
    retry_if: RetryIf,
    attempt: Option<Attempt>,
    done: bool,
}

impl fmt::Debug for Reconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconnect")
            .field("uri", &self.uri)
            .field("backoff", &self.backoff)
            .field("connecting", &self.attempt.is_some())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A stream that connects to `uri` with these settings each time it is asked for a
    /// connection, retrying transient failures with backoff: Python's
    /// `async for websocket in connect(uri)`. See [`Reconnect`].
    pub fn reconnecting(self, uri: &str) -> Reconnect {
        Reconnect {
            builder: self,
            uri: uri.into(),
            backoff: Backoff::default(),
            retry_if: Arc::new(is_transient),
            attempt: None,
            done: false,
        }
    }
}

impl Reconnect {
    /// Sets the delays between attempts (default: [`Backoff::default`], Python's).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Replaces the test that tells transient errors (retried) from fatal ones (which end the
    /// stream); the default is [`is_transient`]. Python's `process_exception`. The test may
    /// also count or log failures.
    pub fn retry_if(mut self, retry: impl Fn(&Error) -> bool + Send + Sync + 'static) -> Self {
        self.retry_if = Arc::new(retry);
        self
    }

    /// The next connection: `None` once the stream has ended (after a fatal error). The same
    /// as `StreamExt::next`, without importing it.
    pub async fn next(&mut self) -> Option<Result<WebSocket>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// One series of attempts: until one succeeds or fails for good. Owns what it needs so
    /// that the stream can keep it across polls.
    fn attempt(&self) -> Attempt {
        let (builder, uri, retry_if) = (self.builder.clone(), self.uri.clone(), self.retry_if.clone());
        let mut delays = self.backoff.delays();
        Box::pin(async move {
            loop {
                let error = match builder.clone().connect(&uri).await {
                    Ok(ws) => return Ok(ws),
                    Err(error) => error,
                };
                if !retry_if(&error) {
                    return Err(error);
                }
                let delay = delays.next().unwrap_or(Duration::ZERO);
                tracing::info!(uri = %uri, error = %error, "connect failed; reconnecting in {:.1} s", delay.as_secs_f64());
                tokio::time::sleep(delay).await;
            }
        })
    }
}

impl Stream for Reconnect {
    type Item = Result<WebSocket>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut attempt = self.attempt.take().unwrap_or_else(|| self.attempt());
        match attempt.as_mut().poll(cx) {
            Poll::Pending => {
                self.attempt = Some(attempt);
                Poll::Pending
            }
            Poll::Ready(result) => {
                self.done = result.is_err();
                Poll::Ready(Some(result))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_backoff_sequence() {
        let delays: Vec<_> = Backoff::default().delays().take(12).map(|d| d.as_secs_f64()).collect();
        assert!((0.0..5.0).contains(&delays[0]), "{delays:?}");
        let expected = [3.1, 5.0158, 8.1156, 13.131, 21.246, 34.376, 55.621, 89.995, 90.0, 90.0, 90.0];
        for (got, want) in delays[1..].iter().zip(expected) {
            assert!((got - want).abs() < 0.01, "{delays:?}");
        }
    }

    #[test]
    fn huge_factor_stays_at_the_cap() {
        let backoff = Backoff { factor: f64::MAX, ..Backoff::default() };
        let delays: Vec<_> = backoff.delays().skip(1).take(3).collect();
        assert_eq!(delays, [Duration::from_millis(3100), Duration::from_secs(90), Duration::from_secs(90)]);
    }

    fn rejected(status: u16) -> Error {
        let response = http::Response::builder().status(status).body(bytes::Bytes::new());
        Error::Handshake(ClientError::Rejected(Box::new(response.expect("valid status"))))
    }

    #[test]
    fn transient_and_fatal_errors() {
        use std::io::{Error as IoError, ErrorKind};
        let addr = "127.0.0.1:1".parse().expect("address");
        for status in [429, 500, 502, 503, 504] {
            assert!(is_transient(&rejected(status)), "{status}");
        }
        for status in [301, 400, 401, 403, 404, 426, 501, 505] {
            assert!(!is_transient(&rejected(status)), "{status}");
        }
        assert!(is_transient(&Error::Connect { addr, source: ErrorKind::ConnectionRefused.into() }));
        assert!(is_transient(&Error::Resolve {
            host: "nowhere.invalid".into(),
            source: IoError::other("dns")
        }));
        assert!(is_transient(&Error::Io(ErrorKind::ConnectionReset.into())));
        assert!(is_transient(&Error::Timeout(crate::Timeout::Open)));
        assert!(is_transient(&Error::Handshake(ClientError::UnexpectedEof)));
        assert!(!is_transient(&Error::Handshake(ClientError::Accept)));
        assert!(!is_transient(&Error::Handshake(ClientError::InvalidUri("http://x".into()))));
        assert!(!is_transient(&Error::InvalidUri("wss".into())));
    }
}
