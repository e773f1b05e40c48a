//! The chat server behind `examples/chat.rs`, kept in its own file so that the tests in
//! `tests/chat.rs` and `tests/chat_browser.rs` run this very code in-process.
//!
//! Protocol (plain text, so websocat or a few lines of Python can join):
//! - connect to `/ws?name=alice` (1 to [`MAX_NAME`] characters, no control characters;
//!   anything else is refused with HTTP 400 before the upgrade);
//! - the server first replays the last [`HISTORY`] lines, then sends `* alice joined` to the
//!   others;
//! - each text message a client sends reaches every other participant as `alice: hello`
//!   (not echoed to the sender, whose page shows it already);
//! - when a client goes, the others get `* alice left`.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::net::ToSocketAddrs;
use ws_redis::{Cluster, ClusterConfig};
use ws_tokio::http::{Request, Response, StatusCode, header};
use ws_tokio::{
    Broadcaster, CloseCode, Compression, Member, Memory, Message, PreparedMessage, ServerBuilder, WebSocket,
};

/// How many lines a newcomer gets replayed.
pub(crate) const HISTORY: usize = 50;
/// The longest name, in characters.
pub(crate) const MAX_NAME: usize = 32;
/// The largest message a client may send, in bytes (a larger one closes it with 1009).
pub(crate) const MAX_MESSAGE: usize = 4096;

/// The page at `/`.
const PAGE: &str = include_str!("index.html");
/// Everyone who has joined is in this room (the hub's room API gives "all but the sender").
const LOBBY: &str = "lobby";

/// The last lines said, and how many were ever said (so a newcomer's replay can tell which
/// lines it has not had yet).
#[derive(Default)]
struct History {
    lines: VecDeque<Message>,
    total: u64,
}

impl History {
    fn push(&mut self, line: Message) {
        if self.lines.len() == HISTORY {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        self.total += 1;
    }

    /// The lines numbered `from` and later that are still kept.
    fn since(&self, from: u64) -> impl Iterator<Item = &Message> {
        let first = self.total - self.lines.len() as u64;
        let skip = from.saturating_sub(first).min(self.lines.len() as u64);
        // `skip` is at most `lines.len()`, so it fits in a usize.
        self.lines.iter().skip(usize::try_from(skip).unwrap_or(usize::MAX))
    }
}

/// The chat room: who is in it, and what was said lately.
#[derive(Clone, Default)]
struct Chat {
    hub: Broadcaster,
    /// Every broadcast happens with this held, so the history's order is the order everyone
    /// sees, and a newcomer can join between two lines without missing or repeating one. It is
    /// never held across an `.await`: a broadcast only queues.
    history: Arc<Mutex<History>>,
    /// With `--redis`: the other chat servers, whose participants share the lobby.
    cluster: Option<Cluster>,
}

impl Chat {
    fn history(&self) -> MutexGuard<'_, History> {
        // A panic elsewhere cannot leave the history half-written: keep going.
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `line` and sends it to everyone in the lobby but `except`.
    fn say(&self, line: String, except: Option<&Member>) {
        let line = Message::text(line);
        let mut history = self.history();
        match &self.cluster {
            // This server's participants now, the other servers' through Redis.
            Some(cluster) => {
                cluster.publish(LOBBY, line.clone(), except);
            }
            None => {
                self.hub.room(LOBBY).broadcast_prepared(&PreparedMessage::new(line.clone()), except);
            }
        }
        history.push(line);
    }

    /// A line said on another server: recorded and sent to everyone here, like `say`.
    fn heard(&self, line: Message) {
        let mut history = self.history();
        self.hub.room(LOBBY).broadcast(line.clone());
        history.push(line);
    }

    /// Replays the history to `ws`, then joins it to the lobby, with nothing said in between
    /// lost: the replay is sent without the lock held (a slow newcomer must not stall the
    /// room), so it loops until it has caught up, and joins under the lock.
    async fn replay_and_join(&self, ws: &mut WebSocket, member: &Member) -> ws_tokio::Result<()> {
        let mut next = 0;
        loop {
            let backlog: Vec<Message> = {
                let history = self.history();
                let backlog: Vec<Message> = history.since(next).cloned().collect();
                if backlog.is_empty() {
                    member.join_room(LOBBY);
                    return Ok(());
                }
                next = history.total;
                backlog
            };
            for line in backlog {
                ws.send(line).await?;
            }
        }
    }

    async fn serve(&self, mut ws: WebSocket) {
        // The hook checked the name before the upgrade; this cannot fail for a connection
        // that got here.
        let Some(name) = ws.info().request().and_then(name_of) else {
            let _ = ws.close(CloseCode::POLICY_VIOLATION, "bad name").await;
            return;
        };
        let member = self.hub.join(&ws);
        if self.replay_and_join(&mut ws, &member).await.is_err() {
            return;
        }
        if let Some(cluster) = &self.cluster {
            // The first participant here subscribes this server to the lobby: wait for it, so
            // that the other servers' replies to the "joined" notice are not missed.
            cluster.join_room(&member, LOBBY).await;
        }
        self.say(format!("* {name} joined"), Some(&member));
        loop {
            match ws.recv().await {
                Ok(Message::Text(text)) => self.say(format!("{name}: {}", text.as_str()), Some(&member)),
                Ok(Message::Binary(_)) => {
                    let _ = ws.close(CloseCode::UNSUPPORTED_DATA, "text only").await;
                    break;
                }
                Err(_) => break,
            }
        }
        // Leave first, so the notice is not offered to a connection that is gone.
        drop(member);
        self.say(format!("* {name} left"), None);
    }
}

/// Starts the chat on `addr`: the page at `/`, the WebSocket at `/ws`, 404 elsewhere.
///
/// Compression: `Deflate(Memory::Shared)`, i.e. no context takeover either way. A broadcast
/// then compresses each line once for every participant (a connection with context takeover
/// needs its own compression of each message, with its own history), and a connection keeps
/// no zlib stream between messages (a few hundred bytes each instead of about 210 KiB while
/// busy). The price: each line is compressed on its own, so short chat lines shrink less than
/// they would against the connection's previous messages.
pub(crate) async fn serve(addr: impl ToSocketAddrs) -> io::Result<ws_tokio::Server> {
    serve_with(addr, None).await
}

/// Starts the chat on `addr`; with `redis` (a `redis://` URL), its lobby is shared with the
/// other chat servers on that Redis. Each server keeps its own history: lines said anywhere
/// while it had participants.
pub(crate) async fn serve_with(
    addr: impl ToSocketAddrs,
    redis: Option<&str>,
) -> io::Result<ws_tokio::Server> {
    let mut chat = Chat::default();
    if let Some(url) = redis {
        let config = ClusterConfig::default().with_channel_prefix("ws-chat:");
        let cluster = Cluster::connect(url, chat.hub.clone(), config).await.map_err(io::Error::other)?;
        // A clone without the cluster: the callback must not keep the cluster alive.
        let here = chat.clone();
        cluster.on_receive(move |_room, line| here.heard(line));
        chat.cluster = Some(cluster);
    }
    ServerBuilder::new()
        .compression(Some(Compression::Deflate(Memory::Shared)))
        .max_size(Some(MAX_MESSAGE))
        .process_request(Arc::new(route))
        .serve(
            move |ws| {
                let chat = chat.clone();
                async move { chat.serve(ws).await }
            },
            addr,
        )
        .await
}

/// The `process_request` hook: answers everything but a well-named `/ws` request itself.
fn route(request: &Request<()>) -> Option<Response<Bytes>> {
    match request.uri().path() {
        "/" => Some(respond(StatusCode::OK, "text/html; charset=utf-8", PAGE)),
        "/ws" if name_of(request).is_none() => Some(respond(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            "a name is required: /ws?name=alice (1 to 32 characters)\n",
        )),
        "/ws" => None,
        _ => Some(respond(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found\n")),
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(body.as_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}

/// The `name` query parameter, decoded, if it is an acceptable name.
pub(crate) fn name_of(request: &Request<()>) -> Option<String> {
    let query = request.uri().query()?;
    let raw = query.split('&').find_map(|pair| pair.strip_prefix("name="))?;
    let name = percent_decode(raw)?;
    let name = name.trim();
    let ok = !name.is_empty() && name.chars().count() <= MAX_NAME && !name.chars().any(char::is_control);
    ok.then(|| name.to_owned())
}

/// Decodes a query value (`%XX` escapes, `+` for space); `None` if that is not UTF-8 or an
/// escape is malformed.
fn percent_decode(raw: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut input = raw.bytes();
    while let Some(b) = input.next() {
        match b {
            b'%' => {
                let (high, low) = (hex_digit(input.next()?)?, hex_digit(input.next()?)?);
                bytes.push((high << 4) | low);
            }
            b'+' => bytes.push(b' '),
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes).ok()
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}
