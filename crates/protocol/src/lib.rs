//! RESP2/RESP3 for kvik: the request parser the server reads clients with,
//! the reply encoder it answers with, and a reply-value parser used by
//! tests and tools. No I/O happens here.
//!
//! * [`request`]: multibulk and inline requests, with Redis's limits and
//!   exact protocol error strings. Arguments are byte ranges of the caller's
//!   read buffer, so a request costs no allocation per argument.
//! * [`reply`]: writes replies for either protocol version; RESP3-only types
//!   degrade to their RESP2 forms as Redis does.
//! * [`value`]: a parsed reply tree (what a client sees).

pub mod reply;
pub mod request;
pub mod value;

pub use reply::ReplyBuf;
pub use request::{Limits, ProtocolError, RequestParser};
pub use value::Value;
