//! JSON-like text for ws-deflate's tests, benchmarks and examples, and for the workspace's
//! instruction-count workloads: compressible, but not trivially. Included with `#[path]`, so that
//! every user compresses the same kind of data from one generator.

/// `len` bytes of JSON-like records from an LCG started at `seed`.
pub(crate) fn json(len: usize, seed: u64) -> Vec<u8> {
    let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 128);
    while out.len() < len {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let n = (state >> 33) as usize;
        let item = format!(
            r#"{{"id":{},"user":"{}{}","score":{}.{},"tags":["{}","{}"],"active":{}}},"#,
            n % 1_000_000,
            words[n % 8],
            n % 977,
            n % 1000,
            n % 97,
            words[(n >> 3) % 8],
            words[(n >> 6) % 8],
            n % 2 == 0
        );
        out.extend_from_slice(item.as_bytes());
    }
    out.truncate(len);
    out
}
