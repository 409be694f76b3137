//! Reply encoding for RESP2 and RESP3.
//!
//! One [`ReplyBuf`] per connection collects the replies of a whole pipelined
//! batch so they leave in one write. Types that only exist in RESP3 are
//! written in their RESP2 form when the connection speaks RESP2, following
//! Redis: maps become flat arrays, sets become arrays, doubles become bulk
//! strings, booleans become integers, verbatim strings and big numbers
//! become bulk strings, and the null becomes `$-1` (or `*-1` for a null
//! array).

use std::io::Write;

/// Reply buffer for one connection.
#[derive(Debug, Default, Clone)]
pub struct ReplyBuf {
    buf: Vec<u8>,
    resp3: bool,
}

/// A placeholder for an aggregate whose length is known only after its
/// elements are written (see [`ReplyBuf::begin_deferred`]).
#[derive(Debug)]
#[must_use]
pub struct Deferred {
    at: usize,
}

/// Kind of aggregate a [`Deferred`] stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    /// `*` array.
    Array,
    /// `%` map (counted in pairs).
    Map,
    /// `~` set.
    Set,
    /// `>` push (RESP3) / array (RESP2).
    Push,
}

impl ReplyBuf {
    /// An empty RESP2 buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether replies are written in RESP3.
    pub fn resp3(&self) -> bool {
        self.resp3
    }

    /// Switches the protocol version for the replies that follow.
    pub fn set_resp3(&mut self, on: bool) {
        self.resp3 = on;
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes pending.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops everything written (after it has been sent).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Drops everything written after `len` (used to discard a partial
    /// reply, e.g. when a reply is suppressed).
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Mutable access to the raw buffer (for the writer, which drains it).
    pub fn raw_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Appends already encoded RESP bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn header(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        let mut b = itoa_buf();
        self.buf.extend_from_slice(fmt_i64(n, &mut b));
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+OK`-style status reply. `s` must not contain CR or LF.
    pub fn simple(&mut self, s: &str) {
        self.simple_bytes(s.as_bytes());
    }

    /// Status reply from bytes; CR and LF are replaced by spaces as Redis
    /// does for status replies built from user data.
    pub fn simple_bytes(&mut self, s: &[u8]) {
        self.buf.push(b'+');
        self.push_line(s);
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// An error reply. `msg` is the full message including its code, e.g.
    /// `ERR syntax error` or `WRONGTYPE Operation ...`.
    pub fn error(&mut self, msg: &str) {
        self.error_bytes(msg.as_bytes());
    }

    /// An error reply from raw bytes (messages quoting user arguments).
    pub fn error_bytes(&mut self, msg: &[u8]) {
        self.buf.push(b'-');
        self.push_line(msg);
    }

    fn push_line(&mut self, s: &[u8]) {
        if s.iter().any(|&c| c == b'\r' || c == b'\n') {
            self.buf.extend(
                s.iter()
                    .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
            );
        } else {
            self.buf.extend_from_slice(s);
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `:n` integer reply.
    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    /// `$n` bulk string.
    pub fn bulk(&mut self, s: &[u8]) {
        self.header(b'$', s.len() as i64);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer as a bulk string (e.g. GET of an int-encoded value).
    pub fn bulk_i64(&mut self, n: i64) {
        let mut b = itoa_buf();
        let s = fmt_i64(n, &mut b);
        self.header(b'$', s.len() as i64);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// The null reply: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// The null array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    /// Array header for `n` elements.
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// Map header for `n` key/value pairs (`*2n` in RESP2).
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'%', n as i64);
        } else {
            self.header(b'*', 2 * n as i64);
        }
    }

    /// Set header for `n` elements (`*n` in RESP2).
    pub fn set(&mut self, n: usize) {
        self.header(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    /// Push header for `n` elements (`*n` in RESP2).
    pub fn push(&mut self, n: usize) {
        self.header(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }

    /// A double: `,<d>` in RESP3, a bulk string in RESP2. `text` is the
    /// already formatted number (callers choose Redis's formatting).
    pub fn double_text(&mut self, text: &[u8]) {
        if self.resp3 {
            self.buf.push(b',');
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// A verbatim string (`=len\r\ntxt:...`) in RESP3, a bulk in RESP2.
    pub fn verbatim(&mut self, format: &[u8; 3], text: &[u8]) {
        if self.resp3 {
            self.header(b'=', text.len() as i64 + 4);
            self.buf.extend_from_slice(format);
            self.buf.push(b':');
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// A big number: `(digits` in RESP3, a bulk in RESP2.
    pub fn big_number(&mut self, digits: &[u8]) {
        if self.resp3 {
            self.buf.push(b'(');
            self.buf.extend_from_slice(digits);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(digits);
        }
    }

    /// Starts an aggregate whose length is written later by
    /// [`ReplyBuf::end_deferred`].
    pub fn begin_deferred(&mut self) -> Deferred {
        Deferred { at: self.buf.len() }
    }

    /// Writes the header of a deferred aggregate now that its `n` elements
    /// (pairs, for maps) are known.
    pub fn end_deferred(&mut self, d: Deferred, kind: Aggregate, n: usize) {
        let mut hdr = Vec::with_capacity(16);
        let (prefix, count) = match (kind, self.resp3) {
            (Aggregate::Array, _) => (b'*', n),
            (Aggregate::Map, true) => (b'%', n),
            (Aggregate::Map, false) => (b'*', 2 * n),
            (Aggregate::Set, true) => (b'~', n),
            (Aggregate::Push, true) => (b'>', n),
            (Aggregate::Set | Aggregate::Push, false) => (b'*', n),
        };
        hdr.push(prefix);
        let _ = write!(hdr, "{count}\r\n");
        self.buf.splice(d.at..d.at, hdr);
    }
}

type ItoaBuf = [u8; 20];

fn itoa_buf() -> ItoaBuf {
    [0u8; 20]
}

/// Formats `n` in decimal into `buf`, returning the used tail.
pub fn fmt_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_degrades_resp3_types() {
        let mut r = ReplyBuf::new();
        r.map(1);
        r.bulk(b"k");
        r.boolean(true);
        r.null();
        r.null_array();
        r.double_text(b"1.5");
        r.set(0);
        assert_eq!(
            r.as_bytes(),
            b"*2\r\n$1\r\nk\r\n:1\r\n$-1\r\n*-1\r\n$3\r\n1.5\r\n*0\r\n"
        );
    }

    #[test]
    fn resp3_types() {
        let mut r = ReplyBuf::new();
        r.set_resp3(true);
        r.map(1);
        r.bulk(b"k");
        r.boolean(false);
        r.null();
        r.double_text(b"inf");
        r.verbatim(b"txt", b"hi");
        r.big_number(b"123");
        r.push(0);
        assert_eq!(
            r.as_bytes(),
            b"%1\r\n$1\r\nk\r\n#f\r\n_\r\n,inf\r\n=6\r\ntxt:hi\r\n(123\r\n>0\r\n"
        );
    }

    #[test]
    fn deferred_header() {
        let mut r = ReplyBuf::new();
        r.int(1);
        let d = r.begin_deferred();
        r.int(2);
        r.int(3);
        r.end_deferred(d, Aggregate::Array, 2);
        assert_eq!(r.as_bytes(), b":1\r\n*2\r\n:2\r\n:3\r\n");
    }

    #[test]
    fn errors_never_break_framing() {
        let mut r = ReplyBuf::new();
        r.error("ERR bad\r\nthing");
        assert_eq!(r.as_bytes(), b"-ERR bad  thing\r\n");
    }

    #[test]
    fn integer_extremes() {
        let mut b = [0u8; 20];
        assert_eq!(fmt_i64(i64::MIN, &mut b), b"-9223372036854775808");
        assert_eq!(fmt_i64(0, &mut b), b"0");
    }
}
