//! Longest common subsequence, computed exactly as the Redis `LCS` command
//! does: the classic `O(len(a) * len(b))` dynamic-programming table, then a
//! walk back from the end that prefers moving in `b` on ties. That walk
//! decides *which* LCS is returned and the order of the `IDX` match ranges
//! (from the end of the strings towards their start), so both are
//! reproduced step for step.
//!
//! Redis allocates a `(len(a)+1) * (len(b)+1)` table of 4-byte cells and
//! refuses (with "Insufficient memory, transient memory for LCS exceeds
//! proto-max-bulk-len") when that many bytes exceed `proto-max-bulk-len`;
//! [`lcs`] applies the same rule with a caller-given byte limit before
//! allocating anything. Internally the table uses the narrowest cell type
//! that can hold the answer (1, 2 or 4 bytes), and `LEN` only needs two rows.

use std::fmt;

/// What the caller wants back, mirroring the `LCS` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LcsMode {
    /// Plain `LCS a b`: the LCS string (and its length).
    #[default]
    String,
    /// `LCS a b LEN`: only the length.
    Len,
    /// `LCS a b IDX [MINMATCHLEN n]`: the match ranges and the length.
    Idx,
}

/// One `IDX` match: an inclusive range in each string, of equal length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcsMatch {
    /// First byte of the match in the first string.
    pub a_start: usize,
    /// Last byte (inclusive) of the match in the first string.
    pub a_end: usize,
    /// First byte of the match in the second string.
    pub b_start: usize,
    /// Last byte (inclusive) of the match in the second string.
    pub b_end: usize,
    /// Length of the match (`WITHMATCHLEN`).
    pub len: usize,
}

/// Result of [`lcs`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lcs {
    /// Length of the longest common subsequence (always set).
    pub len: usize,
    /// The LCS itself ([`LcsMode::String`] only; empty otherwise).
    pub string: Vec<u8>,
    /// Match ranges in Redis's reply order, already filtered by the minimum
    /// match length ([`LcsMode::Idx`] only; empty otherwise).
    pub matches: Vec<LcsMatch>,
}

/// Why [`lcs`] refused to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LcsError {
    /// An input is `u32::MAX - 1` bytes or longer.
    StringTooLong,
    /// The Redis table (`(len(a)+1) * (len(b)+1)` cells of 4 bytes) would
    /// exceed the byte limit.
    TableTooLarge,
}

impl LcsError {
    /// The error text Redis replies with (after the `ERR ` prefix).
    pub fn message(self) -> &'static str {
        match self {
            LcsError::StringTooLong => "String too long for LCS",
            LcsError::TableTooLarge => {
                "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
            }
        }
    }
}

impl fmt::Display for LcsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for LcsError {}

/// Size in bytes of the table Redis would allocate for inputs of these
/// lengths: `(a_len + 1) * (b_len + 1) * 4`, saturating.
pub fn redis_table_bytes(a_len: usize, b_len: usize) -> u64 {
    (a_len as u64)
        .saturating_add(1)
        .saturating_mul((b_len as u64).saturating_add(1))
        .saturating_mul(4)
}

/// Computes the LCS of `a` and `b` like Redis's `LCS` command.
///
/// `min_match_len` is `MINMATCHLEN` (negative values act as 0; ranges
/// shorter than it are omitted from [`Lcs::matches`]). `max_table_bytes` is
/// the server's `proto-max-bulk-len`: when [`redis_table_bytes`] exceeds it,
/// [`LcsError::TableTooLarge`] is returned without allocating.
pub fn lcs(
    a: &[u8],
    b: &[u8],
    mode: LcsMode,
    min_match_len: i64,
    max_table_bytes: u64,
) -> Result<Lcs, LcsError> {
    let limit = u32::MAX as usize - 1;
    if a.len() >= limit || b.len() >= limit {
        return Err(LcsError::StringTooLong);
    }
    if redis_table_bytes(a.len(), b.len()) > max_table_bytes {
        return Err(LcsError::TableTooLarge);
    }
    if mode == LcsMode::Len {
        return Ok(Lcs {
            len: lcs_len(a, b),
            ..Lcs::default()
        });
    }
    let min_match_len = usize::try_from(min_match_len.max(0)).unwrap_or(usize::MAX);
    let shortest = a.len().min(b.len());
    Ok(if shortest <= usize::from(u8::MAX) {
        traceback(&fill_table::<u8>(a, b), a, b, mode, min_match_len)
    } else if shortest <= usize::from(u16::MAX) {
        traceback(&fill_table::<u16>(a, b), a, b, mode, min_match_len)
    } else {
        traceback(&fill_table::<u32>(a, b), a, b, mode, min_match_len)
    })
}

/// LCS length with two rows of memory.
fn lcs_len(a: &[u8], b: &[u8]) -> usize {
    // Iterate over the longer string so the rows are as short as possible.
    let (outer, inner) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let mut prev = vec![0u32; inner.len() + 1];
    let mut cur = vec![0u32; inner.len() + 1];
    for &x in outer {
        for (j, &y) in inner.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[inner.len()] as usize
}

/// A DP table cell: an unsigned integer wide enough for the LCS length.
trait Cell: Copy + Ord + Default {
    fn incr(self) -> Self;
    fn get(self) -> usize;
}

impl Cell for u8 {
    fn incr(self) -> Self {
        self.wrapping_add(1)
    }
    fn get(self) -> usize {
        usize::from(self)
    }
}

impl Cell for u16 {
    fn incr(self) -> Self {
        self.wrapping_add(1)
    }
    fn get(self) -> usize {
        usize::from(self)
    }
}

impl Cell for u32 {
    fn incr(self) -> Self {
        self.wrapping_add(1)
    }
    fn get(self) -> usize {
        self as usize
    }
}

/// The full table: `t[i * (b.len() + 1) + j]` is the LCS length of
/// `a[..i]` and `b[..j]`.
fn fill_table<T: Cell>(a: &[u8], b: &[u8]) -> Vec<T> {
    let width = b.len() + 1;
    let mut t = vec![T::default(); (a.len() + 1) * width];
    for (i, &x) in a.iter().enumerate() {
        let (done, rest) = t.split_at_mut((i + 1) * width);
        let prev = &done[i * width..];
        let cur = &mut rest[..width];
        for (j, &y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j].incr()
            } else {
                prev[j + 1].max(cur[j])
            };
        }
    }
    t
}

/// Redis's backward walk over the table, collecting the string and/or the
/// match ranges.
fn traceback<T: Cell>(t: &[T], a: &[u8], b: &[u8], mode: LcsMode, min_match_len: usize) -> Lcs {
    let width = b.len() + 1;
    let at = |i: usize, j: usize| t[i * width + j].get();
    let total = at(a.len(), b.len());
    let mut string = vec![0u8; if mode == LcsMode::String { total } else { 0 }];
    let mut matches = Vec::new();
    let want_matches = mode == LcsMode::Idx;

    // The current range, as in Redis: `None` means "no range open".
    let mut range: Option<(usize, usize, usize, usize)> = None; // (a_start, a_end, b_start, b_end)
    let (mut i, mut j, mut idx) = (a.len(), b.len(), total);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            if let Some(slot) = string.get_mut(idx.wrapping_sub(1)) {
                *slot = a[i - 1];
            }
            range = Some(match range {
                None => (i - 1, i - 1, j - 1, j - 1),
                Some((a_start, a_end, b_start, b_end)) => {
                    if a_start == i && b_start == j {
                        (a_start - 1, a_end, b_start - 1, b_end)
                    } else {
                        // Not contiguous (unreachable: a gap always closes
                        // the range first), kept for fidelity.
                        emit = true;
                        (a_start, a_end, b_start, b_end)
                    }
                }
            });
            if let Some((a_start, _, b_start, _)) = range {
                if a_start == 0 || b_start == 0 {
                    emit = true;
                }
            }
            idx = idx.wrapping_sub(1);
            i -= 1;
            j -= 1;
        } else {
            if at(i - 1, j) > at(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
            if range.is_some() {
                emit = true;
            }
        }
        if emit {
            if let Some((a_start, a_end, b_start, b_end)) = range.take() {
                let len = a_end - a_start + 1;
                if want_matches && (min_match_len == 0 || len >= min_match_len) {
                    matches.push(LcsMatch {
                        a_start,
                        a_end,
                        b_start,
                        b_end,
                        len,
                    });
                }
            }
        }
    }
    Lcs {
        len: total,
        string,
        matches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NO_LIMIT: u64 = u64::MAX;

    fn m(a: (usize, usize), b: (usize, usize), len: usize) -> LcsMatch {
        LcsMatch {
            a_start: a.0,
            a_end: a.1,
            b_start: b.0,
            b_end: b.1,
            len,
        }
    }

    #[test]
    fn docs_example() {
        // Verified against a real Redis: MSET key1 ohmytext key2 mynewtext.
        let (a, b) = (b"ohmytext", b"mynewtext");
        let r = lcs(a, b, LcsMode::String, 0, NO_LIMIT).unwrap();
        assert_eq!(r.string, b"mytext");
        assert_eq!(r.len, 6);
        assert!(r.matches.is_empty());
        let r = lcs(a, b, LcsMode::Len, 0, NO_LIMIT).unwrap();
        assert_eq!((r.len, r.string.len()), (6, 0));
        let r = lcs(a, b, LcsMode::Idx, 0, NO_LIMIT).unwrap();
        assert_eq!(r.len, 6);
        assert_eq!(r.matches, [m((4, 7), (5, 8), 4), m((2, 3), (0, 1), 2)]);
        assert!(r.string.is_empty());
        let r = lcs(a, b, LcsMode::Idx, 4, NO_LIMIT).unwrap();
        assert_eq!(r.matches, [m((4, 7), (5, 8), 4)]);
        let r = lcs(a, b, LcsMode::Idx, -5, NO_LIMIT).unwrap();
        assert_eq!(r.matches.len(), 2);
        let r = lcs(a, b"", LcsMode::Idx, 0, NO_LIMIT).unwrap();
        assert_eq!((r.len, r.matches.len()), (0, 0));
    }

    #[test]
    fn limits() {
        // 600 x 600 needs 601*601*4 bytes: over a 1 MB limit, as on Redis.
        let a = vec![b'x'; 600];
        assert_eq!(
            lcs(&a, &a, LcsMode::Len, 0, 1 << 20),
            Err(LcsError::TableTooLarge)
        );
        assert_eq!(
            lcs(&a[..510], &a[..511], LcsMode::Len, 0, 1 << 20)
                .unwrap()
                .len,
            510
        );
        assert_eq!(
            lcs(&a[..511], &a[..512], LcsMode::String, 0, 1 << 20),
            Err(LcsError::TableTooLarge)
        );
        assert_eq!(redis_table_bytes(511, 512), 512 * 513 * 4);
        assert_eq!(redis_table_bytes(usize::MAX, usize::MAX), u64::MAX);
        assert_eq!(
            LcsError::TableTooLarge.to_string(),
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
        );
        assert_eq!(LcsError::StringTooLong.message(), "String too long for LCS");
    }

    #[test]
    fn wide_cells() {
        // Exercise the u16 and u32 tables.
        let a: Vec<u8> = (0..300u32).map(|i| (i % 7) as u8).collect();
        let b: Vec<u8> = (0..280u32).map(|i| (i % 5) as u8).collect();
        let r = lcs(&a, &b, LcsMode::String, 0, NO_LIMIT).unwrap();
        assert_eq!(r.len, lcs_len(&a, &b));
        assert_eq!(r.string, reference(&a, &b).0);
        let a = vec![b'a'; 70_000];
        let b = vec![b'a'; 3];
        let r = lcs(&a, &b, LcsMode::Idx, 0, NO_LIMIT).unwrap();
        assert_eq!(r.matches, [m((69_997, 69_999), (0, 2), 3)]);
    }

    /// Straightforward transcription of Redis's algorithm with a u32 table
    /// and `i64` indexes, used as the oracle.
    fn reference(a: &[u8], b: &[u8]) -> (Vec<u8>, Vec<LcsMatch>) {
        let (alen, blen) = (a.len(), b.len());
        let w = blen + 1;
        let mut t = vec![0u32; (alen + 1) * w];
        for i in 0..=alen {
            for j in 0..=blen {
                t[i * w + j] = if i == 0 || j == 0 {
                    0
                } else if a[i - 1] == b[j - 1] {
                    t[(i - 1) * w + j - 1] + 1
                } else {
                    t[(i - 1) * w + j].max(t[i * w + j - 1])
                };
            }
        }
        let mut idx = t[alen * w + blen] as usize;
        let mut result = vec![0u8; idx];
        let mut out = vec![];
        let (mut as_, mut ae, mut bs, mut be) = (alen, 0, 0, 0);
        let (mut i, mut j) = (alen, blen);
        while i > 0 && j > 0 {
            let mut emit = false;
            if a[i - 1] == b[j - 1] {
                result[idx - 1] = a[i - 1];
                if as_ == alen {
                    as_ = i - 1;
                    ae = i - 1;
                    bs = j - 1;
                    be = j - 1;
                } else if as_ == i && bs == j {
                    as_ -= 1;
                    bs -= 1;
                } else {
                    emit = true;
                }
                if as_ == 0 || bs == 0 {
                    emit = true;
                }
                idx -= 1;
                i -= 1;
                j -= 1;
            } else {
                if t[(i - 1) * w + j] > t[i * w + j - 1] {
                    i -= 1;
                } else {
                    j -= 1;
                }
                if as_ != alen {
                    emit = true;
                }
            }
            if emit {
                out.push(m((as_, ae), (bs, be), ae - as_ + 1));
                as_ = alen;
            }
        }
        (result, out)
    }

    fn is_subsequence(s: &[u8], of: &[u8]) -> bool {
        let mut it = of.iter();
        s.iter().all(|c| it.any(|x| x == c))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn agrees_with_reference(
            a in proptest::collection::vec(proptest::sample::select(&b"abc"[..]), 0..25),
            b in proptest::collection::vec(proptest::sample::select(&b"abc"[..]), 0..25),
            min in -2i64..6,
        ) {
            let (s, ranges) = reference(&a, &b);
            let r = lcs(&a, &b, LcsMode::String, min, NO_LIMIT).unwrap();
            prop_assert_eq!(&r.string, &s);
            prop_assert_eq!(r.len, s.len());
            prop_assert!(is_subsequence(&s, &a) && is_subsequence(&s, &b));
            let r = lcs(&a, &b, LcsMode::Len, min, NO_LIMIT).unwrap();
            prop_assert_eq!(r.len, s.len());
            let r = lcs(&a, &b, LcsMode::Idx, min, NO_LIMIT).unwrap();
            let min = min.max(0) as usize;
            let expected: Vec<LcsMatch> = ranges.into_iter().filter(|x| min == 0 || x.len >= min).collect();
            prop_assert_eq!(r.matches, expected);
            prop_assert_eq!(r.len, s.len());
        }

        #[test]
        fn matches_are_consistent(
            a in proptest::collection::vec(any::<u8>(), 0..40),
            b in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let r = lcs(&a, &b, LcsMode::Idx, 0, NO_LIMIT).unwrap();
            let total: usize = r.matches.iter().map(|x| x.len).sum();
            prop_assert_eq!(total, r.len);
            for x in &r.matches {
                prop_assert_eq!(&a[x.a_start..=x.a_end], &b[x.b_start..=x.b_end]);
            }
        }
    }
}
