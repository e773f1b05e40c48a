//! ws-tokio (under construction)
