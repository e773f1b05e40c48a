//! Broadcast: one message to many connections, encoded once, never waiting for a slow one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use ws_proto::{CloseCode, Message, PreparedMessage};

use crate::driver::{Shared, lock};
use crate::pump::{Offered, Pump};
use crate::socket::WebSocket;
use crate::split::{ReadHalf, WriteHalf};
use crate::transport::Transport;

/// What a broadcast does with a connection that has more than
/// [`max_buffered`](BroadcastConfig::max_buffered) bytes waiting to be written already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WhenFull {
    /// Skip it and count the message as dropped (the default, as Python `websockets`'
    /// `broadcast()` does): the connection misses this message and carries on.
    #[default]
    Skip,
    /// Close it with this code (1008 policy violation, or 1013 try again later): a client that
    /// cannot keep up is told so rather than left with gaps.
    Close(CloseCode),
}

/// Broadcast settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BroadcastConfig {
    /// A connection with more than this many bytes waiting to be written is full (`None`, the
    /// default: its own write limit's high mark, 32 KiB unless set). What waits per connection
    /// is then bounded in bytes, at most this plus one message, whatever the message size.
    pub max_buffered: Option<usize>,
    /// What to do with a full connection.
    pub when_full: WhenFull,
}

impl BroadcastConfig {
    /// Sets `max_buffered`.
    pub fn with_max_buffered(mut self, max: Option<usize>) -> Self {
        self.max_buffered = max;
        self
    }

    /// Sets `when_full`.
    pub fn with_when_full(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }
}

/// What became of one broadcast (or, from [`Broadcaster::totals`], of all of them so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Connections the message was queued on (written once the broadcasting task yields).
    pub delivered: usize,
    /// Full connections that were skipped ([`WhenFull::Skip`]).
    pub dropped: usize,
    /// Connections that were closing or closed already, or were closed because they were full
    /// ([`WhenFull::Close`]).
    pub closed: usize,
}

impl std::ops::AddAssign for Delivery {
    fn add_assign(&mut self, other: Self) {
        self.delivered += other.delivered;
        self.dropped += other.dropped;
        self.closed += other.closed;
    }
}

/// A set of connections that receive broadcasts, with named rooms: the server's connections
/// as the application sees them (Python `websockets`' `server.connections` and `broadcast()`).
///
/// A handler [`join`](Self::join)s its connection and keeps the [`Member`] it gets; the
/// connection leaves when the member is dropped (or the connection is gone). A broadcast
/// encodes the message once per distinct wire form (see [`PreparedMessage`]: once plain, once
/// compressed for all connections that compress without context takeover with the same
/// settings) and queues it on each connection without waiting; a connection whose output is
/// full is skipped or closed, as [`BroadcastConfig`] says. The frames are written by a task the
/// broadcast spawns, as soon as the broadcasting task yields: each connection then gets every
/// broadcast made meanwhile in one write (a tokio runtime is needed for that; without one, each
/// broadcast writes before it returns). Cheap to clone: clones share the connections.
///
/// ```no_run
/// use ws_tokio::{Broadcaster, Message};
///
/// # async fn demo() -> std::io::Result<()> {
/// let hub = Broadcaster::default();
/// let server = ws_tokio::serve(
///     move |mut ws| {
///         let hub = hub.clone();
///         async move {
///             let member = hub.join(&ws);
///             member.join_room("lobby");
///             while let Ok(message) = ws.recv().await {
///                 hub.room("lobby").broadcast_except(message, &member);
///             }
///         }
///     },
///     "127.0.0.1:8765",
/// )
/// .await?;
/// # Ok(()) }
/// ```
pub struct Broadcaster<S = Transport> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    config: BroadcastConfig,
    registry: Mutex<Registry<S>>,
    /// Marked changed when a room gains its first member or loses its last one, for whoever
    /// mirrors the set of rooms elsewhere (ws-redis subscribes to their Redis channels).
    rooms_changed: watch::Sender<()>,
    /// Connections with broadcast frames queued and not yet written, and the task that writes
    /// them: frames are written once the broadcasting task yields, so that a burst of
    /// broadcasts goes to each connection in one write.
    unwritten: Mutex<Unwritten<S>>,
}

struct Unwritten<S> {
    connections: Vec<Shared<S>>,
    writer: Option<Writer>,
}

/// The write task of a broadcaster. It is woken rather than spawned per burst: a task woken
/// from a worker runs on that worker right after the current task yields (tokio's LIFO slot),
/// where a spawned one would be taken by an idle worker at once, before the burst is over.
struct Writer {
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl<S> Drop for Inner<S> {
    fn drop(&mut self) {
        // The write task ends when it finds the broadcaster gone.
        if let Some(writer) = &self.unwritten.get_mut().writer {
            writer.wake.notify_one();
        }
    }
}

struct Registry<S> {
    /// Members by slot; a free slot is `None` and listed in `free`.
    slots: Vec<Option<Slot<S>>>,
    free: Vec<usize>,
    rooms: HashMap<String, HashSet<usize>>,
    totals: Delivery,
}

struct Slot<S> {
    connection: Weak<Mutex<Pump<S>>>,
    rooms: Vec<String>,
}

impl<S> Clone for Broadcaster<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<S> Default for Broadcaster<S> {
    fn default() -> Self {
        Self::new(BroadcastConfig::default())
    }
}

impl<S> std::fmt::Debug for Broadcaster<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broadcaster")
            .field("config", &self.inner.config)
            .field("members", &self.len())
            .finish_non_exhaustive()
    }
}

impl<S> Broadcaster<S> {
    /// An empty broadcaster with these settings.
    pub fn new(config: BroadcastConfig) -> Self {
        let registry = Registry {
            slots: Vec::new(),
            free: Vec::new(),
            rooms: HashMap::new(),
            totals: Delivery::default(),
        };
        let inner = Inner {
            config,
            registry: Mutex::new(registry),
            rooms_changed: watch::Sender::new(()),
            unwritten: Mutex::new(Unwritten { connections: Vec::new(), writer: None }),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Adds a connection (a [`WebSocket`] or either half of one). It stays a member until the
    /// returned [`Member`] is dropped.
    pub fn join(&self, connection: &impl Joinable<S>) -> Member<S> {
        let mut registry = self.inner.registry.lock();
        let slot = Slot { connection: connection.connection().0, rooms: Vec::new() };
        let index = match registry.free.pop() {
            Some(index) => {
                registry.slots[index] = Some(slot);
                index
            }
            None => {
                registry.slots.push(Some(slot));
                registry.slots.len() - 1
            }
        };
        Member { hub: self.clone(), index }
    }

    /// How many connections are members.
    pub fn len(&self) -> usize {
        let registry = self.inner.registry.lock();
        registry.slots.len() - registry.free.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rooms that have members.
    pub fn rooms(&self) -> Vec<String> {
        self.inner.registry.lock().rooms.keys().cloned().collect()
    }

    /// A receiver marked changed whenever a room gains its first member or loses its last one
    /// (then [`rooms`](Self::rooms) differs): for code that mirrors the set of rooms elsewhere,
    /// as `ws-redis` does with its Redis subscriptions. Joining or leaving a room that has other
    /// members does not mark it.
    pub fn watch_rooms(&self) -> watch::Receiver<()> {
        self.inner.rooms_changed.subscribe()
    }

    /// A room by name (empty if nobody joined it).
    pub fn room<'a>(&'a self, name: &'a str) -> Room<'a, S> {
        Room { hub: self, name }
    }

    /// What every broadcast so far did, added up (for metrics).
    pub fn totals(&self) -> Delivery {
        self.inner.registry.lock().totals
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Broadcaster<S> {
    /// Sends `message` to every member; see [`Broadcaster`].
    pub fn broadcast(&self, message: impl Into<Message>) -> Delivery {
        self.broadcast_prepared(&PreparedMessage::new(message))
    }

    /// Sends a message prepared once (to send it in several broadcasts) to every member.
    pub fn broadcast_prepared(&self, message: &PreparedMessage) -> Delivery {
        let mut registry = self.inner.registry.lock();
        let mut offers = Offers::new(self.inner.config);
        for slot in registry.slots.iter().flatten() {
            offers.offer(&slot.connection, message);
        }
        registry.totals += offers.delivery;
        drop(registry);
        offers.finish(&self.inner)
    }
}

/// Sends to one room of a [`Broadcaster`].
#[derive(Debug)]
pub struct Room<'a, S = Transport> {
    hub: &'a Broadcaster<S>,
    name: &'a str,
}

impl<S> Room<'_, S> {
    /// How many connections are in the room.
    pub fn len(&self) -> usize {
        self.hub.inner.registry.lock().rooms.get(self.name).map_or(0, HashSet::len)
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Room<'_, S> {
    /// Sends `message` to everyone in the room.
    pub fn broadcast(&self, message: impl Into<Message>) -> Delivery {
        self.send(&PreparedMessage::new(message), None)
    }

    /// Sends `message` to everyone in the room but `sender`.
    pub fn broadcast_except(&self, message: impl Into<Message>, sender: &Member<S>) -> Delivery {
        self.send(&PreparedMessage::new(message), Some(sender.index))
    }

    /// Sends a message prepared once to everyone in the room but `except`, if given.
    pub fn broadcast_prepared(&self, message: &PreparedMessage, except: Option<&Member<S>>) -> Delivery {
        self.send(message, except.map(|m| m.index))
    }

    fn send(&self, message: &PreparedMessage, except: Option<usize>) -> Delivery {
        let mut registry = self.hub.inner.registry.lock();
        let mut offers = Offers::new(self.hub.inner.config);
        let Registry { slots, rooms, .. } = &mut *registry;
        for &index in rooms.get(self.name).into_iter().flatten() {
            if Some(index) == except {
                continue;
            }
            if let Some(slot) = &slots[index] {
                offers.offer(&slot.connection, message);
            }
        }
        registry.totals += offers.delivery;
        drop(registry);
        offers.finish(&self.hub.inner)
    }
}

/// One broadcast under way: what became of it so far, and the connections whose frames must be
/// written.
struct Offers<S> {
    max_buffered: Option<usize>,
    /// What a full connection is closed with (`None`: skipped).
    close_when_full: Option<CloseCode>,
    delivery: Delivery,
    to_write: Vec<Shared<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Offers<S> {
    fn new(config: BroadcastConfig) -> Self {
        let close_when_full = match config.when_full {
            WhenFull::Skip => None,
            WhenFull::Close(code) => Some(code),
        };
        Self {
            max_buffered: config.max_buffered,
            close_when_full,
            delivery: Delivery::default(),
            to_write: Vec::new(),
        }
    }

    fn offer(&mut self, connection: &Weak<Mutex<Pump<S>>>, message: &PreparedMessage) {
        let Some(connection) = connection.upgrade() else {
            self.delivery.closed += 1;
            return;
        };
        let offered = lock(&connection).offer(message, self.max_buffered, self.close_when_full);
        match offered {
            Offered::Delivered => self.delivery.delivered += 1,
            Offered::DeliveredFirst => {
                self.delivery.delivered += 1;
                self.to_write.push(connection);
            }
            Offered::Dropped => self.delivery.dropped += 1,
            Offered::Closed => self.delivery.closed += 1,
        }
    }

    /// Hands the connections to write to the write task, starting it if there is none (or its
    /// runtime is gone); without a runtime they are written at once.
    fn finish(self, inner: &Arc<Inner<S>>) -> Delivery {
        if self.to_write.is_empty() {
            return self.delivery;
        }
        let mut unwritten = inner.unwritten.lock();
        let first = unwritten.connections.is_empty();
        unwritten.connections.extend(self.to_write);
        if !first {
            // The write task is due already.
            return self.delivery;
        }
        if let Some(writer) = unwritten.writer.as_ref().filter(|w| !w.task.is_finished()) {
            writer.wake.notify_one();
            return self.delivery;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let wake = Arc::new(Notify::new());
                let task = runtime.spawn(write_task(Arc::downgrade(inner), wake.clone()));
                wake.notify_one();
                unwritten.writer = Some(Writer { wake, task });
            }
            Err(_) => {
                drop(unwritten);
                inner.write_unwritten();
            }
        }
        self.delivery
    }
}

/// Writes the broadcaster's unwritten frames whenever woken, until the broadcaster is gone.
async fn write_task<S: AsyncRead + AsyncWrite + Unpin>(inner: Weak<Inner<S>>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.write_unwritten();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    /// Writes the broadcast frames of every connection that has some unwritten.
    fn write_unwritten(&self) {
        let connections = std::mem::take(&mut self.unwritten.lock().connections);
        for connection in &connections {
            lock(connection).write_broadcasts();
        }
    }
}

/// A connection's membership of a [`Broadcaster`]: it joins and leaves rooms, and leaves the
/// broadcaster (and all its rooms) when dropped.
pub struct Member<S = Transport> {
    hub: Broadcaster<S>,
    index: usize,
}

impl<S> std::fmt::Debug for Member<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member").field("index", &self.index).finish_non_exhaustive()
    }
}

impl<S> Member<S> {
    /// Joins a room (joining twice is once).
    pub fn join_room(&self, name: &str) {
        let mut registry = self.hub.inner.registry.lock();
        let Registry { slots, rooms, .. } = &mut *registry;
        let members = rooms.entry(name.to_owned()).or_default();
        let first = members.is_empty();
        if members.insert(self.index) {
            if let Some(slot) = &mut slots[self.index] {
                slot.rooms.push(name.to_owned());
            }
        }
        if first {
            self.hub.inner.rooms_changed.send_replace(());
        }
    }

    /// Leaves a room.
    pub fn leave_room(&self, name: &str) {
        let mut registry = self.hub.inner.registry.lock();
        let Registry { slots, rooms, .. } = &mut *registry;
        if leave(rooms, name, self.index) {
            self.hub.inner.rooms_changed.send_replace(());
        }
        if let Some(slot) = &mut slots[self.index] {
            slot.rooms.retain(|room| room != name);
        }
    }

    /// The rooms this connection is in.
    pub fn rooms(&self) -> Vec<String> {
        let registry = self.hub.inner.registry.lock();
        registry.slots[self.index].as_ref().map_or_else(Vec::new, |slot| slot.rooms.clone())
    }
}

/// Whether the room is gone (this was its last member).
fn leave(rooms: &mut HashMap<String, HashSet<usize>>, name: &str, index: usize) -> bool {
    if let Some(members) = rooms.get_mut(name) {
        members.remove(&index);
        if members.is_empty() {
            rooms.remove(name);
            return true;
        }
    }
    false
}

impl<S> Drop for Member<S> {
    fn drop(&mut self) {
        let mut registry = self.hub.inner.registry.lock();
        let Registry { slots, free, rooms, .. } = &mut *registry;
        if let Some(slot) = slots[self.index].take() {
            let mut gone = false;
            for room in &slot.rooms {
                gone |= leave(rooms, room, self.index);
            }
            free.push(self.index);
            if gone {
                self.hub.inner.rooms_changed.send_replace(());
            }
        }
    }
}

/// What can join a [`Broadcaster`]: a [`WebSocket`], or either half of one.
pub trait Joinable<S>: sealed::Sealed<S> {}

mod sealed {
    use super::{Mutex, Pump, Weak};

    /// The connection behind a handle, as a broadcaster holds it (weakly: a member that is gone
    /// is skipped).
    pub struct Connection<S>(pub(super) Weak<Mutex<Pump<S>>>);

    pub trait Sealed<S> {
        fn connection(&self) -> Connection<S>;
    }
}

macro_rules! joinable {
    ($($handle:ident),*) => {$(
        impl<S> sealed::Sealed<S> for $handle<S> {
            fn connection(&self) -> sealed::Connection<S> {
                sealed::Connection(Arc::downgrade(&self.handle().shared))
            }
        }
        impl<S> Joinable<S> for $handle<S> {}
    )*};
}
joinable!(WebSocket, WriteHalf, ReadHalf);
