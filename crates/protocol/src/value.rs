//! Parsed reply values, as a client sees them: used by tests, benchmarks and
//! the property test that checks the encoder and this parser agree.

use std::fmt;

/// One RESP2/RESP3 reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `+...`
    Simple(Vec<u8>),
    /// `-...`
    Error(Vec<u8>),
    /// `:n`
    Int(i64),
    /// `$n`
    Bulk(Vec<u8>),
    /// `$-1` (RESP2 null bulk)
    NullBulk,
    /// `*-1` (RESP2 null array)
    NullArray,
    /// `*n`
    Array(Vec<Value>),
    /// `%n`
    Map(Vec<(Value, Value)>),
    /// `~n`
    Set(Vec<Value>),
    /// `>n`
    Push(Vec<Value>),
    /// `|n` attribute, followed by the value it annotates.
    Attribute(Vec<(Value, Value)>, Box<Value>),
    /// `_`
    Null,
    /// `,d` (kept as text so comparisons are exact)
    Double(Vec<u8>),
    /// `#t` / `#f`
    Bool(bool),
    /// `(n`
    BigNumber(Vec<u8>),
    /// `=n` with its 3-byte format
    Verbatim([u8; 3], Vec<u8>),
}

/// A reply that is not valid RESP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedReply(pub String);

impl fmt::Display for MalformedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed reply: {}", self.0)
    }
}

impl std::error::Error for MalformedReply {}

/// Deepest nesting accepted, so a hostile peer cannot overflow the stack.
const MAX_DEPTH: usize = 128;

impl Value {
    /// Parses one value from the start of `buf`. Returns `Ok(None)` when
    /// `buf` holds only part of a value, else the value and its length.
    pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, MalformedReply> {
        let mut pos = 0;
        match parse_at(buf, &mut pos, 0)? {
            Some(v) => Ok(Some((v, pos))),
            None => Ok(None),
        }
    }

    /// Encodes the value as RESP (RESP3 types as themselves).
    pub fn encode(&self, out: &mut Vec<u8>) {
        fn line(out: &mut Vec<u8>, prefix: u8, body: &[u8]) {
            out.push(prefix);
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        fn agg(out: &mut Vec<u8>, prefix: u8, items: &[Value]) {
            line(out, prefix, items.len().to_string().as_bytes());
            for v in items {
                v.encode(out);
            }
        }
        fn pairs(out: &mut Vec<u8>, prefix: u8, items: &[(Value, Value)]) {
            line(out, prefix, items.len().to_string().as_bytes());
            for (k, v) in items {
                k.encode(out);
                v.encode(out);
            }
        }
        match self {
            Value::Simple(s) => line(out, b'+', s),
            Value::Error(s) => line(out, b'-', s),
            Value::Int(n) => line(out, b':', n.to_string().as_bytes()),
            Value::Bulk(b) => {
                line(out, b'$', b.len().to_string().as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Value::NullBulk => out.extend_from_slice(b"$-1\r\n"),
            Value::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Value::Array(v) => agg(out, b'*', v),
            Value::Set(v) => agg(out, b'~', v),
            Value::Push(v) => agg(out, b'>', v),
            Value::Map(m) => pairs(out, b'%', m),
            Value::Attribute(m, v) => {
                pairs(out, b'|', m);
                v.encode(out);
            }
            Value::Null => out.extend_from_slice(b"_\r\n"),
            Value::Double(d) => line(out, b',', d),
            Value::Bool(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Value::BigNumber(n) => line(out, b'(', n),
            Value::Verbatim(f, t) => {
                line(out, b'=', (t.len() + 4).to_string().as_bytes());
                out.extend_from_slice(f);
                out.push(b':');
                out.extend_from_slice(t);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

fn read_line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let start = *pos;
    let rel = buf.get(start..)?.windows(2).position(|w| w == b"\r\n")?;
    *pos = start + rel + 2;
    Some(&buf[start..start + rel])
}

fn num(line: &[u8]) -> Result<i64, MalformedReply> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| MalformedReply(format!("bad number {:?}", String::from_utf8_lossy(line))))
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Value>, MalformedReply> {
    if depth > MAX_DEPTH {
        return Err(MalformedReply("nesting too deep".into()));
    }
    let Some(&prefix) = buf.get(*pos) else {
        return Ok(None);
    };
    let mut p = *pos + 1;
    let Some(line) = read_line(buf, &mut p) else {
        return Ok(None);
    };
    let line = line.to_vec();
    let v = match prefix {
        b'+' => Value::Simple(line),
        b'-' => Value::Error(line),
        b':' => Value::Int(num(&line)?),
        b'_' => Value::Null,
        b',' => Value::Double(line),
        b'(' => Value::BigNumber(line),
        b'#' => match line.as_slice() {
            b"t" => Value::Bool(true),
            b"f" => Value::Bool(false),
            _ => return Err(MalformedReply("bad boolean".into())),
        },
        b'$' | b'=' => {
            let n = num(&line)?;
            if n < 0 {
                if prefix == b'$' && n == -1 {
                    *pos = p;
                    return Ok(Some(Value::NullBulk));
                }
                return Err(MalformedReply("negative length".into()));
            }
            let n = n as usize;
            if buf.len() < p + n + 2 {
                return Ok(None);
            }
            let body = buf[p..p + n].to_vec();
            if &buf[p + n..p + n + 2] != b"\r\n" {
                return Err(MalformedReply("bulk not terminated by CRLF".into()));
            }
            p += n + 2;
            if prefix == b'$' {
                Value::Bulk(body)
            } else {
                if body.len() < 4 || body[3] != b':' {
                    return Err(MalformedReply("bad verbatim string".into()));
                }
                Value::Verbatim([body[0], body[1], body[2]], body[4..].to_vec())
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = num(&line)?;
            if n < 0 {
                if prefix == b'*' && n == -1 {
                    *pos = p;
                    return Ok(Some(Value::NullArray));
                }
                return Err(MalformedReply("negative count".into()));
            }
            let pairs = matches!(prefix, b'%' | b'|');
            let count = if pairs { n as usize * 2 } else { n as usize };
            let mut items = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                match parse_at(buf, &mut p, depth + 1)? {
                    Some(v) => items.push(v),
                    None => return Ok(None),
                }
            }
            match prefix {
                b'*' => Value::Array(items),
                b'~' => Value::Set(items),
                b'>' => Value::Push(items),
                _ => {
                    let mut kv = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        kv.push((k, v));
                    }
                    if prefix == b'%' {
                        Value::Map(kv)
                    } else {
                        let Some(inner) = parse_at(buf, &mut p, depth + 1)? else {
                            return Ok(None);
                        };
                        Value::Attribute(kv, Box::new(inner))
                    }
                }
            }
        }
        other => {
            return Err(MalformedReply(format!(
                "unknown type byte {:?}",
                other as char
            )))
        }
    };
    *pos = p;
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::ReplyBuf;
    use proptest::prelude::*;

    fn arb_value() -> impl Strategy<Value = Value> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..16);
        let line = proptest::collection::vec(
            any::<u8>().prop_filter("no CR/LF", |c| *c != b'\r' && *c != b'\n'),
            0..16,
        );
        let leaf = prop_oneof![
            line.clone().prop_map(Value::Simple),
            line.clone().prop_map(Value::Error),
            any::<i64>().prop_map(Value::Int),
            bytes.clone().prop_map(Value::Bulk),
            Just(Value::NullBulk),
            Just(Value::NullArray),
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Double(n.to_string().into_bytes())),
            any::<u64>().prop_map(|n| Value::BigNumber(n.to_string().into_bytes())),
            bytes.prop_map(|b| Value::Verbatim(*b"txt", b)),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Set),
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Push),
                proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn parse_encode_parse(v in arb_value()) {
            let mut out = Vec::new();
            v.encode(&mut out);
            let (back, used) = Value::parse(&out).unwrap().unwrap();
            prop_assert_eq!(used, out.len());
            prop_assert_eq!(&back, &v);
            // Every strict prefix is incomplete, never an error.
            for cut in 0..out.len() {
                prop_assert_eq!(Value::parse(&out[..cut]).unwrap(), None);
            }
        }

        #[test]
        fn parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Value::parse(&data);
        }

        #[test]
        fn request_parser_roundtrip(args in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..32), 1..8)) {
            let mut wire = Vec::new();
            Value::Array(args.iter().cloned().map(Value::Bulk).collect()).encode(&mut wire);
            let mut p = crate::request::RequestParser::new();
            let r = p.parse(&wire, &crate::request::Limits::default()).unwrap();
            prop_assert_eq!(r, crate::request::Parsed::Request(wire.len()));
            let got: Vec<Vec<u8>> = (0..p.argc()).map(|i| p.arg(&wire, i).to_vec()).collect();
            prop_assert_eq!(got, args);
        }

        #[test]
        fn request_parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut p = crate::request::RequestParser::new();
            let _ = p.parse(&data, &crate::request::Limits::default());
        }
    }

    #[test]
    fn encoder_output_parses() {
        let mut r = ReplyBuf::new();
        r.set_resp3(true);
        r.map(2);
        r.bulk(b"a");
        r.int(1);
        r.simple("b");
        r.array(2);
        r.null();
        r.double_text(b"-inf");
        let (v, _) = Value::parse(r.as_bytes()).unwrap().unwrap();
        assert_eq!(
            v,
            Value::Map(vec![
                (Value::Bulk(b"a".to_vec()), Value::Int(1)),
                (
                    Value::Simple(b"b".to_vec()),
                    Value::Array(vec![Value::Null, Value::Double(b"-inf".to_vec())])
                ),
            ])
        );
    }
}
