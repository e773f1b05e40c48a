//! Scale-out for `ws`: several WebSocket servers behind a load balancer share their
//! [`Broadcaster`] rooms through Redis pub/sub.
//!
//! Each node keeps its own [`Broadcaster`] (local fan-out, each message encoded once per wire
//! form) and wraps it in a [`Cluster`]:
//! - the node subscribes to a room's Redis channel while the room has members on this node (it
//!   follows [`Broadcaster::watch_rooms`], so rooms left by dropping a [`Member`] are
//!   unsubscribed too);
//! - [`Cluster::publish`] fans a message out to the local room at once and queues one `PUBLISH`
//!   for the other nodes, which fan it out to their members of the room; the node drops its own
//!   echo, so nobody gets a message twice;
//! - messages from one node (so from one sender) reach the other nodes in the order they were
//!   published: one publisher task sends them in order on one connection, in pipelined batches.
//!
//! ```no_run
//! use ws_redis::{Cluster, ClusterConfig};
//! use ws_tokio::Broadcaster;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Broadcaster::default();
//! let cluster = Cluster::connect("redis://127.0.0.1:6379/", hub, ClusterConfig::default()).await?;
//! let server = ws_tokio::serve(
//!     move |mut ws| {
//!         let cluster = cluster.clone();
//!         async move {
//!             let member = cluster.hub().join(&ws);
//!             cluster.join_room(&member, "lobby").await;
//!             while let Ok(message) = ws.recv().await {
//!                 cluster.publish("lobby", message, Some(&member));
//!             }
//!         }
//!     },
//!     "127.0.0.1:8765",
//! )
//! .await?;
//! # Ok(()) }
//! ```
//!
//! # When Redis goes away
//!
//! Local rooms keep working: [`Cluster::publish`] always delivers to this node's members. The
//! node reconnects with [`ClusterConfig::backoff`], resubscribes to its rooms, logs a
//! `tracing` warning when it loses Redis and another when it is back (with what was lost), and
//! counts the gap in [`ClusterStats`]. What is lost, not retried (pub/sub keeps nothing):
//! - messages published on this node while its publisher connection is down, or that were in
//!   flight when it broke, or that found the publish queue full
//!   ([`ClusterStats::not_published`]): the other nodes never see them;
//! - messages the other nodes published while this node's subscriber connection was down
//!   ([`ClusterStats::missed`]): each message carries its node's sequence number per room, so a
//!   node counts a gap when the next message from the same node to the same room arrives (a
//!   gap at the very end of a node's messages, or in a room this node left, goes uncounted);
//! - a room's messages published between a node's first member joining the room and the
//!   node's subscription being confirmed ([`Cluster::join_room`] waits for that).
//!
//! A connection that dies without being closed (no FIN, no RST) is only noticed when a publish
//! times out ([`ClusterConfig::timeout`]).
//!
//! A node keeps a sequence number for each room it has published to, and the last one seen per
//! room and node for the rooms it is in: memory grows with the number of distinct room names
//! published to over the node's life (a few dozen bytes each).
#![forbid(unsafe_code)]

pub use redis;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::aio::{MultiplexedConnection, PubSub, PubSubSink};
use redis::{AsyncConnectionConfig, Client, RedisError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::{CancellationToken, DropGuard};
use ws_tokio::{
    Backoff, Broadcaster, Bytes, BytesMut, Delivery, Member, Message, PreparedMessage, Transport, Utf8Bytes,
};

/// Cluster settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// A room's Redis channel is this followed by the room's name (default `ws:room:`). Nodes
    /// that share rooms use the same prefix; different prefixes keep applications apart on one
    /// Redis.
    pub channel_prefix: String,
    /// How many messages may wait for the publisher (default 4096); a message that finds the
    /// queue full is not published (and counted).
    pub publish_queue: usize,
    /// Delays between reconnection attempts (default: 0–100 ms, then 200 ms, × 2 each time, at
    /// most 5 s): shorter than a WebSocket client's, since the node is missing messages
    /// meanwhile and Redis is usually near.
    pub backoff: Backoff,
    /// How long connecting to Redis, and one batch of publishes, may take (default 5 s).
    pub timeout: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            channel_prefix: "ws:room:".to_owned(),
            publish_queue: 4096,
            backoff: Backoff {
                initial_delay: Duration::from_millis(100),
                min_delay: Duration::from_millis(200),
                factor: 2.0,
                max_delay: Duration::from_secs(5),
            },
            timeout: Duration::from_secs(5),
        }
    }
}

impl ClusterConfig {
    /// Sets `channel_prefix`.
    pub fn with_channel_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.channel_prefix = prefix.into();
        self
    }

    /// Sets `publish_queue`.
    pub fn with_publish_queue(mut self, messages: usize) -> Self {
        self.publish_queue = messages;
        self
    }

    /// Sets `backoff`.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What a node did with Redis so far (counters only grow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClusterStats {
    /// Messages this node published to Redis.
    pub published: u64,
    /// Messages sent with [`Cluster::publish`] that did not reach Redis: Redis was unreachable,
    /// the connection broke with them in flight, or the publish queue was full. Local members
    /// got them; other nodes did not.
    pub not_published: u64,
    /// Messages from other nodes fanned out to this node's members.
    pub received: u64,
    /// Messages from other nodes that this node missed, as far as it could tell from their
    /// sequence numbers (see the crate docs).
    pub missed: u64,
    /// Times this node lost its Redis connection.
    pub disconnects: u64,
}

/// A node of a cluster: a [`Broadcaster`] whose rooms are shared with the other nodes through
/// Redis pub/sub. Cheap to clone; the node leaves Redis when the last clone is dropped.
pub struct Cluster<S = Transport> {
    shared: Arc<Shared<S>>,
    _stop: Arc<DropGuard>,
}

impl<S> Clone for Cluster<S> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone(), _stop: self._stop.clone() }
    }
}

impl<S> std::fmt::Debug for Cluster<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &format_args!("{:016x}", self.shared.node))
            .field("connected", &self.is_connected())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What a node does with a message from another node, if not the default fan-out.
type Deliver = Arc<dyn Fn(&str, Message) + Send + Sync>;

struct Shared<S> {
    hub: Broadcaster<S>,
    deliver: Mutex<Option<Deliver>>,
    /// Random: tells this node's own messages from the others' when they come back from Redis.
    node: u64,
    prefix: String,
    outgoing: Mutex<Outgoing>,
    /// Whether the publisher has a working connection (else `publish` does not queue).
    publisher_up: AtomicBool,
    /// Set when a message finds the queue full, so that an overflow is logged once.
    overflowing: AtomicBool,
    /// The subscriber's side: connected or not, and the rooms whose channels it subscribed to.
    link: watch::Sender<Link>,
    published: AtomicU64,
    not_published: AtomicU64,
    received: AtomicU64,
    missed: AtomicU64,
    disconnects: AtomicU64,
}

struct Outgoing {
    /// The last sequence number per room (the other nodes look for gaps in them).
    seqs: HashMap<String, u64>,
    queue: mpsc::Sender<(String, Bytes)>,
}

#[derive(Default)]
struct Link {
    connected: bool,
    rooms: HashSet<String>,
}

/// The frame on the Redis channel: version, kind, node, sequence number, payload.
const VERSION: u8 = 1;
const HEADER: usize = 1 + 1 + 8 + 8;

fn encode(node: u64, seq: u64, message: &Message) -> Bytes {
    let payload = message.as_bytes();
    let mut frame = BytesMut::with_capacity(HEADER + payload.len());
    frame.extend_from_slice(&[VERSION, u8::from(message.is_text())]);
    frame.extend_from_slice(&node.to_be_bytes());
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.extend_from_slice(payload);
    frame.freeze()
}

fn decode(frame: &[u8]) -> Option<(u64, u64, Message)> {
    let (header, payload) = frame.split_at_checked(HEADER)?;
    if header[0] != VERSION {
        return None;
    }
    let node = u64::from_be_bytes(header[2..10].try_into().ok()?);
    let seq = u64::from_be_bytes(header[10..18].try_into().ok()?);
    let payload = Bytes::copy_from_slice(payload);
    let message = match header[1] {
        0 => Message::Binary(payload),
        _ => Message::Text(Utf8Bytes::from_bytes(payload)?),
    };
    Some((node, seq, message))
}

impl<S> Cluster<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Connects this node to Redis at `url` (`redis://host:port/`, see [`redis::Client::open`])
    /// and starts following `hub`'s rooms. Fails if Redis cannot be reached now; later outages
    /// are survived (see the crate docs).
    pub async fn connect(url: &str, hub: Broadcaster<S>, config: ClusterConfig) -> Result<Self, RedisError> {
        let client = Client::open(url)?;
        let publisher = open_publisher(&client, &config).await?;
        let pubsub = open_pubsub(&client, &config).await?;
        let (queue, queued) = mpsc::channel(config.publish_queue.max(1));
        let shared = Arc::new(Shared {
            hub,
            deliver: Mutex::new(None),
            node: fastrand::u64(..),
            prefix: config.channel_prefix.clone(),
            outgoing: Mutex::new(Outgoing { seqs: HashMap::new(), queue }),
            publisher_up: AtomicBool::new(true),
            overflowing: AtomicBool::new(false),
            link: watch::Sender::new(Link::default()),
            published: AtomicU64::new(0),
            not_published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
        });
        let config_timeout = config.timeout;
        let stop = CancellationToken::new();
        let subscriber =
            Subscriber { shared: shared.clone(), client: client.clone(), config: config.clone() };
        tokio::spawn(run_until(stop.clone(), subscriber.run(pubsub)));
        let publisher_task = Publisher { shared: shared.clone(), client, config };
        tokio::spawn(run_until(stop.clone(), publisher_task.run(publisher, queued)));
        let cluster = Self { shared, _stop: Arc::new(stop.drop_guard()) };
        // The hub may have rooms already: wait for their subscriptions like `join_room` does.
        let mut link = cluster.shared.link.subscribe();
        let _ = tokio::time::timeout(config_timeout, link.wait_for(|link| link.connected)).await;
        Ok(cluster)
    }
}

async fn run_until(stop: CancellationToken, task: impl Future<Output = ()>) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = task => {}
    }
}

impl<S> Cluster<S> {
    /// The local broadcaster.
    pub fn hub(&self) -> &Broadcaster<S> {
        &self.shared.hub
    }

    /// This node's random id (it marks the messages it publishes).
    pub fn node_id(&self) -> u64 {
        self.shared.node
    }

    /// Whether the node is connected to Redis now, both to publish and to receive.
    pub fn is_connected(&self) -> bool {
        self.shared.link.borrow().connected && self.shared.publisher_up.load(Ordering::Acquire)
    }

    /// Whether the node receives the other nodes' messages to `room` now.
    pub fn is_subscribed(&self, room: &str) -> bool {
        let link = self.shared.link.borrow();
        link.connected && link.rooms.contains(room)
    }

    /// The counters so far.
    pub fn stats(&self) -> ClusterStats {
        let shared = &self.shared;
        ClusterStats {
            published: shared.published.load(Ordering::Relaxed),
            not_published: shared.not_published.load(Ordering::Relaxed),
            received: shared.received.load(Ordering::Relaxed),
            missed: shared.missed.load(Ordering::Relaxed),
            disconnects: shared.disconnects.load(Ordering::Relaxed),
        }
    }

    /// Sets what this node does with each message from another node, instead of sending it
    /// to the room's local members (`hub().room(room).broadcast(message)`): for an application
    /// that also records it (a chat's history, say) under the same lock as its own messages.
    /// `deliver` runs on the subscriber task, one message at a time, in order: it should only
    /// queue (as broadcasts do), not block. It may hold the hub, not this `Cluster`: that would
    /// keep the node alive after its last handle is dropped.
    pub fn on_receive(&self, deliver: impl Fn(&str, Message) + Send + Sync + 'static) {
        *self.shared.deliver.lock() = Some(Arc::new(deliver));
    }

    /// Puts `member` in `room` (as [`Member::join_room`]) and waits until the node receives the
    /// other nodes' messages to the room: at once if the room had members here already, else
    /// when Redis has confirmed the subscription. Returns `false` at once if Redis is
    /// unreachable now: the node subscribes when it is back.
    pub async fn join_room(&self, member: &Member<S>, room: &str) -> bool {
        member.join_room(room);
        let mut link = self.shared.link.subscribe();
        let joined = link.wait_for(|link| !link.connected || link.rooms.contains(room)).await;
        joined.is_ok_and(|link| link.connected)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Cluster<S> {
    /// Sends `message` to everyone in `room` on every node, but `except` (the sender, usually):
    /// to this node's members at once (the returned [`Delivery`] counts them), and to the other
    /// nodes' members through one `PUBLISH`, queued without waiting.
    pub fn publish(&self, room: &str, message: impl Into<Message>, except: Option<&Member<S>>) -> Delivery {
        let message = message.into();
        let delivery =
            self.shared.hub.room(room).broadcast_prepared(&PreparedMessage::new(message.clone()), except);
        self.shared.enqueue(room, &message);
        delivery
    }
}

impl<S> Shared<S> {
    fn enqueue(&self, room: &str, message: &Message) {
        let mut outgoing = self.outgoing.lock();
        // Numbered even when it cannot go out, so that the other nodes see the gap.
        let seq = match outgoing.seqs.get_mut(room) {
            Some(seq) => {
                *seq += 1;
                *seq
            }
            None => {
                outgoing.seqs.insert(room.to_owned(), 1);
                1
            }
        };
        if !self.publisher_up.load(Ordering::Acquire) {
            self.not_published.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let channel = format!("{}{room}", self.prefix);
        // Queued under the lock: the queue's order is the sequence numbers' order.
        if outgoing.queue.try_send((channel, encode(self.node, seq, message))).is_err() {
            self.not_published.fetch_add(1, Ordering::Relaxed);
            if !self.overflowing.swap(true, Ordering::Relaxed) {
                tracing::warn!("redis: publish queue full, messages are not published to the other nodes");
            }
        }
    }

    fn room_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel.strip_prefix(self.prefix.as_str())
    }
}

async fn open_publisher(
    client: &Client,
    config: &ClusterConfig,
) -> Result<MultiplexedConnection, RedisError> {
    let settings = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout));
    client.get_multiplexed_async_connection_with_config(&settings).await
}

async fn open_pubsub(client: &Client, config: &ClusterConfig) -> Result<PubSub, RedisError> {
    match tokio::time::timeout(config.timeout, client.get_async_pubsub()).await {
        Ok(pubsub) => pubsub,
        Err(_) => {
            Err(RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting to redis")))
        }
    }
}

/// Retries `open` with the configured backoff until it succeeds.
async fn reconnect<T, F: Future<Output = Result<T, RedisError>>>(
    backoff: Backoff,
    what: &str,
    mut open: impl FnMut() -> F,
) -> T {
    let mut attempts = 0u64;
    for delay in backoff.delays() {
        tokio::time::sleep(delay).await;
        attempts += 1;
        match open().await {
            Ok(connection) => return connection,
            Err(error) => tracing::debug!(%error, attempts, "redis: {what} reconnection failed"),
        }
    }
    unreachable!("Backoff::delays is endless")
}

/// Sends queued messages in order, in pipelined batches, on one connection.
struct Publisher<S> {
    shared: Arc<Shared<S>>,
    client: Client,
    config: ClusterConfig,
}

/// Messages sent in one round trip at most: enough to keep up under load, few enough that a
/// batch lost to a broken connection stays small.
const BATCH: usize = 256;

impl<S> Publisher<S> {
    async fn run(self, mut connection: MultiplexedConnection, mut queued: mpsc::Receiver<(String, Bytes)>) {
        let shared = &self.shared;
        let mut link = shared.link.subscribe();
        let mut disconnects = shared.disconnects.load(Ordering::Relaxed);
        loop {
            let first = tokio::select! {
                first = queued.recv() => first,
                changed = link.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // The subscriber lost Redis: this connection is most likely dead too, and
                    // finding out at the next publish would lose that message.
                    let now = shared.disconnects.load(Ordering::Relaxed);
                    if now != disconnects {
                        self.outage(&mut connection, &mut queued, 0, "the subscriber lost its connection").await;
                        // Losses the subscriber saw meanwhile are over too: this connection is new.
                        disconnects = shared.disconnects.load(Ordering::Relaxed);
                    }
                    continue;
                }
            };
            let Some((channel, frame)) = first else { return };
            let mut pipe = redis::pipe();
            pipe.publish(channel, frame.as_ref()).ignore();
            let mut count = 1;
            while count < BATCH {
                let Ok((channel, frame)) = queued.try_recv() else { break };
                pipe.publish(channel, frame.as_ref()).ignore();
                count += 1;
            }
            match pipe.query_async::<()>(&mut connection).await {
                Ok(()) => {
                    shared.published.fetch_add(count as u64, Ordering::Relaxed);
                    shared.overflowing.store(false, Ordering::Relaxed);
                }
                Err(error) => {
                    let why = error.to_string();
                    self.outage(&mut connection, &mut queued, count, &why).await;
                    disconnects = shared.disconnects.load(Ordering::Relaxed);
                }
            }
        }
    }

    /// Stops queueing, reconnects with backoff, and says what was not published meanwhile.
    async fn outage(
        &self,
        connection: &mut MultiplexedConnection,
        queued: &mut mpsc::Receiver<(String, Bytes)>,
        in_flight: usize,
        why: &str,
    ) {
        let shared = &self.shared;
        shared.publisher_up.store(false, Ordering::Release);
        let before = shared.not_published.load(Ordering::Relaxed);
        let mut lost = in_flight as u64;
        while queued.try_recv().is_ok() {
            lost += 1;
        }
        shared.not_published.fetch_add(lost, Ordering::Relaxed);
        tracing::warn!(
            reason = why,
            "redis: publisher disconnected, reconnecting; messages meanwhile reach local members only"
        );
        let start = Instant::now();
        *connection =
            reconnect(self.config.backoff, "publisher", || open_publisher(&self.client, &self.config)).await;
        shared.publisher_up.store(true, Ordering::Release);
        let not_published = shared.not_published.load(Ordering::Relaxed) - before;
        tracing::warn!(
            not_published,
            after_ms = start.elapsed().as_millis() as u64,
            "redis: publisher reconnected; {not_published} messages were not published to the other nodes"
        );
    }
}

/// Receives the other nodes' messages and fans them out; follows the hub's rooms.
struct Subscriber<S> {
    shared: Arc<Shared<S>>,
    client: Client,
    config: ClusterConfig,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Subscriber<S> {
    async fn run(self, pubsub: PubSub) {
        let shared = &self.shared;
        let mut rooms_changed = shared.hub.watch_rooms();
        // The last sequence number seen per room and node, kept across reconnections to count
        // what was missed meanwhile.
        let mut seen: HashMap<String, HashMap<u64, u64>> = HashMap::new();
        let mut pubsub = Some(pubsub);
        let mut down_since: Option<Instant> = None;
        loop {
            let (mut sink, mut stream) = match pubsub.take() {
                Some(pubsub) => pubsub,
                None => {
                    reconnect(self.config.backoff, "subscriber", || open_pubsub(&self.client, &self.config))
                        .await
                }
            }
            .split();
            let mut subscribed = HashSet::new();
            rooms_changed.mark_unchanged();
            let mut result = self.follow_rooms(&mut sink, &mut subscribed, &mut seen).await;
            if let Some(since) = down_since.take_if(|_| result.is_ok()) {
                tracing::warn!(
                    rooms = subscribed.len(),
                    after_ms = since.elapsed().as_millis() as u64,
                    "redis: subscriber reconnected and resubscribed; what the other nodes published meanwhile is lost (counted in ClusterStats::missed as their next messages arrive)"
                );
            }
            while result.is_ok() {
                tokio::select! {
                    changed = rooms_changed.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        result = self.follow_rooms(&mut sink, &mut subscribed, &mut seen).await;
                    }
                    message = stream.next() => match message {
                        Some(message) => self.fan_out(&message, &subscribed, &mut seen),
                        None => result = Err("connection closed".to_owned()),
                    },
                }
            }
            let why = result.err().unwrap_or_default();
            shared.link.send_modify(|link| {
                link.connected = false;
                link.rooms.clear();
            });
            shared.disconnects.fetch_add(1, Ordering::Relaxed);
            down_since = down_since.or(Some(Instant::now()));
            tracing::warn!(
                reason = why,
                rooms = subscribed.len(),
                "redis: subscriber disconnected, reconnecting; local rooms keep working, the other nodes' messages are missed meanwhile"
            );
        }
    }

    /// Subscribes to the rooms the hub has and unsubscribes from those it lost.
    async fn follow_rooms(
        &self,
        sink: &mut PubSubSink,
        subscribed: &mut HashSet<String>,
        seen: &mut HashMap<String, HashMap<u64, u64>>,
    ) -> Result<(), String> {
        let shared = &self.shared;
        let wanted: HashSet<String> = shared.hub.rooms().into_iter().collect();
        let channels = |rooms: &[&String]| {
            rooms.iter().map(|room| format!("{}{room}", shared.prefix)).collect::<Vec<_>>()
        };
        let gone: Vec<&String> = subscribed.difference(&wanted).collect();
        if !gone.is_empty() {
            sink.unsubscribe(channels(&gone)).await.map_err(|error| error.to_string())?;
        }
        let new: Vec<&String> = wanted.difference(subscribed).collect();
        if !new.is_empty() {
            sink.subscribe(channels(&new)).await.map_err(|error| error.to_string())?;
        }
        // A room left and joined again starts afresh: the gap between is not a loss.
        seen.retain(|room, _| wanted.contains(room));
        *subscribed = wanted;
        shared.link.send_modify(|link| {
            link.connected = true;
            link.rooms.clone_from(subscribed);
        });
        Ok(())
    }

    fn fan_out(
        &self,
        message: &redis::Msg,
        subscribed: &HashSet<String>,
        seen: &mut HashMap<String, HashMap<u64, u64>>,
    ) {
        let shared = &self.shared;
        let Some(room) = shared.room_of(message.get_channel_name()) else { return };
        let Some((node, seq, message)) = decode(message.get_payload_bytes()) else {
            tracing::debug!(room, "redis: ignored a message that is not a ws-redis frame");
            return;
        };
        // Our own echo (local members had it at once), or a room being unsubscribed.
        if node == shared.node || !subscribed.contains(room) {
            return;
        }
        if !seen.contains_key(room) {
            seen.insert(room.to_owned(), HashMap::new());
        }
        let Some(nodes) = seen.get_mut(room) else { return };
        let last = nodes.entry(node).or_insert(seq.saturating_sub(1));
        if seq > *last + 1 {
            shared.missed.fetch_add(seq - *last - 1, Ordering::Relaxed);
        }
        *last = (*last).max(seq);
        shared.received.fetch_add(1, Ordering::Relaxed);
        let deliver = shared.deliver.lock().clone();
        match deliver {
            Some(deliver) => deliver(room, message),
            None => {
                shared.hub.room(room).broadcast(message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_strangers_are_refused() {
        for message in [Message::text("héllo"), Message::binary(vec![0u8, 255, 1]), Message::text("")] {
            let frame = encode(0x0123_4567_89ab_cdef, 42, &message);
            assert_eq!(decode(&frame), Some((0x0123_4567_89ab_cdef, 42, message)));
        }
        let mut frame = encode(1, 1, &Message::text("x")).to_vec();
        frame[0] = VERSION + 1;
        assert_eq!(decode(&frame), None, "another version");
        assert_eq!(decode(b"short"), None, "no header");
        let mut frame = encode(1, 1, &Message::binary(vec![0xff])).to_vec();
        frame[1] = 1;
        assert_eq!(decode(&frame), None, "text that is not UTF-8");
    }
}
