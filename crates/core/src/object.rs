//! Values that do not fit inline in a key's [`Entry`](crate::entry::Entry):
//! raw strings and the collection types.

use crate::hash::Hash;
use crate::list::List;
use crate::set::Set;
use crate::stream::Stream;
use crate::zset::ZSet;

/// A heap-allocated value, owned by its entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A `raw`-encoded string: longer than the inline limit, or grown in
    /// place by APPEND / SETRANGE / SETBIT (kept with spare capacity so
    /// repeated appends are amortised O(1), as with Redis's sds).
    Str(Vec<u8>),
    /// A list.
    List(List),
    /// A hash.
    Hash(Hash),
    /// A set.
    Set(Set),
    /// A sorted set.
    ZSet(ZSet),
    /// A stream (boxed: it is large and rare).
    Stream(Box<Stream>),
}

impl Object {
    /// The Redis type name (`TYPE`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Str(_) => "string",
            Object::List(_) => "list",
            Object::Hash(_) => "hash",
            Object::Set(_) => "set",
            Object::ZSet(_) => "zset",
            Object::Stream(_) => "stream",
        }
    }

    /// The Redis encoding name (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        match self {
            Object::Str(_) => "raw",
            Object::List(l) => l.encoding(),
            Object::Hash(h) => h.encoding(),
            Object::Set(s) => s.encoding(),
            Object::ZSet(z) => z.encoding(),
            Object::Stream(s) => s.encoding(),
        }
    }

    /// Approximate heap bytes used (for memory accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            Object::Str(v) => v.capacity(),
            Object::List(l) => l.heap_size(),
            Object::Hash(h) => h.heap_size(),
            Object::Set(s) => s.heap_size(),
            Object::ZSet(z) => z.heap_size(),
            Object::Stream(s) => s.heap_size(),
        }
    }
}
