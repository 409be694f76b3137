//! A raw, blocking RESP2/RESP3 client for tests.
//!
//! Unlike the `redis` crate it does not normalise anything: every reply keeps
//! its exact RESP type (simple string vs bulk, null bulk vs null array vs the
//! RESP3 null, doubles as their literal text, ...), so two servers can be
//! compared byte for byte.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Largest bulk/aggregate length the client accepts before calling the
/// stream corrupt (bounds memory if a server sends garbage).
const MAX_LEN: i64 = 1 << 30;

/// Deepest nesting of aggregates accepted.
const MAX_DEPTH: usize = 64;

/// One reply, exactly as the server sent it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reply {
    /// `+text`
    Simple(Vec<u8>),
    /// `-text`
    Error(Vec<u8>),
    /// `:n`
    Integer(i64),
    /// `$n` followed by the bytes.
    Bulk(Vec<u8>),
    /// `$-1`
    NullBulk,
    /// `*n`
    Array(Vec<Reply>),
    /// `*-1`
    NullArray,
    /// RESP3 `%n`: key/value pairs in server order.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~n`
    Set(Vec<Reply>),
    /// RESP3 `,text`: kept as the literal text the server sent.
    Double(Vec<u8>),
    /// RESP3 `#t` / `#f`
    Boolean(bool),
    /// RESP3 `_`
    Null,
    /// RESP3 `(digits`
    BigNumber(Vec<u8>),
    /// RESP3 `=n` followed by `fmt:text`: (format, text).
    Verbatim(Vec<u8>, Vec<u8>),
    /// RESP3 `!n`: blob error.
    BlobError(Vec<u8>),
    /// RESP3 `>n`: out-of-band push.
    Push(Vec<Reply>),
    /// RESP3 `|n` attributes, followed by the reply they describe.
    Attribute(Vec<(Reply, Reply)>, Box<Reply>),
}

impl Reply {
    /// Whether this is an error reply (simple or blob).
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_) | Reply::BlobError(_))
    }

    /// The RESP type name, as used in shape comparisons and reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Reply::Simple(_) => "simple-string",
            Reply::Error(_) => "error",
            Reply::Integer(_) => "integer",
            Reply::Bulk(_) => "bulk-string",
            Reply::NullBulk => "null-bulk",
            Reply::Array(_) => "array",
            Reply::NullArray => "null-array",
            Reply::Map(_) => "map",
            Reply::Set(_) => "set",
            Reply::Double(_) => "double",
            Reply::Boolean(_) => "boolean",
            Reply::Null => "null",
            Reply::BigNumber(_) => "big-number",
            Reply::Verbatim(..) => "verbatim-string",
            Reply::BlobError(_) => "blob-error",
            Reply::Push(_) => "push",
            Reply::Attribute(..) => "attribute",
        }
    }

    /// One-line rendering; this is also the syntax of `@expect` literals.
    ///
    /// `+OK`, `-ERR msg`, `:1`, `"bulk"`, `$-1`, `[a, b]`, `*-1`,
    /// `{k: v}`, `~[a]`, `,1.5`, `#t`, `_`, `(123`, `=txt:"text"`,
    /// `!"blob error"`, `>[a]`, `|{k: v} reply`.
    pub fn compact(&self) -> String {
        let mut out = String::new();
        self.write_compact(&mut out);
        out
    }

    fn write_compact(&self, out: &mut String) {
        match self {
            Reply::Simple(s) => {
                out.push('+');
                out.push_str(&escape_plain(s));
            }
            Reply::Error(s) => {
                out.push('-');
                out.push_str(&escape_plain(s));
            }
            Reply::Integer(n) => {
                let _ = write!(out, ":{n}");
            }
            Reply::Bulk(b) => out.push_str(&quote(b)),
            Reply::NullBulk => out.push_str("$-1"),
            Reply::NullArray => out.push_str("*-1"),
            Reply::Array(items) => write_list(out, "", items),
            Reply::Set(items) => write_list(out, "~", items),
            Reply::Push(items) => write_list(out, ">", items),
            Reply::Map(pairs) => write_map(out, pairs),
            Reply::Double(d) => {
                out.push(',');
                out.push_str(&escape_plain(d));
            }
            Reply::Boolean(b) => out.push_str(if *b { "#t" } else { "#f" }),
            Reply::Null => out.push('_'),
            Reply::BigNumber(n) => {
                out.push('(');
                out.push_str(&escape_plain(n));
            }
            Reply::Verbatim(fmt, text) => {
                out.push('=');
                out.push_str(&escape_plain(fmt));
                out.push(':');
                out.push_str(&quote(text));
            }
            Reply::BlobError(e) => {
                out.push('!');
                out.push_str(&quote(e));
            }
            Reply::Attribute(attrs, reply) => {
                out.push('|');
                write_map(out, attrs);
                out.push(' ');
                reply.write_compact(out);
            }
        }
    }

    /// Multi-line rendering for reports: short replies stay on one line,
    /// long aggregates get one element per line, indented.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write_pretty(&mut out, 0);
        out
    }

    fn write_pretty(&self, out: &mut String, indent: usize) {
        let one_line = self.compact();
        if one_line.len() + indent <= 100 {
            out.push_str(&one_line);
            return;
        }
        let pad = " ".repeat(indent + 2);
        match self {
            Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
                let prefix = match self {
                    Reply::Set(_) => "~",
                    Reply::Push(_) => ">",
                    _ => "",
                };
                let _ = writeln!(out, "{prefix}[ ({} elements)", items.len());
                for (i, item) in items.iter().enumerate() {
                    let _ = write!(out, "{pad}{}) ", i + 1);
                    item.write_pretty(out, indent + 2);
                    out.push('\n');
                }
                out.push_str(&" ".repeat(indent));
                out.push(']');
            }
            Reply::Map(pairs) | Reply::Attribute(pairs, _) => {
                let prefix = if matches!(self, Reply::Attribute(..)) {
                    "|"
                } else {
                    ""
                };
                let _ = writeln!(out, "{prefix}{{ ({} pairs)", pairs.len());
                for (k, v) in pairs {
                    out.push_str(&pad);
                    k.write_pretty(out, indent + 2);
                    out.push_str(": ");
                    v.write_pretty(out, indent + 2);
                    out.push('\n');
                }
                out.push_str(&" ".repeat(indent));
                out.push('}');
                if let Reply::Attribute(_, reply) = self {
                    out.push(' ');
                    reply.write_pretty(out, indent);
                }
            }
            _ => out.push_str(&one_line),
        }
    }

    /// The reply's shape: its RESP types all the way down (aggregate lengths
    /// included), but not its scalar values. Errors keep their full text and
    /// map keys that are strings keep their value, because both are
    /// deterministic even where the data is not.
    pub fn shape(&self) -> String {
        match self {
            Reply::Error(_) | Reply::BlobError(_) => self.compact(),
            Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
                let inner: Vec<String> = items.iter().map(Reply::shape).collect();
                format!("{}[{}]", self.type_name(), inner.join(", "))
            }
            Reply::Map(pairs) | Reply::Attribute(pairs, _) => {
                let inner: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Reply::Simple(_) | Reply::Bulk(_) => k.compact(),
                            _ => k.shape(),
                        };
                        format!("{key}: {}", v.shape())
                    })
                    .collect();
                let mut s = format!("{}{{{}}}", self.type_name(), inner.join(", "));
                if let Reply::Attribute(_, reply) = self {
                    s.push(' ');
                    s.push_str(&reply.shape());
                }
                s
            }
            _ => self.type_name().to_string(),
        }
    }

    /// A copy with the elements of a top-level array/set/push (or the pairs
    /// of a top-level map) sorted; nested aggregates keep their order.
    pub fn sorted_top_level(&self) -> Reply {
        match self {
            Reply::Array(items) => Reply::Array(sorted(items)),
            Reply::Set(items) => Reply::Set(sorted(items)),
            Reply::Push(items) => Reply::Push(sorted(items)),
            Reply::Map(pairs) => {
                let mut pairs = pairs.clone();
                pairs.sort();
                Reply::Map(pairs)
            }
            other => other.clone(),
        }
    }
}

fn sorted(items: &[Reply]) -> Vec<Reply> {
    let mut items = items.to_vec();
    items.sort();
    items
}

fn write_list(out: &mut String, prefix: &str, items: &[Reply]) {
    out.push_str(prefix);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        item.write_compact(out);
    }
    out.push(']');
}

fn write_map(out: &mut String, pairs: &[(Reply, Reply)]) {
    out.push('{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        k.write_compact(out);
        out.push_str(": ");
        v.write_compact(out);
    }
    out.push('}');
}

/// Quote bytes the way redis-cli does (`sdscatrepr`): `"..."` with `\n`,
/// `\r`, `\t`, `\a`, `\b`, `\"`, `\\` and `\xHH` for other non-printables.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    out
}

/// Render the text of a simple string/error: printable ASCII as is, the rest
/// as `\xHH` (simple strings never contain CR/LF, so this is unambiguous).
fn escape_plain(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..=0x7e).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A blocking connection speaking RESP, with read/write timeouts so a server
/// that hangs produces an error instead of a stuck test.
pub struct RespConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RespConn {
    /// Connect to `127.0.0.1:port`; reads and writes time out after
    /// `timeout`.
    pub fn connect(port: u16, timeout: Duration) -> io::Result<RespConn> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(RespConn {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Send one command as a RESP multibulk array (no reply is read).
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.writer.write_all(&encode_command(args))
    }

    /// Send raw bytes (for inline commands or malformed protocol tests).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Send one command and read one reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Reply> {
        self.send(args)?;
        self.read_reply()
    }

    /// Read exactly one reply (an attribute is read together with the reply
    /// it precedes).
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader, 0)
    }

    /// Close both directions; later calls fail.
    pub fn shutdown(&self) {
        let _ = self.writer.shutdown(Shutdown::Both);
    }
}

/// Encode a command as a RESP multibulk array.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Read one CRLF-terminated line, without the CRLF.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by server",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad(format!(
            "line not terminated by CRLF: {}",
            quote(&line)
        )));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_len(text: &[u8]) -> io::Result<i64> {
    let s = std::str::from_utf8(text).map_err(|_| bad(format!("bad length {}", quote(text))))?;
    let n: i64 = s
        .parse()
        .map_err(|_| bad(format!("bad length {}", quote(text))))?;
    if !(-1..=MAX_LEN).contains(&n) {
        return Err(bad(format!("length out of range: {n}")));
    }
    Ok(n)
}

fn read_blob<R: BufRead>(r: &mut R, len: i64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize + 2];
    r.read_exact(&mut buf)?;
    if !buf.ends_with(b"\r\n") {
        return Err(bad("blob not terminated by CRLF".to_string()));
    }
    buf.truncate(len as usize);
    Ok(buf)
}

fn read_items<R: BufRead>(r: &mut R, n: i64, depth: usize) -> io::Result<Vec<Reply>> {
    (0..n).map(|_| read_reply(r, depth + 1)).collect()
}

fn read_pairs<R: BufRead>(r: &mut R, n: i64, depth: usize) -> io::Result<Vec<(Reply, Reply)>> {
    (0..n)
        .map(|_| Ok((read_reply(r, depth + 1)?, read_reply(r, depth + 1)?)))
        .collect()
}

/// Parse one reply from a buffered stream.
pub fn read_reply<R: BufRead>(r: &mut R, depth: usize) -> io::Result<Reply> {
    if depth > MAX_DEPTH {
        return Err(bad("reply nested too deeply".to_string()));
    }
    let line = read_line(r)?;
    let Some((&kind, rest)) = line.split_first() else {
        return Err(bad("empty reply line".to_string()));
    };
    let rest = rest.to_vec();
    Ok(match kind {
        b'+' => Reply::Simple(rest),
        b'-' => Reply::Error(rest),
        b':' => {
            let s = String::from_utf8_lossy(&rest);
            Reply::Integer(
                s.parse()
                    .map_err(|_| bad(format!("bad integer {}", quote(&rest))))?,
            )
        }
        b'$' => match parse_len(&rest)? {
            -1 => Reply::NullBulk,
            n => Reply::Bulk(read_blob(r, n)?),
        },
        b'*' => match parse_len(&rest)? {
            -1 => Reply::NullArray,
            n => Reply::Array(read_items(r, n, depth)?),
        },
        b'%' => Reply::Map(read_pairs(r, non_negative(&rest)?, depth)?),
        b'~' => Reply::Set(read_items(r, non_negative(&rest)?, depth)?),
        b'>' => Reply::Push(read_items(r, non_negative(&rest)?, depth)?),
        b'|' => {
            let attrs = read_pairs(r, non_negative(&rest)?, depth)?;
            Reply::Attribute(attrs, Box::new(read_reply(r, depth + 1)?))
        }
        b',' => Reply::Double(rest),
        b'#' => match rest.as_slice() {
            b"t" => Reply::Boolean(true),
            b"f" => Reply::Boolean(false),
            _ => return Err(bad(format!("bad boolean {}", quote(&rest)))),
        },
        b'_' if rest.is_empty() => Reply::Null,
        b'(' => Reply::BigNumber(rest),
        b'=' => {
            let blob = read_blob(r, non_negative(&rest)?)?;
            if blob.len() < 4 || blob[3] != b':' {
                return Err(bad(format!("bad verbatim string {}", quote(&blob))));
            }
            Reply::Verbatim(blob[..3].to_vec(), blob[4..].to_vec())
        }
        b'!' => Reply::BlobError(read_blob(r, non_negative(&rest)?)?),
        _ => return Err(bad(format!("unknown reply type in line {}", quote(&line)))),
    })
}

fn non_negative(text: &[u8]) -> io::Result<i64> {
    match parse_len(text)? {
        -1 => Err(bad(format!("negative length {}", quote(text)))),
        n => Ok(n),
    }
}
