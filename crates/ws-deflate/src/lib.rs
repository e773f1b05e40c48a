//! ws-deflate (under construction)
