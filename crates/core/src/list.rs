//! Lists, in Redis 7.2's two encodings:
//!
//! - `listpack`: a small list is one contiguous buffer of entries (a
//!   [`Pack`]), no allocation per element;
//! - `quicklist`: a large list is a deque of such buffers ("nodes"), each
//!   bounded by `list-max-listpack-size`, so pushes and pops at both ends
//!   are O(1) amortised and an index is reached by skipping whole nodes.
//!
//! The entry format is kvik's own, but every entry takes exactly as many
//! bytes as the same element takes in a Redis listpack (same size classes
//! for integers, string headers and back-lengths), and a buffer's accounted
//! size is its length plus Redis's 7-byte listpack header/terminator. That
//! makes the size-driven decisions (listpack → quicklist conversion, node
//! splits and merges, quicklist → listpack on shrinking) land on exactly the
//! same element as in Redis, so OBJECT ENCODING answers what Redis answers.
//!
//! Conversions are not automatic: the command layer calls
//! [`List::grow_for`] before adding and [`List::shrink_for`] after removing,
//! at the same points as Redis's `t_list.c`, because the order of pushes,
//! pops and checks decides the encoding (e.g. LMOVE on a single key pops,
//! pushes, then checks).

use std::collections::VecDeque;

/// Redis's listpack header (total bytes + element count) and terminator:
/// accounted once per buffer.
const PACK_OVERHEAD: usize = 7;
/// Node size limits for negative `list-max-listpack-size` values -1..-5.
const SIZE_LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// Byte cap of a node when the limit is an element count.
const SAFETY_LIMIT: usize = 8192;
/// Redis's estimate of an entry's header + back-length when deciding
/// whether one more element fits in a node.
const INSERT_OVERHEAD: usize = 8;
/// Largest per-node element count a quicklist keeps (Redis's FILL_MAX).
const FILL_MAX: i64 = 32767;
/// Elements this large get a node of their own (Redis's packed threshold).
const LARGE_ELEMENT: usize = 1 << 30;

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The left end, index 0.
    Head,
    /// The right end, index -1.
    Tail,
}

/// An element as stored: integers that are canonical decimal strings are
/// kept as numbers (as a listpack does) and read back as the same string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    /// A string element.
    Str(&'a [u8]),
    /// An element whose string form is this integer's decimal form.
    Int(i64),
}

impl Elem<'_> {
    /// The element's string form.
    pub fn to_vec(&self) -> Vec<u8> {
        match *self {
            Elem::Str(s) => s.to_vec(),
            Elem::Int(v) => v.to_string().into_bytes(),
        }
    }

    /// Length of the element's string form.
    pub fn str_len(&self) -> usize {
        match *self {
            Elem::Str(s) => s.len(),
            Elem::Int(v) => int_str_len(v),
        }
    }
}

/// An element taken out of a list (a popped value).
///
/// Like Redis's `listTypePop`, a value popped from a quicklist integer entry
/// comes out as `Int` and anything popped from a listpack as `Str`; this
/// matters only to [`Item::growth_bytes`], which mirrors what Redis counts
/// when the value is pushed elsewhere (LMOVE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A string value.
    Str(Vec<u8>),
    /// An integer value.
    Int(i64),
}

impl Item {
    /// Borrowed view.
    pub fn as_elem(&self) -> Elem<'_> {
        match self {
            Item::Str(s) => Elem::Str(s),
            Item::Int(v) => Elem::Int(*v),
        }
    }

    /// The value's string form.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Item::Str(s) => s,
            Item::Int(v) => v.to_string().into_bytes(),
        }
    }

    /// Bytes Redis adds up for this value in its listpack growth check:
    /// string objects count their length, integer objects nothing.
    pub fn growth_bytes(&self) -> usize {
        match self {
            Item::Str(s) => s.len(),
            Item::Int(_) => 0,
        }
    }
}

/// A value to compare list elements with (LREM, LPOS, LINSERT's pivot).
/// Equality is Redis's: byte equality of the string forms.
pub struct Needle<'a> {
    enc: Enc<'a>,
}

impl<'a> Needle<'a> {
    /// A needle for `value`.
    pub fn new(value: &'a [u8]) -> Needle<'a> {
        Needle {
            enc: Enc::of_bytes(value),
        }
    }

    /// Whether `e` equals the needle.
    pub fn matches(&self, e: Elem<'_>) -> bool {
        match e {
            Elem::Str(s) => Enc::string(s).same(&self.enc),
            Elem::Int(v) => Enc::int(v).same(&self.enc),
        }
    }
}

// ---------------------------------------------------------------------------
// Entry encoding
// ---------------------------------------------------------------------------

/// Decimal length of an integer.
fn int_str_len(v: i64) -> usize {
    let mut n = if v < 0 { 2 } else { 1 };
    let mut u = v.unsigned_abs();
    while u >= 10 {
        u /= 10;
        n += 1;
    }
    n
}

/// Bytes of the back-length field for an entry of `l` bytes (header and
/// payload): Redis's thresholds, 7 bits per byte.
#[inline]
fn backlen_size(l: usize) -> usize {
    if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2097151 {
        3
    } else if l < 268435455 {
        4
    } else if l < (1 << 35) {
        5
    } else {
        (usize::BITS - l.leading_zeros()).div_ceil(7) as usize
    }
}

/// An element encoded for insertion: header (with an integer's payload)
/// and, for strings, the bytes. Headers:
///
/// | first byte  | entry                                   | bytes   |
/// |-------------|-----------------------------------------|---------|
/// | `0xxxxxxx`  | integer 0..=127                         | 1       |
/// | `10llllll`  | string of length < 64                   | 1 + len |
/// | `110xxxxx`  | 13-bit integer (one more byte)          | 2       |
/// | `1110llll`  | string of length < 4096 (one more byte) | 2 + len |
/// | `0xF0`      | string, u32 length follows              | 5 + len |
/// | `0xF1..F4`  | i16, i24, i32, i64 follow               | 3,4,5,9 |
/// | `0xF5`      | string, u64 length follows              | 9 + len |
///
/// followed by the back-length of header + payload, written so that it
/// can be read from its last byte backwards (high bit: more bytes before).
#[derive(Clone, Copy)]
struct Enc<'a> {
    head: [u8; 9],
    hlen: usize,
    payload: &'a [u8],
}

impl<'a> Enc<'a> {
    /// Encodes a client value: canonical integers become numbers.
    fn of_bytes(s: &'a [u8]) -> Enc<'a> {
        match crate::num::parse_i64(s) {
            Some(v) => Enc::int(v),
            None => Enc::string(s),
        }
    }

    fn of_elem(e: Elem<'a>) -> Enc<'a> {
        match e {
            Elem::Str(s) => Enc::of_bytes(s),
            Elem::Int(v) => Enc::int(v),
        }
    }

    fn int(v: i64) -> Enc<'static> {
        let mut head = [0u8; 9];
        let hlen = if (0..=127).contains(&v) {
            head[0] = v as u8;
            1
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u16) & 0x1fff;
            head[0] = 0xC0 | (u >> 8) as u8;
            head[1] = u as u8;
            2
        } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
            head[0] = 0xF1;
            head[1..3].copy_from_slice(&(v as i16).to_le_bytes());
            3
        } else if (-8388608..=8388607).contains(&v) {
            head[0] = 0xF2;
            head[1..4].copy_from_slice(&(v as i32).to_le_bytes()[..3]);
            4
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
            head[0] = 0xF3;
            head[1..5].copy_from_slice(&(v as i32).to_le_bytes());
            5
        } else {
            head[0] = 0xF4;
            head[1..9].copy_from_slice(&v.to_le_bytes());
            9
        };
        Enc {
            head,
            hlen,
            payload: &[],
        }
    }

    fn string(s: &'a [u8]) -> Enc<'a> {
        let mut head = [0u8; 9];
        let len = s.len();
        let hlen = if len < 64 {
            head[0] = 0x80 | len as u8;
            1
        } else if len < 4096 {
            head[0] = 0xE0 | (len >> 8) as u8;
            head[1] = len as u8;
            2
        } else if let Ok(l32) = u32::try_from(len) {
            head[0] = 0xF0;
            head[1..5].copy_from_slice(&l32.to_le_bytes());
            5
        } else {
            head[0] = 0xF5;
            head[1..9].copy_from_slice(&(len as u64).to_le_bytes());
            9
        };
        Enc {
            head,
            hlen,
            payload: s,
        }
    }

    /// Header + payload bytes.
    #[inline]
    fn data_len(&self) -> usize {
        self.hlen + self.payload.len()
    }

    /// Bytes the entry takes in a buffer.
    #[inline]
    fn total_len(&self) -> usize {
        let d = self.data_len();
        d + backlen_size(d)
    }

    /// Writes the entry into `dst` (exactly `total_len` bytes).
    fn write(&self, dst: &mut [u8]) {
        let d = self.data_len();
        dst[..self.hlen].copy_from_slice(&self.head[..self.hlen]);
        dst[self.hlen..d].copy_from_slice(self.payload);
        let n = backlen_size(d);
        let end = dst.len();
        for i in 0..n {
            let group = ((d >> (7 * i)) & 0x7f) as u8;
            dst[end - 1 - i] = if i + 1 < n { group | 0x80 } else { group };
        }
    }

    /// Whether the entry whose header + payload are `buf[p..p + dl]` holds
    /// this value (encodings are canonical, so equal values encode alike).
    #[inline]
    fn matches_at(&self, buf: &[u8], p: usize, dl: usize) -> bool {
        dl == self.data_len()
            && buf[p..p + self.hlen] == self.head[..self.hlen]
            && buf[p + self.hlen..p + dl] == *self.payload
    }

    fn same(&self, other: &Enc<'_>) -> bool {
        self.head[..self.hlen] == other.head[..other.hlen] && self.payload == other.payload
    }
}

/// One buffer of entries: a whole `listpack` list, or one quicklist node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Pack {
    buf: Vec<u8>,
    count: usize,
}

impl Pack {
    /// Size Redis would account for this listpack (`lpBytes`).
    #[inline]
    fn sz(&self) -> usize {
        self.buf.len() + PACK_OVERHEAD
    }

    /// Header + payload length of the entry at `p`.
    #[inline]
    fn data_len_at(&self, p: usize) -> usize {
        let b = &self.buf;
        match b[p] {
            0x00..=0x7F => 1,
            h @ 0x80..=0xBF => 1 + (h & 0x3f) as usize,
            0xC0..=0xDF => 2,
            h @ 0xE0..=0xEF => 2 + ((((h & 0x0f) as usize) << 8) | b[p + 1] as usize),
            0xF0 => 5 + u32::from_le_bytes([b[p + 1], b[p + 2], b[p + 3], b[p + 4]]) as usize,
            0xF1 => 3,
            0xF2 => 4,
            0xF3 => 5,
            0xF4 => 9,
            _ => {
                let mut l = [0u8; 8];
                l.copy_from_slice(&b[p + 1..p + 9]);
                9 + u64::from_le_bytes(l) as usize
            }
        }
    }

    /// The element at `p`.
    #[inline]
    fn get(&self, p: usize) -> Elem<'_> {
        self.get_len(p).0
    }

    /// The element at `p` and its header + payload length.
    #[inline]
    fn get_len(&self, p: usize) -> (Elem<'_>, usize) {
        let b = &self.buf;
        match b[p] {
            h @ 0x00..=0x7F => (Elem::Int(h as i64), 1),
            h @ 0x80..=0xBF => {
                let dl = 1 + (h & 0x3f) as usize;
                (Elem::Str(&b[p + 1..p + dl]), dl)
            }
            h @ 0xC0..=0xDF => {
                let raw = (((h & 0x1f) as u16) << 8) | b[p + 1] as u16;
                (Elem::Int((((raw << 3) as i16) >> 3) as i64), 2)
            }
            0xE0..=0xEF => {
                let dl = self.data_len_at(p);
                (Elem::Str(&b[p + 2..p + dl]), dl)
            }
            0xF0 => {
                let dl = self.data_len_at(p);
                (Elem::Str(&b[p + 5..p + dl]), dl)
            }
            0xF1 => (
                Elem::Int(i16::from_le_bytes([b[p + 1], b[p + 2]]) as i64),
                3,
            ),
            0xF2 => {
                let u = i32::from_le_bytes([0, b[p + 1], b[p + 2], b[p + 3]]);
                (Elem::Int((u >> 8) as i64), 4)
            }
            0xF3 => {
                let v = i32::from_le_bytes([b[p + 1], b[p + 2], b[p + 3], b[p + 4]]);
                (Elem::Int(v as i64), 5)
            }
            0xF4 => {
                let mut v = [0u8; 8];
                v.copy_from_slice(&b[p + 1..p + 9]);
                (Elem::Int(i64::from_le_bytes(v)), 9)
            }
            _ => {
                let dl = self.data_len_at(p);
                (Elem::Str(&b[p + 9..p + dl]), dl)
            }
        }
    }

    /// Offset of the entry after the one at `p`.
    #[inline]
    fn next(&self, p: usize) -> usize {
        let d = self.data_len_at(p);
        p + d + backlen_size(d)
    }

    /// Offset of the entry before offset `p` (`p > 0`).
    #[inline]
    fn prev(&self, p: usize) -> usize {
        let mut d = 0usize;
        let mut i = 0;
        loop {
            let b = self.buf[p - 1 - i];
            d |= ((b & 0x7f) as usize) << (7 * i);
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        p - i - d
    }

    /// Offset of entry `i` (`i <= count`; `count` gives the end), walking
    /// from the nearer end.
    fn offset_of(&self, i: usize) -> usize {
        if i <= self.count / 2 {
            let mut p = 0;
            for _ in 0..i {
                p = self.next(p);
            }
            p
        } else {
            let mut p = self.buf.len();
            for _ in i..self.count {
                p = self.prev(p);
            }
            p
        }
    }

    /// Grows capacity for `extra` more bytes: by a quarter, but not past
    /// the next power of two, so a node filled up to a power-of-two size
    /// limit wastes nothing and small lists waste little.
    fn reserve(&mut self, extra: usize) {
        let need = self.buf.len() + extra;
        if need > self.buf.capacity() {
            let target = need
                .saturating_add(need / 4)
                .min(need.checked_next_power_of_two().unwrap_or(need))
                .max(need);
            self.buf.reserve_exact(target - self.buf.len());
        }
    }

    /// Returns memory after deletions left the buffer mostly empty.
    fn maybe_shrink(&mut self) {
        let len = self.buf.len();
        if self.buf.capacity() > len * 2 + 64 {
            self.buf.shrink_to(len + len / 4);
        }
    }

    /// Replaces `old` bytes at `p` with `new` bytes and returns them for
    /// writing.
    fn splice(&mut self, p: usize, old: usize, new: usize) -> &mut [u8] {
        let len = self.buf.len();
        if new > old {
            self.reserve(new - old);
            self.buf.resize(len + new - old, 0);
            self.buf.copy_within(p + old..len, p + new);
        } else if new < old {
            self.buf.copy_within(p + old..len, p + new);
            self.buf.truncate(len - (old - new));
        }
        &mut self.buf[p..p + new]
    }

    fn insert(&mut self, p: usize, e: &Enc<'_>) {
        let t = e.total_len();
        e.write(self.splice(p, 0, t));
        self.count += 1;
    }

    fn push_back(&mut self, e: &Enc<'_>) {
        self.insert(self.buf.len(), e);
    }

    fn push_front(&mut self, e: &Enc<'_>) {
        self.insert(0, e);
    }

    fn single(e: &Enc<'_>) -> Pack {
        let mut p = Pack::default();
        p.push_back(e);
        p
    }

    fn replace(&mut self, p: usize, e: &Enc<'_>) {
        let old = self.next(p) - p;
        let t = e.total_len();
        e.write(self.splice(p, old, t));
        if t < old {
            self.maybe_shrink();
        }
    }

    /// Removes the `n` entries in bytes `a..b`.
    fn remove_span(&mut self, a: usize, b: usize, n: usize) {
        self.buf.drain(a..b);
        self.count -= n;
        self.maybe_shrink();
    }

    /// Removes entries `i..i + n`.
    fn delete_entries(&mut self, i: usize, n: usize) {
        if n == 0 {
            return;
        }
        let a = self.offset_of(i);
        let b = if i + n >= self.count {
            self.buf.len()
        } else {
            let mut b = a;
            for _ in 0..n {
                b = self.next(b);
            }
            b
        };
        self.remove_span(a, b, n);
    }

    /// Splits off entries `i..`, keeping `..i`.
    fn split_off(&mut self, i: usize) -> Pack {
        let p = self.offset_of(i);
        let rest = Pack {
            buf: self.buf.split_off(p),
            count: self.count - i,
        };
        self.count = i;
        self.maybe_shrink();
        rest
    }

    fn append(&mut self, other: Pack) {
        self.reserve(other.buf.len());
        self.buf.extend_from_slice(&other.buf);
        self.count += other.count;
    }

    /// Removes up to `limit` entries equal to `needle`, the first ones
    /// (or with `rev` the last ones); returns how many went.
    fn remove_matching(&mut self, needle: &Enc<'_>, limit: usize, rev: bool) -> usize {
        let len = self.buf.len();
        let start = if rev {
            // Find the earliest of the last `limit` matches.
            let (mut p, mut found, mut cut) = (len, 0, len);
            while p > 0 && found < limit {
                let q = self.prev(p);
                if needle.matches_at(&self.buf, q, self.data_len_at(q)) {
                    found += 1;
                    cut = q;
                }
                p = q;
            }
            if found == 0 {
                return 0;
            }
            cut
        } else {
            0
        };
        let (mut removed, mut w, mut p) = (0, start, start);
        while p < len {
            let dl = self.data_len_at(p);
            let total = dl + backlen_size(dl);
            if needle.matches_at(&self.buf, p, dl) {
                removed += 1;
                p += total;
                if removed == limit {
                    break;
                }
            } else {
                if w != p {
                    self.buf.copy_within(p..p + total, w);
                }
                w += total;
                p += total;
            }
        }
        if removed == 0 {
            return 0;
        }
        if p < len {
            self.buf.copy_within(p..len, w);
            w += len - p;
        }
        self.buf.truncate(w);
        self.count -= removed;
        self.maybe_shrink();
        removed
    }

    /// Position (entry index, byte offset) of the first entry equal to
    /// `needle`.
    fn find(&self, needle: &Enc<'_>) -> Option<(usize, usize)> {
        let mut p = 0;
        let mut i = 0;
        while p < self.buf.len() {
            let dl = self.data_len_at(p);
            if needle.matches_at(&self.buf, p, dl) {
                return Some((i, p));
            }
            p += dl + backlen_size(dl);
            i += 1;
        }
        None
    }
}

// ---------------------------------------------------------------------------
// Size limits (Redis's quicklistNodeLimit / quicklistNodeExceedsLimit)
// ---------------------------------------------------------------------------

/// (byte limit, count limit) for a `list-max-listpack-size` value;
/// `usize::MAX` means no limit of that kind.
fn node_limit(fill: i64) -> (usize, usize) {
    if fill >= 0 {
        (usize::MAX, if fill == 0 { 1 } else { fill as usize })
    } else {
        let level = ((-(fill + 1)) as u64).min(SIZE_LEVELS.len() as u64 - 1) as usize;
        (SIZE_LEVELS[level], usize::MAX)
    }
}

/// Whether a node of `sz` bytes and `count` entries is over the limit.
fn exceeds_limit(fill: i64, sz: usize, count: usize) -> bool {
    let (sl, cl) = node_limit(fill);
    if sl != usize::MAX {
        sz > sl
    } else {
        sz > SAFETY_LIMIT || count > cl
    }
}

// ---------------------------------------------------------------------------
// Quicklist
// ---------------------------------------------------------------------------

/// The `quicklist` encoding: non-empty nodes, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Quick {
    nodes: VecDeque<Pack>,
    len: usize,
    /// `list-max-listpack-size` when the quicklist was made (Redis keeps it
    /// per quicklist for node splitting), clamped as Redis clamps it.
    fill: i64,
}

impl Quick {
    /// Whether one more element of `sz` string bytes may go into `n`.
    fn allow_insert(&self, n: &Pack, sz: usize) -> bool {
        sz < LARGE_ELEMENT && !exceeds_limit(self.fill, n.sz() + sz + INSERT_OVERHEAD, n.count + 1)
    }

    fn allow_merge(&self, a: usize, b: usize) -> bool {
        let (a, b) = (&self.nodes[a], &self.nodes[b]);
        !exceeds_limit(
            self.fill,
            a.sz() + b.sz() - PACK_OVERHEAD,
            a.count + b.count,
        )
    }

    /// Node and index within it of list index `index` (< len), walking
    /// whole nodes from the nearer end.
    fn locate(&self, index: usize) -> (usize, usize) {
        if index < self.len / 2 {
            let mut acc = 0;
            for (i, n) in self.nodes.iter().enumerate() {
                if acc + n.count > index {
                    return (i, index - acc);
                }
                acc += n.count;
            }
        } else {
            let mut acc = self.len;
            for (i, n) in self.nodes.iter().enumerate().rev() {
                acc -= n.count;
                if acc <= index {
                    return (i, index - acc);
                }
            }
        }
        unreachable!("index {index} within a quicklist of {} elements", self.len)
    }

    fn push(&mut self, end: End, e: &Enc<'_>, sz: usize) {
        let target = match end {
            End::Head => self.nodes.front(),
            End::Tail => self.nodes.back(),
        };
        if target.is_some_and(|n| self.allow_insert(n, sz)) {
            let n = match end {
                End::Head => self.nodes.front_mut(),
                End::Tail => self.nodes.back_mut(),
            };
            if let Some(n) = n {
                match end {
                    End::Head => n.push_front(e),
                    End::Tail => n.push_back(e),
                }
            }
        } else {
            match end {
                End::Head => self.nodes.push_front(Pack::single(e)),
                End::Tail => self.nodes.push_back(Pack::single(e)),
            }
        }
        self.len += 1;
    }

    fn pop(&mut self, end: End) -> Option<Item> {
        let node = match end {
            End::Head => self.nodes.front_mut()?,
            End::Tail => self.nodes.back_mut()?,
        };
        let p = match end {
            End::Head => 0,
            End::Tail => node.prev(node.buf.len()),
        };
        let item = match node.get(p) {
            Elem::Str(s) => Item::Str(s.to_vec()),
            Elem::Int(v) => Item::Int(v),
        };
        let q = node.next(p);
        node.remove_span(p, q, 1);
        if node.count == 0 {
            match end {
                End::Head => self.nodes.pop_front(),
                End::Tail => self.nodes.pop_back(),
            };
        }
        self.len -= 1;
        Some(item)
    }

    /// Removes `n` elements from `start` (the range is within the list);
    /// emptied nodes go, the others are not merged (quicklistDelRange).
    fn delete_range(&mut self, start: usize, n: usize) {
        let (mut ni, local) = self.locate(start);
        let mut rem = n;
        if local > 0 {
            let node = &mut self.nodes[ni];
            let k = rem.min(node.count - local);
            node.delete_entries(local, k);
            rem -= k;
            ni += 1;
        }
        let mut j = ni;
        while rem > 0 && self.nodes[j].count <= rem {
            rem -= self.nodes[j].count;
            j += 1;
        }
        self.nodes.drain(ni..j);
        if rem > 0 {
            self.nodes[ni].delete_entries(0, rem);
        }
        self.len -= n;
    }

    /// Inserts `e` (of `sz` string bytes) before or after entry `oi` of
    /// node `ni`, splitting and merging nodes as Redis's
    /// `_quicklistInsert` does.
    fn insert_at(&mut self, ni: usize, oi: usize, after: bool, e: &Enc<'_>, sz: usize) {
        let count = self.nodes[ni].count;
        let full = !self.allow_insert(&self.nodes[ni], sz);
        let at_tail = after && oi == count - 1;
        let at_head = !after && oi == 0;
        let avail_next =
            at_tail && ni + 1 < self.nodes.len() && self.allow_insert(&self.nodes[ni + 1], sz);
        let avail_prev = at_head && ni > 0 && self.allow_insert(&self.nodes[ni - 1], sz);
        if !full {
            let node = &mut self.nodes[ni];
            let p = node.offset_of(if after { oi + 1 } else { oi });
            node.insert(p, e);
        } else if avail_next {
            self.nodes[ni + 1].push_front(e);
        } else if avail_prev {
            self.nodes[ni - 1].push_back(e);
        } else if at_tail || at_head {
            self.nodes
                .insert(if after { ni + 1 } else { ni }, Pack::single(e));
        } else if after {
            let mut tail = self.nodes[ni].split_off(oi + 1);
            tail.push_front(e);
            self.nodes.insert(ni + 1, tail);
            self.merge_around(ni);
        } else {
            let node = &mut self.nodes[ni];
            let rest = node.split_off(oi);
            let mut front = std::mem::replace(node, rest);
            front.push_back(e);
            self.nodes.insert(ni, front);
            self.merge_around(ni + 1);
        }
        self.len += 1;
    }

    /// Merges nodes[a + 1] into nodes[a].
    fn merge_pair(&mut self, a: usize) {
        if let Some(b) = self.nodes.remove(a + 1) {
            self.nodes[a].append(b);
        }
    }

    /// Redis's `_quicklistMergeNodes` around node `c`: (prev-prev, prev),
    /// (next, next-next), (prev, center), then (center, next).
    fn merge_around(&mut self, mut c: usize) {
        if c >= 2 && self.allow_merge(c - 2, c - 1) {
            self.merge_pair(c - 2);
            c -= 1;
        }
        if c + 2 < self.nodes.len() && self.allow_merge(c + 1, c + 2) {
            self.merge_pair(c + 1);
        }
        let target = if c >= 1 && self.allow_merge(c - 1, c) {
            self.merge_pair(c - 1);
            c - 1
        } else {
            c
        };
        if target + 1 < self.nodes.len() && self.allow_merge(target, target + 1) {
            self.merge_pair(target);
        }
    }
}

// ---------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Repr {
    Pack(Pack),
    Quick(Box<Quick>),
}

/// A Redis list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List {
    repr: Repr,
}

impl Default for List {
    fn default() -> Self {
        List::new()
    }
}

impl List {
    /// An empty list (listpack-encoded, as Redis creates them).
    pub fn new() -> List {
        List {
            repr: Repr::Pack(Pack::default()),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.count,
            Repr::Quick(q) => q.len,
        }
    }

    /// Whether the list has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Redis encoding name (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Pack(_) => "listpack",
            Repr::Quick(_) => "quicklist",
        }
    }

    /// Approximate heap bytes used.
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.buf.capacity(),
            Repr::Quick(q) => {
                std::mem::size_of::<Quick>()
                    + q.nodes.capacity() * std::mem::size_of::<Pack>()
                    + q.nodes.iter().map(|n| n.buf.capacity()).sum::<usize>()
            }
        }
    }

    /// Number of quicklist nodes (1 for a listpack).
    pub fn node_count(&self) -> usize {
        match &self.repr {
            Repr::Pack(_) => 1,
            Repr::Quick(q) => q.nodes.len(),
        }
    }

    /// Before adding `add_count` elements whose string objects total
    /// `add_bytes` bytes: converts a listpack that would then be over the
    /// `list-max-listpack-size` limit (`fill`) to a quicklist (Redis's
    /// `listTypeTryConversionAppend`).
    pub fn grow_for(&mut self, fill: i64, add_bytes: usize, add_count: usize) {
        let Repr::Pack(p) = &mut self.repr else {
            return;
        };
        if !exceeds_limit(
            fill,
            p.sz().saturating_add(add_bytes),
            p.count.saturating_add(add_count),
        ) {
            return;
        }
        let pack = std::mem::take(p);
        let mut l = List::new_quicklist(fill);
        if let Repr::Quick(q) = &mut l.repr {
            q.len = pack.count;
            if pack.count > 0 {
                q.nodes.push_back(pack);
            }
        }
        *self = l;
    }

    /// After removing elements: turns a quicklist of one node back into a
    /// listpack once it is within half the limit (Redis's
    /// `listTypeTryConversion(LIST_CONV_SHRINKING)`).
    pub fn shrink_for(&mut self, fill: i64) {
        self.convert_to_listpack_within(fill, true);
    }

    /// After building a list as a quicklist (SORT ... STORE does): turns a
    /// quicklist of one node within the limit into a listpack (Redis's
    /// `listTypeTryConversion(LIST_CONV_AUTO)`).
    pub fn convert_auto(&mut self, fill: i64) {
        self.convert_to_listpack_within(fill, false);
    }

    fn convert_to_listpack_within(&mut self, fill: i64, shrinking: bool) {
        let Repr::Quick(q) = &mut self.repr else {
            return;
        };
        if q.nodes.len() != 1 {
            return;
        }
        let (mut sl, mut cl) = node_limit(fill);
        if shrinking {
            (sl, cl) = (sl / 2, cl / 2);
        }
        if q.nodes[0].sz() > sl || q.len > cl {
            return;
        }
        if let Some(node) = q.nodes.pop_front() {
            self.repr = Repr::Pack(node);
        }
    }

    /// An empty list in the quicklist encoding, for building a list the
    /// way SORT ... STORE does (push everything, then [`List::convert_auto`]).
    pub fn new_quicklist(fill: i64) -> List {
        List {
            repr: Repr::Quick(Box::new(Quick {
                nodes: VecDeque::new(),
                len: 0,
                fill: fill.clamp(-5, FILL_MAX),
            })),
        }
    }

    /// LPUSH/RPUSH: the growth check for all `values`, then each pushed in
    /// turn. Returns the new length.
    pub fn push_all(&mut self, end: End, values: &[&[u8]], fill: i64) -> usize {
        let bytes = values.iter().map(|v| v.len()).sum();
        self.grow_for(fill, bytes, values.len());
        for v in values {
            self.push(end, v);
        }
        self.len()
    }

    /// Pushes one value (no conversion check: see [`List::grow_for`]).
    pub fn push(&mut self, end: End, value: &[u8]) {
        self.push_enc(end, &Enc::of_bytes(value), value.len());
    }

    /// Pushes a popped value (no conversion check).
    pub fn push_item(&mut self, end: End, item: &Item) {
        let e = item.as_elem();
        self.push_enc(end, &Enc::of_elem(e), e.str_len());
    }

    fn push_enc(&mut self, end: End, e: &Enc<'_>, sz: usize) {
        match &mut self.repr {
            Repr::Pack(p) => match end {
                End::Head => p.push_front(e),
                End::Tail => p.push_back(e),
            },
            Repr::Quick(q) => q.push(end, e, sz),
        }
    }

    /// Removes and returns the element at `end` (no conversion check: see
    /// [`List::shrink_for`]).
    pub fn pop(&mut self, end: End) -> Option<Item> {
        match &mut self.repr {
            Repr::Pack(p) => {
                if p.count == 0 {
                    return None;
                }
                let a = match end {
                    End::Head => 0,
                    End::Tail => p.prev(p.buf.len()),
                };
                let item = Item::Str(p.get(a).to_vec());
                let b = p.next(a);
                p.remove_span(a, b, 1);
                Some(item)
            }
            Repr::Quick(q) => q.pop(end),
        }
    }

    /// Resolves a Redis index (negative counts from the tail).
    fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.len() as i64;
        let i = if index < 0 {
            index.checked_add(len)?
        } else {
            index
        };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// Node holding list index `index` (< len) and the entry's offset.
    fn seek(&self, index: usize) -> (usize, usize) {
        match &self.repr {
            Repr::Pack(p) => (0, p.offset_of(index)),
            Repr::Quick(q) => {
                let (ni, local) = q.locate(index);
                (ni, q.nodes[ni].offset_of(local))
            }
        }
    }

    fn node(&self, i: usize) -> &Pack {
        match &self.repr {
            Repr::Pack(p) => p,
            Repr::Quick(q) => &q.nodes[i],
        }
    }

    /// The element at a Redis index (LINDEX).
    pub fn get(&self, index: i64) -> Option<Elem<'_>> {
        let i = self.resolve(index)?;
        let (ni, p) = self.seek(i);
        Some(self.node(ni).get(p))
    }

    /// Replaces the element at a Redis index (LSET); false when out of
    /// range. The node keeps its place even if it outgrows the limit, as in
    /// Redis.
    pub fn set(&mut self, index: i64, value: &[u8]) -> bool {
        let Some(i) = self.resolve(index) else {
            return false;
        };
        let (ni, p) = self.seek(i);
        let e = Enc::of_bytes(value);
        match &mut self.repr {
            Repr::Pack(pk) => pk.replace(p, &e),
            Repr::Quick(q) => q.nodes[ni].replace(p, &e),
        }
        true
    }

    /// Inserts `value` before or after the first element equal to `pivot`
    /// (LINSERT); false when there is none.
    pub fn insert(&mut self, pivot: &[u8], value: &[u8], after: bool) -> bool {
        let needle = Enc::of_bytes(pivot);
        let e = Enc::of_bytes(value);
        match &mut self.repr {
            Repr::Pack(p) => match p.find(&needle) {
                Some((_, off)) => {
                    let at = if after { p.next(off) } else { off };
                    p.insert(at, &e);
                    true
                }
                None => false,
            },
            Repr::Quick(q) => {
                let found = q
                    .nodes
                    .iter()
                    .enumerate()
                    .find_map(|(ni, n)| n.find(&needle).map(|(oi, _)| (ni, oi)));
                match found {
                    Some((ni, oi)) => {
                        q.insert_at(ni, oi, after, &e, value.len());
                        true
                    }
                    None => false,
                }
            }
        }
    }

    /// Removes elements equal to `value` (LREM): `count > 0` the first
    /// `count` from the head, `count < 0` the last `-count`, 0 all.
    /// Returns how many were removed.
    pub fn remove(&mut self, value: &[u8], count: i64) -> usize {
        let needle = Enc::of_bytes(value);
        let limit = if count == 0 {
            usize::MAX
        } else {
            usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
        };
        let rev = count < 0;
        match &mut self.repr {
            Repr::Pack(p) => p.remove_matching(&needle, limit, rev),
            Repr::Quick(q) => {
                let mut removed = 0;
                let n = q.nodes.len();
                for k in 0..n {
                    let i = if rev { n - 1 - k } else { k };
                    removed += q.nodes[i].remove_matching(&needle, limit - removed, rev);
                    if removed == limit {
                        break;
                    }
                }
                if removed > 0 {
                    q.nodes.retain(|n| n.count > 0);
                    q.len -= removed;
                }
                removed
            }
        }
    }

    /// Removes `n` elements starting at index `start` (clamped to the
    /// list): LTRIM and the counted pops.
    pub fn delete_range(&mut self, start: usize, n: usize) {
        let len = self.len();
        if start >= len || n == 0 {
            return;
        }
        let n = n.min(len - start);
        match &mut self.repr {
            Repr::Pack(p) => p.delete_entries(start, n),
            Repr::Quick(q) => q.delete_range(start, n),
        }
    }

    /// Removes `n` elements (at most all) from one end.
    pub fn pop_range(&mut self, end: End, n: usize) {
        let len = self.len();
        let n = n.min(len);
        match end {
            End::Head => self.delete_range(0, n),
            End::Tail => self.delete_range(len - n, n),
        }
    }

    /// Iterates from the head.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }

    /// Iterates towards the tail from index `start`.
    pub fn iter_from(&self, start: usize) -> Iter<'_> {
        self.iter_at(start, false)
    }

    /// Iterates towards the head from index `start`.
    pub fn iter_rev_from(&self, start: usize) -> Iter<'_> {
        self.iter_at(start, true)
    }

    fn iter_at(&self, start: usize, rev: bool) -> Iter<'_> {
        let len = self.len();
        if start >= len {
            return Iter {
                list: self,
                node: 0,
                off: 0,
                left: 0,
                rev,
            };
        }
        let (node, off) = self.seek(start);
        Iter {
            list: self,
            node,
            off,
            left: if rev { start + 1 } else { len - start },
            rev,
        }
    }
}

/// An iterator over a list's elements in either direction.
pub struct Iter<'a> {
    list: &'a List,
    node: usize,
    off: usize,
    left: usize,
    rev: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;

    fn next(&mut self) -> Option<Elem<'a>> {
        if self.left == 0 {
            return None;
        }
        let n = self.list.node(self.node);
        let (e, dl) = n.get_len(self.off);
        self.left -= 1;
        if self.left > 0 {
            if !self.rev {
                let next = self.off + dl + backlen_size(dl);
                if next >= n.buf.len() {
                    self.node += 1;
                    self.off = 0;
                } else {
                    self.off = next;
                }
            } else if self.off == 0 {
                self.node -= 1;
                let m = self.list.node(self.node);
                self.off = m.prev(m.buf.len());
            } else {
                self.off = n.prev(self.off);
            }
        }
        Some(e)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn contents(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(|e| e.to_vec()).collect()
    }

    /// Structural invariants: every buffer parses to exactly its count,
    /// quicklist nodes are non-empty and add up to the length.
    fn check_invariants(l: &List) {
        let check_pack = |p: &Pack| {
            let mut off = 0;
            let mut n = 0;
            while off < p.buf.len() {
                let next = p.next(off);
                assert_eq!(p.prev(next), off, "back-length at {next}");
                off = next;
                n += 1;
            }
            assert_eq!(off, p.buf.len());
            assert_eq!(n, p.count);
        };
        match &l.repr {
            Repr::Pack(p) => check_pack(p),
            Repr::Quick(q) => {
                let mut total = 0;
                for n in &q.nodes {
                    assert!(n.count > 0, "empty quicklist node");
                    check_pack(n);
                    total += n.count;
                }
                assert_eq!(total, q.len);
            }
        }
        let fwd = contents(l);
        let mut rev: Vec<Vec<u8>> = if l.is_empty() {
            Vec::new()
        } else {
            l.iter_rev_from(l.len() - 1).map(|e| e.to_vec()).collect()
        };
        rev.reverse();
        assert_eq!(fwd, rev);
        assert_eq!(fwd.len(), l.len());
    }

    #[test]
    fn entry_round_trip_and_sizes() {
        let ints: [(i64, usize); 14] = [
            (0, 1),
            (127, 1),
            (128, 2),
            (-1, 2),
            (-4096, 2),
            (4095, 2),
            (4096, 3),
            (-4097, 3),
            (32767, 3),
            (32768, 4),
            (-8388608, 4),
            (8388608, 5),
            (i32::MIN as i64, 5),
            (i64::MIN, 9),
        ];
        for (v, hl) in ints {
            let e = Enc::int(v);
            assert_eq!(e.hlen, hl, "{v}");
            let p = Pack::single(&e);
            assert_eq!(p.get(0), Elem::Int(v));
            assert_eq!(p.buf.len(), hl + 1);
        }
        for (len, hl) in [(0, 1), (63, 1), (64, 2), (4095, 2), (4096, 5), (70000, 5)] {
            let s = vec![b'x'; len];
            let e = Enc::of_bytes(&s);
            assert_eq!(e.hlen, hl);
            let mut p = Pack::single(&e);
            p.push_back(&Enc::int(5));
            p.push_front(&Enc::int(-5));
            assert_eq!(p.get(p.offset_of(1)), Elem::Str(&s));
            assert_eq!(p.get(p.offset_of(2)), Elem::Int(5));
            let last = p.prev(p.buf.len());
            assert_eq!(p.prev(last), p.offset_of(1));
        }
        // Back-length size classes match Redis's listpack.
        assert_eq!(backlen_size(127), 1);
        assert_eq!(backlen_size(128), 2);
        assert_eq!(backlen_size(16382), 2);
        assert_eq!(backlen_size(16383), 3);
        // Non-canonical integers stay strings.
        for s in ["007", "-0", "+1", " 1", "1 ", "9223372036854775808", ""] {
            assert_eq!(
                Pack::single(&Enc::of_bytes(s.as_bytes())).get(0),
                Elem::Str(s.as_bytes())
            );
        }
    }

    #[test]
    fn listpack_to_quicklist_at_redis_boundary() {
        // lpBytes(empty) = 7, so one 8185-byte element stays a listpack.
        let mut l = List::new();
        l.push_all(End::Tail, &[&vec![b'a'; 8185]], -2);
        assert_eq!(l.encoding(), "listpack");
        let mut l = List::new();
        l.push_all(End::Tail, &[&vec![b'a'; 8186]], -2);
        assert_eq!(l.encoding(), "quicklist");
        // Count limit.
        let mut l = List::new();
        let vals: Vec<Vec<u8>> = (0..5).map(|i| format!("v{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
        l.push_all(End::Tail, &refs, 5);
        assert_eq!(l.encoding(), "listpack");
        l.push_all(End::Tail, &[b"x"], 5);
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(l.node_count(), 2);
        // Shrinks back only at half the limit: 3 > 5/2.
        l.pop(End::Tail);
        l.pop(End::Tail);
        l.shrink_for(5);
        assert_eq!(l.encoding(), "quicklist");
        l.pop(End::Tail);
        l.shrink_for(5);
        assert_eq!(l.encoding(), "quicklist");
        l.pop(End::Tail);
        l.shrink_for(5);
        assert_eq!(l.encoding(), "listpack");
        assert_eq!(contents(&l), vec![b"v0".to_vec(), b"v1".to_vec()]);
    }

    #[test]
    fn auto_conversion_after_building_a_quicklist() {
        let mut l = List::new_quicklist(-2);
        for v in [&b"a"[..], b"1000000", b"c"] {
            l.push(End::Tail, v);
        }
        assert_eq!(l.encoding(), "quicklist");
        l.convert_auto(-2);
        assert_eq!(l.encoding(), "listpack");
        assert_eq!(
            contents(&l),
            vec![b"a".to_vec(), b"1000000".to_vec(), b"c".to_vec()]
        );
        let mut l = List::new_quicklist(2);
        for v in [&b"a"[..], b"b", b"c"] {
            l.push(End::Tail, v);
        }
        l.convert_auto(2);
        assert_eq!((l.encoding(), l.node_count()), ("quicklist", 2));
    }

    #[test]
    fn quicklist_nodes_fill_to_the_size_limit() {
        let mut l = List::new();
        l.grow_for(-1, 10_000, 1);
        assert_eq!(l.encoding(), "quicklist");
        for _ in 0..1000 {
            l.push(End::Tail, &[b'z'; 100]);
        }
        // 100-byte elements take 103 bytes; a node takes new ones while
        // sz + 100 + 8 <= 4096.
        let Repr::Quick(q) = &l.repr else {
            unreachable!()
        };
        assert!(q.nodes.iter().all(|n| n.sz() <= 4096));
        assert_eq!(q.nodes[0].count, 39);
        check_invariants(&l);
    }

    #[test]
    fn insert_splits_and_merges() {
        let mut l = List::new();
        l.grow_for(3, 0, 10);
        for i in 0..9 {
            l.push(End::Tail, format!("{i}").as_bytes());
        }
        assert_eq!(l.node_count(), 3);
        assert!(l.insert(b"4", b"x", true));
        assert!(l.insert(b"0", b"y", false));
        assert!(l.insert(b"8", b"z", true));
        check_invariants(&l);
        assert_eq!(
            contents(&l),
            ["y", "0", "1", "2", "3", "4", "x", "5", "6", "7", "8", "z"]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect::<Vec<_>>()
        );
        assert!(!l.insert(b"nope", b"w", true));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(bool, Vec<Vec<u8>>),
        Pop(bool),
        PopRange(bool, usize),
        Get(i64),
        Set(i64, Vec<u8>),
        Insert(usize, Vec<u8>, bool),
        Remove(usize, i64),
        Trim(i64, i64),
        Range(i64, i64),
        Rotate(bool, bool),
    }

    fn value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => (0i64..300).prop_map(|v| v.to_string().into_bytes()),
            2 => any::<i64>().prop_map(|v| v.to_string().into_bytes()),
            1 => prop::sample::select(vec!["007", "-0", "+1", "", "a", "b", "-4097"])
                .prop_map(|s| s.as_bytes().to_vec()),
            3 => prop::collection::vec(b'a'..b'd', 0..80),
            1 => (100usize..3000).prop_map(|n| vec![b'q'; n]),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<bool>(), prop::collection::vec(value(), 1..8)).prop_map(|(h, v)| Op::Push(h, v)),
            2 => any::<bool>().prop_map(Op::Pop),
            1 => (any::<bool>(), 0usize..20).prop_map(|(h, n)| Op::PopRange(h, n)),
            1 => (-40i64..40).prop_map(Op::Get),
            1 => (-40i64..40, value()).prop_map(|(i, v)| Op::Set(i, v)),
            2 => (any::<usize>(), value(), any::<bool>()).prop_map(|(i, v, a)| Op::Insert(i, v, a)),
            1 => (any::<usize>(), -3i64..4).prop_map(|(i, c)| Op::Remove(i, c)),
            1 => (-30i64..30, -30i64..30).prop_map(|(a, b)| Op::Trim(a, b)),
            1 => (-30i64..30, -30i64..30).prop_map(|(a, b)| Op::Range(a, b)),
            1 => (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Op::Rotate(a, b)),
        ]
    }

    /// LRANGE/LTRIM index normalisation: the inclusive range, if any.
    fn norm_range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
        let len = len as i64;
        let mut s = if start < 0 { len + start } else { start };
        let mut e = if stop < 0 { len + stop } else { stop };
        if s < 0 {
            s = 0;
        }
        if s > e || s >= len {
            return None;
        }
        if e >= len {
            e = len - 1;
        }
        Some((s as usize, e as usize))
    }

    fn end(head: bool) -> End {
        if head {
            End::Head
        } else {
            End::Tail
        }
    }

    fn run(fill: i64, ops: Vec<Op>) {
        let mut l = List::new();
        let mut m: VecDeque<Vec<u8>> = VecDeque::new();
        let mut seen_quick = false;
        let mut seen_back = false;
        for op in ops {
            match op {
                Op::Push(h, vals) => {
                    let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
                    let n = l.push_all(end(h), &refs, fill);
                    for v in vals {
                        if h {
                            m.push_front(v)
                        } else {
                            m.push_back(v)
                        }
                    }
                    assert_eq!(n, m.len());
                }
                Op::Pop(h) => {
                    let got = l.pop(end(h)).map(|i| i.into_bytes());
                    let want = if h { m.pop_front() } else { m.pop_back() };
                    assert_eq!(got, want);
                    l.shrink_for(fill);
                }
                Op::PopRange(h, n) => {
                    let k = n.min(m.len());
                    let got: Vec<Vec<u8>> = if h {
                        l.iter_from(0).take(k).map(|e| e.to_vec()).collect()
                    } else if k > 0 {
                        l.iter_rev_from(m.len() - 1)
                            .take(k)
                            .map(|e| e.to_vec())
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let want: Vec<Vec<u8>> = if h {
                        m.drain(..k).collect()
                    } else {
                        let mut w: Vec<Vec<u8>> = m.drain(m.len() - k..).collect();
                        w.reverse();
                        w
                    };
                    assert_eq!(got, want);
                    l.pop_range(end(h), n);
                    l.shrink_for(fill);
                }
                Op::Get(i) => {
                    let len = m.len() as i64;
                    let idx = if i < 0 { i + len } else { i };
                    let want = (0..len).contains(&idx).then(|| m[idx as usize].clone());
                    assert_eq!(l.get(i).map(|e| e.to_vec()), want);
                }
                Op::Set(i, v) => {
                    l.grow_for(fill, v.len(), 1);
                    let len = m.len() as i64;
                    let idx = if i < 0 { i + len } else { i };
                    let ok = (0..len).contains(&idx);
                    if ok {
                        m[idx as usize] = v.clone();
                    }
                    assert_eq!(l.set(i, &v), ok);
                    if ok {
                        l.shrink_for(fill);
                    }
                }
                Op::Insert(pick, v, after) => {
                    let pivot = if m.is_empty() || pick % 5 == 0 {
                        b"missing".to_vec()
                    } else {
                        m[pick % m.len()].clone()
                    };
                    l.grow_for(fill, v.len(), 1);
                    let pos = m.iter().position(|x| *x == pivot);
                    if let Some(p) = pos {
                        m.insert(if after { p + 1 } else { p }, v.clone());
                    }
                    assert_eq!(l.insert(&pivot, &v, after), pos.is_some());
                }
                Op::Remove(pick, count) => {
                    let target = if m.is_empty() {
                        b"x".to_vec()
                    } else {
                        m[pick % m.len()].clone()
                    };
                    let limit = if count == 0 {
                        usize::MAX
                    } else {
                        count.unsigned_abs() as usize
                    };
                    let mut removed = 0;
                    if count >= 0 {
                        let mut i = 0;
                        while i < m.len() {
                            if removed < limit && m[i] == target {
                                m.remove(i);
                                removed += 1;
                            } else {
                                i += 1;
                            }
                        }
                    } else {
                        let mut i = m.len();
                        while i > 0 && removed < limit {
                            i -= 1;
                            if m[i] == target {
                                m.remove(i);
                                removed += 1;
                            }
                        }
                    }
                    assert_eq!(l.remove(&target, count), removed);
                    if removed > 0 {
                        l.shrink_for(fill);
                    }
                }
                Op::Trim(a, b) => {
                    let len = m.len();
                    let (lt, rt) = match norm_range(len, a, b) {
                        Some((s, e)) => (s, len - e - 1),
                        None => (len, 0),
                    };
                    l.delete_range(0, lt);
                    l.delete_range(l.len().saturating_sub(rt), rt);
                    m.drain(..lt);
                    m.truncate(m.len() - rt);
                    if !m.is_empty() {
                        l.shrink_for(fill);
                    }
                }
                Op::Range(a, b) => {
                    let want: Vec<Vec<u8>> = match norm_range(m.len(), a, b) {
                        Some((s, e)) => m.range(s..=e).cloned().collect(),
                        None => Vec::new(),
                    };
                    let got: Vec<Vec<u8>> = match norm_range(l.len(), a, b) {
                        Some((s, e)) => {
                            l.iter_from(s).take(e - s + 1).map(|e| e.to_vec()).collect()
                        }
                        None => Vec::new(),
                    };
                    assert_eq!(got, want);
                }
                Op::Rotate(from, to) => {
                    if let Some(item) = l.pop(end(from)) {
                        l.grow_for(fill, item.growth_bytes(), 1);
                        l.push_item(end(to), &item);
                        l.shrink_for(fill);
                        let v = if from { m.pop_front() } else { m.pop_back() };
                        let v = v.expect("model has the element");
                        assert_eq!(item.into_bytes(), v);
                        if to {
                            m.push_front(v)
                        } else {
                            m.push_back(v)
                        }
                    }
                }
            }
            if l.is_empty() {
                // Redis deletes empty lists; start over like a new key.
                l = List::new();
            }
            if l.encoding() == "quicklist" {
                seen_quick = true;
            } else if seen_quick {
                seen_back = true;
            }
            check_invariants(&l);
            assert_eq!(contents(&l), m.iter().cloned().collect::<Vec<_>>());
        }
        let _ = seen_back;
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn list_matches_vecdeque_model(
            fill in prop::sample::select(vec![-1i64, -2, -5, 0, 1, 2, 3, 5, 16, 128]),
            ops in prop::collection::vec(op(), 1..120),
        ) {
            run(fill, ops);
        }
    }

    #[test]
    fn conversions_happen_both_ways_under_the_model() {
        // A deterministic run that crosses the thresholds both ways.
        let mut ops = Vec::new();
        for i in 0..40 {
            ops.push(Op::Push(i % 2 == 0, vec![vec![b'k'; 300]]));
        }
        for _ in 0..39 {
            ops.push(Op::Pop(true));
        }
        let mut l = List::new();
        for i in 0..40 {
            l.push_all(end(i % 2 == 0), &[&[b'k'; 300]], -1);
        }
        assert_eq!(l.encoding(), "quicklist");
        for _ in 0..38 {
            l.pop(End::Head);
            l.shrink_for(-1);
        }
        // The last two elements sit in different nodes (the final tail push
        // opened a node of its own), so there is no conversion yet.
        assert_eq!((l.encoding(), l.node_count()), ("quicklist", 2));
        l.pop(End::Head);
        l.shrink_for(-1);
        assert_eq!(l.encoding(), "listpack");
        run(-1, ops);
    }
}
