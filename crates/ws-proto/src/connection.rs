//! The Sans-I/O connection: bytes in, events out; messages in, bytes out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use crate::header::{FrameHeader, HeaderParse};
use crate::lifecycle::{Cause, CloseTimer, Closure, Due, Phase, Timers};
use crate::mask::{MaskKeys, apply_mask, apply_mask_from};
use crate::prepared::PreparedMessage;
use crate::transmit::Transmit;
use crate::utf8::Utf8Validator;
use crate::{
    CloseCode, CloseFrame, Extension, ExtensionError, Frame, Message, OpCode, ProtocolError, Rsv, SendError,
    Utf8Bytes,
};

/// Unwritten output beyond which pings are coalesced into one pong for the latest.
const PONG_BACKLOG: usize = 64 * 1024;

/// The most `receive` reserves ahead for the rest of a partial frame (the default frame limit):
/// larger frames grow the buffer as their bytes arrive.
const RESERVE_AHEAD_MAX: usize = 1 << 20;

/// Which end of the connection this is: it decides who masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Masks every frame it sends; refuses masked frames.
    Client,
    /// Refuses unmasked frames; closes the transport first.
    Server,
}

/// The longest close reason: a control frame's 125 bytes less the code's two.
const MAX_CLOSE_REASON: usize = 123;

/// The reason sent with a keepalive failure (as Python `websockets` does).
const KEEPALIVE_TIMEOUT_REASON: &str = "keepalive ping timeout";

/// Where the connection is in its life (RFC 6455 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// One close frame went one way; waiting for the other.
    Closing,
    /// Both close frames were exchanged, the connection failed, or the transport ended.
    Closed,
}

/// Limits and behaviour of a [`Connection`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The largest frame payload accepted, as it is on the wire. Larger frames close the
    /// connection with 1009 before their payload is buffered. `None` (the default) derives it
    /// from `max_size`, plus deflate's worst case for incompressible data (a compressed frame
    /// can be slightly larger than the message it carries); unlimited when `max_size` is.
    pub max_frame_size: Option<usize>,
    /// The largest message accepted, after extensions such as decompression (default 1 MiB;
    /// `None`: unlimited). Larger messages close the connection with 1009.
    pub max_size: Option<usize>,
    /// Answer pings with pongs: each one while the peer reads what we send; only the latest
    /// once 64 KiB of output wait unwritten (RFC 6455 §5.5.3), so a ping flood from a peer
    /// that does not read cannot queue pongs without bound.
    pub auto_pong: bool,
    /// Keepalive: send a ping this long after the connection opened and after each pong
    /// (`None`, the default here: no keepalive; at least 1 ms apart, even when zero). Needs
    /// [`Connection::handle_timeout`].
    pub ping_interval: Option<Duration>,
    /// Fail the connection with 1011 when a keepalive ping's pong does not come within this
    /// (`None`: keep pinging every `ping_interval`, never time out).
    pub ping_timeout: Option<Duration>,
    /// How long the closing handshake may take once it started: the peer's close frame, and for
    /// a client the server's closing of the transport (`None`: forever).
    pub close_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: None,
            max_size: Some(1 << 20),
            auto_pong: true,
            ping_interval: None,
            ping_timeout: None,
            close_timeout: None,
        }
    }
}

impl Config {
    /// Sets the message limit (and with it the frame limit, unless that is set on its own).
    pub fn with_max_size(mut self, max: Option<usize>) -> Self {
        self.max_size = max;
        self
    }

    /// Sets the frame limit.
    pub fn with_max_frame_size(mut self, max: Option<usize>) -> Self {
        self.max_frame_size = max;
        self
    }

    /// The frame limit in force: `max_frame_size`, or the one derived from `max_size`.
    #[inline]
    pub fn frame_limit(&self) -> Option<usize> {
        // Stored deflate blocks add 5 bytes per 16 KiB; a small window can cost a little more.
        self.max_frame_size.or(self.max_size.map(|max| max.saturating_add(max / 64 + 1024)))
    }

    /// Turns automatic pongs on or off.
    pub fn with_auto_pong(mut self, on: bool) -> Self {
        self.auto_pong = on;
        self
    }

    /// Sets keepalive: a ping every `interval`, its pong expected within `timeout`.
    pub fn with_keepalive(mut self, interval: Option<Duration>, timeout: Option<Duration>) -> Self {
        self.ping_interval = interval;
        self.ping_timeout = timeout;
        self
    }

    /// Sets the closing handshake's timeout.
    pub fn with_close_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.close_timeout = timeout;
        self
    }
}

/// What the peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete message.
    Message(Message),
    /// A ping (already answered if `auto_pong` is on).
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The peer's close frame (`None`: it carried no status code). Already answered.
    Close(Option<CloseFrame>),
}

/// A message being reassembled from fragments.
#[derive(Debug)]
struct Incoming {
    text: bool,
    size: usize,
}

/// One WebSocket connection, without I/O.
///
/// Call order:
/// 1. feed received bytes with [`receive`](Self::receive) (or [`receive_eof`](Self::receive_eof)),
///    then take [`next_event`](Self::next_event) until `None`;
/// 2. queue frames with the `send_*` methods and [`close`](Self::close);
/// 3. write out [`transmit`](Self::transmit) (a [`Buf`]) whenever it is not empty;
/// 4. time: call [`handle_timeout`](Self::handle_timeout) once when the connection opens, then
///    whenever the instant [`poll_timeout`](Self::poll_timeout) returns has passed (it may be in
///    the past already: then at once). Keepalive and the closing timeout run on it;
/// 5. once [`should_close_transport`](Self::should_close_transport) says so and the output is
///    written, close the transport. [`closure`](Self::closure) says how the connection ended.
///
/// ```
/// use ws_proto::{Bytes, BytesMut, Buf, Config, Connection, Event, Message, Role};
///
/// let mut client = Connection::new(Role::Client, Config::default());
/// let mut server = Connection::new(Role::Server, Config::default());
/// client.send_text("hello").unwrap();
///
/// // Carry the client's bytes to the server.
/// let out = client.transmit();
/// let mut wire = BytesMut::from(out.copy_to_bytes(out.remaining()).as_ref());
/// server.receive(&mut wire).unwrap();
/// assert_eq!(server.next_event(), Some(Event::Message(Message::text("hello"))));
/// ```
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    phase: Phase,
    timers: Timers,
    /// The transport ended: nothing more arrives.
    eof: bool,
    extensions: Vec<Box<dyn Extension>>,
    /// The RSV bits the negotiated extensions own.
    extension_rsv: Rsv,
    /// The extension chain's shared encoding (see `Extension::shared_encoding`): `None` when
    /// one of them encodes per connection.
    shared_encoding: Option<Box<[u8]>>,
    masks: Option<MaskKeys>,
    // Receiving.
    incoming: Option<Incoming>,
    fragments: BytesMut,
    /// Payload bytes of the partial frame at the start of the receive buffer that are already
    /// unmasked: a large frame is unmasked as it arrives, while its bytes are still in cache.
    unmasked: usize,
    utf8: Utf8Validator,
    events: VecDeque<Event>,
    /// Pings, pongs and close frames received.
    control_frames: u64,
    // Sending.
    out: Transmit,
    pending_pong: Option<Bytes>,
    sending_fragmented: bool,
}

impl Connection {
    /// A new open connection. A client seeds its masking keys from the OS once.
    pub fn new(role: Role, config: Config) -> Self {
        let masks = (role == Role::Client).then(MaskKeys::from_os);
        let timers = Timers::new(&config);
        Self {
            role,
            config,
            phase: Phase::Open,
            timers,
            eof: false,
            extensions: Vec::new(),
            extension_rsv: Rsv::NONE,
            shared_encoding: Some(Box::default()),
            masks,
            incoming: None,
            fragments: BytesMut::new(),
            unmasked: 0,
            utf8: Utf8Validator::default(),
            events: VecDeque::new(),
            control_frames: 0,
            out: Transmit::default(),
            pending_pong: None,
            sending_fragmented: false,
        }
    }

    /// Installs the negotiated extensions, in negotiated order (RSV conflicts are refused at
    /// negotiation, in `ws-extensions`).
    pub fn with_extensions(mut self, extensions: Vec<Box<dyn Extension>>) -> Self {
        self.extension_rsv = extensions.iter().fold(Rsv::NONE, |bits, e| bits.union(e.rsv()));
        self.shared_encoding = extensions
            .iter()
            .try_fold(Vec::new(), |mut key, e| {
                // Each extension's key, after its name and length, so no two chains collide.
                let own = e.shared_encoding()?;
                key.extend_from_slice(e.name().as_bytes());
                key.extend_from_slice(&(own.len() as u64).to_be_bytes());
                key.extend_from_slice(&own);
                Some(key)
            })
            .map(Vec::into_boxed_slice);
        self.extensions = extensions;
        self
    }

    /// Replays masking keys from a seed (for reproducible tests and captures).
    pub fn with_mask_seed(mut self, seed: [u8; 32]) -> Self {
        if self.role == Role::Client {
            self.masks = Some(MaskKeys::from_seed(seed));
        }
        self
    }

    /// Takes masking keys from `source` (a client only).
    pub fn with_mask_source(mut self, source: impl FnMut() -> [u8; 4] + Send + 'static) -> Self {
        if self.role == Role::Client {
            self.masks = Some(MaskKeys::Custom(Box::new(source)));
        }
        self
    }

    /// This end's role.
    #[inline]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The lifecycle state.
    #[inline]
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Open => State::Open,
            Phase::Closing(_) => State::Closing,
            Phase::Closed(_) => State::Closed,
        }
    }

    /// The negotiated extensions, in order.
    pub fn extensions(&self) -> &[Box<dyn Extension>] {
        &self.extensions
    }

    /// The close frame this end sent, once sent (`Some(None)`: a close without status).
    pub fn close_sent(&self) -> Option<&Option<CloseFrame>> {
        match &self.phase {
            Phase::Open => None,
            Phase::Closing(frame) => Some(frame),
            Phase::Closed(closure) => closure.sent.as_ref(),
        }
    }

    /// The close frame the peer sent, once received.
    pub fn close_received(&self) -> Option<&Option<CloseFrame>> {
        match &self.phase {
            Phase::Closed(closure) => closure.received.as_ref(),
            _ => None,
        }
    }

    /// How the connection ended, once [`State::Closed`].
    pub fn closure(&self) -> Option<&Closure> {
        match &self.phase {
            Phase::Closed(closure) => Some(closure),
            _ => None,
        }
    }

    /// The code the connection closed with, once [`State::Closed`]: the peer's code, 1005 if its
    /// close frame had none, 1006 if the connection ended without a close frame from the peer.
    pub fn close_code(&self) -> Option<CloseCode> {
        self.closure().map(Closure::code)
    }

    /// The peer's close reason, if it sent one.
    pub fn close_reason(&self) -> Option<&str> {
        match self.close_received() {
            Some(Some(frame)) => Some(&frame.reason),
            _ => None,
        }
    }

    /// The protocol error that failed the connection, if any (as often as asked).
    pub fn failure(&self) -> Option<&ProtocolError> {
        match self.closure()?.cause.as_ref()? {
            Cause::Protocol(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the transport should be closed once the output is written: the closing handshake
    /// is over and this is the server (which closes the TCP connection first, RFC 6455 §7.1.1),
    /// the connection failed or timed out, or the transport ended. A client whose handshake is
    /// over waits for the server to close, up to `close_timeout` (meanwhile input is discarded).
    pub fn should_close_transport(&self) -> bool {
        match &self.phase {
            Phase::Closed(closure) => {
                self.eof || self.role == Role::Server || closure.cause.is_some() || self.closing_timed_out()
            }
            _ => self.eof,
        }
    }

    /// Whether the closing handshake's deadline (`close_timeout`) passed: a transport still
    /// waiting for its last bytes to be written is then closed without them.
    pub fn closing_timed_out(&self) -> bool {
        self.timers.close == CloseTimer::Expired
    }

    /// The round-trip time of the latest keepalive ping answered.
    pub fn latency(&self) -> Option<Duration> {
        self.timers.latency
    }

    // ---- time ----

    /// When [`handle_timeout`](Self::handle_timeout) is next needed: the earliest deadline
    /// (keepalive ping or timeout, closing timeout), or an instant already past when something
    /// waits for the current time (a deadline to start, a round trip to measure). `None` before
    /// the first `handle_timeout` and when no timer runs.
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next(&self.config, matches!(self.phase, Phase::Open))
    }

    /// Hands in the current time: starts the deadlines that waited for it and acts on those
    /// that passed — sends a keepalive ping, fails the connection with 1011 when its pong is
    /// overdue, ends a closing handshake that took too long. Then write out
    /// [`transmit`](Self::transmit) and check [`should_close_transport`](Self::should_close_transport).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(due) = self.timers.advance(&self.config, now, matches!(self.phase, Phase::Open)) {
            match due {
                Due::Ping(payload) => {
                    let _ = self.send_control(OpCode::Ping, payload);
                }
                Due::KeepaliveTimeout => {
                    let frame = CloseFrame::new(CloseCode::INTERNAL_ERROR, KEEPALIVE_TIMEOUT_REASON);
                    self.end(Some(frame), Cause::KeepaliveTimeout);
                }
                Due::CloseTimeout => {
                    if let Phase::Closing(_) = self.phase {
                        self.end(None, Cause::CloseTimeout);
                    }
                }
            }
        }
    }

    // ---- receiving ----

    /// Consumes every complete frame at the start of `buf`, leaving a partial frame (and
    /// reserving room for the rest of it). Payloads are split off `buf` without a copy and
    /// unmasked in place; the part of a partial frame that arrived is unmasked already, so the
    /// next call must get `buf` back as this one left it, with new bytes appended.
    ///
    /// On a protocol error the connection fails: it queues a close frame with the error's code,
    /// becomes [`State::Closed`], discards `buf` and all further input, and returns the error.
    /// Events received before the error are still delivered.
    pub fn receive(&mut self, buf: &mut BytesMut) -> Result<(), ProtocolError> {
        let result = self.receive_frames(buf);
        if result.is_err() {
            // The rest is not data: leave nothing behind that looks like a pending frame.
            buf.clear();
        }
        result
    }

    fn receive_frames(&mut self, buf: &mut BytesMut) -> Result<(), ProtocolError> {
        loop {
            if let Phase::Closed(_) = self.phase {
                // Nothing after a close frame or a failure is data (RFC 6455 §5.5.1).
                buf.clear();
                return Ok(());
            }
            if self.receive_plain_messages(buf)? {
                return Ok(());
            }
            let (header, header_len) = match FrameHeader::parse(buf) {
                Ok(HeaderParse::Complete(header, len)) => (header, len),
                Ok(HeaderParse::Incomplete(_)) => return Ok(()),
                Err(e) => return Err(self.fail(e)),
            };
            if let Err(e) = self.check_header(&header) {
                return Err(self.fail(e));
            }
            // check_header bounded the length by max_frame_size, if there is one.
            let frame_len =
                usize::try_from(header.payload_len).unwrap_or(usize::MAX).saturating_add(header_len);
            if buf.len() < frame_len {
                if let Some(key) = header.mask {
                    // Unmask what arrived while the read has just put it in cache, rather than
                    // the whole frame from memory at the end (a 1 MiB frame outgrows the cache).
                    let arrived = &mut buf[header_len..];
                    let done = self.unmasked.min(arrived.len());
                    apply_mask_from(&mut arrived[done..], key, done);
                    self.unmasked = arrived.len();
                }
                // Room for the rest, but never more than RESERVE_AHEAD_MAX ahead of what
                // arrived: without a frame limit the announced length is the peer's word alone.
                buf.reserve((frame_len - buf.len()).min(RESERVE_AHEAD_MAX));
                return Ok(());
            }
            if let Some(key) = header.mask {
                let payload = &mut buf[header_len..frame_len];
                let done = self.unmasked.min(payload.len());
                apply_mask_from(&mut payload[done..], key, done);
            }
            self.unmasked = 0;
            // Frozen before the header is skipped: advancing `Bytes` is cheaper than `BytesMut`.
            let mut payload = buf.split_to(frame_len).freeze();
            payload.advance(header_len);
            let frame = Frame {
                fin: header.fin,
                rsv: header.rsv,
                opcode: header.opcode,
                payload,
                no_compress: false,
            };
            if let Err(e) = self.receive_frame(frame) {
                return Err(self.fail(e));
            }
        }
    }

    /// The usual frames of a connection without extensions, without the general path's
    /// machinery: a whole text or binary message with a 7- or 16-bit length, within the limits,
    /// masked if it comes from a client and unmasked if from a server, while no fragmented
    /// message is open. Takes such frames from the start of `buf` until one is not one of them
    /// (left to the general path, which also reports every error) or `buf` is empty; returns
    /// whether it emptied `buf`.
    #[inline]
    fn receive_plain_messages(&mut self, buf: &mut BytesMut) -> Result<bool, ProtocolError> {
        // (`unmasked`: the frame at the start is partly unmasked already.)
        if !self.extensions.is_empty() || self.incoming.is_some() || self.unmasked != 0 {
            return Ok(false);
        }
        // A client masks every frame, a server none (§5.1). One copy of the loop per side keeps
        // the server's as short as before the client had one.
        match self.role {
            Role::Server => self.take_plain_messages::<true>(buf),
            Role::Client => self.take_plain_messages::<false>(buf),
        }
    }

    /// `receive_plain_messages`' loop, for frames masked (from a client) or not (from a server).
    #[inline]
    fn take_plain_messages<const MASKED: bool>(&mut self, buf: &mut BytesMut) -> Result<bool, ProtocolError> {
        let (mask_bit, key_len) = if MASKED { (0x80, 4) } else { (0, 0) };
        // Unlimited when `None`; a 16-bit length is at most 0xFFFF.
        let max =
            self.config.frame_limit().unwrap_or(usize::MAX).min(self.config.max_size.unwrap_or(usize::MAX));
        loop {
            let (b0, b1) = match buf[..] {
                [b0, b1, ..] => (b0, b1),
                [] => return Ok(true),
                _ => return Ok(false),
            };
            // FIN, no RSV bit, text (1) or binary (2); masked as the role requires.
            if b0 & 0xF0 != 0x80 || !matches!(b0 & 0x0F, 1 | 2) || b1 & 0x80 != mask_bit {
                return Ok(false);
            }
            let (payload_len, header_len) = match b1 & 0x7F {
                n @ 0..=125 => (usize::from(n), 2 + key_len),
                126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4 + key_len),
                _ => return Ok(false),
            };
            let frame_len = header_len + payload_len;
            if payload_len > max || buf.len() < frame_len {
                return Ok(false);
            }
            if MASKED {
                let (head, rest) = buf.split_at_mut(header_len);
                let key =
                    [head[header_len - 4], head[header_len - 3], head[header_len - 2], head[header_len - 1]];
                apply_mask(&mut rest[..payload_len], key);
            }
            let mut payload = buf.split_to(frame_len).freeze();
            payload.advance(header_len);
            if let Err(e) = self.receive_whole(b0 & 0x0F == 1, payload) {
                return Err(self.fail(e));
            }
        }
    }

    /// The transport reached end of file (or failed). If the closing handshake was not
    /// complete, the connection is closed abnormally (1006), without a close frame. Output
    /// still unwritten then gets `close_timeout` to go out (see
    /// [`closing_timed_out`](Self::closing_timed_out)): a peer that half-closes and stops
    /// reading cannot hold the transport open.
    pub fn receive_eof(&mut self) {
        self.eof = true;
        self.end(None, Cause::TransportClosed);
        self.timers.start_close(&self.config);
    }

    /// The next event, in the order the peer sent them.
    #[inline]
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// How many events are waiting (callers stop reading the transport above a high mark).
    #[inline]
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// How many pings, pongs and close frames have arrived so far: a caller that lets messages
    /// wait for its application sees from it when to take the events at once.
    #[inline]
    pub fn control_frames_received(&self) -> u64 {
        self.control_frames
    }

    /// Queues a ping, pong or close event.
    fn push_control(&mut self, event: Event) {
        self.control_frames += 1;
        self.events.push_back(event);
    }

    #[inline]
    fn check_header(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        let unknown_rsv = header.rsv.difference(self.extension_rsv);
        if !unknown_rsv.is_empty() {
            return Err(ProtocolError::ReservedBits(unknown_rsv.bits()));
        }
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if let Some(max) = self.config.frame_limit() {
            if header.payload_len > max as u64 {
                return Err(ProtocolError::FrameTooBig { size: header.payload_len, max });
            }
        }
        if let (Some(max), true) = (self.config.max_size, header.opcode.is_data()) {
            // Without extensions the wire size is the message size: refuse before buffering.
            let so_far = self.incoming.as_ref().map_or(0, |m| m.size) as u64;
            if self.extensions.is_empty() && so_far + header.payload_len > max as u64 {
                return Err(ProtocolError::MessageTooBig { max });
            }
        }
        Ok(())
    }

    #[inline]
    fn receive_frame(&mut self, mut frame: Frame) -> Result<(), ProtocolError> {
        if !self.extensions.is_empty() {
            let budget = if frame.opcode.is_control() {
                Some(125)
            } else {
                let so_far = self.incoming.as_ref().map_or(0, |m| m.size);
                self.config.max_size.map(|max| max.saturating_sub(so_far))
            };
            let max = self.config.max_size.filter(|_| !frame.opcode.is_control());
            for extension in self.extensions.iter_mut().rev() {
                extension.decode(&mut frame, budget).map_err(|e| match (e, max) {
                    // One error for a message over the limit, compressed or not.
                    (ExtensionError::TooBig, Some(max)) => ProtocolError::MessageTooBig { max },
                    (e, _) => ProtocolError::Extension(e),
                })?;
            }
        }
        match frame.opcode {
            OpCode::Ping => {
                if self.config.auto_pong && matches!(self.phase, Phase::Open) {
                    self.answer_ping(frame.payload.clone());
                }
                self.push_control(Event::Ping(frame.payload));
            }
            OpCode::Pong => {
                self.timers.pong(&self.config, &frame.payload);
                self.push_control(Event::Pong(frame.payload));
            }
            OpCode::Close => self.receive_close(&frame.payload)?,
            OpCode::Text | OpCode::Binary => {
                if self.incoming.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                let text = frame.opcode == OpCode::Text;
                if frame.fin {
                    return self.receive_whole(text, frame.payload);
                }
                self.incoming = Some(Incoming { text, size: 0 });
                self.receive_data(frame)?;
            }
            OpCode::Continuation => {
                if self.incoming.is_none() {
                    return Err(ProtocolError::UnexpectedContinuation);
                }
                self.receive_data(frame)?;
            }
        }
        Ok(())
    }

    /// Answers every ping in order while the peer keeps reading; once unwritten output piles
    /// up past [`PONG_BACKLOG`], only the latest ping is answered (RFC 6455 §5.5.3), so a ping
    /// flood cannot grow the output without bound.
    fn answer_ping(&mut self, payload: Bytes) {
        if self.out.remaining() < PONG_BACKLOG && self.pending_pong.is_none() {
            let _ = self.write_frame(Frame::new(OpCode::Pong, payload, true));
        } else {
            self.pending_pong = Some(payload);
        }
    }

    /// A message in a single frame, the common case: no reassembly state to keep.
    #[inline]
    fn receive_whole(&mut self, text: bool, payload: Bytes) -> Result<(), ProtocolError> {
        if let Some(max) = self.config.max_size {
            if payload.len() > max {
                return Err(ProtocolError::MessageTooBig { max });
            }
        }
        let message = if text {
            crate::utf8::validate(&payload).map_err(|_| ProtocolError::InvalidUtf8)?;
            Message::Text(Utf8Bytes::from_validated(payload))
        } else {
            Message::Binary(payload)
        };
        self.events.push_back(Event::Message(message));
        Ok(())
    }

    #[inline]
    fn receive_data(&mut self, frame: Frame) -> Result<(), ProtocolError> {
        let Some(incoming) = self.incoming.as_mut() else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        let first = incoming.size == 0 && self.fragments.is_empty();
        incoming.size += frame.payload.len();
        if let Some(max) = self.config.max_size {
            if incoming.size > max {
                return Err(ProtocolError::MessageTooBig { max });
            }
        }
        let text = incoming.text;
        if text {
            self.utf8.feed(&frame.payload).map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if !frame.fin {
            self.fragments.extend_from_slice(&frame.payload);
            return Ok(());
        }
        self.incoming = None;
        let payload = if first {
            frame.payload
        } else {
            self.fragments.extend_from_slice(&frame.payload);
            self.fragments.split().freeze()
        };
        let message = if text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            Message::Text(Utf8Bytes::from_validated(payload))
        } else {
            Message::Binary(payload)
        };
        self.events.push_back(Event::Message(message));
        Ok(())
    }

    fn receive_close(&mut self, payload: &[u8]) -> Result<(), ProtocolError> {
        let frame = CloseFrame::parse(payload).map_err(|e| match e {
            crate::close::ClosePayloadError::Protocol => ProtocolError::InvalidClosePayload,
            crate::close::ClosePayloadError::InvalidUtf8 => ProtocolError::InvalidUtf8,
        })?;
        let sent = match std::mem::replace(&mut self.phase, Phase::Open) {
            Phase::Open => {
                // Echo the peer's code, as RFC 6455 §5.5.1 suggests.
                self.queue_close(&frame);
                frame.clone()
            }
            Phase::Closing(sent) => sent,
            // Input after the end is discarded before it gets here.
            Phase::Closed(closure) => {
                self.phase = Phase::Closed(closure);
                return Ok(());
            }
        };
        self.phase = Phase::Closed(Closure { sent: Some(sent), received: Some(frame.clone()), cause: None });
        // A client now waits for the server to close the transport, up to close_timeout.
        self.timers.start_close(&self.config);
        self.push_control(Event::Close(frame));
        Ok(())
    }

    /// Fails the connection: one close frame with the error's code, then nothing. Internal
    /// errors (1011) go without a reason, as in Python `websockets`: their text may be
    /// security-sensitive.
    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        let code = error.close_code();
        let reason = if code == CloseCode::INTERNAL_ERROR { String::new() } else { error.to_string() };
        self.end(Some(CloseFrame::new(code, reason)), Cause::Protocol(error.clone()));
        error
    }

    /// Ends the connection without a completed closing handshake: queues `close` unless this end
    /// sent a close frame already (or `close` is `None`), then sends and receives nothing more.
    fn end(&mut self, close: Option<CloseFrame>, cause: Cause) {
        let sent = match std::mem::replace(&mut self.phase, Phase::Open) {
            Phase::Open => close.map(|frame| {
                let frame = Some(frame);
                self.queue_close(&frame);
                frame
            }),
            Phase::Closing(sent) => Some(sent),
            Phase::Closed(closure) => {
                self.phase = Phase::Closed(closure);
                return;
            }
        };
        self.phase = Phase::Closed(Closure { sent, received: None, cause: Some(cause) });
    }

    // ---- sending ----

    /// Queues a whole message as one frame.
    pub fn send(&mut self, message: Message) -> Result<(), SendError> {
        match message {
            Message::Text(text) => self.send_frame(Frame::new(OpCode::Text, text.into_bytes(), true)),
            Message::Binary(data) => self.send_frame(Frame::new(OpCode::Binary, data, true)),
        }
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), SendError> {
        self.send(Message::Text(text.into()))
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.send(Message::Binary(data.into()))
    }

    /// Queues one data frame: a whole message (`fin`), or one fragment of a message (first with
    /// `Text`/`Binary`, then `Continuation`s, the last with `fin`). Set `frame.no_compress` to
    /// keep a message out of any compression context. Control frames go through
    /// [`send_ping`](Self::send_ping), [`send_pong`](Self::send_pong), [`close`](Self::close).
    #[inline]
    pub fn send_frame(&mut self, frame: Frame) -> Result<(), SendError> {
        if !matches!(self.phase, Phase::Open) {
            return Err(SendError::Closed);
        }
        match (frame.opcode, self.sending_fragmented) {
            (OpCode::Text | OpCode::Binary, false) | (OpCode::Continuation, true) => {}
            (OpCode::Ping | OpCode::Pong | OpCode::Close, _) => return Err(SendError::Fragmentation),
            _ => return Err(SendError::Fragmentation),
        }
        self.sending_fragmented = !frame.fin;
        self.write_frame(frame)
    }

    /// Queues a message prepared for many connections (a broadcast): encoded once per distinct
    /// wire form, shared by every connection that can send that form (see [`PreparedMessage`]).
    /// Refused like [`send_frame`](Self::send_frame) once closing, and inside a fragmented
    /// message.
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), SendError> {
        if !matches!(self.phase, Phase::Open) {
            return Err(SendError::Closed);
        }
        if self.sending_fragmented {
            return Err(SendError::Fragmentation);
        }
        if self.extensions.is_empty() {
            // The payload is shared by every receiver: copied if small, never cloned to be
            // dropped again (its reference count is one cache line for all of them).
            let frame = message.plain();
            let header = self.header_for(frame);
            self.out.push_shared_frame(&header, &frame.payload);
            return Ok(());
        }
        let frame = match &self.shared_encoding {
            Some(key) => message.form(key, &mut self.extensions).map_err(SendError::Extension)?,
            None => return self.write_frame(message.plain().clone()),
        };
        self.push_encoded(frame);
        Ok(())
    }

    /// Queues a ping.
    pub fn send_ping(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError> {
        self.send_control(OpCode::Ping, payload.into())
    }

    /// Queues a pong (unsolicited pongs serve as unidirectional heartbeats).
    pub fn send_pong(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError> {
        self.send_control(OpCode::Pong, payload.into())
    }

    /// Starts the closing handshake. Nothing may be sent after it. Refused once the connection
    /// is closing or closed (a close frame was sent or received, the transport ended), for a code
    /// that may not be sent, and for a reason over 123 bytes (a control frame's limit).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if !matches!(self.phase, Phase::Open) {
            return Err(SendError::Closed);
        }
        if !code.is_sendable() {
            return Err(SendError::InvalidCloseCode(code));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(SendError::CloseReasonTooLong(reason.len()));
        }
        let frame = Some(CloseFrame::new(code, reason));
        self.queue_close(&frame);
        self.phase = Phase::Closing(frame);
        Ok(())
    }

    fn send_control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), SendError> {
        if !matches!(self.phase, Phase::Open) {
            return Err(SendError::Closed);
        }
        if payload.len() > 125 {
            return Err(SendError::ControlFrameTooLong);
        }
        self.write_frame(Frame::new(opcode, payload, true))
    }

    /// Writes a close frame and starts the closing timeout; the caller moves the phase on.
    fn queue_close(&mut self, frame: &Option<CloseFrame>) {
        let payload = frame.as_ref().map_or_else(Bytes::new, CloseFrame::encode);
        self.pending_pong = None;
        // A close frame is never transformed by extensions in a way that can fail.
        let _ = self.write_frame(Frame::new(OpCode::Close, payload, true));
        self.timers.start_close(&self.config);
    }

    #[inline]
    fn write_frame(&mut self, mut frame: Frame) -> Result<(), SendError> {
        for extension in &mut self.extensions {
            extension.encode(&mut frame).map_err(SendError::Extension)?;
        }
        let header = self.header_for(&frame);
        self.out.push_frame(&header, frame.payload);
        Ok(())
    }

    /// Queues a frame the extensions have encoded (a prepared message's).
    fn push_encoded(&mut self, frame: Frame) {
        let header = self.header_for(&frame);
        self.out.push_frame(&header, frame.payload);
    }

    #[inline]
    fn header_for(&mut self, frame: &Frame) -> FrameHeader {
        FrameHeader {
            fin: frame.fin,
            rsv: frame.rsv,
            opcode: frame.opcode,
            mask: self.masks.as_mut().map(MaskKeys::next_key),
            payload_len: frame.payload.len() as u64,
        }
    }

    /// The bytes to write, as a [`Buf`] (use `chunks_vectored` for `writev`). Advance it by what
    /// was written.
    #[inline]
    pub fn transmit(&mut self) -> &mut Transmit {
        if let Some(payload) = self.pending_pong.take() {
            let _ = self.write_frame(Frame::new(OpCode::Pong, payload, true));
        }
        &mut self.out
    }

    /// How many bytes wait to be written (for write buffer limits).
    #[inline]
    pub fn pending_output(&self) -> usize {
        self.out.remaining() + self.pending_pong.as_ref().map_or(0, |p| p.len() + 2)
    }

    /// Whether bytes are waiting to be written.
    #[inline]
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty() || self.pending_pong.is_some()
    }

    /// Frees memory kept for reuse while the connection is quiet: empty output and reassembly
    /// buffers, and whatever each extension can rebuild ([`Extension::release_memory`]). The next
    /// message allocates again. Call it when the connection has been idle for a while.
    pub fn release_memory(&mut self) {
        self.out.release_memory();
        if self.fragments.is_empty() {
            self.fragments = BytesMut::new();
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        for extension in &mut self.extensions {
            extension.release_memory();
        }
    }
}
