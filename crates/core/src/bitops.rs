//! Bitmap operations on byte strings with Redis semantics: `BITCOUNT`,
//! `BITPOS`, `BITOP`, `GETBIT`/`SETBIT` and the `BITFIELD` integer
//! primitives.
//!
//! Bits are numbered MSB-first: bit 0 is the most significant bit of byte 0,
//! bit 7 its least significant bit, bit 8 the MSB of byte 1, and so on.
//! Multi-bit `BITFIELD` integers are stored big-endian in that bit order.
//!
//! Functions that write (`setbit`, `bitfield_set`, `bitfield_incrby`) work on
//! `&mut [u8]` and never grow it: like Redis, the caller first grows the
//! string (zero-filled) to cover the highest written bit — see
//! [`bytes_needed`] — and bits past the end are ignored.

/// Unit of the `start`/`end` arguments of `BITCOUNT` and `BITPOS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BitUnit {
    /// Offsets count bytes (the default).
    #[default]
    Byte,
    /// Offsets count bits.
    Bit,
}

/// Counts the bits set to 1 in `bytes`.
pub fn bitcount(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut total: u64 = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        total += u64::from(u64::from_ne_bytes(w).count_ones());
    }
    total
        + chunks
            .remainder()
            .iter()
            .map(|b| u64::from(b.count_ones()))
            .sum::<u64>()
}

/// Normalizes a Redis `start`/`end` pair against `total` units: negative
/// values count from the end, then both are clamped into `0..total` (`end`
/// to `total - 1`). May return `start > end` for an empty range.
fn normalize_range(start: i64, end: i64, total: i128) -> (i128, i128) {
    let (mut start, mut end) = (i128::from(start), i128::from(end));
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    if start < 0 {
        start = 0;
    }
    if end < 0 {
        end = 0;
    }
    if end >= total {
        end = total - 1;
    }
    (start, end)
}

/// Total number of `unit`s in `bytes`.
fn unit_len(bytes: &[u8], unit: BitUnit) -> i128 {
    let len = bytes.len() as i128;
    match unit {
        BitUnit::Byte => len,
        BitUnit::Bit => len * 8,
    }
}

/// Converts a normalized, non-empty unit range to an inclusive bit range.
fn to_bit_range(start: i128, end: i128, unit: BitUnit) -> (u64, u64) {
    match unit {
        BitUnit::Byte => (start as u64 * 8, end as u64 * 8 + 7),
        BitUnit::Bit => (start as u64, end as u64),
    }
}

/// Counts the set bits in the inclusive bit range `first..=last`
/// (which must lie inside `bytes`).
fn count_bit_range(bytes: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first / 8) as usize, (last / 8) as usize);
    let head_mask = 0xFFu8 >> (first % 8);
    let tail_mask = 0xFFu8 << (7 - last % 8);
    if fb == lb {
        return u64::from((bytes[fb] & head_mask & tail_mask).count_ones());
    }
    u64::from((bytes[fb] & head_mask).count_ones())
        + bitcount(&bytes[fb + 1..lb])
        + u64::from((bytes[lb] & tail_mask).count_ones())
}

/// `BITCOUNT key start end [BYTE|BIT]` on the string `bytes`: negative
/// offsets count from the end, out-of-range offsets are clamped, and an
/// empty range (including `start` and `end` both negative with
/// `start > end`) counts 0. Without a range Redis counts the whole string,
/// which is [`bitcount`].
pub fn bitcount_range(bytes: &[u8], start: i64, end: i64, unit: BitUnit) -> u64 {
    if start < 0 && end < 0 && start > end {
        return 0;
    }
    let (start, end) = normalize_range(start, end, unit_len(bytes, unit));
    if start > end {
        return 0;
    }
    let (first, last) = to_bit_range(start, end, unit);
    count_bit_range(bytes, first, last)
}

/// Finds the first bit equal to `bit` in the inclusive bit range
/// `first..=last` (inside `bytes`).
fn find_bit(bytes: &[u8], bit: bool, first: u64, last: u64) -> Option<u64> {
    let (fb, lb) = ((first / 8) as usize, (last / 8) as usize);
    // Look for a 1 in the (possibly inverted) byte, with out-of-range bits
    // masked off.
    let probe = |i: usize, mask: u8| -> Option<u64> {
        let b = if bit { bytes[i] } else { !bytes[i] } & mask;
        (b != 0).then(|| i as u64 * 8 + u64::from(b.leading_zeros()))
    };
    let head_mask = 0xFFu8 >> (first % 8);
    let tail_mask = 0xFFu8 << (7 - last % 8);
    if fb == lb {
        return probe(fb, head_mask & tail_mask);
    }
    if let Some(p) = probe(fb, head_mask) {
        return Some(p);
    }
    // Middle bytes: skip whole words equal to the "nothing here" pattern.
    let skip: u8 = if bit { 0x00 } else { 0xFF };
    let middle = &bytes[fb + 1..lb];
    let mut offset = 0;
    let mut chunks = middle.chunks_exact(8);
    for c in &mut chunks {
        if c.iter().any(|&b| b != skip) {
            break;
        }
        offset += 8;
    }
    if let Some(i) = middle[offset..].iter().position(|&b| b != skip) {
        return probe(fb + 1 + offset + i, 0xFF);
    }
    probe(lb, tail_mask)
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]` on the existing string `bytes`
/// (a missing key is Redis's special case: 0 when looking for 0, -1 for 1).
///
/// Returns the absolute bit position of the first bit equal to `bit` in the
/// range, or -1. `end` is `None` when the command gave no end; then, when
/// looking for a 0 in a range made only of 1s, the answer is the first bit
/// after the range's last byte (the string is considered zero-padded on the
/// right), whereas with an explicit end it is -1. An empty range (after
/// Redis's normalization of negative and out-of-range offsets) gives -1;
/// unlike `BITCOUNT` there is no special case for both offsets negative.
pub fn bitpos(bytes: &[u8], bit: bool, start: i64, end: Option<i64>, unit: BitUnit) -> i64 {
    let total = unit_len(bytes, unit);
    let end_given = end.is_some();
    let end = end.unwrap_or(match unit {
        // Redis computes (len << 3) + 7 here, then clamps it.
        BitUnit::Bit => i64::try_from(total + 7).unwrap_or(i64::MAX),
        BitUnit::Byte => i64::try_from(total - 1).unwrap_or(i64::MAX),
    });
    let (start, end) = normalize_range(start, end, total);
    if start > end {
        return -1;
    }
    let (first, last) = to_bit_range(start, end, unit);
    match find_bit(bytes, bit, first, last) {
        Some(p) => p as i64,
        None if !bit && !end_given => ((last / 8 + 1) * 8) as i64,
        None => -1,
    }
}

/// A `BITOP` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOp {
    /// Bitwise AND of all sources.
    And,
    /// Bitwise OR of all sources.
    Or,
    /// Bitwise XOR of all sources.
    Xor,
    /// Bitwise NOT of the (single) source.
    Not,
}

impl BitOp {
    /// Parses an operation name case-insensitively (`AND`, `or`, ...).
    pub fn parse(name: &[u8]) -> Option<BitOp> {
        match name.to_ascii_lowercase().as_slice() {
            b"and" => Some(BitOp::And),
            b"or" => Some(BitOp::Or),
            b"xor" => Some(BitOp::Xor),
            b"not" => Some(BitOp::Not),
            _ => None,
        }
    }
}

/// `BITOP op dest src...`: combines the sources byte by byte, treating
/// shorter sources (and missing keys, passed as empty slices) as
/// zero-padded; the result is as long as the longest source (empty when all
/// sources are empty, in which case Redis deletes the destination). `Not`
/// only uses the first source (Redis rejects more than one at parse time).
pub fn bitop(op: BitOp, srcs: &[&[u8]]) -> Vec<u8> {
    let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    let Some((first, rest)) = srcs.split_first() else {
        return Vec::new();
    };
    let mut out = vec![0u8; maxlen];
    out[..first.len()].copy_from_slice(first);
    match op {
        BitOp::Not => out.iter_mut().for_each(|b| *b = !*b),
        BitOp::And => {
            for src in rest {
                for (o, s) in out.iter_mut().zip(src.iter()) {
                    *o &= s;
                }
                out[src.len()..].fill(0);
            }
        }
        BitOp::Or => {
            for src in rest {
                for (o, s) in out.iter_mut().zip(src.iter()) {
                    *o |= s;
                }
            }
        }
        BitOp::Xor => {
            for src in rest {
                for (o, s) in out.iter_mut().zip(src.iter()) {
                    *o ^= s;
                }
            }
        }
    }
    out
}

/// Number of bytes a string needs so that bit `bit_offset` exists
/// (`bit_offset / 8 + 1`), i.e. the length Redis grows it to.
pub fn bytes_needed(bit_offset: u64) -> u64 {
    bit_offset / 8 + 1
}

/// `GETBIT`: the bit at `offset` (MSB-first), 0 past the end of the string.
pub fn getbit(bytes: &[u8], offset: u64) -> bool {
    usize::try_from(offset / 8)
        .ok()
        .and_then(|i| bytes.get(i))
        .is_some_and(|b| b & (0x80 >> (offset % 8)) != 0)
}

/// `SETBIT`: sets the bit at `offset` to `value` and returns its previous
/// value. The caller must have grown the string to
/// [`bytes_needed`]`(offset)` bytes; past the end nothing is written and
/// `false` is returned.
pub fn setbit(bytes: &mut [u8], offset: u64, value: bool) -> bool {
    let Some(b) = usize::try_from(offset / 8)
        .ok()
        .and_then(|i| bytes.get_mut(i))
    else {
        return false;
    };
    let mask = 0x80u8 >> (offset % 8);
    let old = *b & mask != 0;
    if value {
        *b |= mask;
    } else {
        *b &= !mask;
    }
    old
}

/// Parses a bit offset argument like Redis's `getBitOffsetFromArgument`:
/// a [`crate::num::parse_i64`] integer, optionally written `#N` (meaning
/// `N * bits`) when `hash_allowed` and `bits > 0` (BITFIELD), which must be
/// non-negative and address a byte below `max_bytes` (the server's
/// `proto-max-bulk-len`, 512 MB by default; pass `u64::MAX` for no limit).
/// `None` maps to "bit offset is not an integer or out of range".
pub fn parse_bit_offset(arg: &[u8], hash_allowed: bool, bits: u32, max_bytes: u64) -> Option<u64> {
    let use_hash = hash_allowed && bits > 0 && arg.first() == Some(&b'#');
    let digits = if use_hash { &arg[1..] } else { arg };
    let mut offset = crate::num::parse_i64(digits)?;
    if use_hash {
        // Redis multiplies in C `long long`; an overflow wraps in practice.
        offset = offset.wrapping_mul(i64::from(bits));
    }
    let offset = u64::try_from(offset).ok()?;
    (offset >> 3 < max_bytes).then_some(offset)
}

/// A `BITFIELD` integer type: `i1`..`i64` or `u1`..`u63`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitfieldType {
    /// Two's complement signed (`i`) or unsigned (`u`).
    pub signed: bool,
    /// Width in bits: 1..=64 when signed, 1..=63 when unsigned.
    pub bits: u32,
}

impl BitfieldType {
    /// Parses `i<bits>` / `u<bits>` exactly like Redis: the prefix is
    /// case-sensitive, the width follows [`crate::num::parse_i64`] rules and
    /// the argument is read as a C string (cut at its first NUL byte).
    /// `None` maps to Redis's error "Invalid bitfield type. Use something
    /// like i16 u8. Note that u64 is not supported but i64 is."
    pub fn parse(arg: &[u8]) -> Option<BitfieldType> {
        let arg = match arg.iter().position(|&b| b == 0) {
            Some(nul) => &arg[..nul],
            None => arg,
        };
        let (&kind, width) = arg.split_first()?;
        let signed = match kind {
            b'i' => true,
            b'u' => false,
            _ => return None,
        };
        let bits = crate::num::parse_i64(width)?;
        let max = if signed { 64 } else { 63 };
        if !(1..=max).contains(&bits) {
            return None;
        }
        Some(BitfieldType {
            signed,
            bits: bits as u32,
        })
    }
}

/// `BITFIELD ... OVERFLOW` behaviour of `SET` and `INCRBY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Wrap around (modular arithmetic; signed values wrap to the most
    /// negative value). The default.
    #[default]
    Wrap,
    /// Saturate at the type's minimum or maximum.
    Sat,
    /// Do nothing and reply nil.
    Fail,
}

impl Overflow {
    /// Parses `WRAP`, `SAT` or `FAIL` case-insensitively; `None` maps to
    /// "Invalid OVERFLOW type specified".
    pub fn parse(arg: &[u8]) -> Option<Overflow> {
        match arg.to_ascii_lowercase().as_slice() {
            b"wrap" => Some(Overflow::Wrap),
            b"sat" => Some(Overflow::Sat),
            b"fail" => Some(Overflow::Fail),
            _ => None,
        }
    }
}

/// Outcome of a `BITFIELD SET` or `INCRBY` that was performed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitfieldUpdate {
    /// What Redis replies: the old value for `SET`, the new one for `INCRBY`.
    pub reply: i64,
    /// The field's value before the operation.
    pub old: i64,
    /// The value written.
    pub new: i64,
}

/// Reads `bits` (1..=64) bits MSB-first starting at bit `offset`; bits past
/// the end of `bytes` read as 0.
fn read_bits(bytes: &[u8], offset: u64, bits: u32) -> u64 {
    let mut value = 0u64;
    for j in 0..u64::from(bits) {
        let bit = offset.checked_add(j).is_some_and(|o| getbit(bytes, o));
        value = (value << 1) | u64::from(bit);
    }
    value
}

/// Writes the low `bits` bits of `value` MSB-first starting at bit
/// `offset`; bits past the end of `bytes` are dropped.
fn write_bits(bytes: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits {
        let bit = (value >> (bits - 1 - j)) & 1 != 0;
        if let Some(o) = offset.checked_add(u64::from(j)) {
            setbit(bytes, o, bit);
        }
    }
}

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits >= 64 {
        v as i64
    } else {
        let shift = 64 - bits;
        ((v << shift) as i64) >> shift
    }
}

/// `BITFIELD GET type offset`: reads the integer at bit `offset`; bits past
/// the end of the string read as 0. Unsigned types (at most 63 bits) always
/// fit an `i64`.
pub fn bitfield_get(bytes: &[u8], offset: u64, ty: BitfieldType) -> i64 {
    let raw = read_bits(bytes, offset, ty.bits);
    if ty.signed {
        sign_extend(raw, ty.bits)
    } else {
        raw as i64
    }
}

/// Redis's `checkSignedBitfieldOverflow`, reproduced literally (including
/// its wrapping intermediate arithmetic): `Ok(value + incr)` when it fits,
/// otherwise `Err` with the adjusted value (`None` for FAIL).
///
/// The literal emulation matters for `SET` under `SAT`: Redis computes
/// `max - value` in 64 bits, which wraps for values below `max - i64::MAX`
/// (e.g. `SET i32 0 -9223372036854775808`), and then takes the *overflow*
/// branch, saturating to the type's maximum instead of its minimum.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Result<i64, Option<i64>> {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let limited = if value > max
        || (bits != 64 && incr > maxincr)
        || (value >= 0 && incr > 0 && incr > maxincr)
    {
        max
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        min
    } else {
        return Ok(value.wrapping_add(incr));
    };
    Err(match ow {
        Overflow::Fail => None,
        Overflow::Sat => Some(limited),
        Overflow::Wrap => Some(sign_extend((value as u64).wrapping_add(incr as u64), bits)),
    })
}

/// Redis's `checkUnsignedBitfieldOverflow`. `value` is the operand as C
/// `uint64_t` (a negative `SET` value arrives as a huge number, so `SAT`
/// clamps it to the maximum, as Redis does).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Result<u64, Option<u64>> {
    let max: u64 = (1u64 << bits) - 1;
    let exact = i128::from(value) + i128::from(incr);
    let too_big = value > max || exact > i128::from(max);
    let too_small = !too_big && exact < 0;
    if !too_big && !too_small {
        return Ok(exact as u64);
    }
    Err(match ow {
        Overflow::Fail => None,
        Overflow::Sat => Some(if too_big { max } else { 0 }),
        Overflow::Wrap => Some(value.wrapping_add(incr as u64) & max),
    })
}

/// Applies a SET (`is_incr == false`, `arg` = new value) or INCRBY
/// (`arg` = increment).
fn bitfield_write(
    bytes: &mut [u8],
    offset: u64,
    ty: BitfieldType,
    arg: i64,
    ow: Overflow,
    is_incr: bool,
) -> Option<BitfieldUpdate> {
    let old = bitfield_get(bytes, offset, ty);
    let new = if ty.signed {
        let (value, incr) = if is_incr { (old, arg) } else { (arg, 0) };
        match signed_overflow(value, incr, ty.bits, ow) {
            Ok(v) => v,
            Err(adjusted) => adjusted?,
        }
    } else {
        let (value, incr) = if is_incr {
            (old as u64, arg)
        } else {
            (arg as u64, 0)
        };
        (match unsigned_overflow(value, incr, ty.bits, ow) {
            Ok(v) => v,
            Err(adjusted) => adjusted?,
        }) as i64
    };
    write_bits(bytes, offset, ty.bits, new as u64);
    Some(BitfieldUpdate {
        reply: if is_incr { new } else { old },
        old,
        new,
    })
}

/// `BITFIELD SET type offset value` under overflow policy `ow`: writes
/// `value` (adjusted per `ow` if it does not fit the type) and returns the
/// update, whose `reply` is the old value; `None` when `ow` is `Fail` and
/// the value does not fit (nothing is written, Redis replies nil).
///
/// Matches Redis exactly, including two `SAT` quirks: a negative value for
/// an unsigned type saturates to the type's *maximum*, and so does a signed
/// value below `max - i64::MAX` (such as `i64::MIN` for `i32`).
pub fn bitfield_set(
    bytes: &mut [u8],
    offset: u64,
    ty: BitfieldType,
    value: i64,
    ow: Overflow,
) -> Option<BitfieldUpdate> {
    bitfield_write(bytes, offset, ty, value, ow, false)
}

/// `BITFIELD INCRBY type offset increment` under overflow policy `ow`:
/// returns the update, whose `reply` is the new value, or `None` when `ow`
/// is `Fail` and the result would not fit (nothing is written).
pub fn bitfield_incrby(
    bytes: &mut [u8],
    offset: u64,
    ty: BitfieldType,
    incr: i64,
    ow: Overflow,
) -> Option<BitfieldUpdate> {
    bitfield_write(bytes, offset, ty, incr, ow, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bits_of(bytes: &[u8]) -> Vec<bool> {
        (0..bytes.len() as u64 * 8)
            .map(|i| getbit(bytes, i))
            .collect()
    }

    /// Bit-by-bit BITCOUNT with Redis's range rules.
    fn ref_bitcount(bytes: &[u8], start: i64, end: i64, unit: BitUnit) -> u64 {
        if start < 0 && end < 0 && start > end {
            return 0;
        }
        let total = unit_len(bytes, unit);
        let (s, e) = normalize_range(start, end, total);
        if s > e {
            return 0;
        }
        let bits = bits_of(bytes);
        let (bs, be) = match unit {
            BitUnit::Byte => (s * 8, e * 8 + 7),
            BitUnit::Bit => (s, e),
        };
        (bs..=be).filter(|&i| bits[i as usize]).count() as u64
    }

    /// Bit-by-bit BITPOS with Redis's range rules.
    fn ref_bitpos(bytes: &[u8], bit: bool, start: i64, end: Option<i64>, unit: BitUnit) -> i64 {
        let total = unit_len(bytes, unit);
        let e = end.map(i128::from).unwrap_or(match unit {
            BitUnit::Bit => total + 7,
            BitUnit::Byte => total - 1,
        });
        let (s, e) = normalize_range(
            start,
            e.clamp(i64::MIN.into(), i64::MAX.into()) as i64,
            total,
        );
        if s > e {
            return -1;
        }
        let bits = bits_of(bytes);
        let (bs, be) = match unit {
            BitUnit::Byte => (s * 8, e * 8 + 7),
            BitUnit::Bit => (s, e),
        };
        for i in bs..=be {
            if bits[i as usize] == bit {
                return i as i64;
            }
        }
        if !bit && end.is_none() {
            (be / 8 + 1) as i64 * 8
        } else {
            -1
        }
    }

    #[test]
    fn bitcount_examples() {
        // From the BITCOUNT docs: SET mykey "foobar".
        let v = b"foobar";
        assert_eq!(bitcount(v), 26);
        assert_eq!(bitcount_range(v, 0, 0, BitUnit::Byte), 4);
        assert_eq!(bitcount_range(v, 1, 1, BitUnit::Byte), 6);
        assert_eq!(bitcount_range(v, 1, 1, BitUnit::Bit), 1);
        assert_eq!(bitcount_range(v, 5, 30, BitUnit::Bit), 17);
        assert_eq!(bitcount_range(v, 0, -1, BitUnit::Byte), 26);
        assert_eq!(bitcount_range(v, -2, -1, BitUnit::Byte), 7);
        assert_eq!(bitcount_range(v, -100, 100, BitUnit::Byte), 26);
        assert_eq!(bitcount_range(v, 3, 2, BitUnit::Byte), 0);
        assert_eq!(bitcount_range(v, 100, 200, BitUnit::Byte), 0);
        // Both negative with start > end: 0, even though clamping would
        // otherwise select byte 0.
        assert_eq!(bitcount_range(v, -100, -200, BitUnit::Byte), 0);
        assert_eq!(bitcount_range(v, -200, -100, BitUnit::Byte), 4);
        assert_eq!(bitcount_range(b"", 0, -1, BitUnit::Byte), 0);
        assert_eq!(bitcount_range(b"", 0, 0, BitUnit::Bit), 0);
        assert_eq!(bitcount_range(&[0xFF; 100], 3, 795, BitUnit::Bit), 793);
        assert_eq!(
            bitcount_range(&[0xFF; 100], i64::MIN, i64::MAX, BitUnit::Bit),
            800
        );
    }

    #[test]
    fn bitpos_examples() {
        // From the BITPOS docs.
        let v = [0xFF, 0xF0, 0x00];
        assert_eq!(bitpos(&v, false, 0, None, BitUnit::Byte), 12);
        let v = [0x00, 0xFF, 0xF0];
        assert_eq!(bitpos(&v, true, 0, None, BitUnit::Byte), 8);
        assert_eq!(bitpos(&v, true, 2, None, BitUnit::Byte), 16);
        assert_eq!(bitpos(&v, true, 2, Some(-1), BitUnit::Byte), 16);
        assert_eq!(bitpos(&v, true, 7, Some(15), BitUnit::Bit), 8);
        assert_eq!(bitpos(&v, true, 7, Some(-3), BitUnit::Bit), 8);
        let zeros = [0u8; 3];
        assert_eq!(bitpos(&zeros, true, 0, None, BitUnit::Byte), -1);
        // Looking for 0 in all ones: past the end without an explicit end,
        // -1 with one.
        let ones = [0xFFu8; 3];
        assert_eq!(bitpos(&ones, false, 0, None, BitUnit::Byte), 24);
        assert_eq!(bitpos(&ones, false, 1, None, BitUnit::Byte), 24);
        assert_eq!(bitpos(&ones, false, 0, Some(-1), BitUnit::Byte), -1);
        assert_eq!(bitpos(&ones, false, 0, Some(1), BitUnit::Byte), -1);
        assert_eq!(bitpos(&ones, false, 0, Some(23), BitUnit::Bit), -1);
        // Empty ranges and empty strings.
        assert_eq!(bitpos(&ones, false, 2, Some(1), BitUnit::Byte), -1);
        assert_eq!(bitpos(&ones, true, 5, None, BitUnit::Byte), -1);
        assert_eq!(bitpos(b"", false, 0, None, BitUnit::Byte), -1);
        assert_eq!(bitpos(b"", true, 0, None, BitUnit::Byte), -1);
        // No "both negative" special case, unlike BITCOUNT.
        assert_eq!(
            bitpos(&[0x80, 0, 0], true, -100, Some(-200), BitUnit::Byte),
            0
        );
        // Bit ranges inside a byte.
        assert_eq!(bitpos(&[0b0010_0100], true, 3, Some(7), BitUnit::Bit), 5);
        assert_eq!(bitpos(&[0b0010_0100], true, 3, Some(4), BitUnit::Bit), -1);
        assert_eq!(bitpos(&[0b1101_1111], false, 0, Some(1), BitUnit::Bit), -1);
        assert_eq!(bitpos(&[0b1101_1111], false, 0, Some(2), BitUnit::Bit), 2);
    }

    #[test]
    fn bitpos_long_runs() {
        let mut v = vec![0u8; 1000];
        assert_eq!(bitpos(&v, true, 0, None, BitUnit::Byte), -1);
        v[777] = 0x01;
        assert_eq!(bitpos(&v, true, 0, None, BitUnit::Byte), 777 * 8 + 7);
        assert_eq!(bitpos(&v, true, 3, Some(-1), BitUnit::Bit), 777 * 8 + 7);
        let mut w = vec![0xFFu8; 1000];
        assert_eq!(bitpos(&w, false, 0, None, BitUnit::Byte), 8000);
        w[513] = 0xFE;
        assert_eq!(bitpos(&w, false, 0, None, BitUnit::Byte), 513 * 8 + 7);
        assert_eq!(bitpos(&w, false, 9, Some(7999), BitUnit::Bit), 513 * 8 + 7);
    }

    #[test]
    fn bitop_examples() {
        let a: &[u8] = b"foobar";
        let b: &[u8] = b"abcdef";
        let and = bitop(BitOp::And, &[a, b]);
        assert_eq!(and, b"`bc`ab");
        assert_eq!(bitop(BitOp::Or, &[a, b]), b"goofev");
        assert_eq!(bitop(BitOp::Xor, &[a, a]), vec![0u8; 6]);
        assert_eq!(bitop(BitOp::Not, &[b"\x00\xff"]), b"\xff\x00");
        // Shorter sources are zero-padded.
        assert_eq!(bitop(BitOp::And, &[b"\xff\xff", b"\xff"]), b"\xff\x00");
        assert_eq!(bitop(BitOp::And, &[b"\xff", b"\xff\xff"]), b"\xff\x00");
        assert_eq!(bitop(BitOp::Or, &[b"\x01", b"", b"\x00\x02"]), b"\x01\x02");
        assert_eq!(bitop(BitOp::Xor, &[b"", b"\x0f\xf0"]), b"\x0f\xf0");
        assert_eq!(bitop(BitOp::And, &[b"", b""]), b"");
        assert_eq!(bitop(BitOp::Or, &[]), b"");
        assert_eq!(BitOp::parse(b"xOr"), Some(BitOp::Xor));
        assert_eq!(BitOp::parse(b"nand"), None);
    }

    #[test]
    fn getbit_setbit() {
        let mut v = vec![0u8; 2];
        assert!(!setbit(&mut v, 7, true));
        assert_eq!(v, [0x01, 0x00]);
        assert!(setbit(&mut v, 7, true));
        assert!(!setbit(&mut v, 8, true));
        assert_eq!(v, [0x01, 0x80]);
        assert!(getbit(&v, 7) && getbit(&v, 8) && !getbit(&v, 0));
        assert!(setbit(&mut v, 8, false));
        assert_eq!(v, [0x01, 0x00]);
        // Past the end: reads 0, writes are dropped.
        assert!(!getbit(&v, 16));
        assert!(!getbit(&v, u64::MAX));
        assert!(!setbit(&mut v, 100, true));
        assert_eq!(v, [0x01, 0x00]);
        assert_eq!(bytes_needed(0), 1);
        assert_eq!(bytes_needed(7), 1);
        assert_eq!(bytes_needed(8), 2);
        assert_eq!(bytes_needed(4294967295), 536870912);
    }

    #[test]
    fn bit_offsets() {
        let max = 512 * 1024 * 1024;
        assert_eq!(parse_bit_offset(b"0", false, 0, max), Some(0));
        assert_eq!(
            parse_bit_offset(b"4294967295", false, 0, max),
            Some(4294967295)
        );
        assert_eq!(parse_bit_offset(b"4294967296", false, 0, max), None);
        assert_eq!(parse_bit_offset(b"-1", false, 0, max), None);
        assert_eq!(parse_bit_offset(b"#2", false, 0, max), None);
        assert_eq!(parse_bit_offset(b"#2", true, 8, max), Some(16));
        assert_eq!(parse_bit_offset(b"#-1", true, 8, max), None);
        assert_eq!(
            parse_bit_offset(b"#536870911", true, 8, max),
            Some(4294967288)
        );
        assert_eq!(parse_bit_offset(b"#536870912", true, 8, max), None);
        // Overflowing multiplication wraps to a negative number.
        assert_eq!(
            parse_bit_offset(b"#9223372036854775807", true, 64, max),
            None
        );
        assert_eq!(parse_bit_offset(b"01", false, 0, max), None);
        assert_eq!(parse_bit_offset(b"", false, 0, max), None);
        assert_eq!(parse_bit_offset(b"#", true, 8, max), None);
        assert_eq!(parse_bit_offset(b"1000", false, 0, u64::MAX), Some(1000));
    }

    #[test]
    fn bitfield_types() {
        let t = |s: &[u8]| BitfieldType::parse(s);
        assert_eq!(
            t(b"i8"),
            Some(BitfieldType {
                signed: true,
                bits: 8
            })
        );
        assert_eq!(
            t(b"u63"),
            Some(BitfieldType {
                signed: false,
                bits: 63
            })
        );
        assert_eq!(
            t(b"i64"),
            Some(BitfieldType {
                signed: true,
                bits: 64
            })
        );
        assert_eq!(
            t(b"i1"),
            Some(BitfieldType {
                signed: true,
                bits: 1
            })
        );
        for bad in [
            &b"u64"[..],
            b"i65",
            b"i0",
            b"u0",
            b"I8",
            b"U8",
            b"i08",
            b"i+8",
            b"i-1",
            b"8",
            b"",
            b"i",
            b"x8",
        ] {
            assert_eq!(t(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        // Read as a C string.
        assert_eq!(
            t(b"i8\x00x"),
            Some(BitfieldType {
                signed: true,
                bits: 8
            })
        );
        assert_eq!(Overflow::parse(b"SaT"), Some(Overflow::Sat));
        assert_eq!(Overflow::parse(b"wrap"), Some(Overflow::Wrap));
        assert_eq!(Overflow::parse(b"FAIL"), Some(Overflow::Fail));
        assert_eq!(Overflow::parse(b"bad"), None);
        assert_eq!(Overflow::default(), Overflow::Wrap);
    }

    fn ty(s: &str) -> BitfieldType {
        BitfieldType::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn bitfield_matches_redis() {
        // Sequences checked against a real redis-server.
        let mut v = vec![0u8; 14];
        // BITFIELD k SET i8 0 200 -> [0], value stored 0xc8.
        let r = bitfield_set(&mut v, 0, ty("i8"), 200, Overflow::Wrap).unwrap();
        assert_eq!((r.reply, r.new), (0, -56));
        assert_eq!(v[0], 0xc8);
        // OVERFLOW SAT SET u8 0 -1 -> [200] and stores 255.
        assert_eq!(
            bitfield_set(&mut v, 0, ty("u8"), -1, Overflow::Sat)
                .unwrap()
                .reply,
            200
        );
        assert_eq!(v[0], 255);
        // WRAP SET u8 0 -1 -> [255]; FAIL -> nil.
        assert_eq!(
            bitfield_set(&mut v, 0, ty("u8"), -1, Overflow::Wrap)
                .unwrap()
                .reply,
            255
        );
        assert_eq!(bitfield_set(&mut v, 0, ty("u8"), -1, Overflow::Fail), None);
        // SAT SET u8 0 -100 -> [255], stores 255.
        assert_eq!(
            bitfield_set(&mut v, 0, ty("u8"), -100, Overflow::Sat)
                .unwrap()
                .new,
            255
        );
        // SAT SET i8 0 -200 -> [-1] (old value), stores -128.
        let r = bitfield_set(&mut v, 0, ty("i8"), -200, Overflow::Sat).unwrap();
        assert_eq!((r.reply, r.new), (-1, -128));
        // SAT INCRBY u8 0 -1000 -> [0].
        assert_eq!(
            bitfield_incrby(&mut v, 0, ty("u8"), -1000, Overflow::Sat)
                .unwrap()
                .reply,
            0
        );
        assert_eq!(bitfield_get(&v, 0, ty("u8")), 0);
        // SAT SET u63 0 -1 -> [0], then GET u63 0 -> 2^63 - 1.
        assert_eq!(
            bitfield_set(&mut v, 0, ty("u63"), -1, Overflow::Sat)
                .unwrap()
                .reply,
            0
        );
        assert_eq!(bitfield_get(&v, 0, ty("u63")), i64::MAX);
        // SET i64 0 MIN, INCRBY i64 0 -1 -> [-2, MAX] (wraps).
        assert_eq!(
            bitfield_set(&mut v, 0, ty("i64"), i64::MIN, Overflow::Wrap)
                .unwrap()
                .reply,
            -2
        );
        assert_eq!(
            bitfield_incrby(&mut v, 0, ty("i64"), -1, Overflow::Wrap)
                .unwrap()
                .reply,
            i64::MAX
        );
        assert_eq!(
            bitfield_incrby(&mut v, 0, ty("i64"), -1, Overflow::Sat)
                .unwrap()
                .reply,
            i64::MAX - 1
        );
        // SET i5 100 -3, GET u5 100, GET i5 100 -> [0, 29, -3].
        assert_eq!(
            bitfield_set(&mut v, 100, ty("i5"), -3, Overflow::Wrap)
                .unwrap()
                .reply,
            0
        );
        assert_eq!(bitfield_get(&v, 100, ty("u5")), 29);
        assert_eq!(bitfield_get(&v, 100, ty("i5")), -3);
        // OVERFLOW SAT SET i32 37 -9223372036854775808 on "\xf6" (grown to 9
        // bytes) -> [0] and stores i32::MAX: Redis's wrapped `max - value`.
        let mut q = vec![0xf6, 0, 0, 0, 0, 0, 0, 0, 0];
        let r = bitfield_set(&mut q, 37, ty("i32"), i64::MIN, Overflow::Sat).unwrap();
        assert_eq!((r.reply, r.new), (0, i64::from(i32::MAX)));
        assert_eq!(q, [0xf6, 0, 0, 0, 0x03, 0xff, 0xff, 0xff, 0xf8]);
        // ... while WRAP keeps the low bits and FAIL refuses.
        assert_eq!(
            bitfield_set(&mut q, 37, ty("i32"), i64::MIN, Overflow::Wrap)
                .unwrap()
                .new,
            0
        );
        assert_eq!(
            bitfield_set(&mut q, 37, ty("i32"), i64::MIN, Overflow::Fail),
            None
        );
        // FAIL INCRBY u2 100 5 -> nil.
        let mut w = vec![0u8; 13];
        assert_eq!(
            bitfield_incrby(&mut w, 100, ty("u2"), 5, Overflow::Fail),
            None
        );
        assert_eq!(w, vec![0u8; 13]);
    }

    #[test]
    fn bitfield_docs_examples() {
        // BITFIELD mykey INCRBY i5 100 1 GET u4 0 -> [1, 0]
        let mut v = vec![0u8; 13];
        assert_eq!(
            bitfield_incrby(&mut v, 100, ty("i5"), 1, Overflow::Wrap)
                .unwrap()
                .reply,
            1
        );
        assert_eq!(bitfield_get(&v, 0, ty("u4")), 0);
        // INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1, repeated.
        let mut v = vec![0u8; 13];
        let mut seen = vec![];
        for _ in 0..4 {
            let a = bitfield_incrby(&mut v, 100, ty("u2"), 1, Overflow::Wrap)
                .unwrap()
                .reply;
            let b = bitfield_incrby(&mut v, 102, ty("u2"), 1, Overflow::Sat)
                .unwrap()
                .reply;
            seen.push((a, b));
        }
        assert_eq!(seen, [(1, 1), (2, 2), (3, 3), (0, 3)]);
        // OVERFLOW FAIL INCRBY u2 102 1 -> nil once saturated.
        assert_eq!(
            bitfield_incrby(&mut v, 102, ty("u2"), 1, Overflow::Fail),
            None
        );
        // Reads past the end are zero; writes past the end are dropped.
        assert_eq!(bitfield_get(&v, 1000, ty("i64")), 0);
        assert_eq!(bitfield_get(&v, u64::MAX - 3, ty("i64")), 0);
        let r = bitfield_set(&mut v, u64::MAX - 3, ty("u8"), 7, Overflow::Wrap).unwrap();
        assert_eq!((r.old, r.new), (0, 7));
    }

    /// Bitfield reference: exact arithmetic in i128, with Redis's quirk that
    /// a negative SET value on an unsigned type saturates to the maximum.
    fn ref_bitfield(
        old: i64,
        arg: i64,
        is_incr: bool,
        ty: BitfieldType,
        ow: Overflow,
    ) -> Option<i64> {
        let (min, max): (i128, i128) = if ty.signed {
            (-(1i128 << (ty.bits - 1)), (1i128 << (ty.bits - 1)) - 1)
        } else {
            (0, (1i128 << ty.bits) - 1)
        };
        let exact = if is_incr {
            i128::from(old) + i128::from(arg)
        } else {
            i128::from(arg)
        };
        if (min..=max).contains(&exact) {
            return Some(exact as i64);
        }
        match ow {
            Overflow::Fail => None,
            Overflow::Sat => {
                // Redis quirks: SET of a negative value on an unsigned type,
                // or of a value below max - i64::MAX on a signed type,
                // saturates to the maximum.
                let quirk = !is_incr && (!ty.signed || max - exact > i128::from(i64::MAX));
                if exact > max || quirk {
                    Some(max as i64)
                } else {
                    Some(min as i64)
                }
            }
            Overflow::Wrap => {
                let m = exact.rem_euclid(1i128 << ty.bits);
                Some(if ty.signed && m > max {
                    (m - (1i128 << ty.bits)) as i64
                } else {
                    m as i64
                })
            }
        }
    }

    fn unit_strategy() -> impl Strategy<Value = BitUnit> {
        prop_oneof![Just(BitUnit::Byte), Just(BitUnit::Bit)]
    }

    fn overflow_strategy() -> impl Strategy<Value = Overflow> {
        prop_oneof![
            Just(Overflow::Wrap),
            Just(Overflow::Sat),
            Just(Overflow::Fail)
        ]
    }

    fn type_strategy() -> impl Strategy<Value = BitfieldType> {
        prop_oneof![
            (1u32..=64).prop_map(|bits| BitfieldType { signed: true, bits }),
            (1u32..=63).prop_map(|bits| BitfieldType {
                signed: false,
                bits
            }),
        ]
    }

    fn interesting_i64() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            -300i64..300,
            Just(i64::MIN),
            Just(i64::MAX),
            (0u32..64).prop_map(|s| 1i64.wrapping_shl(s)),
            (0u32..64).prop_map(|s| 1i64.wrapping_shl(s).wrapping_neg()),
        ]
    }

    fn bytes_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(prop_oneof![Just(0u8), Just(0xFF)], 0..40),
            proptest::collection::vec(
                prop_oneof![Just(0u8), Just(0xFF), Just(1), Just(0x80), Just(0x7F)],
                0..40
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        #[test]
        fn bitcount_agrees(v in bytes_strategy(), s in -400i64..400, e in -400i64..400, unit in unit_strategy()) {
            prop_assert_eq!(bitcount(&v), bits_of(&v).iter().filter(|&&b| b).count() as u64);
            prop_assert_eq!(bitcount_range(&v, s, e, unit), ref_bitcount(&v, s, e, unit));
        }

        #[test]
        fn bitcount_extreme_offsets(v in bytes_strategy(), s in any::<i64>(), e in any::<i64>(), unit in unit_strategy()) {
            prop_assert_eq!(bitcount_range(&v, s, e, unit), ref_bitcount(&v, s, e, unit));
        }

        #[test]
        fn bitpos_agrees(
            v in bytes_strategy(),
            bit in any::<bool>(),
            s in -400i64..400,
            e in proptest::option::of(-400i64..400),
            unit in unit_strategy(),
        ) {
            prop_assert_eq!(bitpos(&v, bit, s, e, unit), ref_bitpos(&v, bit, s, e, unit));
        }

        #[test]
        fn bitpos_extreme_offsets(
            v in bytes_strategy(),
            bit in any::<bool>(),
            s in any::<i64>(),
            e in proptest::option::of(any::<i64>()),
            unit in unit_strategy(),
        ) {
            prop_assert_eq!(bitpos(&v, bit, s, e, unit), ref_bitpos(&v, bit, s, e, unit));
        }

        #[test]
        fn bitop_agrees(
            srcs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..5),
            op in prop_oneof![Just(BitOp::And), Just(BitOp::Or), Just(BitOp::Xor), Just(BitOp::Not)],
        ) {
            let refs: Vec<&[u8]> = srcs.iter().map(|s| s.as_slice()).collect();
            let out = bitop(op, &refs);
            let maxlen = srcs.iter().map(Vec::len).max().unwrap_or(0);
            prop_assert_eq!(out.len(), maxlen);
            for i in 0..maxlen as u64 * 8 {
                let get = |s: &Vec<u8>| getbit(s, i);
                let expect = match op {
                    BitOp::And => srcs.iter().all(get),
                    BitOp::Or => srcs.iter().any(get),
                    BitOp::Xor => srcs.iter().filter(|s| get(s)).count() % 2 == 1,
                    BitOp::Not => !get(&srcs[0]),
                };
                prop_assert_eq!(getbit(&out, i), expect);
            }
        }

        #[test]
        fn setbit_getbit_agree(v in bytes_strategy(), off in 0u64..400, val in any::<bool>()) {
            let mut w = v.clone();
            let old = setbit(&mut w, off, val);
            let inside = off / 8 < v.len() as u64;
            prop_assert_eq!(old, inside && bits_of(&v)[off as usize]);
            for i in 0..v.len() as u64 * 8 {
                let expect = if i == off { val } else { getbit(&v, i) };
                prop_assert_eq!(getbit(&w, i), expect);
            }
        }

        #[test]
        fn bitfield_get_agrees(v in bytes_strategy(), off in 0u64..400, ty in type_strategy()) {
            let bits = bits_of(&v);
            let mut raw: i128 = 0;
            for j in 0..u64::from(ty.bits) {
                let i = off + j;
                raw = raw * 2 + i128::from(bits.get(i as usize).copied().unwrap_or(false));
            }
            if ty.signed && raw >= 1i128 << (ty.bits - 1) {
                raw -= 1i128 << ty.bits;
            }
            prop_assert_eq!(i128::from(bitfield_get(&v, off, ty)), raw);
        }

        #[test]
        fn bitfield_write_agrees(
            v in bytes_strategy(),
            off in 0u64..200,
            ty in type_strategy(),
            arg in interesting_i64(),
            is_incr in any::<bool>(),
            ow in overflow_strategy(),
        ) {
            let mut w = v.clone();
            w.resize(w.len().max(bytes_needed(off + u64::from(ty.bits) - 1) as usize), 0);
            let before = w.clone();
            let old = bitfield_get(&w, off, ty);
            let res = if is_incr {
                bitfield_incrby(&mut w, off, ty, arg, ow)
            } else {
                bitfield_set(&mut w, off, ty, arg, ow)
            };
            let expected = ref_bitfield(old, arg, is_incr, ty, ow);
            match (res, expected) {
                (None, None) => prop_assert_eq!(&w, &before),
                (Some(r), Some(new)) => {
                    prop_assert_eq!(r.old, old);
                    prop_assert_eq!(r.new, new);
                    prop_assert_eq!(r.reply, if is_incr { new } else { old });
                    prop_assert_eq!(bitfield_get(&w, off, ty), new);
                    // Other bits untouched.
                    for i in 0..w.len() as u64 * 8 {
                        if i < off || i >= off + u64::from(ty.bits) {
                            prop_assert_eq!(getbit(&w, i), getbit(&before, i));
                        }
                    }
                }
                (r, e) => prop_assert!(false, "got {:?}, expected {:?}", r, e),
            }
        }
    }
}
