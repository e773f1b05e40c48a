//! The tokio-tungstenite, axum and fastwebsockets snippets of docs/coming-from.md, compiled
//! against those crates: build.rs extracts every block marked `rust,ignore,peer-NAME` into a
//! module `peer_NAME`. `cargo test -p ws-coming-from` (run by `cargo xtask ci`) builds them
//! and checks that none went missing.

include!(concat!(env!("OUT_DIR"), "/snippets.rs"));

#[cfg(test)]
mod tests {
    #[test]
    fn every_peer_snippet_is_compiled() {
        assert_eq!(super::PEERS, ["tokio-tungstenite", "axum", "fastwebsockets"]);
    }
}
