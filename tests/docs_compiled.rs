//! Every Markdown page with Rust snippets (docs/ and the crates' READMEs) is compiled as a
//! doctest: src/lib.rs includes it. A new page that is not included would go untested.

use std::path::{Path, PathBuf};

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            markdown_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
    Ok(())
}

/// The code blocks rustdoc would compile: ```` ```rust ```` ones and unlabelled ones (Rust to
/// rustdoc), not `ignore`d.
fn rust_blocks(markdown: &str) -> usize {
    let mut open = false;
    let mut count = 0;
    for line in markdown.lines() {
        let Some(label) = line.trim_start().strip_prefix("```") else { continue };
        if !open {
            let label = label.trim();
            if (label.is_empty() || label.starts_with("rust")) && !label.contains("ignore") {
                count += 1;
            }
        }
        open = !open;
    }
    count
}

#[test]
fn every_page_with_rust_snippets_is_a_doctest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let mut pages = vec![];
    markdown_files(&root.join("docs"), &mut pages).unwrap();
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        let readme = krate.unwrap().path().join("README.md");
        if readme.exists() {
            pages.push(readme);
        }
    }
    // ws-deflate's README is that crate's documentation, tested there.
    let tested_elsewhere = [root.join("crates/ws-deflate/README.md")];
    let mut missing = vec![];
    for page in pages.iter().filter(|p| !tested_elsewhere.contains(p)) {
        let text = std::fs::read_to_string(page).unwrap();
        let has_rust = rust_blocks(&text) > 0;
        let relative = page.strip_prefix(root).unwrap().to_str().unwrap().replace('\\', "/");
        if has_rust && !lib.contains(&format!("\"../{relative}\"")) {
            missing.push(relative);
        }
    }
    assert!(
        missing.is_empty(),
        "pages with Rust snippets not included in src/lib.rs's doctests: {missing:?}"
    );
}
