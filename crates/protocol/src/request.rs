//! Request parsing: RESP multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and
//! inline commands (`GET k\r\n`), exactly as Redis's `networking.c` accepts
//! them, with the same limits and the same protocol error strings.
//!
//! The parser is resumable: the caller passes the unconsumed part of its
//! read buffer (which always starts at the current request) each time more
//! bytes arrive, and the parser continues where it stopped instead of
//! re-reading the arguments it has already located. Argument slots are
//! never preallocated from the untrusted `*<count>` header.

use std::fmt;
use std::ops::Range;

/// Redis's `PROTO_INLINE_MAX_SIZE`: the longest inline request line, and the
/// longest `*<n>` / `$<n>` header line.
pub const INLINE_MAX_SIZE: usize = 64 * 1024;

/// The most argument slots reserved ahead of time for one request; more are
/// added only as arguments actually arrive.
const MAX_PREALLOC_ARGS: usize = 1024;

/// Limits applied while parsing. All are configurable on the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `proto-max-bulk-len`: the largest accepted bulk argument.
    pub max_bulk_len: u64,
    /// The largest accepted `*<count>` (Redis: `INT_MAX`).
    pub max_multibulk_len: u64,
    /// Whether the connection still has to authenticate; unauthenticated
    /// clients get Redis's much smaller request limits.
    pub unauthenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as u64,
            unauthenticated: false,
        }
    }
}

/// A malformed request. The server replies with `-ERR <Display>` and closes
/// the connection, as Redis does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// An inline line longer than [`INLINE_MAX_SIZE`].
    TooBigInline,
    /// A `*<n>` header line longer than [`INLINE_MAX_SIZE`].
    TooBigMbulkCount,
    /// A `$<n>` header line longer than [`INLINE_MAX_SIZE`].
    TooBigBulkCount,
    /// `*<n>` not a valid count.
    InvalidMultibulkLength,
    /// `$<n>` not a valid length, or above `proto-max-bulk-len`.
    InvalidBulkLength,
    /// An argument did not start with `$`.
    ExpectedDollar(u8),
    /// Inline request with unbalanced quotes.
    UnbalancedQuotes,
    /// More than 10 arguments before authentication.
    UnauthenticatedMultibulk,
    /// A bulk longer than 16 KiB before authentication.
    UnauthenticatedBulk,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::TooBigInline => f.write_str("Protocol error: too big inline request"),
            ProtocolError::TooBigMbulkCount => {
                f.write_str("Protocol error: too big mbulk count string")
            }
            ProtocolError::TooBigBulkCount => {
                f.write_str("Protocol error: too big bulk count string")
            }
            ProtocolError::InvalidMultibulkLength => {
                f.write_str("Protocol error: invalid multibulk length")
            }
            ProtocolError::InvalidBulkLength => f.write_str("Protocol error: invalid bulk length"),
            ProtocolError::ExpectedDollar(c) => {
                write!(f, "Protocol error: expected '$', got '{}'", *c as char)
            }
            ProtocolError::UnbalancedQuotes => {
                f.write_str("Protocol error: unbalanced quotes in request")
            }
            ProtocolError::UnauthenticatedMultibulk => {
                f.write_str("Protocol error: unauthenticated multibulk length")
            }
            ProtocolError::UnauthenticatedBulk => {
                f.write_str("Protocol error: unauthenticated bulk length")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// What one call to [`RequestParser::parse`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request of this many bytes is ready; read its arguments with
    /// [`RequestParser::arg`] before consuming the bytes.
    Request(usize),
    /// This many bytes held nothing to run (an empty inline line or `*0`);
    /// consume them and parse again.
    Empty(usize),
    /// More bytes are needed. `hint` is the total buffer length that would
    /// complete the current argument, when known (large bulk arguments).
    Incomplete { hint: Option<usize> },
}

/// Where the arguments of the last parsed request live.
#[derive(Debug, Default)]
enum Source {
    /// Ranges of the caller's buffer.
    #[default]
    Buffer,
    /// Ranges of [`RequestParser::scratch`] (unescaped inline arguments).
    Scratch,
}

/// Resumable request parser; one per connection.
#[derive(Debug, Default)]
pub struct RequestParser {
    /// Argument ranges of the request being parsed (or just parsed).
    args: Vec<Range<usize>>,
    /// Unescaped inline arguments.
    scratch: Vec<u8>,
    source: Source,
    /// Arguments still expected by the multibulk being parsed; 0 when no
    /// multibulk is in progress.
    pending: u64,
    /// Offset (from the request start) of the next unparsed byte of an
    /// in-progress multibulk.
    pos: usize,
}

impl RequestParser {
    /// A parser with no request in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the request at the start of `buf`. `buf` must begin at the
    /// request start and only grow between calls that returned
    /// [`Parsed::Incomplete`].
    pub fn parse(&mut self, buf: &[u8], limits: &Limits) -> Result<Parsed, ProtocolError> {
        if self.pending == 0 {
            if buf.is_empty() {
                return Ok(Parsed::Incomplete { hint: None });
            }
            if buf[0] != b'*' {
                return self.parse_inline(buf);
            }
            self.args.clear();
            self.source = Source::Buffer;
            let Some(eol) = find_crlf(buf, 1) else {
                if buf.len() > INLINE_MAX_SIZE {
                    return Err(ProtocolError::TooBigMbulkCount);
                }
                return Ok(Parsed::Incomplete { hint: None });
            };
            let count = parse_len(&buf[1..eol]).ok_or(ProtocolError::InvalidMultibulkLength)?;
            if count > limits.max_multibulk_len as i64 {
                return Err(ProtocolError::InvalidMultibulkLength);
            }
            if count > 10 && limits.unauthenticated {
                return Err(ProtocolError::UnauthenticatedMultibulk);
            }
            if count <= 0 {
                return Ok(Parsed::Empty(eol + 2));
            }
            self.pending = count as u64;
            self.pos = eol + 2;
            self.args.reserve((count as usize).min(MAX_PREALLOC_ARGS));
        }
        self.parse_bulks(buf, limits)
    }

    fn parse_bulks(&mut self, buf: &[u8], limits: &Limits) -> Result<Parsed, ProtocolError> {
        while self.pending > 0 {
            let pos = self.pos;
            if pos >= buf.len() {
                return Ok(Parsed::Incomplete { hint: None });
            }
            if buf[pos] != b'$' {
                return Err(ProtocolError::ExpectedDollar(buf[pos]));
            }
            let Some(eol) = find_crlf(buf, pos + 1) else {
                if buf.len() - pos > INLINE_MAX_SIZE {
                    return Err(ProtocolError::TooBigBulkCount);
                }
                return Ok(Parsed::Incomplete { hint: None });
            };
            let len = parse_len(&buf[pos + 1..eol]).ok_or(ProtocolError::InvalidBulkLength)?;
            if len < 0 || len as u64 > limits.max_bulk_len {
                return Err(ProtocolError::InvalidBulkLength);
            }
            if len > 16384 && limits.unauthenticated {
                return Err(ProtocolError::UnauthenticatedBulk);
            }
            let start = eol + 2;
            let end = start + len as usize;
            // Like Redis, the two bytes after the payload are skipped, not
            // checked.
            if buf.len() < end + 2 {
                return Ok(Parsed::Incomplete {
                    hint: Some(end + 2),
                });
            }
            self.args.push(start..end);
            self.pending -= 1;
            self.pos = end + 2;
        }
        Ok(Parsed::Request(self.pos))
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<Parsed, ProtocolError> {
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > INLINE_MAX_SIZE {
                return Err(ProtocolError::TooBigInline);
            }
            return Ok(Parsed::Incomplete { hint: None });
        };
        let mut line = &buf[..nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        self.args.clear();
        self.scratch.clear();
        self.source = Source::Scratch;
        split_args(line, &mut self.scratch, &mut self.args)?;
        if self.args.is_empty() {
            return Ok(Parsed::Empty(nl + 1));
        }
        Ok(Parsed::Request(nl + 1))
    }

    /// Number of arguments of the request last returned by `parse`.
    pub fn argc(&self) -> usize {
        self.args.len()
    }

    /// Argument `i` of the request last returned by `parse`; `buf` is the
    /// buffer that was passed to it.
    pub fn arg<'a>(&'a self, buf: &'a [u8], i: usize) -> &'a [u8] {
        let r = self.args[i].clone();
        match self.source {
            Source::Buffer => &buf[r],
            Source::Scratch => &self.scratch[r],
        }
    }

    /// Collects all arguments of the last request as slices.
    pub fn args_into<'a>(&'a self, buf: &'a [u8], out: &mut Vec<&'a [u8]>) {
        out.clear();
        out.extend((0..self.args.len()).map(|i| self.arg(buf, i)));
    }

    /// Bytes held by argument slots and unescaped inline arguments; counted
    /// against `client-query-buffer-limit` with the read buffer.
    pub fn overhead(&self) -> usize {
        self.args.capacity() * std::mem::size_of::<Range<usize>>() + self.scratch.capacity()
    }

    /// Whether a multibulk request is partially parsed.
    pub fn in_progress(&self) -> bool {
        self.pending > 0
    }
}

/// Position of the `\r` of the first `\r\n` at or after `from`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let cr = from + buf.get(from..)?.iter().position(|&b| b == b'\r')?;
    // Redis looks for '\r' and then needs one more byte to be present.
    if cr + 1 < buf.len() {
        Some(cr)
    } else {
        None
    }
}

/// Redis `string2ll` for header counts: optional '-', no '+', no leading
/// zeros, no spaces.
fn parse_len(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    if digits[0] == b'0' {
        return if digits.len() == 1 && !neg {
            Some(0)
        } else {
            None
        };
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as i64)?;
    }
    Some(if neg { -v } else { v })
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline line into arguments with Redis's `sdssplitargs` rules:
/// `"..."` understands `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and `\<any>`;
/// `'...'` understands only `\'`; a closing quote must be followed by a
/// space or the end of the line.
pub fn split_args(
    line: &[u8],
    out: &mut Vec<u8>,
    ranges: &mut Vec<Range<usize>>,
) -> Result<(), ProtocolError> {
    // Redis splits a C string: a NUL byte ends the line.
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut i = 0;
    let n = line.len();
    let is_space = |c: u8| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c);
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Ok(());
        }
        let start = out.len();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex_val(line[i + 2]).is_some()
                    && hex_val(line[i + 3]).is_some()
                {
                    let hi = hex_val(line[i + 2]).unwrap_or(0);
                    let lo = hex_val(line[i + 3]).unwrap_or(0);
                    out.push(hi * 16 + lo);
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    out.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    in_dq = false;
                    i += 1;
                    break;
                } else {
                    out.push(c);
                }
                i += 1;
            } else if in_sq {
                if i >= n {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    out.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    in_sq = false;
                    i += 1;
                    break;
                } else {
                    out.push(c);
                }
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => out.push(c),
                }
                i += 1;
            }
        }
        debug_assert!(!in_dq && !in_sq);
        ranges.push(start..out.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut p = RequestParser::new();
        let limits = Limits::default();
        let mut off = 0;
        let mut reqs = Vec::new();
        loop {
            match p.parse(&input[off..], &limits)? {
                Parsed::Request(n) => {
                    let buf = &input[off..];
                    reqs.push((0..p.argc()).map(|i| p.arg(buf, i).to_vec()).collect());
                    off += n;
                }
                Parsed::Empty(n) => off += n,
                Parsed::Incomplete { .. } => return Ok(reqs),
            }
        }
    }

    fn strs(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk_and_pipelining() {
        let reqs = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(reqs, vec![strs(&["GET", "k"]), strs(&["PING"])]);
    }

    #[test]
    fn trailing_bytes_after_bulk_are_skipped_unchecked() {
        let reqs = parse_all(b"*1\r\n$4\r\nPINGxxPING\r\n").unwrap();
        assert_eq!(reqs, vec![strs(&["PING"]), strs(&["PING"])]);
    }

    #[test]
    fn empty_and_negative_multibulk_are_skipped() {
        let reqs = parse_all(b"*0\r\n*-5\r\nPING\r\n").unwrap();
        assert_eq!(reqs, vec![strs(&["PING"])]);
    }

    #[test]
    fn inline_quoting() {
        let reqs = parse_all(b"\r\n\n  \r\nset \"a\\x41\\n\" 'b\\'c' d\r\n").unwrap();
        assert_eq!(
            reqs,
            vec![vec![
                b"set".to_vec(),
                b"aA\n".to_vec(),
                b"b'c".to_vec(),
                b"d".to_vec()
            ]]
        );
        assert_eq!(parse_all(b"ping\nping\n").unwrap().len(), 2);
        assert_eq!(
            parse_all(b"get a\0b c\n").unwrap(),
            vec![strs(&["get", "a"])]
        );
    }

    #[test]
    fn protocol_errors_match_redis() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"*2147483648\r\n",
                "Protocol error: invalid multibulk length",
            ),
            (b"*1x\r\n", "Protocol error: invalid multibulk length"),
            (b"*+1\r\n", "Protocol error: invalid multibulk length"),
            (
                b"*1\r\n$536870913\r\n",
                "Protocol error: invalid bulk length",
            ),
            (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
            (
                b"*1\r\n$04\r\nPING\r\n",
                "Protocol error: invalid bulk length",
            ),
            (b"*1\r\n+4\r\n", "Protocol error: expected '$', got '+'"),
            (
                b"set \"a\"b c\r\n",
                "Protocol error: unbalanced quotes in request",
            ),
            (
                b"set \"abc\r\n",
                "Protocol error: unbalanced quotes in request",
            ),
        ];
        for (input, msg) in cases {
            let err = parse_all(input).unwrap_err();
            assert_eq!(
                err.to_string(),
                *msg,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn oversized_lines() {
        let long = vec![b'a'; INLINE_MAX_SIZE + 1];
        assert_eq!(parse_all(&long).unwrap_err(), ProtocolError::TooBigInline);
        let mut mb = b"*".to_vec();
        mb.extend(std::iter::repeat_n(b'1', INLINE_MAX_SIZE + 1));
        assert_eq!(parse_all(&mb).unwrap_err(), ProtocolError::TooBigMbulkCount);
        let mut b = b"*1\r\n$".to_vec();
        b.extend(std::iter::repeat_n(b'1', INLINE_MAX_SIZE + 1));
        assert_eq!(parse_all(&b).unwrap_err(), ProtocolError::TooBigBulkCount);
    }

    #[test]
    fn unauthenticated_limits() {
        let limits = Limits {
            unauthenticated: true,
            ..Limits::default()
        };
        let mut p = RequestParser::new();
        assert_eq!(
            p.parse(b"*11\r\n", &limits),
            Err(ProtocolError::UnauthenticatedMultibulk)
        );
        let mut p = RequestParser::new();
        assert_eq!(
            p.parse(b"*1\r\n$16385\r\n", &limits),
            Err(ProtocolError::UnauthenticatedBulk)
        );
    }

    #[test]
    fn huge_count_header_is_not_preallocated() {
        let mut p = RequestParser::new();
        let r = p.parse(b"*2000000000\r\n", &Limits::default()).unwrap();
        assert_eq!(r, Parsed::Incomplete { hint: None });
        assert!(p.overhead() <= MAX_PREALLOC_ARGS * 16);
    }

    #[test]
    fn resumes_byte_by_byte() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        let mut p = RequestParser::new();
        let limits = Limits::default();
        for end in 0..input.len() {
            assert!(matches!(
                p.parse(&input[..end], &limits).unwrap(),
                Parsed::Incomplete { .. }
            ));
        }
        assert_eq!(
            p.parse(input, &limits).unwrap(),
            Parsed::Request(input.len())
        );
        assert_eq!(p.arg(input, 2), b"value");
    }

    #[test]
    fn large_bulk_reports_hint() {
        let mut p = RequestParser::new();
        let r = p.parse(b"*1\r\n$100000\r\nab", &Limits::default()).unwrap();
        assert_eq!(
            r,
            Parsed::Incomplete {
                hint: Some(13 + 100000 + 2)
            }
        );
    }
}
