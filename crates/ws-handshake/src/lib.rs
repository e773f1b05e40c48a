//! ws-handshake (under construction)
