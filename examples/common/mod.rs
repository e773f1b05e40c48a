//! What the examples share: errors printed for a person.

use std::error::Error;

/// With the `jemalloc` feature, the examples allocate with jemalloc (see the feature's note in
/// Cargo.toml).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use std::fmt;

/// An error as `main` returns it, printed as its message and its causes (`caused by: ...`)
/// rather than as its `Debug` form (`Io(Os { code: 111, ... })`).
pub(crate) struct Report(Box<dyn Error + Send + Sync>);

impl<E: Into<Box<dyn Error + Send + Sync>>> From<E> for Report {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.0.to_string();
        f.write_str(&said)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            // Some errors repeat their cause's text in their own: say it once.
            let text = cause.to_string();
            if !said.contains(&text) {
                write!(f, "\n  caused by: {text}")?;
            }
            said = text;
            source = cause.source();
        }
        Ok(())
    }
}
