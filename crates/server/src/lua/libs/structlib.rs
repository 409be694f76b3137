//! The `struct` library (pack / unpack / size of binary records), with the
//! semantics of the version Redis bundles on x86-64 (`long` and `size_t`
//! are 8 bytes, `int` 4, maximum alignment 8, native order little endian).

use mlua::{Lua, Table, Value};

use super::{arg_fail, c_f64_to_i64, fail, func, func_out, to_number, Args, Out, Res, MAX_C_STACK};

/// Largest size of an `i`/`I` integer.
const MAX_INT_SIZE: i32 = 32;
/// Default alignment of `!` (alignment of a double on x86-64).
const MAX_ALIGN: i32 = 8;

/// Byte order and alignment state while walking a format.
struct Header {
    little: bool,
    align: usize,
}

impl Header {
    fn new() -> Self {
        Header {
            little: true,
            align: 1,
        }
    }
}

/// A cursor over a format string (which ends at its first NUL, like C).
struct Fmt<'a> {
    s: &'a [u8],
    i: usize,
}

impl Fmt<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.s.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    /// Reads an optional decimal number.
    fn getnum(&mut self, default: i32) -> Res<i32> {
        if !self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: i32 = 0;
        while let Some(&c) = self.s.get(self.i).filter(|c| c.is_ascii_digit()) {
            let d = (c - b'0') as i32;
            if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
                return fail("integral size overflow");
            }
            a = a * 10 + d;
            self.i += 1;
        }
        Ok(a)
    }
}

fn fmt_of(b: &[u8]) -> Fmt<'_> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    Fmt { s: &b[..end], i: 0 }
}

/// Size of option `opt` (0 for options without a size).
fn optsize(opt: u8, fmt: &mut Fmt<'_>) -> Res<usize> {
    Ok(match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'x' => 1,
        b'c' => fmt.getnum(1)? as usize,
        b'i' | b'I' => {
            let sz = fmt.getnum(4)?;
            if sz > MAX_INT_SIZE {
                return fail(format!(
                    "integral size {sz} is larger than limit of {MAX_INT_SIZE}"
                ));
            }
            sz as usize
        }
        _ => 0,
    })
}

/// Padding needed before an item of `size` bytes at offset `len`.
fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size.wrapping_sub(len & size.wrapping_sub(1))) & size.wrapping_sub(1)
}

/// Endianness, alignment and blanks; anything else is an invalid option.
fn controloptions(opt: u8, fmt: &mut Fmt<'_>, h: &mut Header) -> Res<()> {
    match opt {
        b' ' => {}
        b'>' => h.little = false,
        b'<' => h.little = true,
        b'!' => {
            let a = fmt.getnum(MAX_ALIGN)?;
            if a <= 0 || a & (a - 1) != 0 {
                return fail(format!("alignment {a} is not a power of 2"));
            }
            h.align = a as usize;
        }
        _ => {
            let mut msg = b"invalid format option '".to_vec();
            msg.push(opt);
            msg.push(b'\'');
            return arg_fail(1, msg);
        }
    }
    Ok(())
}

/// The C conversion of a double to the library's unsigned integer type.
fn to_uint(n: f64) -> u64 {
    if n.is_nan() {
        1 << 63
    } else if n < 0.0 {
        c_f64_to_i64(n) as u64
    } else if n < 9_223_372_036_854_775_808.0 {
        n as u64
    } else {
        // x86-64: convert n - 2^63, then flip the top bit (0 when out of range).
        (c_f64_to_i64(n - 9_223_372_036_854_775_808.0) as u64) ^ (1 << 63)
    }
}

/// `struct.pack(fmt, ...)`.
fn pack(lua: &Lua, args: &Args) -> Res<Vec<Value>> {
    let fmt_bytes = args.check_bytes(lua, 1)?;
    let mut fmt = fmt_of(&fmt_bytes);
    let mut h = Header::new();
    let mut arg = 2usize;
    let mut out: Vec<u8> = Vec::new();
    // The C library pushes a nil mark right after its arguments.
    let absent = Some("nil");
    let num = |i: usize| -> Res<f64> {
        if i == args.len() + 1 {
            args.check_number_or(lua, i, absent)
        } else {
            args.check_number(lua, i)
        }
    };
    while let Some(opt) = fmt.next() {
        let mut size = optsize(opt, &mut fmt)?;
        let toalign = gettoalign(out.len(), &h, opt, size);
        out.resize(out.len() + toalign, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let mut value = to_uint(num(arg)?);
                arg += 1;
                let mut buf = [0u8; MAX_INT_SIZE as usize];
                for k in 0..size {
                    let idx = if h.little { k } else { size - 1 - k };
                    buf[idx] = (value & 0xff) as u8;
                    value >>= 8;
                }
                out.extend_from_slice(&buf[..size]);
            }
            b'x' => out.push(0),
            b'f' | b'd' => {
                let v = num(arg)?;
                arg += 1;
                let mut b = if opt == b'f' {
                    (v as f32).to_le_bytes().to_vec()
                } else {
                    v.to_le_bytes().to_vec()
                };
                if !h.little {
                    b.reverse();
                }
                out.extend_from_slice(&b);
            }
            b'c' | b's' => {
                let s = if arg == args.len() + 1 {
                    args.check_bytes_or(lua, arg, absent)?
                } else {
                    args.check_bytes(lua, arg)?
                };
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return arg_fail(arg as i64, "string too short");
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => controloptions(opt, &mut fmt, &mut h)?,
        }
    }
    Ok(vec![Value::String(lua.create_string(&out)?)])
}

/// Reads an integer of `size` bytes.
fn getinteger(buf: &[u8], little: bool, signed: bool, size: usize) -> f64 {
    let mut l: u64 = 0;
    for k in 0..size {
        let b = if little { buf[size - 1 - k] } else { buf[k] };
        l = (l << 8) | b as u64;
    }
    if !signed {
        return l as f64;
    }
    let shift = (size as u32).wrapping_mul(8).wrapping_sub(1);
    let mask = u64::MAX.wrapping_shl(shift);
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

/// `struct.unpack(fmt, data [, pos])`.
fn unpack(lua: &Lua, args: &Args, out: &mut Out<'_>) -> Res<()> {
    let fmt_bytes = args.check_bytes(lua, 1)?;
    let data = args.check_bytes(lua, 2)?;
    let ld = data.len();
    let start = args.opt_integer(lua, 3, 1)? as u64 as usize;
    if start == 0 {
        return arg_fail(3, "offset must be 1 or greater");
    }
    let mut pos = start - 1;
    let mut fmt = fmt_of(&fmt_bytes);
    let mut h = Header::new();
    while let Some(opt) = fmt.next() {
        let mut size = optsize(opt, &mut fmt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if size > ld || pos > ld - size {
            return arg_fail(2, "data string too short");
        }
        // The C library keeps its two arguments and checks for two slots.
        if 2 + out.len() + 2 > MAX_C_STACK {
            return fail("stack overflow (too many results)");
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = opt.is_ascii_lowercase();
                let v = getinteger(&data[pos..pos + size], h.little, signed, size);
                out.push(Value::Number(v))?;
            }
            b'x' => {}
            b'f' | b'd' => {
                let width = if opt == b'f' { 4 } else { 8 };
                let mut b = [0u8; 8];
                b[..width].copy_from_slice(&data[pos..pos + width]);
                if !h.little {
                    b[..width].reverse();
                }
                let v = if opt == b'f' {
                    let mut f = [0u8; 4];
                    f.copy_from_slice(&b[..4]);
                    f32::from_le_bytes(f) as f64
                } else {
                    f64::from_le_bytes(b)
                };
                out.push(Value::Number(v))?;
            }
            b'c' => {
                if size == 0 {
                    let prev = match out.last()? {
                        Some(v) => to_number(lua, &v)?,
                        None => None,
                    };
                    let Some(n) = prev else {
                        return fail("format 'c0' needs a previous size");
                    };
                    size = to_uint(n) as usize;
                    out.pop()?;
                    if size > ld || pos > ld - size {
                        return arg_fail(2, "data string too short");
                    }
                }
                out.push(Value::String(lua.create_string(&data[pos..pos + size])?))?;
            }
            b's' => {
                let Some(len) = data[pos..].iter().position(|&c| c == 0) else {
                    return fail("unfinished string in data");
                };
                out.push(Value::String(lua.create_string(&data[pos..pos + len])?))?;
                size = len + 1;
            }
            _ => controloptions(opt, &mut fmt, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    out.push(Value::Number(pos.wrapping_add(1) as i64 as f64))?;
    Ok(())
}

/// `struct.size(fmt)`.
fn size(lua: &Lua, args: &Args) -> Res<Vec<Value>> {
    let fmt_bytes = args.check_bytes(lua, 1)?;
    let mut fmt = fmt_of(&fmt_bytes);
    let mut h = Header::new();
    let mut pos: usize = 0;
    while let Some(opt) = fmt.next() {
        let size = optsize(opt, &mut fmt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if opt == b's' {
            return arg_fail(1, "option 's' has no fixed size");
        } else if opt == b'c' && size == 0 {
            return arg_fail(1, "option 'c0' has no fixed size");
        }
        if !opt.is_ascii_alphanumeric() {
            controloptions(opt, &mut fmt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(vec![Value::Number(pos as i64 as f64)])
}

/// Builds the `struct` table.
pub(crate) fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", func(lua, pack)?)?;
    t.raw_set("unpack", func_out(lua, unpack)?)?;
    t.raw_set("size", func(lua, size)?)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, check_errs, eval, lua};

    #[test]
    fn struct_pack_bytes() {
        let l = lua();
        let tiny = 1e-300f64.to_le_bytes();
        for (code, want) in [
            (
                "return struct.pack('>i16', -1)",
                &b"\0\0\0\0\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff"[..],
            ),
            ("return struct.pack('!4bi', 1, 2)", b"\x01\0\0\0\x02\0\0\0"),
            (
                "return struct.pack('!bh!2i3', 1, 2, 3)",
                b"\x01\0\x02\0\x03\0\0",
            ),
            ("return struct.pack('d', 1e-300)", &tiny),
            ("return struct.pack('f', 0.1)", b"\xcd\xcc\xcc\x3d"),
            ("return struct.pack('B', 2^64)", b"\0"),
            ("return struct.pack('>I8', 2^63)", b"\x80\0\0\0\0\0\0\0"),
            ("return struct.pack('T', -1)", &[0xff; 8]),
            ("return struct.pack('b', '12')", b"\x0c"),
            ("return struct.pack('i0', 5)", b""),
            (
                "return struct.pack('s c2 c0', 'ab', 'xyz', 'q')",
                b"ab\0xyq",
            ),
            ("return struct.pack('>h<h', 1, 1)", b"\0\x01\x01\0"),
        ] {
            assert_eq!(eval(&l, code), want, "{code}");
        }
    }

    #[test]
    fn struct_unpack_values() {
        let l = lua();
        check(
            &l,
            &[
                ("return select('#', struct.unpack('<i16', string.rep('\\255', 16)))", "2"),
                ("return (struct.unpack('<i16', string.rep('\\255', 16)))", "-1"),
                ("return table.concat({struct.unpack('c1c0', '5hello')}, ',')", "hello,7"),
                ("return table.concat({struct.unpack('i', '\\1\\0\\0\\0\\2')}, ',')", "1,5"),
                ("return table.concat({struct.unpack('i0', '')}, ',')", "0,1"),
                ("return table.concat({struct.unpack('b', 'a', 1.9)}, ',')", "97,2"),
                ("return table.concat({struct.unpack('>H s B', '\\1\\2ab\\0\\255')}, ',')", "258,ab,255,7"),
                ("return struct.size('i4bT')", "13"),
                ("return struct.size('!bd')", "16"),
                ("return struct.size('y')", "0"),
                ("return select('#', struct.unpack(string.rep('b', 7997), string.rep('a', 8000)))", "7998"),
            ],
        );
    }

    #[test]
    fn struct_errors() {
        let l = lua();
        check_errs(
            &l,
            &[
                (
                    "struct.pack('i33', 1)",
                    "user_script:1: integral size 33 is larger than limit of 32",
                ),
                (
                    "struct.pack('y', 1)",
                    "user_script:1: bad argument #1 to 'pack' (invalid format option 'y')",
                ),
                (
                    "struct.pack('!3', 1)",
                    "user_script:1: alignment 3 is not a power of 2",
                ),
                (
                    "struct.unpack('i4', 'ab')",
                    "user_script:1: bad argument #2 to 'unpack' (data string too short)",
                ),
                (
                    "struct.unpack('b', 'a', 0)",
                    "user_script:1: bad argument #3 to 'unpack' (offset must be 1 or greater)",
                ),
                (
                    "struct.unpack('b', 'a', -3)",
                    "user_script:1: bad argument #2 to 'unpack' (data string too short)",
                ),
                (
                    "struct.size('s')",
                    "user_script:1: bad argument #1 to 'size' (option 's' has no fixed size)",
                ),
                (
                    "struct.pack('c99999999999999999999', 'a')",
                    "user_script:1: integral size overflow",
                ),
                (
                    "struct.pack('c5', 'ab')",
                    "user_script:1: bad argument #3 to 'pack' (string too short)",
                ),
                (
                    "struct.unpack('c0', 'abc')",
                    "user_script:1: format 'c0' needs a previous size",
                ),
                (
                    "struct.unpack('s', 'abc')",
                    "user_script:1: unfinished string in data",
                ),
                (
                    "struct.pack('b')",
                    "user_script:1: bad argument #2 to 'pack' (number expected, got nil)",
                ),
                (
                    "struct.pack('bbb', 1)",
                    "user_script:1: bad argument #3 to 'pack' (number expected, got nil)",
                ),
                (
                    "struct.pack('b', 'x')",
                    "user_script:1: bad argument #2 to 'pack' (number expected, got string)",
                ),
                (
                    "struct.pack()",
                    "user_script:1: bad argument #1 to 'pack' (string expected, got no value)",
                ),
                (
                    "struct.unpack('c2147483647', 'a')",
                    "user_script:1: bad argument #2 to 'unpack' (data string too short)",
                ),
                (
                    "struct.unpack(string.rep('b', 7998), string.rep('a', 8000))",
                    "user_script:1: stack overflow (too many results)",
                ),
            ],
        );
    }
}
