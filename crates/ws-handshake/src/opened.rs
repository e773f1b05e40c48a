//! From a completed handshake to the connection it opened.

use bytes::Bytes;
use ws_proto::{BytesMut, Config, Connection, Extension, Role};

use crate::client::ClientAccepted;
use crate::server::ServerAccepted;

/// The connection, with the bytes that came right after the handshake already received (their
/// events wait in it, or its failure if they broke the protocol), and the read buffer they were
/// received from: append the next reads to that buffer and pass it to `Connection::receive`.
fn open(
    role: Role,
    config: Config,
    extensions: Vec<Box<dyn Extension>>,
    leftover: &Bytes,
) -> (Connection, BytesMut) {
    let mut connection = Connection::new(role, config).with_extensions(extensions);
    let mut read_buf = BytesMut::from(&leftover[..]);
    // A protocol error stays with the connection (`failure()`), its close frame queued.
    let _ = connection.receive(&mut read_buf);
    (connection, read_buf)
}

impl ServerAccepted {
    /// The server side of the connection this handshake opened: frames the client sent right
    /// behind its request are already received, so none is lost. Append the next reads to the
    /// returned buffer and pass it to `Connection::receive`. Write
    /// [`write_response`](Self::write_response)'s bytes first.
    pub fn into_connection(self, config: Config) -> (Connection, BytesMut) {
        open(Role::Server, config, self.extensions, &self.leftover)
    }
}

impl ClientAccepted {
    /// The client side of the connection this handshake opened: frames the server sent right
    /// behind its 101 response (in the same read) are already received, so none is lost. Append
    /// the next reads to the returned buffer and pass it to `Connection::receive`.
    pub fn into_connection(self, config: Config) -> (Connection, BytesMut) {
        open(Role::Client, config, self.extensions, &self.leftover)
    }
}
