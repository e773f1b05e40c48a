//! Messages encoded once for many connections (a broadcast).

use std::sync::{Mutex, PoisonError};

use crate::{Extension, ExtensionError, Frame, Message};

/// A message to send to many connections, encoded once per distinct wire form.
///
/// [`Connection::send_prepared`](crate::Connection::send_prepared) sends it. A connection
/// without extensions sends the payload as it is; one whose extensions all declare a
/// [`shared_encoding`](Extension::shared_encoding) (e.g. permessage-deflate without context
/// takeover on our side) sends the form encoded for that encoding, made by the first connection
/// that needed it; any other connection (e.g. compression with context takeover) encodes the
/// message itself, as for [`send_frame`](crate::Connection::send_frame). Share it with `Arc`.
///
/// ```
/// use ws_proto::{Config, Connection, Message, PreparedMessage, Role};
///
/// let message = PreparedMessage::new(Message::text("to everyone"));
/// let mut a = Connection::new(Role::Server, Config::default());
/// let mut b = Connection::new(Role::Server, Config::default());
/// a.send_prepared(&message).unwrap();
/// b.send_prepared(&message).unwrap();
/// assert_eq!(a.pending_output(), b.pending_output());
/// ```
#[derive(Debug)]
pub struct PreparedMessage {
    frame: Frame,
    /// Encoded forms, by the chain's shared-encoding key. A handful at most: one per distinct
    /// negotiated compression setting among the receivers.
    forms: Mutex<Vec<(Box<[u8]>, Frame)>>,
}

impl PreparedMessage {
    /// Prepares `message` (one frame, unfragmented).
    pub fn new(message: impl Into<Message>) -> Self {
        let frame = match message.into() {
            Message::Text(text) => Frame::new(crate::OpCode::Text, text.into_bytes(), true),
            Message::Binary(data) => Frame::new(crate::OpCode::Binary, data, true),
        };
        Self { frame, forms: Mutex::new(Vec::new()) }
    }

    /// The frame as it is before any extension.
    pub(crate) fn plain(&self) -> &Frame {
        &self.frame
    }

    /// The payload's length before any extension.
    pub fn len(&self) -> usize {
        self.frame.payload.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.frame.payload.is_empty()
    }

    /// How many encoded forms were made so far (one per shared encoding that a receiver needed).
    pub fn encoded_forms(&self) -> usize {
        self.forms.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// The form for the chain whose shared encoding is `key`, encoded with `extensions` the first
    /// time it is asked for.
    pub(crate) fn form(
        &self,
        key: &[u8],
        extensions: &mut [Box<dyn Extension>],
    ) -> Result<Frame, ExtensionError> {
        // A poisoned lock only means an encoder panicked elsewhere; the forms stored are whole.
        let mut forms = self.forms.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, frame)) = forms.iter().find(|(k, _)| **k == *key) {
            return Ok(frame.clone());
        }
        let mut frame = self.frame.clone();
        for extension in extensions {
            extension.encode(&mut frame)?;
        }
        forms.push((key.into(), frame.clone()));
        Ok(frame)
    }
}
