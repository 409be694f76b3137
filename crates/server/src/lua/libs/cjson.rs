//! The `cjson` library (lua-cjson 2.1.0 as Redis bundles it): JSON
//! `encode` / `decode`, `cjson.null`, the configuration functions and
//! `cjson.new`.
//!
//! Nested structures are walked with explicit stacks, and the C library's
//! Lua stack limits are reproduced, so deep input can never overflow the
//! native stack.

use std::sync::Arc;

use parking_lot::Mutex;

use mlua::{LightUserData, Lua, Table, Value};

use super::{
    arg_fail, exact, fail, format_g, func, next_entry, scan_keys, to_bytes, type_name, Args, Fail,
    Res, MAX_C_STACK,
};

/// Output size at which encoding gives up instead of growing further.
const MAX_OUTPUT: usize = 1 << 30;

/// The settings of one cjson instance.
#[derive(Clone, Copy)]
struct Config {
    encode_sparse_convert: i32,
    encode_sparse_ratio: i32,
    encode_sparse_safe: i32,
    encode_max_depth: i32,
    encode_invalid_numbers: i32,
    encode_number_precision: i32,
    encode_keep_buffer: i32,
    decode_invalid_numbers: i32,
    decode_max_depth: i32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            encode_sparse_convert: 0,
            encode_sparse_ratio: 2,
            encode_sparse_safe: 10,
            encode_max_depth: 1000,
            encode_invalid_numbers: 0,
            encode_number_precision: 14,
            encode_keep_buffer: 1,
            decode_invalid_numbers: 1,
            decode_max_depth: 1000,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

/// `cjson.null`: a NULL light userdata.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

// ---------------------------------------------------------------- encoding

/// Appends `s` as a JSON string.
fn append_string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f | 0x7f => {
                out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
            }
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

/// The "Cannot serialise" error.
fn exception<T>(type_name: &str, reason: &str) -> Res<T> {
    fail(format!("Cannot serialise {type_name}: {reason}"))
}

/// Appends a number according to the configuration.
fn append_number(out: &mut Vec<u8>, cfg: &Config, n: f64) -> Res<()> {
    match cfg.encode_invalid_numbers {
        0 if !n.is_finite() => return exception("number", "must not be NaN or Inf"),
        1 if n.is_nan() => {
            out.extend_from_slice(b"nan");
            return Ok(());
        }
        0 | 1 => {}
        _ if !n.is_finite() => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        _ => {}
    }
    out.extend_from_slice(format_g(n, cfg.encode_number_precision as usize).as_bytes());
    Ok(())
}

/// The number of a numeric value.
fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// lua-cjson's array detection: a positive length for an array, zero or
/// less for an object.
fn array_length(lua: &Lua, t: &Table, cfg: &Config) -> Res<i32> {
    let scan = scan_keys(lua, t, |k| k != 0.0 && k.floor() == k && k >= 1.0)?;
    if !scan.all {
        return Ok(-1);
    }
    let (max, items) = (scan.max, scan.items);
    if cfg.encode_sparse_ratio > 0
        && max > items.wrapping_mul(cfg.encode_sparse_ratio)
        && max > cfg.encode_sparse_safe
    {
        if cfg.encode_sparse_convert == 0 {
            return exception("table", "excessively sparse array");
        }
        return Ok(-1);
    }
    Ok(max)
}

/// An open table while encoding (the table itself, and an object's current
/// key, live in the encoder's Lua-side holder table).
enum EncFrame {
    Array { len: i32, next: i32 },
    Object { first: bool },
}

/// Encoder state.
struct Encoder<'a> {
    lua: &'a Lua,
    cfg: &'a Config,
    out: Vec<u8>,
    stack: Vec<EncFrame>,
    /// The innermost open table, and its current key when it is an object.
    cur: Option<Table>,
    cur_key: Value,
    /// The enclosing open tables at `2d - 1` and their keys at `2d` (depth d).
    holder: Option<Table>,
    /// Lua stack slots the C encoder would be using.
    slots: usize,
}

impl Encoder<'_> {
    fn holder(&mut self) -> mlua::Result<Table> {
        if self.holder.is_none() {
            self.holder = Some(self.lua.create_table()?);
        }
        Ok(self.holder.clone().expect("holder was just created"))
    }

    /// Appends a value; a table opens a new frame.
    fn value(&mut self, v: Value) -> Res<()> {
        if self.out.len() > MAX_OUTPUT {
            return Err(Fail::Raw(b"not enough memory".to_vec()));
        }
        match v {
            Value::String(s) => append_string(&mut self.out, &s.as_bytes()),
            Value::Integer(_) | Value::Number(_) => {
                append_number(&mut self.out, self.cfg, number_of(&v).unwrap_or(0.0))?
            }
            Value::Boolean(b) => {
                self.out
                    .extend_from_slice(if b { b"true" as &[u8] } else { b"false" })
            }
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::Table(t) => {
                let depth = self.stack.len() + 1;
                if depth as i64 > self.cfg.encode_max_depth as i64 || self.slots + 3 > MAX_C_STACK {
                    return fail(format!("Cannot serialise, excessive nesting ({depth})"));
                }
                let len = array_length(self.lua, &t, self.cfg)?;
                if let Some(parent) = self.cur.take() {
                    let key = std::mem::replace(&mut self.cur_key, Value::Nil);
                    let h = self.holder()?;
                    h.raw_set(2 * depth - 3, parent)?;
                    h.raw_set(2 * depth - 2, key)?;
                }
                self.cur = Some(t);
                if len > 0 {
                    self.out.push(b'[');
                    self.slots += 1;
                    self.stack.push(EncFrame::Array { len, next: 1 });
                } else {
                    self.out.push(b'{');
                    self.slots += 2;
                    self.stack.push(EncFrame::Object { first: true });
                }
            }
            other => return exception(type_name(&other), "type not supported"),
        }
        Ok(())
    }

    /// The next element of the innermost table, `None` when it is done.
    fn step(&mut self) -> Res<Option<Value>> {
        let Some(table) = &self.cur else {
            return Ok(None);
        };
        let Some(frame) = self.stack.last_mut() else {
            return Ok(None);
        };
        match frame {
            EncFrame::Array { len, next } => {
                if *next > *len {
                    return Ok(None);
                }
                if *next > 1 {
                    self.out.push(b',');
                }
                let i = *next;
                *next += 1;
                let v: Value = table.raw_get(i)?;
                Ok(Some(exact(table, i, v)?))
            }
            EncFrame::Object { first } => {
                let key = std::mem::replace(&mut self.cur_key, Value::Nil);
                let Some((k, v)) = next_entry(self.lua, table, key)? else {
                    return Ok(None);
                };
                if !*first {
                    self.out.push(b',');
                }
                *first = false;
                match &k {
                    Value::Integer(_) | Value::Number(_) => {
                        self.out.push(b'"');
                        let n = number_of(&k).unwrap_or(0.0);
                        append_number(&mut self.out, self.cfg, n)?;
                        self.out.extend_from_slice(b"\":");
                    }
                    Value::String(s) => {
                        append_string(&mut self.out, &s.as_bytes());
                        self.out.push(b':');
                    }
                    other => {
                        return exception(type_name(other), "table key must be a number or string")
                    }
                }
                self.cur_key = k;
                Ok(Some(v))
            }
        }
    }

    /// Encodes `root` completely.
    fn run(&mut self, root: Value) -> Res<()> {
        self.value(root)?;
        while !self.stack.is_empty() {
            match self.step()? {
                Some(v) => self.value(v)?,
                None => {
                    match self.stack.pop() {
                        Some(EncFrame::Array { .. }) => {
                            self.out.push(b']');
                            self.slots -= 1;
                        }
                        _ => {
                            self.out.push(b'}');
                            self.slots -= 2;
                        }
                    }
                    self.cur = None;
                    self.cur_key = Value::Nil;
                    let d = self.stack.len();
                    if d > 0 {
                        let h = self.holder()?;
                        self.cur = Some(h.raw_get(2 * d - 1)?);
                        let k: Value = h.raw_get(2 * d)?;
                        self.cur_key = exact(&h, 2 * d, k)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// `cjson.encode(value)`.
fn encode(lua: &Lua, args: &Args, cfg: &Shared) -> Res<Vec<Value>> {
    if args.len() != 1 {
        return arg_fail(1, "expected 1 argument");
    }
    let cfg = *cfg.lock();
    let mut enc = Encoder {
        lua,
        cfg: &cfg,
        cur: None,
        cur_key: Value::Nil,
        holder: None,
        out: Vec::new(),
        stack: Vec::new(),
        slots: 1,
    };
    enc.run(args.get(1)?)?;
    Ok(vec![Value::String(lua.create_string(&enc.out)?)])
}

// ---------------------------------------------------------------- decoding

/// A JSON token.
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    fn name(&self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str(_) => "T_STRING",
            Tok::Num(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(e) => e,
        }
    }
}

/// Decoder state: the input (with a terminating NUL, like a Lua string)
/// and the read position.
struct Decoder<'a> {
    data: Vec<u8>,
    ptr: usize,
    cfg: &'a Config,
    depth: i64,
    /// Index (0-based) where the last token starts.
    index: usize,
}

fn hexval(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

impl Decoder<'_> {
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        self.data[self.ptr..].starts_with(s)
    }

    /// Whether the text at the cursor is a number strict JSON forbids
    /// (leading '+', hex, leading zeros, inf, nan).
    fn is_invalid_number(&self) -> bool {
        let mut p = self.ptr;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        } else if c <= b'9' {
            return false;
        }
        let rest = &self.data[p.min(self.data.len())..];
        let ci = |w: &[u8]| rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(w);
        ci(b"inf") || ci(b"nan")
    }

    fn number(&mut self) -> Tok {
        let start = self.data[self.ptr..].as_ptr() as *const libc::c_char;
        let mut end: *mut libc::c_char = std::ptr::null_mut();
        // SAFETY: `data` ends with a NUL byte, so strtod stops inside it.
        let n = unsafe { libc::strtod(start, &mut end) };
        let used = (end as usize).wrapping_sub(start as usize);
        if end.is_null() || used == 0 || used > self.data.len() - self.ptr {
            return Tok::Error("invalid number");
        }
        self.ptr += used;
        Tok::Num(n)
    }

    /// Parses a `\uXXXX` escape (and a following low surrogate) at the
    /// cursor, appending UTF-8 to `out`.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let hex4 = |d: &Self, at: usize| -> Option<u32> {
            let mut v = 0;
            for k in 0..4 {
                v = (v << 4) | hexval(d.at(at + k))?;
            }
            Some(v)
        };
        let mut cp = hex4(self, self.ptr + 2)?;
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return None;
            }
            if self.at(self.ptr + 6) != b'\\' || self.at(self.ptr + 7) != b'u' {
                return None;
            }
            let low = hex4(self, self.ptr + 8)?;
            if low & 0xFC00 != 0xDC00 {
                return None;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        if cp <= 0x7F {
            out.push(cp as u8);
        } else if cp <= 0x7FF {
            out.push(0xC0 | (cp >> 6) as u8);
            out.push(0x80 | (cp & 0x3F) as u8);
        } else if cp <= 0xFFFF {
            out.push(0xE0 | (cp >> 12) as u8);
            out.push(0x80 | ((cp >> 6) & 0x3F) as u8);
            out.push(0x80 | (cp & 0x3F) as u8);
        } else {
            out.push(0xF0 | (cp >> 18) as u8);
            out.push(0x80 | ((cp >> 12) & 0x3F) as u8);
            out.push(0x80 | ((cp >> 6) & 0x3F) as u8);
            out.push(0x80 | (cp & 0x3F) as u8);
        }
        self.ptr += len;
        Some(())
    }

    fn string(&mut self) -> Tok {
        self.ptr += 1;
        let mut out = Vec::new();
        loop {
            let c = self.at(self.ptr);
            if c == b'"' {
                break;
            }
            if c == 0 {
                self.index = self.ptr;
                return Tok::Error("unexpected end of string");
            }
            if c == b'\\' {
                let e = match self.at(self.ptr + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 12,
                    b'r' => b'\r',
                    b'u' => {
                        if self.unicode_escape(&mut out).is_some() {
                            continue;
                        }
                        self.index = self.ptr;
                        return Tok::Error("invalid unicode escape code");
                    }
                    _ => {
                        self.index = self.ptr;
                        return Tok::Error("invalid escape code");
                    }
                };
                out.push(e);
                self.ptr += 2;
                continue;
            }
            out.push(c);
            self.ptr += 1;
        }
        self.ptr += 1;
        Tok::Str(out)
    }

    fn next(&mut self) -> Tok {
        while let b' ' | b'\t' | b'\r' | b'\n' = self.at(self.ptr) {
            self.ptr += 1;
        }
        self.index = self.ptr;
        let c = self.at(self.ptr);
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b':' => Some(Tok::Colon),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(t) = single {
            self.ptr += 1;
            return t;
        }
        match c {
            0 => return Tok::End,
            b'"' => return self.string(),
            b'-' | b'0'..=b'9' => {
                if self.cfg.decode_invalid_numbers == 0 && self.is_invalid_number() {
                    return Tok::Error("invalid number");
                }
                return self.number();
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {}
            _ => return Tok::Error("invalid token"),
        }
        if self.starts_with(b"true") {
            self.ptr += 4;
            Tok::Bool(true)
        } else if self.starts_with(b"false") {
            self.ptr += 5;
            Tok::Bool(false)
        } else if self.starts_with(b"null") {
            self.ptr += 4;
            Tok::Null
        } else if self.cfg.decode_invalid_numbers != 0 && self.is_invalid_number() {
            self.number()
        } else {
            Tok::Error("invalid token")
        }
    }

    fn throw<T>(&self, expected: &str, tok: &Tok) -> Res<T> {
        fail(format!(
            "Expected {expected} but found {} at character {}",
            tok.name(),
            self.index + 1
        ))
    }

    /// An object key at `tok` and the colon after it: the key and the
    /// token that follows the colon.
    fn key_and_colon(&mut self, tok: Tok) -> Res<(Vec<u8>, Tok)> {
        let Tok::Str(key) = tok else {
            return self.throw("object key string", &tok);
        };
        let tok = self.next();
        if !matches!(tok, Tok::Colon) {
            return self.throw("colon", &tok);
        }
        Ok((key, self.next()))
    }

    fn descend(&mut self, slots: usize, needed: usize) -> Res<()> {
        self.depth += 1;
        if self.depth <= self.cfg.decode_max_depth as i64 && slots + needed <= MAX_C_STACK {
            return Ok(());
        }
        fail(format!(
            "Found too many nested data structures ({}) at character {}",
            self.depth, self.ptr
        ))
    }

    /// Decodes the whole input.
    fn run(&mut self, lua: &Lua) -> Res<Value> {
        // The innermost open table is `cur`; the enclosing ones live in
        // `holder` (index = depth), not in Rust.
        enum Frame {
            Array(usize),
            Object(Vec<u8>),
        }
        let mut holder: Option<Table> = None;
        let mut cur: Option<Table> = None;
        let mut stack: Vec<Frame> = Vec::new();
        // Lua stack slots the C decoder would be using.
        let mut slots: usize = 1;
        let mut tok = self.next();
        let root = 'value: loop {
            let mut v = match tok {
                Tok::Str(s) => Value::String(lua.create_string(&s)?),
                Tok::Num(n) => Value::Number(n),
                Tok::Bool(b) => Value::Boolean(b),
                Tok::Null => null(),
                Tok::ArrBegin | Tok::ObjBegin => {
                    let is_obj = matches!(tok, Tok::ObjBegin);
                    self.descend(slots, if is_obj { 3 } else { 2 })?;
                    let t = lua.create_table()?;
                    tok = self.next();
                    let empty = if is_obj {
                        matches!(tok, Tok::ObjEnd)
                    } else {
                        matches!(tok, Tok::ArrEnd)
                    };
                    if empty {
                        self.depth -= 1;
                        Value::Table(t)
                    } else {
                        slots += if is_obj { 2 } else { 1 };
                        let new = if is_obj {
                            let key;
                            (key, tok) = self.key_and_colon(tok)?;
                            Frame::Object(key)
                        } else {
                            Frame::Array(1)
                        };
                        if let Some(parent) = cur.take() {
                            if holder.is_none() {
                                holder = Some(lua.create_table()?);
                            }
                            if let Some(h) = &holder {
                                h.raw_set(stack.len(), parent)?;
                            }
                        }
                        cur = Some(t);
                        stack.push(new);
                        continue 'value;
                    }
                }
                other => return self.throw("value", &other),
            };
            // Store the value in its container; close finished containers.
            loop {
                let (Some(frame), Some(t)) = (stack.last_mut(), &cur) else {
                    break 'value v;
                };
                // (end token seen, its stack slots, what else may come)
                let (closed, frame_slots, expected) = match frame {
                    Frame::Array(i) => {
                        t.raw_set(*i, v)?;
                        *i += 1;
                        tok = self.next();
                        (matches!(tok, Tok::ArrEnd), 1, "comma or array end")
                    }
                    Frame::Object(key) => {
                        t.raw_set(lua.create_string(&key)?, v)?;
                        tok = self.next();
                        (matches!(tok, Tok::ObjEnd), 2, "comma or object end")
                    }
                };
                if closed {
                    slots -= frame_slots;
                } else if !matches!(tok, Tok::Comma) {
                    return self.throw(expected, &tok);
                } else {
                    tok = self.next();
                    if let Frame::Object(key) = frame {
                        (*key, tok) = self.key_and_colon(tok)?;
                    }
                    continue 'value;
                }
                self.depth -= 1;
                stack.pop();
                v = cur.take().map(Value::Table).unwrap_or(Value::Nil);
                if !stack.is_empty() {
                    if let Some(h) = &holder {
                        cur = Some(h.raw_get(stack.len())?);
                    }
                }
            }
        };
        let tok = self.next();
        if !matches!(tok, Tok::End) {
            return self.throw("the end", &tok);
        }
        Ok(root)
    }
}

/// `cjson.decode(text)`.
fn decode(lua: &Lua, args: &Args, cfg: &Shared) -> Res<Vec<Value>> {
    if args.len() != 1 {
        return arg_fail(1, "expected 1 argument");
    }
    let cfg = *cfg.lock();
    let mut data = args.check_bytes(lua, 1)?;
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return fail("JSON parser does not support UTF-16 or UTF-32");
    }
    data.push(0);
    let mut dec = Decoder {
        data,
        ptr: 0,
        cfg: &cfg,
        depth: 0,
        index: 0,
    };
    Ok(vec![dec.run(lua)?])
}

// ----------------------------------------------------------- configuration

/// Checks the argument count of a configuration function.
fn arg_init(args: &Args, max: usize) -> Res<()> {
    if args.len() > max {
        return arg_fail(max as i64 + 1, "found too many arguments");
    }
    Ok(())
}

/// An integer setting: updated when the argument is given, then returned.
fn integer_option(
    lua: &Lua,
    args: &Args,
    idx: usize,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> Res<Value> {
    if !args.get(idx)?.is_nil() {
        let value = args.check_integer(lua, idx)? as i32;
        if value < min || value > max {
            return arg_fail(1, format!("expected integer between {min} and {max}"));
        }
        *setting = value;
    }
    Ok(Value::Number(*setting as f64))
}

/// An enumerated setting (booleans, or one of `options`).
fn enum_option(
    lua: &Lua,
    args: &Args,
    idx: usize,
    setting: &mut i32,
    options: &[&str],
) -> Res<Value> {
    let v = args.get(idx)?;
    match v {
        Value::Nil => {}
        Value::Boolean(b) => *setting = b as i32,
        _ => {
            let Some(name) = to_bytes(lua, &v)? else {
                return args.type_error(idx, None, "string");
            };
            let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
            match options.iter().position(|o| o.as_bytes() == name) {
                Some(i) => *setting = i as i32,
                None => {
                    let mut msg = b"invalid option '".to_vec();
                    msg.extend_from_slice(name);
                    msg.push(b'\'');
                    return arg_fail(idx as i64, msg);
                }
            }
        }
    }
    if *setting == 0 || *setting == 1 {
        Ok(Value::Boolean(*setting == 1))
    } else {
        Ok(Value::String(
            lua.create_string(options[*setting as usize])?,
        ))
    }
}

const BOOL_OPTIONS: &[&str] = &["off", "on"];

/// Adds `cjson.<name>`, a one-argument setting that `set` reads or
/// changes with the configuration locked.
fn add_setting(
    lua: &Lua,
    t: &Table,
    cfg: &Shared,
    name: &str,
    set: impl Fn(&Lua, &Args, &mut Config) -> Res<Value> + mlua::MaybeSend + 'static,
) -> mlua::Result<()> {
    let c = cfg.clone();
    t.raw_set(
        name,
        func(lua, move |lua, a| {
            arg_init(a, 1)?;
            let mut cfg = c.lock();
            Ok(vec![set(lua, a, &mut cfg)?])
        })?,
    )
}

/// Builds a cjson module table with its own configuration.
pub(crate) fn create(lua: &Lua) -> mlua::Result<Table> {
    let cfg: Shared = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;

    let c = cfg.clone();
    t.raw_set("encode", func(lua, move |lua, a| encode(lua, a, &c))?)?;
    let c = cfg.clone();
    t.raw_set("decode", func(lua, move |lua, a| decode(lua, a, &c))?)?;

    let c = cfg.clone();
    t.raw_set(
        "encode_sparse_array",
        func(lua, move |lua, a| {
            arg_init(a, 3)?;
            let mut cfg = c.lock();
            let convert = enum_option(lua, a, 1, &mut cfg.encode_sparse_convert, BOOL_OPTIONS)?;
            let ratio = integer_option(lua, a, 2, &mut cfg.encode_sparse_ratio, 0, i32::MAX)?;
            let safe = integer_option(lua, a, 3, &mut cfg.encode_sparse_safe, 0, i32::MAX)?;
            Ok(vec![convert, ratio, safe])
        })?,
    )?;
    type IntField = fn(&mut Config) -> &mut i32;
    let ints: [(&str, IntField, i32, i32); 3] = [
        ("encode_max_depth", |c| &mut c.encode_max_depth, 1, i32::MAX),
        ("decode_max_depth", |c| &mut c.decode_max_depth, 1, i32::MAX),
        (
            "encode_number_precision",
            |c| &mut c.encode_number_precision,
            1,
            14,
        ),
    ];
    for (name, field, min, max) in ints {
        add_setting(lua, &t, &cfg, name, move |lua, a, cfg| {
            integer_option(lua, a, 1, field(cfg), min, max)
        })?;
    }
    let enums: [(&str, IntField, &'static [&'static str]); 3] = [
        (
            "encode_keep_buffer",
            |c| &mut c.encode_keep_buffer,
            BOOL_OPTIONS,
        ),
        (
            "encode_invalid_numbers",
            |c| &mut c.encode_invalid_numbers,
            &["off", "on", "null"],
        ),
        (
            "decode_invalid_numbers",
            |c| &mut c.decode_invalid_numbers,
            BOOL_OPTIONS,
        ),
    ];
    for (name, field, options) in enums {
        add_setting(lua, &t, &cfg, name, move |lua, a, cfg| {
            enum_option(lua, a, 1, field(cfg), options)
        })?;
    }
    t.raw_set(
        "new",
        func(lua, |lua, _| Ok(vec![Value::Table(create(lua)?)]))?,
    )?;
    t.raw_set("null", null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, check_errs, err, lua, s};

    #[test]
    fn cjson_encode_values() {
        let l = lua();
        let enc = |code: &str| s(&l, &format!("return cjson.encode({code})"));
        assert_eq!(
            enc("{1,2,'a/b',{}, 0.1, 1e20, 3.14159265358979}"),
            r#"[1,2,"a\/b",{},0.1,1e+20,3.1415926535898]"#
        );
        assert_eq!(
            enc(r#""\127\1\8\31/\\\"\226\130\172""#),
            "\"\\u007f\\u0001\\b\\u001f\\/\\\\\\\"\u{20ac}\""
        );
        assert_eq!(enc("{[1]=1,[2]=2,[4]=4}"), "[1,2,null,4]");
        assert_eq!(enc("-0.0"), "-0");
        assert_eq!(enc("1e-300"), "1e-300");
        assert_eq!(enc("{1e300*10}"), "[1e+301]");
        assert_eq!(enc("{a={b={}}}"), r#"{"a":{"b":{}}}"#);
        assert_eq!(enc("{[2.5]='x'}"), r#"{"2.5":"x"}"#);
        assert_eq!(enc("cjson.null"), "null");
        assert_eq!(enc("{true, false, cjson.null}"), "[true,false,null]");
        assert_eq!(enc("'\\0'"), "\"\\u0000\"");
        assert_eq!(enc("12345678901234567"), "1.2345678901235e+16");
        assert_eq!(s(&l, "cjson.encode_sparse_array(true) local r = cjson.encode({[1]=1,[20]=2}) cjson.encode_sparse_array(false) return r"), r#"{"1":1,"20":2}"#);
        check(
            &l,
            &[
                ("cjson.encode_number_precision(3) local r = cjson.encode(3.14159) cjson.encode_number_precision(14) return r", "3.14"),
                ("cjson.encode_invalid_numbers(true) local r = cjson.encode({1/0, -1/0, 0/0}) cjson.encode_invalid_numbers(false) return r", "[inf,-inf,nan]"),
                ("cjson.encode_invalid_numbers('null') local r = cjson.encode({1/0}) cjson.encode_invalid_numbers(false) return r", "[null]"),
            ],
        );
        let nest = |n: usize| {
            format!("local t = {{}} local c = t for i = 1, {n} do c[1] = {{}} c = c[1] end return cjson.encode(t)", n = n - 1)
        };
        assert_eq!(
            s(&l, &nest(1000)),
            format!("{}{{}}{}", "[".repeat(999), "]".repeat(999))
        );
    }

    #[test]
    fn cjson_encode_errors() {
        let l = lua();
        check_errs(
            &l,
            &[
                ("cjson.encode(function() end)", "user_script:1: Cannot serialise function: type not supported"),
                ("cjson.encode({[1]=1,[20]=2})", "user_script:1: Cannot serialise table: excessively sparse array"),
                ("cjson.encode(0/0)", "user_script:1: Cannot serialise number: must not be NaN or Inf"),
                ("cjson.encode({[true]=1})", "user_script:1: Cannot serialise boolean: table key must be a number or string"),
                ("cjson.encode()", "user_script:1: bad argument #1 to 'encode' (expected 1 argument)"),
                ("(function() local t = {} t[1] = t return cjson.encode(t) end)()", "user_script:1: Cannot serialise, excessive nesting (1001)"),
                ("(function() cjson.encode_max_depth(100000) local t = {} t[1] = t local ok, e = pcall(cjson.encode, t) cjson.encode_max_depth(1000) error(e, 0) end)()", "Cannot serialise, excessive nesting (7998)"),
                ("(function() cjson.encode_max_depth(100000) local t = {} t.a = t local ok, e = pcall(cjson.encode, t) cjson.encode_max_depth(1000) error(e, 0) end)()", "Cannot serialise, excessive nesting (4000)"),
            ],
        );
    }

    #[test]
    fn cjson_decode_values() {
        let l = lua();
        assert_eq!(s(&l, "local t = cjson.decode('[1,\"a\",{\"k\":[true,null]}]') return t[1] .. t[2] .. tostring(t[3].k[1]) .. tostring(t[3].k[2] == cjson.null)"), "1atruetrue");
        assert_eq!(
            s(
                &l,
                r#"return cjson.decode('"\\u00e9\\ud83d\\ude00\\/\\n"')"#
            ),
            "\u{e9}\u{1f600}/\n"
        );
        check(
            &l,
            &[
                ("local t = cjson.decode('[0x10, 1E2, -0, Infinity, +1]') return table.concat(t, ',')", "16,100,-0,inf,1"),
                ("return cjson.decode('nan')", "nan"),
                ("return cjson.decode(' 12.5 ')", "12.5"),
                ("return cjson.decode('[1]\\0garbage')[1]", "1"),
                ("return cjson.encode(cjson.decode('{}'))", "{}"),
                ("return #cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000))", "1"),
                ("return cjson.decode_max_depth()", "1000"),
                ("return tostring(cjson.encode_keep_buffer())", "true"),
                ("local a, b, c = cjson.encode_sparse_array() return tostring(a) .. b .. c", "false210"),
                ("return cjson._NAME .. ' ' .. cjson._VERSION", "cjson 2.1.0"),
                ("local c = cjson.new() c.encode_number_precision(2) return c.encode(1.234) .. cjson.encode(1.234)", "1.21.234"),
            ],
        );
    }

    #[test]
    fn cjson_decode_errors() {
        let l = lua();
        let d = |json: &str| err(&l, &format!("cjson.decode({json:?})"));
        for (json, want) in [
            ("[1,2", "user_script:1: Expected comma or array end but found T_END at character 5"),
            ("", "user_script:1: Expected value but found T_END at character 1"),
            ("{\"a\" 1}", "user_script:1: Expected colon but found T_NUMBER at character 6"),
            ("[1] x", "user_script:1: Expected the end but found invalid token at character 5"),
            ("[\"a\\q\"]", "user_script:1: Expected value but found invalid escape code at character 4"),
            ("\"\\udc00\"", "user_script:1: Expected value but found invalid unicode escape code at character 2"),
            ("\"abc", "user_script:1: Expected value but found unexpected end of string at character 5"),
            ("{1:2}", "user_script:1: Expected object key string but found T_NUMBER at character 2"),
            ("[1 2]", "user_script:1: Expected comma or array end but found T_NUMBER at character 4"),
            ("{\"a\":1 \"b\"}", "user_script:1: Expected comma or object end but found T_STRING at character 8"),
            ("- 1", "user_script:1: Expected value but found invalid number at character 1"),
            ("tru", "user_script:1: Expected value but found invalid token at character 1"),
            ("a\u{0}", "user_script:1: JSON parser does not support UTF-16 or UTF-32"),
        ] {
            assert_eq!(d(json), want, "{json}");
        }
        check_errs(
            &l,
            &[
                ("cjson.decode(string.rep('[', 1001))", "user_script:1: Found too many nested data structures (1001) at character 1001"),
                ("cjson.decode(string.rep('{\"a\":', 1001))", "user_script:1: Found too many nested data structures (1001) at character 5001"),
                ("cjson.decode()", "user_script:1: bad argument #1 to 'decode' (expected 1 argument)"),
                ("cjson.encode_max_depth(0)", "user_script:1: bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)"),
                ("cjson.encode_invalid_numbers('x')", "user_script:1: bad argument #1 to 'encode_invalid_numbers' (invalid option 'x')"),
                ("cjson.encode_keep_buffer(1, 2)", "user_script:1: bad argument #2 to 'encode_keep_buffer' (found too many arguments)"),
                ("(function() cjson.decode_invalid_numbers(false) local ok, e = pcall(cjson.decode, '0x10') cjson.decode_invalid_numbers(true) error(e, 0) end)()", "Expected value but found invalid number at character 1"),
                ("(function() cjson.decode_max_depth(100000) local ok, e = pcall(cjson.decode, string.rep('[', 9000)) cjson.decode_max_depth(1000) error(e, 0) end)()", "Found too many nested data structures (7999) at character 7999"),
                ("(function() cjson.decode_max_depth(100000) local ok, e = pcall(cjson.decode, string.rep('{\\\"a\\\":', 9000)) cjson.decode_max_depth(1000) error(e, 0) end)()", "Found too many nested data structures (4000) at character 19996"),
            ],
        );
    }

    #[test]
    fn cjson_large_documents() {
        let l = lua();
        // Large and deep documents round-trip without exhausting reference slots.
        assert_eq!(
            s(&l, "local t = {} for i = 1, 20000 do t['k' .. i] = {i, 'v' .. i} end local d = cjson.decode(cjson.encode(t)) return d.k20000[2] .. #cjson.encode(d)"),
            "v20000486683"
        );
        assert_eq!(
            s(
                &l,
                r#"local t = cjson.decode(string.rep('[', 999) .. '"x"' .. string.rep(']', 999)) for i = 1, 998 do t = t[1] end return t[1]"#
            ),
            "x"
        );
        assert_eq!(
            s(
                &l,
                r#"local t = cjson.decode(string.rep('{"a":', 999) .. '"x"' .. string.rep('}', 999)) for i = 1, 998 do t = t.a end return t.a"#
            ),
            "x"
        );
    }
}
