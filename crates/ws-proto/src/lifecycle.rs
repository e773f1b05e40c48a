//! The connection's life: one phase at a time, how it ended, and the deadlines it keeps.
//!
//! ```text
//!            close() / fail          peer's close frame, fail,
//!   Open ─────────────────► Closing ─────────────────────────► Closed(Closure)
//!     │                                  close timeout, EOF        ▲
//!     └────────────────────────────────────────────────────────────┘
//!        peer's close frame (answered at once), fail, keepalive timeout, EOF
//! ```
//!
//! Time is handed in (`Connection::handle_timeout`); nothing here reads a clock.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{CloseCode, CloseFrame, Config, ProtocolError};

/// Where the connection is: the single source of truth for what may be sent and received.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Messages flow both ways.
    Open,
    /// This end sent a close frame (`None`: one without a status code) and waits for the peer's.
    Closing(Option<CloseFrame>),
    /// Nothing more is sent or received.
    Closed(Closure),
}

/// How a connection ended. Read it as often as needed once the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Closure {
    /// The close frame this end sent, if it sent one (`Some(None)`: one without a status code).
    pub sent: Option<Option<CloseFrame>>,
    /// The close frame the peer sent, if it sent one (`Some(None)`: one without a status code).
    pub received: Option<Option<CloseFrame>>,
    /// What ended the connection, when it was not a completed closing handshake.
    pub cause: Option<Cause>,
}

/// What ended a connection without a completed closing handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// The peer broke the protocol; the connection failed with the error's close code.
    Protocol(ProtocolError),
    /// No pong came within `ping_timeout` of a keepalive ping; the connection failed with 1011.
    KeepaliveTimeout,
    /// The peer's close frame did not come within `close_timeout` of ours.
    CloseTimeout,
    /// The transport ended (EOF, reset) before the closing handshake was complete.
    TransportClosed,
}

/// Close codes that count as a normal closure, as in Python `websockets`: 1000, 1001, and a
/// close frame without a code (1005).
const OK_CODES: [CloseCode; 3] = [CloseCode::NORMAL, CloseCode::GOING_AWAY, CloseCode::NO_STATUS];

fn code_of(frame: &Option<CloseFrame>) -> CloseCode {
    frame.as_ref().map_or(CloseCode::NO_STATUS, |f| f.code)
}

impl Closure {
    /// The code the connection closed with: the peer's, 1005 if its close frame had none, 1006
    /// if there was no close frame from the peer.
    pub fn code(&self) -> CloseCode {
        self.received.as_ref().map_or(CloseCode::ABNORMAL, code_of)
    }

    /// The peer's close reason (empty if it gave none).
    pub fn reason(&self) -> &str {
        match &self.received {
            Some(Some(frame)) => &frame.reason,
            _ => "",
        }
    }

    /// A normal closure (Python's `ConnectionClosedOK`): both close frames were exchanged and
    /// each carried 1000, 1001 or no code.
    pub fn is_ok(&self) -> bool {
        let ok = |frame: &Option<Option<CloseFrame>>| {
            frame.as_ref().is_some_and(|f| OK_CODES.contains(&code_of(f)))
        };
        self.cause.is_none() && ok(&self.sent) && ok(&self.received)
    }
}

/// Keepalive: a ping every `ping_interval`, its pong expected within `ping_timeout`.
#[derive(Debug)]
pub(crate) enum Keepalive {
    /// `ping_interval` is `None`.
    Off,
    /// Waiting for the first time handed in to schedule the first ping.
    Unarmed,
    /// The next ping is due at this instant.
    Idle(Instant),
    /// A ping is out; its pong has not come.
    Waiting { payload: Bytes, sent: Instant },
}

/// The closing handshake's deadline (`close_timeout`), started when the handshake starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseTimer {
    /// The handshake has not started, or there is no `close_timeout`.
    Idle,
    /// Started; waiting for the first time handed in to set the deadline.
    Unarmed,
    Armed(Instant),
    /// The deadline passed.
    Expired,
}

/// Every deadline of a connection, computed from the instants handed in.
#[derive(Debug)]
pub(crate) struct Timers {
    /// The latest instant handed in.
    pub(crate) now: Option<Instant>,
    pub(crate) keepalive: Keepalive,
    pub(crate) close: CloseTimer,
    pings_sent: u32,
    /// A keepalive pong arrived for the ping sent then: its round trip is measured at the next
    /// instant handed in.
    pub(crate) pong_for: Option<Instant>,
    pub(crate) latency: Option<Duration>,
}

/// The shortest time between keepalive pings: a zero `ping_interval` would otherwise ask for a
/// ping at every instant, and `handle_timeout` would never return.
const MIN_PING_INTERVAL: Duration = Duration::from_millis(1);

/// `ping_interval`, at least [`MIN_PING_INTERVAL`].
fn ping_interval(config: &Config) -> Option<Duration> {
    config.ping_interval.map(|interval| interval.max(MIN_PING_INTERVAL))
}

/// What a deadline that passed asks the connection to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    Ping(Bytes),
    KeepaliveTimeout,
    CloseTimeout,
}

impl Timers {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            now: None,
            keepalive: if config.ping_interval.is_some() { Keepalive::Unarmed } else { Keepalive::Off },
            close: CloseTimer::Idle,
            pings_sent: 0,
            pong_for: None,
            latency: None,
        }
    }

    /// Whether something waits for the current time (a deadline to start, a round trip to
    /// measure): then the next deadline is "now".
    fn needs_time(&self) -> bool {
        matches!(self.keepalive, Keepalive::Unarmed)
            || self.close == CloseTimer::Unarmed
            || self.pong_for.is_some()
    }

    /// The earliest deadline; `keepalive` only counts while the connection is open.
    pub(crate) fn next(&self, config: &Config, keepalive: bool) -> Option<Instant> {
        let now = self.now?;
        if self.needs_time() {
            return Some(now);
        }
        let close = match self.close {
            CloseTimer::Armed(at) => Some(at),
            _ => None,
        };
        let ping = match (&self.keepalive, keepalive) {
            (Keepalive::Idle(at), true) => Some(*at),
            (Keepalive::Waiting { sent, .. }, true) => {
                ping_interval(config).map(|i| *sent + config.ping_timeout.unwrap_or(i))
            }
            _ => None,
        };
        match (close, ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The closing handshake started: its deadline starts at the next instant handed in.
    pub(crate) fn start_close(&mut self, config: &Config) {
        if self.close == CloseTimer::Idle && config.close_timeout.is_some() {
            self.close = CloseTimer::Unarmed;
        }
    }

    /// A pong arrived: if it answers the keepalive ping, the next ping is due an interval after
    /// that one was sent.
    pub(crate) fn pong(&mut self, config: &Config, payload: &[u8]) {
        if let (Keepalive::Waiting { payload: ping, sent }, Some(interval)) =
            (&self.keepalive, ping_interval(config))
        {
            if ping[..] == *payload {
                let sent = *sent;
                self.pong_for = Some(sent);
                self.keepalive = Keepalive::Idle(sent + interval);
            }
        }
    }

    /// Takes `now`, starts what waited for it, and returns what is due (one thing at a time:
    /// call again until `None`). `keepalive`: whether the connection is open.
    pub(crate) fn advance(&mut self, config: &Config, now: Instant, keepalive: bool) -> Option<Due> {
        self.now = Some(now);
        if let Some(sent) = self.pong_for.take() {
            self.latency = Some(now.saturating_duration_since(sent));
        }
        if self.close == CloseTimer::Unarmed {
            self.close = config.close_timeout.map_or(CloseTimer::Idle, |t| CloseTimer::Armed(now + t));
        }
        if let CloseTimer::Armed(at) = self.close {
            if at <= now {
                self.close = CloseTimer::Expired;
                return Some(Due::CloseTimeout);
            }
        }
        let interval = ping_interval(config)?;
        if matches!(self.keepalive, Keepalive::Unarmed) {
            self.keepalive = Keepalive::Idle(now + interval);
        }
        if !keepalive {
            return None;
        }
        let ping_due = match &self.keepalive {
            Keepalive::Off | Keepalive::Unarmed => return None,
            Keepalive::Idle(at) => *at <= now,
            Keepalive::Waiting { sent, .. } => {
                let deadline = *sent + config.ping_timeout.unwrap_or(interval);
                if deadline > now {
                    return None;
                }
                if config.ping_timeout.is_some() {
                    return Some(Due::KeepaliveTimeout);
                }
                true
            }
        };
        if !ping_due {
            return None;
        }
        self.pings_sent = self.pings_sent.wrapping_add(1);
        let payload = Bytes::copy_from_slice(&self.pings_sent.to_be_bytes());
        self.keepalive = Keepalive::Waiting { payload: payload.clone(), sent: now };
        Some(Due::Ping(payload))
    }
}
