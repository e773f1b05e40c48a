//! The negotiated extension: compresses outgoing messages, decompresses incoming ones.

use std::fmt;

use ws_extensions::{Bytes, Extension, ExtensionError, Frame, OpCode, Rsv};

use crate::codec::{Compressor, CompressorKey, Decompressor};
use crate::config::{ConfigError, check_level, check_mem_level, check_window_bits};
use crate::history::History;
use crate::shared;

/// The extension token.
pub(crate) const NAME: &str = "permessage-deflate";

/// Where a connection's zlib streams live.
///
/// ```
/// use ws_deflate::{Memory, ServerPerMessageDeflateFactory};
///
/// // 456 bytes per connection instead of about 212 KiB; see "Memory per connection".
/// let lean = ServerPerMessageDeflateFactory { memory: Memory::Shared, ..Default::default() };
/// # let _ = lean;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Memory {
    /// Each busy connection owns its compressor and decompressor, kept while messages flow, so
    /// context takeover works and no message allocates: about 212 KiB per connection at the
    /// defaults. For its first [`WARM_UP_MESSAGES`] messages (after opening, and after each
    /// release) a connection borrows its thread's streams instead, primed with its own history,
    /// so connections that talk now and then never own streams. When the connection goes idle,
    /// [`release_memory`](ws_extensions::Extension::release_memory) frees both streams and keeps
    /// only the history context takeover needs: at most 8.4 KiB at the defaults.
    #[default]
    Dedicated,
    /// The memory-lean mode, like uWebSockets' `SHARED_COMPRESSOR`: every thread keeps one
    /// compressor and one decompressor, and connections borrow them one message at a time, so a
    /// connection holds no zlib stream between messages.
    ///
    /// The factories negotiate `server_no_context_takeover` and `client_no_context_takeover` in
    /// this mode, because a shared stream cannot keep one connection's history. The server adds
    /// both to its response on its own, as RFC 7692 §7.1.1.1 and §7.1.1.2 allow. The client
    /// offers both, and a server that does not accept `server_no_context_takeover` fails the
    /// handshake (§7.1.1.1: a server must echo it or decline the offer).
    ///
    /// - Outgoing messages are always compressed without context takeover, whatever was
    ///   negotiated.
    /// - Incoming messages use the shared decompressor only if the peer resets its context
    ///   (`remote_no_context_takeover`). A peer that keeps context needs a decompressor holding
    ///   its history, so the connection then gets a dedicated one (about 48 KiB). That can only
    ///   happen with a [`PerMessageDeflateConfig`] built by hand: the factories always negotiate
    ///   no context takeover.
    /// - A fragmented message keeps its stream from its first frame to its last, because other
    ///   connections on the thread may run in between. The next connection that needs a stream in
    ///   that time creates a temporary one, freed when its message ends if the thread already
    ///   has one again. A connection that goes idle in the middle of a message (see
    ///   [`release_memory`](ws_extensions::Extension::release_memory)) gives the stream back and
    ///   keeps only the message's compressed input so far, up to [`PARK_MAX`].
    ///
    /// The cost is compression ratio and CPU. Each message is compressed alone (see "When
    /// compression pays"), and the shared compressor's 128 KiB hash table is cleared after every
    /// message. The threads' streams are freed when no connection is busy any more (every one
    /// released its memory or was dropped); [`release_thread_streams`](crate::release_thread_streams)
    /// frees a thread's streams at any time.
    Shared,
}

/// The parameters one connection runs with, seen from this endpoint: "local" is what this
/// endpoint compresses, "remote" what it decompresses.
///
/// The factories build it from the negotiated parameters; build it yourself only to run the
/// extension outside a handshake (tests, benchmarks, a custom negotiation).
///
/// ```
/// use ws_deflate::{PerMessageDeflate, PerMessageDeflateConfig};
///
/// let config = PerMessageDeflateConfig { local_max_window_bits: 12, ..Default::default() };
/// let deflate = PerMessageDeflate::new(config)?;
/// assert_eq!(deflate.config().local_max_window_bits, 12);
/// # Ok::<(), ws_deflate::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerMessageDeflateConfig {
    /// Reset the compressor after every message (the peer asked us not to keep context).
    pub local_no_context_takeover: bool,
    /// The peer resets its compressor after every message.
    pub remote_no_context_takeover: bool,
    /// The LZ77 window this endpoint compresses with, 8–15 (8 is compressed with zlib's 9, whose
    /// distances never exceed 250 bytes and therefore fit a 256-byte window).
    pub local_max_window_bits: u8,
    /// The LZ77 window the peer compresses with, 8–15.
    pub remote_max_window_bits: u8,
    /// zlib compression level, 0 (store) to 9 (best).
    pub level: u8,
    /// zlib memLevel, 1–9: memory for the compressor's match state, see the crate docs.
    pub mem_level: u8,
    /// Messages whose first frame is final and shorter than this many bytes are sent
    /// uncompressed; `Some(0)` compresses everything. `None` (the default) picks from
    /// measurements: everything is compressed under context takeover, where even 16-byte
    /// messages shrink about 4× thanks to the shared history, and messages under
    /// [`NO_CONTEXT_TAKEOVER_THRESHOLD`](crate::NO_CONTEXT_TAKEOVER_THRESHOLD) bytes are sent
    /// plain without it, where they would not shrink.
    pub compression_threshold: Option<usize>,
    /// Streams per connection (the default) or per thread, see [`Memory`].
    pub memory: Memory,
}

impl Default for PerMessageDeflateConfig {
    /// No parameters negotiated: windows of 15 bits, context takeover both ways, level 6,
    /// memLevel 5 and the automatic threshold.
    fn default() -> Self {
        Self {
            local_no_context_takeover: false,
            remote_no_context_takeover: false,
            local_max_window_bits: 15,
            remote_max_window_bits: 15,
            level: crate::DEFAULT_LEVEL,
            mem_level: crate::DEFAULT_MEM_LEVEL,
            compression_threshold: None,
            memory: Memory::Dedicated,
        }
    }
}

impl PerMessageDeflateConfig {
    /// Checks every value is in range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_window_bits("local_max_window_bits", Some(self.local_max_window_bits))?;
        check_window_bits("remote_max_window_bits", Some(self.remote_max_window_bits))?;
        check_level(self.level)?;
        check_mem_level(self.mem_level)
    }
}

/// The state of the message being sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Message {
    /// Between messages.
    Idle,
    /// Inside a message that is (or was received) compressed.
    Compressed,
    /// Inside a message that passes through untouched.
    Plain,
}

/// permessage-deflate (RFC 7692) for one connection.
///
/// Data messages are compressed whole: the first frame carries RSV1, every fragment is flushed
/// with `Z_SYNC_FLUSH`, the final one loses its `00 00 ff ff` tail. Control frames pass untouched.
/// A message is sent uncompressed (RSV1 clear) when the application set
/// [`Frame::no_compress`] on its first frame, or when it fits in one frame shorter than
/// [`compression_threshold`](PerMessageDeflateConfig::compression_threshold).
///
/// The zlib streams are created on first use, so a connection that never sends a compressed
/// message never pays for a compressor, and reused for every message after that.
/// [`Extension::release_memory`] frees them on an idle connection, keeping the last window of
/// data each way that context takeover needs; the next message re-creates them from it.
///
/// ```
/// use ws_deflate::{PerMessageDeflate, PerMessageDeflateConfig};
/// use ws_extensions::{Extension, Frame, OpCode, Rsv};
///
/// let config = PerMessageDeflateConfig { compression_threshold: Some(0), ..Default::default() };
/// let mut sender = PerMessageDeflate::new(config)?;
/// let mut receiver = PerMessageDeflate::new(config)?;
///
/// let mut frame = Frame::new(OpCode::Text, "Hello", true);
/// sender.encode(&mut frame)?;
/// assert_eq!(frame.rsv, Rsv::RSV1);
/// assert_eq!(&frame.payload[..], b"\xf2\x48\xcd\xc9\xc9\x07\x00");
///
/// receiver.decode(&mut frame, Some(1024))?;
/// assert_eq!(frame.rsv, Rsv::NONE);
/// assert_eq!(&frame.payload[..], b"Hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PerMessageDeflate {
    config: PerMessageDeflateConfig,
    compressor: Option<Compressor>,
    decompressor: Option<Decompressor>,
    /// The last window of data sent, when our compressor keeps context: what a compressor
    /// freed by [`Extension::release_memory`] is re-created from.
    sent: Option<History>,
    /// The last window of data received, when the peer keeps context.
    received: Option<History>,
    sending: Message,
    receiving: Message,
    /// Which streams are borrowed from the thread (until their message ends), not owned.
    borrowed: Borrowed,
    /// Messages compressed and decompressed since the connection opened or last released its
    /// streams; see [`WARM_UP_MESSAGES`].
    sent_messages: u8,
    received_messages: u8,
    /// The compressed message being received, while it is small: what lets an idle connection
    /// free its decompressor in the middle of a message (see [`PARK_MAX`]).
    replay: Option<Box<Replay>>,
    /// Held from the first compressed message until the connection releases its memory (or is
    /// dropped): while no connection holds one, the threads' shared streams are freed.
    user: Option<shared::User>,
}

/// What re-creates the decompressor of an unfinished compressed message: a new stream primed
/// with the history the message started from, then fed the message's input again (its output,
/// delivered already, is discarded). Inflating is deterministic, so the stream ends up exactly
/// where the freed one was.
struct Replay {
    /// The received history as the message started (when the peer keeps context).
    history: Option<Vec<u8>>,
    /// The message's compressed input so far.
    input: Vec<u8>,
}

impl Replay {
    fn len(&self) -> usize {
        self.history.as_ref().map_or(0, Vec::len) + self.input.len()
    }
}

/// The most an unfinished compressed message keeps to be replayed (history and input): below
/// the ~46 KiB its decompressor holds, so that an idle connection in the middle of a message
/// holds at most this much instead (`release_memory` parks it). A message that grew beyond
/// keeps its decompressor until it ends: its peer has then sent more than this of it, so
/// what it pins stays proportional to what it sent.
pub const PARK_MAX: usize = 40 * 1024;

/// How many messages a connection ([`Memory::Dedicated`]) sends (or receives) with streams
/// borrowed from its thread before it gets streams of its own, after opening and after each
/// [`release_memory`](Extension::release_memory).
///
/// A borrowed stream is reset and loaded with the connection's history for each message,
/// which costs a few microseconds (clearing zlib-rs's 128 KiB hash table, hashing the
/// history); owning one costs about 180 KiB. Connections that exchange a message now and then
/// (and release their streams in between) therefore never allocate streams of their own, and
/// never fragment the heap with them; busy ones own theirs after a few messages.
pub const WARM_UP_MESSAGES: u8 = 4;

#[derive(Debug, Default, Clone, Copy)]
struct Borrowed {
    compressor: bool,
    decompressor: bool,
}

impl fmt::Debug for PerMessageDeflate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerMessageDeflate")
            .field("config", &self.config)
            .field("sending", &self.sending)
            .field("receiving", &self.receiving)
            .finish_non_exhaustive()
    }
}

impl PerMessageDeflate {
    /// The extension for these parameters; fails if a value is out of range.
    pub fn new(config: PerMessageDeflateConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let local_takeover = !config.local_no_context_takeover && config.memory == Memory::Dedicated;
        Ok(Self {
            config,
            compressor: None,
            decompressor: None,
            sent: local_takeover.then(|| History::new(config.local_max_window_bits)),
            received: (!config.remote_no_context_takeover)
                .then(|| History::new(config.remote_max_window_bits)),
            sending: Message::Idle,
            receiving: Message::Idle,
            borrowed: Borrowed::default(),
            sent_messages: 0,
            received_messages: 0,
            replay: None,
            user: None,
        })
    }

    /// The parameters this connection runs with.
    pub fn config(&self) -> &PerMessageDeflateConfig {
        &self.config
    }

    /// Whether our compressor forgets each message: negotiated, or implied by shared streams.
    fn local_no_context_takeover(&self) -> bool {
        self.config.local_no_context_takeover || self.config.memory == Memory::Shared
    }

    /// Compresses one fragment of a compressed message, with the connection's compressor or one
    /// borrowed from the thread until the message ends.
    fn compress(&mut self, payload: &[u8], fin: bool) -> Result<Bytes, ExtensionError> {
        let PerMessageDeflateConfig { local_max_window_bits, level, mem_level, memory, .. } = self.config;
        self.user.get_or_insert_with(shared::User::new);
        let key = CompressorKey::new(local_max_window_bits, level, mem_level);
        let mut compressor = match self.compressor.take() {
            Some(compressor) => compressor,
            None if memory == Memory::Shared || self.sent_messages < WARM_UP_MESSAGES => {
                let mut compressor = shared::take_compressor(key);
                if let Some(history) = &mut self.sent {
                    compressor.prime(history.as_slice())?;
                }
                self.borrowed.compressor = true;
                compressor
            }
            None => match &mut self.sent {
                Some(history) => Compressor::resume(key, history.as_slice())?,
                None => Compressor::new(key),
            },
        };
        let result = compressor.compress(payload, fin, self.sent.as_mut());
        if fin {
            self.sent_messages = self.sent_messages.saturating_add(1);
        }
        if self.borrowed.compressor {
            if fin || result.is_err() {
                self.borrowed.compressor = false;
                shared::give_compressor(compressor);
            } else {
                self.compressor = Some(compressor);
            }
        } else {
            if fin && result.is_ok() && self.config.local_no_context_takeover {
                compressor.reset();
            }
            self.compressor = Some(compressor);
        }
        result
    }

    /// Decompresses one fragment of a compressed message, with the connection's decompressor or
    /// one borrowed from the thread until the message ends.
    ///
    /// A peer that resets its context after every message needs no history on our side, so its
    /// messages always use the thread's decompressor (resetting an inflate stream is cheap).
    fn decompress(
        &mut self,
        payload: &[u8],
        fin: bool,
        max_size: Option<usize>,
    ) -> Result<Bytes, ExtensionError> {
        self.user.get_or_insert_with(shared::User::new);
        let first = self.receiving != Message::Compressed;
        if first {
            self.replay = None;
            if !fin {
                let history = self.received.as_mut().map(|h| h.as_slice().to_vec());
                self.replay =
                    Some(Box::new(Replay { history, input: Vec::new() })).filter(|r| r.len() <= PARK_MAX);
            }
        }
        let mut decompressor = match self.decompressor.take() {
            Some(decompressor) => decompressor,
            // Parked by `release_memory` in the middle of this message: rebuild its stream.
            None if !first => self.unpark()?,
            None => self.open_decompressor(None)?,
        };
        let result = decompressor.decompress(payload, fin, max_size, self.received.as_mut());
        if fin {
            self.received_messages = self.received_messages.saturating_add(1);
        }
        if fin || result.is_err() {
            self.replay = None;
        } else if let Some(replay) = &mut self.replay {
            if replay.len() + payload.len() <= PARK_MAX {
                replay.input.extend_from_slice(payload);
            } else {
                self.replay = None;
            }
        }
        if self.borrowed.decompressor && (fin || result.is_err()) {
            self.borrowed.decompressor = false;
            shared::give_decompressor(decompressor);
        } else {
            self.decompressor = Some(decompressor);
        }
        result
    }

    /// A decompressor for a message: borrowed from the thread (primed with the history) when
    /// the peer resets its context or during the warm-up, else a new one of the connection's
    /// own. `start` replaces the current history (a parked message's).
    fn open_decompressor(&mut self, start: Option<&[u8]>) -> Result<Decompressor, ExtensionError> {
        let bits = self.config.remote_max_window_bits;
        let history = match start {
            Some(start) => Some(start),
            None => self.received.as_mut().map(|h| h.as_slice()),
        };
        if self.config.remote_no_context_takeover || self.received_messages < WARM_UP_MESSAGES {
            let mut decompressor = shared::take_decompressor();
            if let Some(history) = history {
                decompressor.prime(history)?;
            }
            self.borrowed.decompressor = true;
            Ok(decompressor)
        } else {
            match history {
                Some(history) => Decompressor::resume(bits, history),
                None => Ok(Decompressor::new(bits)),
            }
        }
    }

    /// Rebuilds the decompressor of the message `release_memory` parked.
    fn unpark(&mut self) -> Result<Decompressor, ExtensionError> {
        let Some(replay) = self.replay.take() else {
            return Err(ExtensionError::Internal("unfinished message without its decompressor".into()));
        };
        let mut decompressor = self.open_decompressor(Some(replay.history.as_deref().unwrap_or(&[])))?;
        // Output within the budget already: delivered before, discarded now.
        if let Err(err) = decompressor.decompress(&replay.input, false, None, None) {
            if std::mem::take(&mut self.borrowed.decompressor) {
                shared::give_decompressor(decompressor);
            }
            return Err(err);
        }
        self.replay = Some(replay);
        Ok(decompressor)
    }
}

impl Extension for PerMessageDeflate {
    fn name(&self) -> &str {
        NAME
    }

    fn rsv(&self) -> Rsv {
        Rsv::RSV1
    }

    /// Without context takeover on our side each message is compressed on its own, so a
    /// message compressed by one connection can go to every connection with the same window,
    /// level, memLevel and threshold.
    fn shared_encoding(&self) -> Option<Vec<u8>> {
        if !self.local_no_context_takeover() {
            return None;
        }
        let PerMessageDeflateConfig {
            local_max_window_bits, level, mem_level, compression_threshold, ..
        } = self.config;
        let threshold = compression_threshold.unwrap_or(crate::NO_CONTEXT_TAKEOVER_THRESHOLD) as u64;
        let mut key = vec![local_max_window_bits, level, mem_level];
        key.extend_from_slice(&threshold.to_be_bytes());
        Some(key)
    }

    fn encode(&mut self, frame: &mut Frame) -> Result<(), ExtensionError> {
        if frame.opcode.is_control() {
            return Ok(());
        }
        if frame.rsv.intersects(Rsv::RSV1) {
            return Err(ExtensionError::Internal("outgoing frame already has RSV1 set".into()));
        }
        let compressed = match (frame.opcode, self.sending) {
            (OpCode::Continuation, Message::Idle) => {
                return Err(ExtensionError::Internal("continuation frame outside a message".into()));
            }
            (OpCode::Continuation, state) => state == Message::Compressed,
            (_, Message::Idle) => {
                let threshold =
                    self.config.compression_threshold.unwrap_or(match self.local_no_context_takeover() {
                        true => crate::NO_CONTEXT_TAKEOVER_THRESHOLD,
                        false => 0,
                    });
                let small = frame.fin && frame.payload.len() < threshold;
                let compressed = !frame.no_compress && !small;
                if compressed {
                    frame.rsv.set(Rsv::RSV1, true);
                }
                compressed
            }
            (_, _) => {
                return Err(ExtensionError::Internal("new message before the previous one ended".into()));
            }
        };
        if compressed {
            frame.payload = self.compress(&frame.payload, frame.fin)?;
        }
        self.sending = match (frame.fin, compressed) {
            (true, _) => Message::Idle,
            (false, true) => Message::Compressed,
            (false, false) => Message::Plain,
        };
        Ok(())
    }

    fn decode(&mut self, frame: &mut Frame, max_size: Option<usize>) -> Result<(), ExtensionError> {
        let rsv1 = frame.rsv.contains(Rsv::RSV1);
        if frame.opcode.is_control() {
            if rsv1 {
                return Err(ExtensionError::Protocol("RSV1 set on a control frame".into()));
            }
            return Ok(());
        }
        let compressed = if frame.opcode == OpCode::Continuation {
            if rsv1 {
                return Err(ExtensionError::Protocol("RSV1 set on a continuation frame".into()));
            }
            // A continuation outside a message is the connection's error to report.
            self.receiving == Message::Compressed
        } else {
            frame.rsv.set(Rsv::RSV1, false);
            rsv1
        };
        if compressed {
            // The peer's no_context_takeover needs no reset here: a peer that keeps its promise
            // never refers to earlier messages, so the history we keep is simply unused.
            frame.payload = self.decompress(&frame.payload, frame.fin, max_size)?;
        }
        self.receiving = match (frame.fin, compressed) {
            (true, _) => Message::Idle,
            (false, true) => Message::Compressed,
            (false, false) => Message::Plain,
        };
        Ok(())
    }

    /// Frees the zlib streams and their buffers between messages, keeping only the history that
    /// context takeover needs: the last `2^window_bits` bytes sent (when our compressor keeps
    /// context) and received (when the peer's does). The next message re-creates its stream and
    /// primes it with that history, so the peer sees no difference. At 12-bit windows an idle
    /// connection then holds its struct and at most 4 KiB of history each way, instead of about
    /// 200 KiB.
    ///
    /// In the middle of a compressed fragmented message, sending keeps its stream (our own
    /// message, which the application finishes). Receiving parks the message when what it
    /// received so far is at most [`PARK_MAX`] (with the history it started from): the stream
    /// goes, and the next fragment rebuilds it by inflating that input again. So a peer that
    /// sends a first fragment and then nothing pins a few bytes, not a 46 KiB decompressor. A
    /// bigger unfinished message keeps its stream: its peer sent more than the stream costs.
    ///
    /// When the last busy connection of the process releases its memory (or is dropped), the
    /// streams every thread keeps to lend ([`Memory::Shared`], and the warm-up) are freed too.
    fn release_memory(&mut self) {
        if self.sending != Message::Compressed {
            self.compressor = None;
            self.sent_messages = 0;
            if let Some(history) = &mut self.sent {
                history.compact();
            }
        }
        if self.receiving != Message::Compressed {
            self.decompressor = None;
            self.received_messages = 0;
            if let Some(history) = &mut self.received {
                history.compact();
            }
        } else if let Some(replay) = &mut self.replay {
            // Parked: what the next fragment rebuilds the stream from, instead of the stream.
            replay.input.shrink_to_fit();
            self.received_messages = 0;
            if let Some(decompressor) = self.decompressor.take() {
                if std::mem::take(&mut self.borrowed.decompressor) {
                    shared::give_decompressor(decompressor);
                }
            }
        }
        // Idle, and holding nothing of the threads' pools: it no longer keeps them alive.
        if !self.borrowed.compressor && !self.borrowed.decompressor {
            self.user = None;
        }
    }
}
