//! Command families, one file per family. Each file has a `register`
//! function listing its commands; handlers parse arguments, call data
//! operations and write the reply. Shared argument helpers live here.

pub mod bitmaps;
pub mod blocking;
pub mod client;
pub mod command;
pub mod connection;
pub mod geo;
pub mod hashes;
pub mod hll;
pub mod keys;
pub mod lists;
pub mod multi;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod zsets;

use crate::dispatch::{err, CommandTable, Ctx};
use kvik_core::entry::{Entry, ValueRef};
use kvik_core::object::Object;

/// Registers every family.
pub fn register_all(t: &mut CommandTable) {
    bitmaps::register(t);
    blocking::register(t);
    client::register(t);
    command::register(t);
    connection::register(t);
    geo::register(t);
    hashes::register(t);
    hll::register(t);
    keys::register(t);
    lists::register(t);
    multi::register(t);
    pubsub::register(t);
    scripting::register(t);
    server::register(t);
    sets::register(t);
    streams::register(t);
    sort::register(t);
    strings::register(t);
    zsets::register(t);
}

/// Parses an integer argument, replying Redis's error when it is not one.
pub fn arg_i64(ctx: &mut Ctx<'_>, arg: &[u8]) -> Option<i64> {
    match crate::util::parse_i64(arg) {
        Some(v) => Some(v),
        None => {
            ctx.error(err::NOT_INT);
            None
        }
    }
}

/// An option word as C's string functions see it: Redis compares options
/// with `strcasecmp` / byte tests that stop at the first NUL byte (shared
/// by every family).
pub fn c_str(arg: &[u8]) -> &[u8] {
    match arg.iter().position(|&b| b == 0) {
        Some(p) => &arg[..p],
        None => arg,
    }
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is(arg: &[u8], kw: &str) -> bool {
    arg.eq_ignore_ascii_case(kw.as_bytes())
}

/// The string value of an entry (integers formatted into `buf`), or None
/// when the entry holds another type.
pub fn str_value<'e>(e: &'e Entry, buf: &'e mut [u8; 20]) -> Option<&'e [u8]> {
    e.str_bytes(buf)
}

/// Whether an entry holds a string.
pub fn is_string(e: &Entry) -> bool {
    match e.value() {
        ValueRef::Str(_) | ValueRef::Int(_) => true,
        ValueRef::Obj(o) => matches!(o, Object::Str(_)),
    }
}

/// Writes an entry's string value as a bulk reply, or WRONGTYPE.
pub fn reply_str(out: &mut kvik_protocol::ReplyBuf, e: &Entry) {
    match e.value() {
        ValueRef::Str(b) => out.bulk(b),
        ValueRef::Int(n) => out.bulk_i64(n),
        ValueRef::Obj(Object::Str(v)) => out.bulk(v),
        ValueRef::Obj(_) => out.error(err::WRONGTYPE),
    }
}
