//! The `cmsgpack` library (lua-cmsgpack 0.4.0 semantics): MessagePack
//! `pack(...)`, `unpack`, `unpack_one` and `unpack_limit`.
//!
//! Decoding never allocates more than the input justifies (every element
//! consumes at least one byte) and reproduces the C library's stack limits,
//! which also bound the nesting depth.

use mlua::{Lua, Table, Value};

use super::{
    arg_fail, c_f64_to_i32, c_f64_to_i64, exact, fail, func, func_out, next_entry, scan_keys, Args,
    Fail, Out, Res, MAX_C_STACK,
};

/// Output size at which packing gives up instead of growing further.
const MAX_OUTPUT: usize = 1 << 30;

/// Tables nested deeper than this are packed as nil.
const MAX_NESTING: usize = 16;

/// Appends the header of a string of `len` bytes.
fn put_str_header(buf: &mut Vec<u8>, len: usize) {
    if len < 32 {
        buf.push(0xa0 | len as u8);
    } else if len <= 0xff {
        buf.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        buf.push(0xda);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdb);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Appends an integer with the smallest encoding.
fn put_int(buf: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            buf.push(n as u8);
        } else if n <= 0xff {
            buf.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            buf.push(0xcd);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            buf.push(0xce);
            buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            buf.push(0xcf);
            buf.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        buf.push(n as i8 as u8);
    } else if n >= -128 {
        buf.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        buf.push(0xd1);
        buf.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        buf.push(0xd2);
        buf.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        buf.push(0xd3);
        buf.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends an array (`map == false`) or map header.
fn put_container(buf: &mut Vec<u8>, n: u64, map: bool) {
    let (fix, b16, b32) = if map {
        (0x80, 0xde, 0xdf)
    } else {
        (0x90, 0xdc, 0xdd)
    };
    if n <= 15 {
        buf.push(fix | n as u8);
    } else if n <= 0xffff {
        buf.push(b16);
        buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        buf.push(b32);
        buf.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// Appends a number: an integer when it is one, else a float32 when that
/// is exact, else a float64.
fn put_number(buf: &mut Vec<u8>, n: f64) {
    if !n.is_infinite() && c_f64_to_i64(n) as f64 == n {
        put_int(buf, c_f64_to_i64(n));
        return;
    }
    let f = n as f32;
    if f as f64 == n {
        buf.push(0xca);
        buf.extend_from_slice(&f.to_be_bytes());
    } else {
        buf.push(0xcb);
        buf.extend_from_slice(&n.to_be_bytes());
    }
}

/// Whether the table's keys are exactly the integers 1..N.
fn is_array(lua: &Lua, t: &Table) -> mlua::Result<bool> {
    let scan = scan_keys(lua, t, |k| {
        k > 0.0 && !k.is_infinite() && c_f64_to_i32(k) as f64 == k
    })?;
    Ok(scan.all && scan.max == scan.items)
}

/// Appends the encoding of `v` at nesting `level`.
fn encode(lua: &Lua, buf: &mut Vec<u8>, v: Value, level: usize) -> Res<()> {
    if buf.len() > MAX_OUTPUT {
        return Err(Fail::Raw(b"not enough memory".to_vec()));
    }
    match v {
        Value::String(s) => {
            let b = s.as_bytes();
            put_str_header(buf, b.len());
            buf.extend_from_slice(&b);
        }
        Value::Boolean(b) => buf.push(if b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => put_number(buf, i as f64),
        Value::Number(n) => put_number(buf, n),
        Value::Table(t) if level < MAX_NESTING => {
            if is_array(lua, &t)? {
                let len = t.raw_len();
                put_container(buf, len as u64, false);
                for i in 1..=len {
                    let v: Value = t.get(i)?;
                    let v = exact(&t, i, v)?;
                    encode(lua, buf, v, level + 1)?;
                }
            } else {
                let mut count: u64 = 0;
                let mut key = Value::Nil;
                while let Some((k, _)) = next_entry(lua, &t, key)? {
                    count += 1;
                    key = k;
                }
                put_container(buf, count, true);
                let mut key = Value::Nil;
                while let Some((k, v)) = next_entry(lua, &t, key)? {
                    encode(lua, buf, k.clone(), level + 1)?;
                    encode(lua, buf, v, level + 1)?;
                    key = k;
                }
            }
        }
        _ => buf.push(0xc0),
    }
    Ok(())
}

/// `cmsgpack.pack(...)`.
fn pack(lua: &Lua, args: &Args) -> Res<Vec<Value>> {
    let n = args.len();
    if n == 0 {
        return arg_fail(0, "MessagePack pack needs input.");
    }
    if 2 * n > MAX_C_STACK {
        return arg_fail(0, "Too many arguments for MessagePack pack.");
    }
    let mut buf = Vec::new();
    for i in 1..=n {
        encode(lua, &mut buf, args.get(i)?, 0)?;
    }
    Ok(vec![Value::String(lua.create_string(&buf)?)])
}

/// Why decoding stopped.
enum Stop {
    /// Not enough input.
    Eof,
    /// A byte that starts no supported type.
    BadFormat,
    /// Anything else (stack limits, interpreter errors).
    Fail(Fail),
}

impl From<mlua::Error> for Stop {
    fn from(e: mlua::Error) -> Self {
        Stop::Fail(Fail::Lua(e))
    }
}

/// Decoding state: the input, the read position and the number of Lua
/// stack slots the C library would be using.
struct Cursor<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
    top: usize,
}

impl Cursor<'_> {
    /// Takes `n` bytes.
    fn take(&mut self, n: usize) -> Result<&[u8], Stop> {
        if self.data.len() - self.pos < n {
            return Err(Stop::Eof);
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Fails like `luaL_checkstack(L, n, msg)` would.
    fn check_stack(&self, n: usize, msg: &str) -> Result<(), Stop> {
        if self.top + n > MAX_C_STACK {
            return Err(Stop::Fail(Fail::Msg(
                format!("stack overflow ({msg})").into_bytes(),
            )));
        }
        Ok(())
    }

    fn be(&mut self, n: usize) -> Result<u64, Stop> {
        Ok(self.take(n)?.iter().fold(0u64, |a, &b| (a << 8) | b as u64))
    }

    fn string(&mut self, len: usize) -> Result<Item, Stop> {
        let lua = self.lua;
        let s = self.take(len)?;
        Ok(Item::Value(Value::String(lua.create_string(s)?)))
    }

    /// Reads the next item: a complete scalar, or the header of a container.
    fn item(&mut self) -> Result<Item, Stop> {
        if self.pos >= self.data.len() {
            return Err(Stop::Eof);
        }
        self.check_stack(
            1,
            "too many return values at once; use unpack_one or unpack_limit instead.",
        )?;
        let b = self.data[self.pos];
        let num = |n: f64| Ok(Item::Value(Value::Number(n)));
        match b {
            0xca..=0xd3 => {
                let size = match b {
                    0xcc | 0xd0 => 1,
                    0xcd | 0xd1 => 2,
                    0xce | 0xd2 | 0xca => 4,
                    _ => 8,
                };
                if self.data.len() - self.pos < size + 1 {
                    return Err(Stop::Eof);
                }
                self.pos += 1;
                let v = self.be(size)?;
                match b {
                    0xcc..=0xce => num(v as f64),
                    0xd0 => num(v as u8 as i8 as f64),
                    0xd1 => num(v as u16 as i16 as f64),
                    0xd2 => num(v as u32 as i32 as f64),
                    0xcf | 0xd3 => num(v as i64 as f64),
                    0xca => num(f32::from_bits(v as u32) as f64),
                    _ => num(f64::from_bits(v)),
                }
            }
            0xc0 => {
                self.pos += 1;
                Ok(Item::Value(Value::Nil))
            }
            0xc2 | 0xc3 => {
                self.pos += 1;
                Ok(Item::Value(Value::Boolean(b == 0xc3)))
            }
            0xd9 | 0xda => {
                let size = if b == 0xd9 { 1 } else { 2 };
                if self.data.len() - self.pos < size + 1 {
                    return Err(Stop::Eof);
                }
                let l = self.data[self.pos + 1..self.pos + 1 + size]
                    .iter()
                    .fold(0usize, |a, &x| (a << 8) | x as usize);
                if self.data.len() - self.pos < 1 + size + l {
                    return Err(Stop::Eof);
                }
                self.pos += 1 + size;
                self.string(l)
            }
            0xdb..=0xdf => {
                let size = if b == 0xdc || b == 0xde { 2 } else { 4 };
                if self.data.len() - self.pos < size + 1 {
                    return Err(Stop::Eof);
                }
                self.pos += 1;
                let l = self.be(size)? as usize;
                match b {
                    0xdb => self.string(l),
                    0xdc | 0xdd => Ok(Item::Array(l)),
                    _ => Ok(Item::Map(l)),
                }
            }
            _ if b & 0x80 == 0 => {
                self.pos += 1;
                num(b as f64)
            }
            _ if b & 0xe0 == 0xe0 => {
                self.pos += 1;
                num(b as i8 as f64)
            }
            _ if b & 0xe0 == 0xa0 => {
                let l = (b & 0x1f) as usize;
                if self.data.len() - self.pos < 1 + l {
                    return Err(Stop::Eof);
                }
                self.pos += 1;
                self.string(l)
            }
            _ if b & 0xf0 == 0x90 => {
                self.pos += 1;
                Ok(Item::Array((b & 0xf) as usize))
            }
            _ if b & 0xf0 == 0x80 => {
                self.pos += 1;
                Ok(Item::Map((b & 0xf) as usize))
            }
            _ => Err(Stop::BadFormat),
        }
    }

    /// Decodes one value; containers are walked with an explicit stack.
    fn value(&mut self) -> Result<Value, Stop> {
        let top0 = self.top;
        let mut stack: Vec<Frame> = Vec::new();
        // The innermost open table and its pending map key are held here;
        // the enclosing ones live in `holder` (table at `2d - 1`, pending
        // key at `2d` for depth d), so Rust holds few references.
        let mut cur: Option<Table> = None;
        let mut cur_key = Value::Nil;
        let mut holder: Option<Table> = None;
        loop {
            self.top = match stack.last() {
                None => top0,
                Some(f) if f.is_map && !f.has_key => f.base + 1,
                Some(f) => f.base + 2,
            };
            let (t, frame) = match self.item()? {
                Item::Value(v) => (None, Err(v)),
                Item::Array(len) => {
                    let t = self.lua.create_table()?;
                    let base = self.top;
                    self.top = base + 1;
                    self.check_stack(1, "in function mp_decode_to_lua_array")?;
                    (Some(t), Ok(Frame::new(len, base, false)))
                }
                Item::Map(len) => {
                    let t = self.lua.create_table()?;
                    (Some(t), Ok(Frame::new(len, self.top, true)))
                }
            };
            let mut v = match (t, frame) {
                (Some(t), Ok(f)) if f.remaining > 0 => {
                    if let Some(parent) = cur.take() {
                        let d = stack.len();
                        if holder.is_none() {
                            holder = Some(self.lua.create_table()?);
                        }
                        if let Some(h) = &holder {
                            h.raw_set(2 * d - 1, parent)?;
                            h.raw_set(2 * d, std::mem::replace(&mut cur_key, Value::Nil))?;
                        }
                    }
                    cur = Some(t);
                    stack.push(f);
                    continue;
                }
                (Some(t), _) => Value::Table(t),
                (None, Err(v)) => v,
                (None, Ok(_)) => Value::Nil,
            };
            // Hand the value to its container, closing finished containers.
            loop {
                let (Some(f), Some(t)) = (stack.last_mut(), &cur) else {
                    return Ok(v);
                };
                if f.is_map {
                    if !f.has_key {
                        f.has_key = true;
                        cur_key = v;
                        break;
                    }
                    f.has_key = false;
                    let k = std::mem::replace(&mut cur_key, Value::Nil);
                    match &k {
                        Value::Nil => {
                            return Err(Stop::Fail(Fail::Raw(b"table index is nil".to_vec())));
                        }
                        Value::Number(n) if n.is_nan() => {
                            return Err(Stop::Fail(Fail::Raw(b"table index is NaN".to_vec())));
                        }
                        _ => t.raw_set(k, v)?,
                    }
                } else {
                    t.raw_set(f.next, v)?;
                    f.next += 1;
                }
                f.remaining -= 1;
                if f.remaining > 0 {
                    break;
                }
                stack.pop();
                v = cur.take().map(Value::Table).unwrap_or(Value::Nil);
                let d = stack.len();
                if d > 0 {
                    if let Some(h) = &holder {
                        cur = Some(h.raw_get(2 * d - 1)?);
                        if stack.last().is_some_and(|f| f.has_key) {
                            let k: Value = h.raw_get(2 * d)?;
                            cur_key = exact(h, 2 * d, k)?;
                        }
                    }
                }
            }
        }
    }
}

/// What the next bytes of the input hold.
enum Item {
    Value(Value),
    Array(usize),
    Map(usize),
}

/// A container being filled while decoding (the table and a map's pending
/// key live in the cursor's Lua-side holder table).
struct Frame {
    remaining: usize,
    next: usize,
    base: usize,
    is_map: bool,
    has_key: bool,
}

impl Frame {
    fn new(remaining: usize, base: usize, is_map: bool) -> Self {
        Frame {
            remaining,
            next: 1,
            base,
            is_map,
            has_key: false,
        }
    }
}

/// The shared body of the unpack functions; `base` is the number of
/// arguments the C function leaves on its stack.
fn unpack_full(
    lua: &Lua,
    args: &Args,
    out: &mut Out<'_>,
    limit: i64,
    offset: i64,
    base: usize,
) -> Res<()> {
    let data = args.check_bytes(lua, 1)?;
    let len = data.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return fail(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        ));
    } else if offset as u64 > len as u64 {
        return fail(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        ));
    }
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let mut cur = Cursor {
        lua,
        data: &data,
        pos: offset as usize,
        top: base,
    };
    if !decode_all {
        // Placeholder for the next offset, returned first.
        out.push(Value::Nil)?;
    }
    let first = out.len();
    let mut cnt: i64 = 0;
    while cur.pos < len && cnt < limit {
        cur.top = base + out.len() - first;
        match cur.value() {
            Ok(v) => out.push(v)?,
            Err(Stop::Eof) => return fail("Missing bytes in input."),
            Err(Stop::BadFormat) => return fail("Bad data format in input."),
            Err(Stop::Fail(f)) => return Err(f),
        }
        cnt += 1;
    }
    if !decode_all {
        cur.top = base + out.len() - first;
        if let Err(Stop::Fail(f)) = cur.check_stack(1, "in function mp_unpack_full") {
            return Err(f);
        }
        let next = if cur.pos == len { -1 } else { cur.pos as i64 };
        out.set(1, Value::Number(next as f64))?;
    }
    Ok(())
}

/// Builds the `cmsgpack` table.
pub(crate) fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", func(lua, pack)?)?;
    t.raw_set(
        "unpack",
        func_out(lua, |lua, a, out| unpack_full(lua, a, out, 0, 0, a.len()))?,
    )?;
    t.raw_set(
        "unpack_one",
        func_out(lua, |lua, a, out| {
            let offset = a.opt_integer(lua, 2, 0)?;
            unpack_full(lua, a, out, 1, offset, 1)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        func_out(lua, |lua, a, out| {
            let limit = a.check_integer(lua, 2)?;
            let offset = a.opt_integer(lua, 3, 0)?;
            unpack_full(lua, a, out, limit, offset, 1)
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Redis Ltd.")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, check_errs, eval, lua, s};

    fn hex(l: &mlua::Lua, expr: &str) -> String {
        eval(l, &format!("return {expr}"))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn cmsgpack_pack_bytes() {
        let l = lua();
        for (expr, want) in [
            (
                "cmsgpack.pack(1, -1, 127, 128, -32, -33, 256, 65536, 2^32)",
                "01ff7fcc80e0d0dfcd0100ce00010000cf0000000100000000",
            ),
            (
                "cmsgpack.pack(-129, -32769, -2^31 - 1)",
                "d1ff7fd2ffff7fffd3ffffffff7fffffff",
            ),
            (
                "cmsgpack.pack(0.5, 0.1, 1/0, -0.0)",
                "ca3f000000cb3fb999999999999aca7f80000000",
            ),
            ("cmsgpack.pack(1e-300)", "cb01a56e1fc2f8f359"),
            (
                "cmsgpack.pack(true, false, nil, cjson.null, print)",
                "c3c2c0c0c0",
            ),
            ("cmsgpack.pack({1, 2, {}})", "93010290"),
            ("cmsgpack.pack(0/0)", "cbfff8000000000000"),
            ("cmsgpack.pack(2^63, -2^63)", "ca5f000000d38000000000000000"),
            ("cmsgpack.pack({a = 1})", "81a16101"),
        ] {
            assert_eq!(hex(&l, expr), want, "{expr}");
        }
        for (expr, prefix) in [
            ("cmsgpack.pack(string.rep('x', 32))", "d920"),
            ("cmsgpack.pack(string.rep('x', 256))", "da0100"),
            ("cmsgpack.pack(string.rep('x', 65536))", "db00010000"),
        ] {
            assert!(hex(&l, expr).starts_with(prefix), "{expr}");
        }
        assert_eq!(
            hex(&l, "cmsgpack.pack('abc', string.rep('x', 32))").len(),
            8 + 4 + 64
        );
        assert_eq!(hex(&l, "cmsgpack.pack({[1] = 1, [3] = 3})").len(), 10);
        // Nesting deeper than 16 becomes nil.
        let deep = "(function() local t = {} local c = t for i = 1, 20 do c[1] = {} c = c[1] end return cmsgpack.pack(t) end)()";
        assert_eq!(hex(&l, deep), format!("{}c0", "91".repeat(16)));
    }

    #[test]
    fn cmsgpack_unpack_values() {
        let l = lua();
        check(
            &l,
            &[
                (
                    "return table.concat({cmsgpack.unpack(cmsgpack.pack(1, 'a', 2.5, -7))}, ',')",
                    "1,a,2.5,-7",
                ),
                (
                    "return cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255')",
                    "-1",
                ),
                ("return select('#', cmsgpack.unpack(''))", "0"),
                (
                    "return table.concat({cmsgpack.unpack_one('\\1\\2\\3', 1)}, ',')",
                    "2,2",
                ),
                (
                    "return table.concat({cmsgpack.unpack_one('\\1\\2\\3', 2)}, ',')",
                    "-1,3",
                ),
                (
                    "return table.concat({cmsgpack.unpack_limit('\\1\\2\\3', 0, 0)}, ',')",
                    "1,2,3",
                ),
                (
                    "return table.concat({cmsgpack.unpack_limit('\\1\\2\\3', 2)}, ',')",
                    "2,1,2",
                ),
                (
                    "local t = cmsgpack.unpack(cmsgpack.pack({1, {x = 'y'}})) return t[2].x",
                    "y",
                ),
                (
                    "return select('#', cmsgpack.unpack(string.rep('\\1', 7999)))",
                    "7999",
                ),
            ],
        );
    }

    #[test]
    fn cmsgpack_errors() {
        let l = lua();
        check_errs(
            &l,
            &[
                ("cmsgpack.pack()", "user_script:1: bad argument #0 to 'pack' (MessagePack pack needs input.)"),
                ("cmsgpack.unpack('\\196')", "user_script:1: Bad data format in input."),
                ("cmsgpack.unpack('\\205\\1')", "user_script:1: Missing bytes in input."),
                ("cmsgpack.unpack('\\221\\255\\255\\255\\255\\1')", "user_script:1: Missing bytes in input."),
                ("cmsgpack.unpack('\\219\\255\\255\\255\\255\\1')", "user_script:1: Missing bytes in input."),
                ("cmsgpack.unpack_limit('\\1\\2', -1)", "user_script:1: Invalid request to unpack with offset of 0 and limit of 2."),
                ("cmsgpack.unpack_one('\\1\\2', 5)", "user_script:1: Start offset 5 greater than input length 2."),
                ("cmsgpack.unpack(string.rep('\\145', 10000) .. '\\192')", "user_script:1: stack overflow (in function mp_decode_to_lua_array)"),
                ("cmsgpack.unpack(string.rep('\\1', 10000))", "user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"),
                ("cmsgpack.unpack('\\129\\192\\1')", "table index is nil"),
                ("cmsgpack.unpack()", "user_script:1: bad argument #1 to 'unpack' (string expected, got no value)"),
            ],
        );
    }

    #[test]
    fn cmsgpack_large_inputs() {
        let l = lua();
        // Many string results must not exhaust the host's reference slots.
        assert_eq!(
            s(
                &l,
                r"return select('#', cmsgpack.unpack(string.rep('\161a', 7999)))"
            ),
            "7999"
        );
        assert_eq!(
            s(&l, "local t = {} for i = 1, 20000 do t['k' .. i] = 'v' .. i end return #cmsgpack.pack(t)"),
            "257791"
        );
        assert_eq!(
            s(&l, "local t = cmsgpack.unpack(cmsgpack.pack({a = {b = {c = {1, 'x'}}}})) return t.a.b.c[2]"),
            "x"
        );
    }
}
