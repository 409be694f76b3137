//! The compact encoding of small sorted sets (Redis's `listpack`): one
//! contiguous buffer of entries sorted by (score, member).
//!
//! ```text
//! entry: [member_len varint][member bytes][score]
//! score: 0x00 [f64 LE]          any value
//!        0x01 [zigzag varint]   integral, |v| < 2^53 (not -0)
//!        0x02 [f32 LE]          exactly representable as f32
//! ```
//!
//! Integer scores (counters, timestamps) cost 2 to 8 bytes and short
//! decimals such as 2.5 five, so an entry is about the size of Redis's
//! listpack pair. Operations are linear scans, fine for the at most
//! `zset-max-listpack-entries` (128) entries the encoding is used for.

use std::cmp::Ordering;

const SCORE_F64: u8 = 0;
const SCORE_INT: u8 = 1;
const SCORE_F32: u8 = 2;

/// Largest magnitude stored as an integer (every integer below is exact).
const INT_LIMIT: f64 = 9007199254740992.0; // 2^53

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn get_varint(buf: &[u8], mut at: usize) -> (u64, usize) {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[at];
        at += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return (v, at);
        }
        shift += 7;
    }
}

/// Appends one encoded entry. A `-0` score is stored as `0`: Redis's
/// listpack stores integral scores as integers (`zzlInsertAt` uses
/// `double2ll`), which loses the sign of zero; the `skiplist` encoding
/// keeps it.
pub(crate) fn encode_entry(out: &mut Vec<u8>, member: &[u8], score: f64) {
    // -0 + 0 is +0; every other value is unchanged.
    let score = score + 0.0;
    put_varint(out, member.len() as u64);
    out.extend_from_slice(member);
    if score.fract() == 0.0 && score.abs() < INT_LIMIT {
        let i = score as i64;
        out.push(SCORE_INT);
        put_varint(out, ((i << 1) ^ (i >> 63)) as u64);
    } else if (score as f32) as f64 == score {
        out.push(SCORE_F32);
        out.extend_from_slice(&(score as f32).to_le_bytes());
    } else {
        out.push(SCORE_F64);
        out.extend_from_slice(&score.to_le_bytes());
    }
}

/// Size of one encoded entry.
fn entry_size(member: &[u8], score: f64) -> usize {
    let mut tmp = Vec::with_capacity(member.len() + 16);
    encode_entry(&mut tmp, member, score);
    tmp.len()
}

/// Decodes the entry at `at`: (member, score, offset of the next entry).
#[inline]
pub(crate) fn decode_entry(buf: &[u8], at: usize) -> (&[u8], f64, usize) {
    let (mlen, at) = get_varint(buf, at);
    let mend = at + mlen as usize;
    let member = &buf[at..mend];
    let tag = buf[mend];
    let (score, next) = match tag {
        SCORE_INT => {
            let (z, next) = get_varint(buf, mend + 1);
            let i = ((z >> 1) as i64) ^ -((z & 1) as i64);
            (i as f64, next)
        }
        SCORE_F32 => {
            let mut b = [0u8; 4];
            b.copy_from_slice(&buf[mend + 1..mend + 5]);
            (f32::from_le_bytes(b) as f64, mend + 5)
        }
        _ => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[mend + 1..mend + 9]);
            (f64::from_le_bytes(b), mend + 9)
        }
    };
    (member, score, next)
}

/// Orders (score, member) pairs as sorted sets do (`-0 == 0`).
#[inline]
pub(crate) fn cmp_pair(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    if s1 < s2 {
        Ordering::Less
    } else if s1 > s2 {
        Ordering::Greater
    } else {
        m1.cmp(m2)
    }
}

/// A small sorted set in one buffer.
#[derive(Clone, Default, PartialEq)]
pub(crate) struct Pack {
    buf: Vec<u8>,
    len: usize,
}

/// Where an entry sits in the buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) index: usize,
    pub(crate) score: f64,
}

impl Pack {
    /// Builds a pack from pairs sorted by (score, member), members unique.
    pub(crate) fn from_sorted<'a>(pairs: impl Iterator<Item = (&'a [u8], f64)>) -> Pack {
        let mut p = Pack::default();
        for (m, s) in pairs {
            encode_entry(&mut p.buf, m, s);
            p.len += 1;
        }
        p.buf.shrink_to_fit();
        p
    }

    /// Entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated.
    pub(crate) fn heap_size(&self) -> usize {
        self.buf.capacity()
    }

    /// Iterates the entries in order.
    pub(crate) fn iter(&self) -> PackIter<'_> {
        PackIter {
            buf: &self.buf,
            at: 0,
            left: self.len,
        }
    }

    /// The entry of `member`.
    pub(crate) fn find(&self, member: &[u8]) -> Option<Slot> {
        let mut at = 0;
        let mut index = 0;
        while at < self.buf.len() {
            let (m, s, next) = decode_entry(&self.buf, at);
            if m == member {
                return Some(Slot {
                    start: at,
                    end: next,
                    index,
                    score: s,
                });
            }
            at = next;
            index += 1;
        }
        None
    }

    /// Byte offset of the entry at `index` (the buffer length past the end).
    pub(crate) fn offset_of(&self, index: usize) -> usize {
        let mut at = 0;
        for _ in 0..index.min(self.len) {
            let (_, _, next) = decode_entry(&self.buf, at);
            at = next;
        }
        at
    }

    /// Inserts `member` (which must be absent) at its place in the order.
    pub(crate) fn insert(&mut self, member: &[u8], score: f64) {
        let mut at = 0;
        while at < self.buf.len() {
            let (m, s, next) = decode_entry(&self.buf, at);
            if cmp_pair(s, m, score, member) == Ordering::Greater {
                break;
            }
            at = next;
        }
        let mut enc = Vec::with_capacity(entry_size(member, score));
        encode_entry(&mut enc, member, score);
        // Exact growth, as Redis reallocates a listpack to its new size.
        self.buf.reserve_exact(enc.len());
        self.buf.splice(at..at, enc);
        self.len += 1;
    }

    /// Removes the entries in the byte range `start..end` (`n` of them).
    pub(crate) fn remove_span(&mut self, start: usize, end: usize, n: usize) {
        self.buf.drain(start..end);
        self.len -= n;
        if self.buf.capacity() - self.buf.len() > self.buf.len() / 4 + 64 {
            self.buf.shrink_to_fit();
        }
    }

    /// Removes the entries of index range `from..to`.
    pub(crate) fn remove_range(&mut self, from: usize, to: usize) {
        let to = to.min(self.len);
        if from >= to {
            return;
        }
        let start = self.offset_of(from);
        let mut end = start;
        for _ in from..to {
            end = decode_entry(&self.buf, end).2;
        }
        self.remove_span(start, end, to - from);
    }
}

/// Iterator over a [`Pack`].
#[derive(Clone)]
pub(crate) struct PackIter<'a> {
    buf: &'a [u8],
    at: usize,
    left: usize,
}

impl<'a> Iterator for PackIter<'a> {
    type Item = (&'a [u8], f64);

    #[inline]
    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        if self.left == 0 {
            return None;
        }
        let (m, s, next) = decode_entry(self.buf, self.at);
        self.at = next;
        self.left -= 1;
        Some((m, s))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for PackIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_encodings_roundtrip() {
        let scores = [
            0.0,
            1.0,
            -1.0,
            2.5,
            0.1,
            1e10,
            -3.0,
            9007199254740991.0,
            9007199254740992.0,
            -9007199254740993.0,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            5e-324,
            1.7976931348623157e308,
        ];
        for s in scores {
            let mut buf = Vec::new();
            encode_entry(&mut buf, b"member", s);
            let (m, d, next) = decode_entry(&buf, 0);
            assert_eq!(m, b"member");
            assert_eq!(d.to_bits(), s.to_bits(), "{s}");
            assert_eq!(next, buf.len());
        }
        let mut buf = Vec::new();
        encode_entry(&mut buf, b"a", -0.0);
        assert_eq!(decode_entry(&buf, 0).1.to_bits(), 0.0f64.to_bits());
        buf.clear();
        encode_entry(&mut buf, b"a", 1.0);
        assert_eq!(buf.len(), 4);
        buf.clear();
        encode_entry(&mut buf, b"a", 2.5);
        assert_eq!(buf.len(), 7);
    }

    #[test]
    fn insert_keeps_order() {
        let mut p = Pack::default();
        for (m, s) in [(&b"b"[..], 2.0), (b"a", 2.0), (b"z", -1.0), (b"c", 0.5)] {
            p.insert(m, s);
        }
        let v: Vec<_> = p.iter().collect();
        assert_eq!(
            v,
            vec![(&b"z"[..], -1.0), (b"c", 0.5), (b"a", 2.0), (b"b", 2.0)]
        );
        let s = p.find(b"a").unwrap();
        assert_eq!(s.index, 2);
        p.remove_span(s.start, s.end, 1);
        p.remove_range(0, 1);
        let v: Vec<_> = p.iter().collect();
        assert_eq!(v, vec![(&b"c"[..], 0.5), (b"b", 2.0)]);
    }
}
