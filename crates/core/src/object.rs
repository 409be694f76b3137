//! Values that do not fit inline in a key's [`Entry`](crate::entry::Entry):
//! raw strings and, as they arrive, the collection types.

/// A heap-allocated value, owned by its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// A `raw`-encoded string: longer than the inline limit, or grown in
    /// place by APPEND / SETRANGE / SETBIT (kept with spare capacity so
    /// repeated appends are amortised O(1), as with Redis's sds).
    Str(Vec<u8>),
}

impl Object {
    /// The Redis type name (`TYPE`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Str(_) => "string",
        }
    }

    /// The Redis encoding name (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        match self {
            Object::Str(_) => "raw",
        }
    }

    /// Approximate heap bytes used (for memory accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            Object::Str(v) => v.capacity(),
        }
    }
}
