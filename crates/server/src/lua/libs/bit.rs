//! The `bit` library (LuaBitOp 1.0.2 semantics, with Redis's `tohex` fix).
//!
//! Arguments are normalised to 32 bits the way LuaBitOp does it: the
//! number plus 2^52 + 2^51, keeping the low 32 bits of the double's
//! representation (rounds to nearest, wraps modulo 2^32). Results are
//! signed 32-bit numbers.

use mlua::{Lua, Table, Value};

use super::{func, Args, Res};

/// Normalises argument `i` to 32 bits.
fn barg(lua: &Lua, args: &Args, i: usize) -> Res<u32> {
    let n = args.check_number(lua, i)?;
    Ok(tobit(n))
}

/// LuaBitOp's number to 32-bit conversion.
fn tobit(n: f64) -> u32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32
}

/// A 32-bit result as a Lua number.
fn ret(b: u32) -> Res<Vec<Value>> {
    Ok(vec![Value::Number(b as i32 as f64)])
}

/// `bit.tohex(x [, n])`.
fn tohex(lua: &Lua, args: &Args) -> Res<Vec<Value>> {
    let mut b = barg(lua, args, 1)?;
    let mut n: i32 = if args.is_none(2) {
        8
    } else {
        barg(lua, args, 2)? as i32
    };
    if n == i32::MIN {
        n = i32::MIN + 1;
    }
    let digits: &[u8; 16] = if n < 0 {
        n = -n;
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let n = n.min(8) as usize;
    let mut buf = [0u8; 8];
    for slot in buf[..n].iter_mut().rev() {
        *slot = digits[(b & 15) as usize];
        b >>= 4;
    }
    Ok(vec![Value::String(lua.create_string(&buf[..n])?)])
}

/// A variadic fold (`band`, `bor`, `bxor`): arguments from the last down.
fn fold(lua: &Lua, args: &Args, op: fn(u32, u32) -> u32) -> Res<Vec<Value>> {
    let mut b = barg(lua, args, 1)?;
    let mut i = args.len();
    while i > 1 {
        b = op(b, barg(lua, args, i)?);
        i -= 1;
    }
    ret(b)
}

/// A shift or rotation: `x` and a count taken modulo 32.
fn shift(lua: &Lua, args: &Args, op: fn(u32, u32) -> u32) -> Res<Vec<Value>> {
    let b = barg(lua, args, 1)?;
    let n = barg(lua, args, 2)? & 31;
    ret(op(b, n))
}

/// Builds the `bit` table.
pub(crate) fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("tobit", func(lua, |lua, a| ret(barg(lua, a, 1)?))?)?;
    t.raw_set("bnot", func(lua, |lua, a| ret(!barg(lua, a, 1)?))?)?;
    t.raw_set("band", func(lua, |lua, a| fold(lua, a, |x, y| x & y))?)?;
    t.raw_set("bor", func(lua, |lua, a| fold(lua, a, |x, y| x | y))?)?;
    t.raw_set("bxor", func(lua, |lua, a| fold(lua, a, |x, y| x ^ y))?)?;
    t.raw_set("lshift", func(lua, |lua, a| shift(lua, a, |x, n| x << n))?)?;
    t.raw_set("rshift", func(lua, |lua, a| shift(lua, a, |x, n| x >> n))?)?;
    t.raw_set(
        "arshift",
        func(lua, |lua, a| shift(lua, a, |x, n| ((x as i32) >> n) as u32))?,
    )?;
    t.raw_set("rol", func(lua, |lua, a| shift(lua, a, u32::rotate_left))?)?;
    t.raw_set("ror", func(lua, |lua, a| shift(lua, a, u32::rotate_right))?)?;
    t.raw_set(
        "bswap",
        func(lua, |lua, a| ret(barg(lua, a, 1)?.swap_bytes()))?,
    )?;
    t.raw_set("tohex", func(lua, tohex)?)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, check_errs, lua};

    #[test]
    fn bit_basic_ops() {
        let l = lua();
        check(
            &l,
            &[
                ("return bit.tobit(0xffffffff)", "-1"),
                ("return bit.tobit(2^32 + 5)", "5"),
                ("return bit.tobit(1.5)", "2"),
                ("return bit.tobit(2.5)", "2"),
                ("return bit.tobit(-1.5)", "-2"),
                ("return bit.tobit('12')", "12"),
                ("return bit.bnot(0)", "-1"),
                ("return bit.band(0xff, 0x0f, 0x3)", "3"),
                ("return bit.bor(1, 2, 4, 8)", "15"),
                ("return bit.bxor(5)", "5"),
                ("return bit.lshift(1, 31)", "-2147483648"),
                ("return bit.lshift(1, 33)", "2"),
                ("return bit.rshift(-1, 28)", "15"),
                ("return bit.arshift(-256, 4)", "-16"),
                ("return bit.rol(0x12345678, 8)", "878082066"),
                ("return bit.ror(0x12345678, 8)", "2014458966"),
                ("return bit.tobit(2^53 + 3)", "2"),
                ("return bit.tobit(1e300)", "-2013235812"),
                ("return bit.rol(7, 0)", "7"),
                ("return bit.bswap(0x12345678)", "2018915346"),
            ],
        );
    }

    #[test]
    fn bit_tohex() {
        let l = lua();
        check(
            &l,
            &[
                ("return bit.tohex(255)", "000000ff"),
                ("return bit.tohex(255, 2)", "ff"),
                ("return bit.tohex(255, -4)", "00FF"),
                ("return bit.tohex(-1, 12)", "ffffffff"),
                ("return bit.tohex(1, 0)", ""),
                ("return bit.tohex(65535, -2147483648)", "0000FFFF"),
                ("return bit.tohex(65535, 2147483647)", "0000ffff"),
            ],
        );
    }

    #[test]
    fn bit_errors() {
        let l = lua();
        check_errs(
            &l,
            &[
                (
                    "bit.tohex()",
                    "user_script:1: bad argument #1 to 'tohex' (number expected, got no value)",
                ),
                (
                    "bit.band(1, 2, 'x', {})",
                    "user_script:1: bad argument #4 to 'band' (number expected, got table)",
                ),
                (
                    "bit.tohex(1, nil)",
                    "user_script:1: bad argument #2 to 'tohex' (number expected, got nil)",
                ),
            ],
        );
    }
}
