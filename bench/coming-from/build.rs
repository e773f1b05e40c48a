//! Writes the `rust,ignore,peer-NAME` blocks of docs/coming-from.md into `$OUT_DIR/snippets.rs`,
//! one module per block, for src/lib.rs to compile. rustdoc ignores these blocks (the main
//! workspace does not depend on those crates); this is where they are checked.

use std::fmt::Write as _;
use std::path::Path;

enum State {
    Text,
    /// In a block that is not a peer snippet (the `ws` ones are doctests).
    Other,
    /// In a peer snippet: its peer name and code so far.
    Peer(String, String),
}

fn main() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/coming-from.md");
    println!("cargo::rerun-if-changed={}", page.display());
    let markdown = std::fs::read_to_string(&page).expect("read docs/coming-from.md");

    let mut out = String::new();
    let mut names = Vec::new();
    let mut state = State::Text;
    for (number, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        state = match (state, fence) {
            (State::Text, Some(info)) => {
                match info.split(',').find_map(|attr| attr.trim().strip_prefix("peer-")) {
                    // Compiler errors point into snippets.rs: say where the code came from.
                    Some(peer) => {
                        State::Peer(peer.to_owned(), format!("// docs/coming-from.md, line {}\n", number + 2))
                    }
                    // An ignored block that nothing compiles is the gap this crate closes.
                    None if info.contains("ignore") => {
                        panic!("docs/coming-from.md: an ignored block without `peer-NAME`: {line}")
                    }
                    None => State::Other,
                }
            }
            (State::Text, None) => State::Text,
            (State::Other, Some(_)) => State::Text,
            (State::Other, None) => State::Other,
            (State::Peer(name, code), Some(_)) => {
                // `peer_`: a module named like the crate it uses would shadow it in `use` paths.
                let module = format!("peer_{}", name.replace('-', "_"));
                writeln!(out, "#[allow(dead_code)]\npub mod {module} {{\n{code}}}").unwrap();
                names.push(name);
                State::Text
            }
            (State::Peer(name, mut code), None) => {
                code.push_str(line);
                code.push('\n');
                State::Peer(name, code)
            }
        };
    }
    writeln!(
        out,
        "/// The peer names of the modules above, in page order.\npub const PEERS: &[&str] = &{names:?};"
    )
    .unwrap();
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("snippets.rs");
    std::fs::write(dest, out).expect("write snippets.rs");
}
