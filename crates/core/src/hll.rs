//! HyperLogLog in Redis's exact `HYLL` string layout, so a sketch made by
//! kvik reads back byte for byte the same as one made by Redis for the same
//! input sequence, and either server can count the other's sketches.
//!
//! Layout (all values are plain strings; nothing here knows about keys):
//!
//! ```text
//! +------+---+-----+----------+--------------------------------+
//! | HYLL | E | N/U | Cardin.  | registers (dense or sparse)    |
//! +------+---+-----+----------+--------------------------------+
//!   4      1   3     8 (LE; MSB of byte 15 set = cache stale)
//! ```
//!
//! * Dense (`E` = 0): 16384 six-bit registers packed LSB first, 12288 bytes.
//! * Sparse (`E` = 1): a run-length sequence of opcodes —
//!   `00xxxxxx` ZERO (1..=64 zero registers), `01xxxxxx yyyyyyyy` XZERO
//!   (1..=16384 zero registers), `1vvvvvxx` VAL (value 1..=32 repeated
//!   1..=4 times). A sparse sketch is promoted to dense when a register
//!   needs a value above 32 or when it would grow past
//!   `hll-sparse-max-bytes`.
//!
//! The algorithms follow Redis's step for step (including how the sparse
//! sequence is split and re-merged after an update) because the exact bytes
//! are observable through GET. Every parsing path is bounds checked: a
//! corrupted sketch yields [`Corrupt`], never a panic or an out-of-bounds
//! read. Where Redis reads the implicit NUL terminator of an sds string (a
//! truncated XZERO opcode at the very end), a zero byte is assumed.

/// Bytes of the header.
pub const HDR_SIZE: usize = 16;
/// Bits of the hash used to select a register.
const P: u32 = 14;
/// Bits of the hash left for the run of zeroes.
const Q: usize = 64 - P as usize;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
const P_MASK: u64 = REGISTERS as u64 - 1;
/// Largest value a dense register holds.
const REGISTER_MAX: u32 = 63;
/// Bytes of the dense register array.
const DENSE_REGS: usize = (REGISTERS * 6).div_ceil(8);
/// Total length of a dense sketch.
pub const DENSE_SIZE: usize = HDR_SIZE + DENSE_REGS;
/// Header encoding byte of a dense sketch.
pub const DENSE: u8 = 0;
/// Header encoding byte of a sparse sketch.
pub const SPARSE: u8 = 1;

const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;
/// 0.5 / ln(2): the bias constant for an infinite number of registers.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
/// Redis's MurmurHash64A seed for HyperLogLog.
const SEED: u32 = 0xadc8_3b19;

/// The sketch's opcodes or registers are inconsistent (Redis's
/// `INVALIDOBJ Corrupted HLL object detected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// MurmurHash2, 64-bit version (MurmurHash64A), reading 8-byte blocks as
/// little-endian words as Redis does on every platform.
pub fn murmur64a(data: &[u8], seed: u32) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    // Redis passes the length as a C int; inputs are far below 2^31.
    let mut h = u64::from(seed) ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for b in &mut blocks {
        let mut k = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls into and the length of its run of zero
/// bits plus one (1..=51): Redis's `hllPatLen`.
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash & P_MASK) as usize;
    // The sentinel bit bounds the count to Q + 1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// A new, empty sparse sketch: the header and one XZERO covering all
/// registers, with a valid cached cardinality of 0 (Redis's
/// `createHLLObject`).
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR_SIZE + 2 * REGISTERS.div_ceil(SPARSE_XZERO_MAX_LEN));
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(SPARSE_XZERO_MAX_LEN);
        v.extend_from_slice(&xzero_op(run));
        left -= run;
    }
    v
}

/// Whether `b` passes Redis's `isHLLObjectOrReply` checks: long enough for
/// the header, `HYLL` magic, a known encoding, and exactly the dense size
/// when dense. (Sparse opcodes are checked lazily, as Redis does.)
pub fn is_valid(b: &[u8]) -> bool {
    b.len() >= HDR_SIZE
        && &b[..4] == b"HYLL"
        && b[4] <= SPARSE
        && (b[4] != DENSE || b.len() == DENSE_SIZE)
}

/// Whether a (valid) sketch is dense.
pub fn is_dense(b: &[u8]) -> bool {
    b.get(4) == Some(&DENSE)
}

/// The cached cardinality, when the cache is not marked stale.
pub fn cached_card(b: &[u8]) -> Option<u64> {
    let c: [u8; 8] = b.get(8..16)?.try_into().ok()?;
    (c[7] & 0x80 == 0).then(|| u64::from_le_bytes(c))
}

/// Stores a freshly computed cardinality (clearing the stale bit, since a
/// count never reaches 2^63).
pub fn set_cached_card(b: &mut [u8], card: u64) {
    if let Some(c) = b.get_mut(8..16) {
        c.copy_from_slice(&card.to_le_bytes());
    }
}

/// Marks the cached cardinality stale (the MSB of the last header byte).
pub fn invalidate_cache(b: &mut [u8]) {
    if let Some(c) = b.get_mut(15) {
        *c |= 0x80;
    }
}

// ---------------------------------------------------------------------
// Dense registers.

/// Register `i` of a dense register array (12288 bytes).
fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let b0 = u32::from(regs[byte]);
    // The last register never needs the next byte (fb is 2 there); Redis
    // reads the NUL terminator, which the mask discards anyway.
    let b1 = u32::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX) as u8
}

/// Sets register `i` of a dense register array to `val` (0..=63).
fn dense_put(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let v = u32::from(val);
    regs[byte] &= !((REGISTER_MAX << fb) as u8);
    regs[byte] |= (v << fb) as u8;
    if let Some(b1) = regs.get_mut(byte + 1) {
        *b1 &= !((REGISTER_MAX >> (8 - fb)) as u8);
        *b1 |= (v >> (8 - fb)) as u8;
    }
}

/// Raises register `i` to `count` if it is lower; returns whether it
/// changed (Redis's `hllDenseSet`).
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_put(regs, i, count);
        true
    } else {
        false
    }
}

/// Unpacks the four registers held by each three bytes of a dense array.
fn dense_quads(regs: &[u8]) -> impl Iterator<Item = [u8; 4]> + '_ {
    regs.chunks_exact(3).map(|c| {
        let (b0, b1, b2) = (c[0], c[1], c[2]);
        [
            b0 & 63,
            (b0 >> 6 | b1 << 2) & 63,
            (b1 >> 4 | b2 << 4) & 63,
            b2 >> 2,
        ]
    })
}

/// Register histogram of a dense array.
fn dense_histogram(regs: &[u8], hist: &mut [u64; 64]) {
    for q in dense_quads(regs) {
        for r in q {
            hist[usize::from(r)] += 1;
        }
    }
}

// ---------------------------------------------------------------------
// Sparse opcodes.

/// One decoded sparse opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// A run of zero registers (ZERO or XZERO).
    Zero(usize),
    /// `len` registers holding `val`.
    Val(u8, usize),
}

fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}

fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}

fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}

fn val_len(b: u8) -> usize {
    usize::from(b & 3) + 1
}

fn val_op(val: u8, len: usize) -> u8 {
    ((val - 1) << 2 | (len as u8 - 1)) | 0x80
}

fn zero_op(len: usize) -> u8 {
    (len - 1) as u8
}

fn xzero_op(len: usize) -> [u8; 2] {
    let l = len - 1;
    [(l >> 8) as u8 | 0x40, (l & 0xff) as u8]
}

/// Appends the shortest opcode for a run of `len` zero registers.
fn push_zeros(seq: &mut [u8; 5], n: &mut usize, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        seq[*n..*n + 2].copy_from_slice(&xzero_op(len));
        *n += 2;
    } else {
        seq[*n] = zero_op(len);
        *n += 1;
    }
}

/// Decodes the opcode at `p` (which must be inside `s`), returning it with
/// its length in bytes. A truncated XZERO reads a zero second byte, like
/// Redis reading the string's NUL terminator.
fn decode(s: &[u8], p: usize) -> (Op, usize) {
    let b = s[p];
    if is_zero(b) {
        (Op::Zero(usize::from(b & 0x3f) + 1), 1)
    } else if is_xzero(b) {
        let lo = usize::from(s.get(p + 1).copied().unwrap_or(0));
        (Op::Zero((usize::from(b & 0x3f) << 8 | lo) + 1), 2)
    } else {
        (Op::Val(val_value(b), val_len(b)), 1)
    }
}

/// Walks the sparse opcodes after the header, calling `f(first, op)` for
/// each; fails when the runs do not add up to exactly 16384 registers
/// (never letting a run start past the end).
fn walk_sparse(s: &[u8], mut f: impl FnMut(usize, Op)) -> Result<(), Corrupt> {
    let mut idx = 0usize;
    let mut p = HDR_SIZE;
    while p < s.len() {
        let (op, oplen) = decode(s, p);
        let run = match op {
            Op::Zero(n) | Op::Val(_, n) => n,
        };
        if idx + run > REGISTERS {
            return Err(Corrupt);
        }
        f(idx, op);
        idx += run;
        p += oplen;
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Converts a sparse sketch to dense in place, keeping the header (magic,
/// unused bytes and cached cardinality). A dense sketch is left alone;
/// returns whether a conversion happened.
pub fn to_dense(h: &mut Vec<u8>) -> Result<bool, Corrupt> {
    if h.len() < HDR_SIZE {
        return Err(Corrupt);
    }
    if h[4] == DENSE {
        return Ok(false);
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR_SIZE].copy_from_slice(&h[..HDR_SIZE]);
    dense[4] = DENSE;
    let regs = &mut dense[HDR_SIZE..];
    walk_sparse(h, |first, op| {
        if let Op::Val(v, n) = op {
            for i in first..first + n {
                dense_put(regs, i, v);
            }
        }
    })?;
    *h = dense;
    Ok(true)
}

/// Raises register `index` of a sparse sketch to `count` (Redis's
/// `hllSparseSet`), editing the opcode sequence in place exactly as Redis
/// does, or promoting to dense when the value does not fit a VAL opcode or
/// the string would outgrow `max_bytes`. Returns whether a register changed.
fn sparse_set(h: &mut Vec<u8>, index: usize, count: u8, max_bytes: u64) -> Result<bool, Corrupt> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(h, index, count);
    }
    // Step 1: find the opcode covering `index`.
    let index = index as u64;
    let mut end = h.len();
    let mut p = HDR_SIZE;
    let mut first = 0u64;
    let mut span = 0u64;
    let mut prev = None;
    while p < end {
        let (op, oplen) = decode(h, p);
        span = match op {
            Op::Zero(n) | Op::Val(_, n) => n as u64,
        };
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(Corrupt);
    }
    let b = h[p];
    let oldlen = if is_xzero(b) { 2 } else { 1 };

    // Step 2: the trivial in-place cases.
    let simple = if is_val(b) {
        if val_value(b) >= count {
            return Ok(false);
        }
        val_len(b) == 1
    } else {
        is_zero(b) && b & 0x3f == 0
    };
    if simple {
        h[p] = val_op(count, 1);
    } else {
        // General case: split the run into up to three opcodes.
        let last = first + span - 1;
        let mut seq = [0u8; 5];
        let mut n = 0;
        if is_val(b) {
            let cur = val_value(b);
            if index != first {
                seq[n] = val_op(cur, (index - first) as usize);
                n += 1;
            }
            seq[n] = val_op(count, 1);
            n += 1;
            if index != last {
                seq[n] = val_op(cur, (last - index) as usize);
                n += 1;
            }
        } else {
            if index != first {
                push_zeros(&mut seq, &mut n, (index - first) as usize);
            }
            seq[n] = val_op(count, 1);
            n += 1;
            if index != last {
                push_zeros(&mut seq, &mut n, (last - index) as usize);
            }
        }
        // Step 3: substitute the sequence, promoting if it would grow the
        // string past the limit.
        let new_len = end + n - oldlen;
        if n > oldlen && new_len as u64 > max_bytes {
            return promote(h, index as usize, count);
        }
        // A truncated trailing XZERO has only one byte in the string; the
        // splice then leaves one byte too many, which Redis's length
        // bookkeeping drops as well.
        let tail = (p + oldlen).min(end);
        h.splice(p..tail, seq[..n].iter().copied());
        h.truncate(new_len);
        end = h.len();
    }

    // Step 4: merge adjacent VAL opcodes with equal values, scanning up to
    // five opcodes from the one before the change.
    let mut p = prev.unwrap_or(HDR_SIZE);
    let mut scan = 5;
    while p < end && scan > 0 {
        scan -= 1;
        let b = h[p];
        if is_xzero(b) {
            p += 2;
            continue;
        }
        if is_zero(b) {
            p += 1;
            continue;
        }
        if p + 1 < end && is_val(h[p + 1]) {
            let v = val_value(b);
            let len = val_len(b) + val_len(h[p + 1]);
            if v == val_value(h[p + 1]) && len <= SPARSE_VAL_MAX_LEN {
                h[p + 1] = val_op(v, len);
                h.remove(p);
                end -= 1;
                continue;
            }
        }
        p += 1;
    }
    invalidate_cache(h);
    Ok(true)
}

/// Promotes a sparse sketch to dense and sets the register there.
fn promote(h: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(h)?;
    dense_raise(&mut h[HDR_SIZE..], index, count);
    // A promotion only happens when the register needs raising.
    Ok(true)
}

/// Raises register `index` to `count` in either encoding. Returns whether
/// the register changed. The sparse path marks the cache stale itself;
/// the dense one leaves that to the caller, as Redis's `hllDenseSet` does.
pub fn set_register(
    h: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: u64,
) -> Result<bool, Corrupt> {
    if index >= REGISTERS || h.len() < HDR_SIZE {
        return Err(Corrupt);
    }
    // Registers only grow, and hold at most 63.
    let count = count.min(REGISTER_MAX as u8);
    if count == 0 {
        return Ok(false);
    }
    match h[4] {
        DENSE if h.len() == DENSE_SIZE => Ok(dense_raise(&mut h[HDR_SIZE..], index, count)),
        SPARSE => sparse_set(h, index, count, max_bytes),
        _ => Err(Corrupt),
    }
}

/// Adds one element (Redis's `hllAdd`): returns whether a register changed.
/// `max_bytes` is `hll-sparse-max-bytes`.
pub fn add(h: &mut Vec<u8>, ele: &[u8], max_bytes: u64) -> Result<bool, Corrupt> {
    let (index, count) = pat_len(ele);
    set_register(h, index, count, max_bytes)
}

// ---------------------------------------------------------------------
// Counting.

/// Ertl's sigma series.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

/// Ertl's tau series.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// The improved estimator Redis uses since 5.0 ("New cardinality
/// estimation algorithms for HyperLogLog sketches", Ertl), from the
/// register histogram. Same operation order as Redis, so the same doubles.
fn estimate(hist: &[u64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - hist[Q + 1] as f64) / m);
    for j in (1..=Q).rev() {
        z += hist[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(hist[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// Computes the cardinality of a sketch from its registers (ignoring the
/// cache).
pub fn count(h: &[u8]) -> Result<u64, Corrupt> {
    let mut hist = [0u64; 64];
    if !is_valid(h) {
        return Err(Corrupt);
    }
    if h[4] == DENSE {
        dense_histogram(&h[HDR_SIZE..], &mut hist);
    } else {
        walk_sparse(h, |_, op| match op {
            Op::Zero(n) => hist[0] += n as u64,
            Op::Val(v, n) => hist[usize::from(v)] += n as u64,
        })?;
    }
    Ok(estimate(&hist))
}

/// Folds a sketch into `max` (one byte per register, 16384 bytes):
/// `max[i] = max(max[i], register i)` (Redis's `hllMerge`).
pub fn merge_into(max: &mut [u8], h: &[u8]) -> Result<(), Corrupt> {
    if max.len() != REGISTERS || !is_valid(h) {
        return Err(Corrupt);
    }
    if h[4] == DENSE {
        for (q, m) in dense_quads(&h[HDR_SIZE..]).zip(max.chunks_exact_mut(4)) {
            for (r, m) in q.into_iter().zip(m) {
                *m = (*m).max(r);
            }
        }
        Ok(())
    } else {
        walk_sparse(h, |first, op| {
            if let Op::Val(v, n) = op {
                for m in &mut max[first..first + n] {
                    *m = (*m).max(v);
                }
            }
        })
    }
}

/// The cardinality of a one-byte-per-register array (PFCOUNT of several
/// keys).
pub fn count_raw(max: &[u8]) -> u64 {
    let mut hist = [0u64; 64];
    for &r in max {
        hist[usize::from(r & 63)] += 1;
    }
    estimate(&hist)
}

/// All 16384 registers of a sketch, one byte each.
pub fn registers(h: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let mut regs = vec![0u8; REGISTERS];
    merge_into(&mut regs, h)?;
    Ok(regs)
}

/// The sparse opcodes as PFDEBUG DECODE prints them (`z:N`, `Z:N`,
/// `v:VAL,LEN`, space separated). No validation, like Redis.
pub fn decode_sparse(h: &[u8]) -> String {
    let mut out = String::new();
    let mut p = HDR_SIZE;
    while p < h.len() {
        let (op, oplen) = decode(h, p);
        if !out.is_empty() {
            out.push(' ');
        }
        match op {
            Op::Zero(n) if oplen == 1 => out.push_str(&format!("z:{n}")),
            Op::Zero(n) => out.push_str(&format!("Z:{n}")),
            Op::Val(v, n) => out.push_str(&format!("v:{v},{n}")),
        }
        p += oplen;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: u64 = 3000;

    fn build(elems: &[Vec<u8>], max: u64) -> Vec<u8> {
        let mut h = new_sparse();
        for e in elems {
            add(&mut h, e, max).unwrap();
        }
        h
    }

    #[test]
    fn empty_sketch_layout() {
        let h = new_sparse();
        assert_eq!(h.len(), 18);
        assert_eq!(&h[..5], b"HYLL\x01");
        assert_eq!(&h[16..], &[0x7f, 0xff]);
        assert!(is_valid(&h));
        assert_eq!(cached_card(&h), Some(0));
        assert_eq!(count(&h), Ok(0));
        assert_eq!(decode_sparse(&h), "Z:16384");
    }

    #[test]
    fn matches_redis_bytes_for_abc() {
        // PFADD h a b c in Redis 7 yields these bytes (stale cache).
        let h = build(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()], MAX);
        let expect: &[u8] =
            b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x60\xf3\x80\x50\xb1\x84\x4b\xfb\x80\x42\x5a";
        let mut want = expect.to_vec();
        want[15] = 0x80;
        assert_eq!(h, want);
        assert_eq!(
            decode_sparse(&h),
            "Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"
        );
        assert_eq!(count(&h), Ok(3));
    }

    #[test]
    fn alpha_constant_is_redis_literal() {
        #[allow(clippy::excessive_precision)]
        let redis: f64 = 0.721347520444481703680;
        assert_eq!(ALPHA_INF.to_bits(), redis.to_bits());
    }

    #[test]
    fn murmur_tail_lengths() {
        // Different lengths exercise every tail branch without panicking
        // and give distinct hashes.
        let data: Vec<u8> = (0u8..32).collect();
        let mut seen = std::collections::HashSet::new();
        for n in 0..=data.len() {
            assert!(seen.insert(murmur64a(&data[..n], SEED)));
        }
    }

    #[test]
    fn dense_register_roundtrip() {
        let mut regs = vec![0u8; DENSE_REGS];
        for i in 0..REGISTERS {
            dense_put(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8);
        }
    }

    #[test]
    fn promotion_by_size_and_value() {
        let elems: Vec<Vec<u8>> = (0..2000).map(|i| format!("e{i}").into_bytes()).collect();
        let h = build(&elems, MAX);
        assert!(is_dense(&h));
        assert_eq!(h.len(), DENSE_SIZE);
        let c = count(&h).unwrap();
        assert!((1900..2100).contains(&c), "{c}");
        // A value above 32 forces dense at once.
        let mut h = new_sparse();
        assert_eq!(set_register(&mut h, 5, 40, MAX), Ok(true));
        assert!(is_dense(&h));
        assert_eq!(registers(&h).unwrap()[5], 40);
    }

    #[test]
    fn corrupted_inputs() {
        let mut h = new_sparse();
        h.truncate(17); // truncated XZERO: 0x7f then NUL = 16128 registers
        assert_eq!(count(&h), Err(Corrupt));
        assert_eq!(to_dense(&mut h), Err(Corrupt));
        let mut h = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec();
        assert_eq!(add(&mut h, b"x", MAX), Err(Corrupt));
        assert_eq!(count(&h), Err(Corrupt));
        assert!(!is_valid(b"HYLL\x00\0\0\0\0\0\0\0\0\0\0\0"));
        assert!(!is_valid(b"HYLL\x02\0\0\0\0\0\0\0\0\0\0\0"));
        assert!(!is_valid(b"HYL"));
    }

    #[test]
    fn estimator_extremes() {
        let full = vec![51u8; REGISTERS];
        let _ = count_raw(&full);
        let zero = vec![0u8; REGISTERS];
        assert_eq!(count_raw(&zero), 0);
        let max = vec![63u8; REGISTERS];
        let _ = count_raw(&max);
    }

    fn mutate(mut base: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
        for &(i, b) in edits {
            if !base.is_empty() {
                let n = base.len();
                base[i % n] = b;
            }
        }
        base.truncate(cut.max(HDR_SIZE.min(base.len())));
        base
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every parsing path survives arbitrary and mutated bytes.
        #[test]
        fn no_panic_on_garbage(
            raw in proptest::collection::vec(any::<u8>(), 0..64),
            tail in proptest::collection::vec(any::<u8>(), 0..200),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in 0usize..13000,
            sparse in any::<bool>(),
            ele in proptest::collection::vec(any::<u8>(), 0..16),
            reg in 0usize..REGISTERS,
            val in 0u8..64,
        ) {
            let mut hdr = b"HYLL".to_vec();
            hdr.push(if sparse { SPARSE } else { DENSE });
            hdr.extend_from_slice(&[0; 11]);
            let inputs = [
                raw.clone(),
                [hdr.clone(), tail.clone()].concat(),
                mutate(build(&[b"a".to_vec(), ele.clone()], MAX), &edits, usize::MAX),
                mutate(build(&(0..300).map(|i: u32| i.to_le_bytes().to_vec()).collect::<Vec<_>>(), MAX), &edits, cut),
                mutate([hdr, vec![0; DENSE_REGS]].concat(), &edits, cut),
            ];
            for input in inputs {
                let valid = is_valid(&input);
                let _ = count(&input);
                let _ = cached_card(&input);
                let _ = decode_sparse(&input);
                let _ = registers(&input);
                let mut m = vec![0u8; REGISTERS];
                let _ = merge_into(&mut m, &input);
                let mut h = input.clone();
                let _ = to_dense(&mut h);
                let mut h = input.clone();
                let r = add(&mut h, &ele, 40);
                let mut h2 = input.clone();
                let _ = set_register(&mut h2, reg, val, MAX);
                let _ = set_register(&mut h2, reg, val.saturating_add(30), 0);
                if valid && r.is_ok() {
                    // Still well formed after a successful add.
                    prop_assert!(h.len() >= HDR_SIZE);
                }
            }
        }

        /// Sparse and dense sketches of the same input hold the same
        /// registers and give the same count; so does the raw merge path.
        #[test]
        fn sparse_and_dense_agree(
            elems in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..400),
        ) {
            let sparse = build(&elems, u64::MAX);
            let mut dense = new_sparse();
            to_dense(&mut dense).unwrap();
            for e in &elems {
                add(&mut dense, e, MAX).unwrap();
            }
            let mut converted = sparse.clone();
            to_dense(&mut converted).unwrap();
            prop_assert_eq!(&converted[HDR_SIZE..], &dense[HDR_SIZE..]);
            let regs = registers(&sparse).unwrap();
            prop_assert_eq!(&regs, &registers(&dense).unwrap());
            let c = count(&sparse).unwrap();
            prop_assert_eq!(c, count(&dense).unwrap());
            prop_assert_eq!(c, count_raw(&regs));
            // Model: the register array built directly from the hashes.
            let mut model = vec![0u8; REGISTERS];
            for e in &elems {
                let (i, n) = pat_len(e);
                model[i] = model[i].max(n);
            }
            prop_assert_eq!(regs, model);
            // The sparse form always covers exactly all registers.
            let covers = walk_sparse(&sparse, |_, _| ()).is_ok();
            prop_assert!(covers || is_dense(&sparse));
        }
    }
}
