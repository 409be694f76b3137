//! Streams: entries keyed by 128-bit IDs, consumer groups and their
//! pending-entries lists.

/// A stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {}

impl Stream {
    /// The Redis encoding name (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    /// Approximate heap bytes used.
    pub fn heap_size(&self) -> usize {
        0
    }
}
