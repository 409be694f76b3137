//! Number parsing and formatting with Redis's exact rules.
//!
//! * Integers: [`parse_i64`] is Redis's `string2ll` (no spaces, no `+`, no
//!   leading zeros, `-0` rejected); [`parse_u64_strtoull`] is `string2ull`
//!   (used for stream IDs); [`format_i64`] / [`append_i64`] print integers.
//! * Doubles: [`parse_f64`] is `string2d` / `getDoubleFromObject` (C
//!   `strtod` syntax, including hex floats and `inf`/`infinity`, with Redis's
//!   extra checks); [`strtod`] exposes plain `strtod`; [`format_double`] is
//!   Redis 7.2's `d2string` (integers printed exactly, otherwise the Grisu2
//!   shortest round-trip digits of `fpconv_dtoa`); [`format_double_g17`] is
//!   C's `%.17g` (Redis 7.0's format); [`format_fixed_point`] is
//!   `fixedpoint_d2string` (GEO distances).
//! * Long doubles: [`LongDouble`] wraps C `long double` (x87 80-bit extended
//!   precision on x86-64) through a small C helper compiled by `build.rs`, so
//!   that [`incr_by_float`] and [`hincr_by_float`] reproduce `INCRBYFLOAT` /
//!   `HINCRBYFLOAT` bit for bit.

use std::ffi::{c_char, c_int, c_longlong};
use std::fmt;

// ---------------------------------------------------------------------------
// Integers
// ---------------------------------------------------------------------------

/// C's `atoi`/`strtol` as Redis uses them on some arguments: optional
/// blanks and sign, then digits up to the first other byte; 0 when there
/// are none; out-of-range values saturate as `strtol` does.
pub fn atoi(s: &[u8]) -> i64 {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut n: i64 = 0;
    while let Some(d) = s.get(i).filter(|c| c.is_ascii_digit()) {
        let digit = (d - b'0') as i64;
        n = if neg {
            n.saturating_mul(10).saturating_sub(digit)
        } else {
            n.saturating_mul(10).saturating_add(digit)
        };
        i += 1;
    }
    n
}

/// Maximum length of a formatted `i64` (`-9223372036854775808`) or `u64`.
pub const MAX_INT_LEN: usize = 20;

/// Parses `s` exactly like Redis's `string2ll`: an optional `-` followed by
/// decimal digits, without leading zeros (except `"0"` itself), without
/// spaces or `+`, and within `i64` range. `"-0"` is rejected.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > MAX_INT_LEN {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let magnitude = parse_digits_no_leading_zero(digits)?;
    if negative {
        if magnitude > i64::MIN.unsigned_abs() {
            None
        } else {
            Some(0i64.wrapping_sub_unsigned(magnitude))
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Digits `[1-9][0-9]*` that fit in a `u64`.
fn parse_digits_no_leading_zero(digits: &[u8]) -> Option<u64> {
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(v)
}

/// Parses a strict unsigned decimal: digits only, no sign, no spaces, no
/// leading zeros except `"0"` itself, within `u64` range (the unsigned
/// counterpart of [`parse_i64`]).
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s == b"0" {
        return Some(0);
    }
    parse_digits_no_leading_zero(s)
}

/// C `isspace` in the C locale.
#[inline]
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Parses `s` like Redis's `string2ull` (used for the parts of stream IDs):
/// the input is cut at its first NUL byte (Redis works on C strings there);
/// if that is a valid [`parse_i64`] integer it must be non-negative;
/// otherwise C `strtoull(s, &end, 10)` rules apply, which accept leading
/// whitespace, a `+` or `-` sign (a negated value wraps modulo 2^64) and
/// leading zeros, but reject overflow and trailing garbage.
pub fn parse_u64_strtoull(s: &[u8]) -> Option<u64> {
    let s = match s.iter().position(|&b| b == 0) {
        Some(nul) => &s[..nul],
        None => s,
    };
    if let Some(v) = parse_i64(s) {
        return u64::try_from(v).ok();
    }
    if s.is_empty() {
        return None;
    }
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        negative = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(u64::from(s[i] - b'0'))?;
        i += 1;
    }
    if i == start || i != s.len() {
        return None;
    }
    Some(if negative { v.wrapping_neg() } else { v })
}

static DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes the decimal digits of `n` right-aligned into `buf`, returning the
/// index of the first digit.
fn write_u64_digits(mut n: u64, buf: &mut [u8; MAX_INT_LEN]) -> usize {
    let mut i = MAX_INT_LEN;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    i
}

/// Formats `v` in decimal into `buf` and returns the written slice
/// (Redis's `ll2string`).
pub fn format_i64(v: i64, buf: &mut [u8; MAX_INT_LEN]) -> &[u8] {
    let mut i = write_u64_digits(v.unsigned_abs(), buf);
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Formats `v` in decimal into `buf` and returns the written slice.
pub fn format_u64(v: u64, buf: &mut [u8; MAX_INT_LEN]) -> &[u8] {
    let i = write_u64_digits(v, buf);
    &buf[i..]
}

/// Appends the decimal representation of `v` to `out`.
pub fn append_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; MAX_INT_LEN];
    out.extend_from_slice(format_i64(v, &mut buf));
}

/// Appends the decimal representation of `v` to `out`.
pub fn append_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; MAX_INT_LEN];
    out.extend_from_slice(format_u64(v, &mut buf));
}

// ---------------------------------------------------------------------------
// C helpers (csrc/longdouble.c)
// ---------------------------------------------------------------------------

/// Size of the opaque buffer a C `long double` travels in.
const LD_BYTES: usize = 16;

/// Redis's `MAX_LONG_DOUBLE_CHARS`: long-double inputs must be shorter than
/// this, and it is the size of the formatting buffer.
pub const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

extern "C" {
    fn kvik_ld_parse(s: *const c_char, len: usize, out: *mut u8) -> c_int;
    fn kvik_ld_from_i64(v: c_longlong, out: *mut u8);
    fn kvik_ld_from_f64(v: f64, out: *mut u8);
    fn kvik_ld_to_f64(a: *const u8) -> f64;
    fn kvik_ld_add(a: *const u8, b: *const u8, out: *mut u8);
    fn kvik_ld_classify(a: *const u8) -> c_int;
    fn kvik_ld_cmp(a: *const u8, b: *const u8) -> c_int;
    fn kvik_ld_format_human(a: *const u8, buf: *mut c_char, cap: usize) -> usize;
    fn kvik_ld_format_auto(a: *const u8, buf: *mut c_char, cap: usize) -> usize;
    fn kvik_strtod(s: *const c_char, len: usize, value: *mut f64, erange: *mut c_int) -> usize;
}

#[cfg(test)]
extern "C" {
    fn kvik_format_g17(v: f64, buf: *mut c_char, cap: usize) -> usize;
}

// ---------------------------------------------------------------------------
// Doubles: parsing
// ---------------------------------------------------------------------------

/// Result of C `strtod` on a byte string (see [`strtod`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Strtod {
    /// The parsed value (`0.0` when nothing was consumed).
    pub value: f64,
    /// Number of leading bytes that form the number (0 if none).
    pub consumed: usize,
    /// Whether `strtod` set `errno` to `ERANGE` (overflow or underflow).
    pub range_error: bool,
}

/// Runs C `strtod` on `s` (as a NUL-terminated copy, so parsing stops at an
/// embedded NUL): leading whitespace is skipped, and decimal, hexadecimal
/// (`0x1p3`), `inf`/`infinity` and `nan` forms are accepted.
pub fn strtod(s: &[u8]) -> Strtod {
    let mut value = 0.0f64;
    let mut erange: c_int = 0;
    // SAFETY: `s` is valid for `s.len()` bytes; the helper copies it into a
    // NUL-terminated buffer and writes only through the two out-pointers,
    // which point to live locals.
    let consumed = unsafe {
        kvik_strtod(
            s.as_ptr().cast::<c_char>(),
            s.len(),
            &mut value,
            &mut erange,
        )
    };
    if consumed > s.len() {
        // Allocation failure inside the helper (huge input): nothing parsed.
        return Strtod {
            value: 0.0,
            consumed: 0,
            range_error: false,
        };
    }
    Strtod {
        value,
        consumed,
        range_error: erange != 0,
    }
}

/// Parses a double exactly like Redis's `string2d` / `getDoubleFromObject`
/// (scores, `ZINCRBY`, `GEOADD` coordinates, ...): the whole input must be a
/// C `strtod` number (so `+1`, `.5`, `5.`, `1e3`, `0x1p3`, `inf`, `-Infinity`
/// are accepted), with no leading whitespace, and the result must not be NaN
/// nor an overflow to ±infinity nor an underflow to zero (`1e400`,
/// `2e-324` are rejected; subnormals such as `1e-310` are accepted).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || is_c_space(s[0]) {
        return None;
    }
    if let Some(nonzero_digit) = plain_decimal(s) {
        // Rust's parser is correctly rounded, like glibc's strtod, so the
        // value is identical; only the error conditions need emulating.
        if let Some(v) = std::str::from_utf8(s)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
        {
            if v.is_infinite() || (v == 0.0 && nonzero_digit) {
                return None;
            }
            return Some(v);
        }
    }
    let r = strtod(s);
    if r.consumed != s.len()
        || r.value.is_nan()
        || (r.range_error && (r.value.is_infinite() || r.value == 0.0))
    {
        return None;
    }
    Some(r.value)
}

/// If `s` is entirely `[+-]?digits[.digits][(e|E)[+-]?digits]` (with at
/// least one mantissa digit), returns whether the mantissa has a non-zero
/// digit.
fn plain_decimal(s: &[u8]) -> Option<bool> {
    let mut i = 0;
    if matches!(s.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let mut mantissa_digits = 0;
    let mut nonzero = false;
    while i < s.len() && s[i].is_ascii_digit() {
        nonzero |= s[i] != b'0';
        mantissa_digits += 1;
        i += 1;
    }
    if i < s.len() && s[i] == b'.' {
        i += 1;
        while i < s.len() && s[i].is_ascii_digit() {
            nonzero |= s[i] != b'0';
            mantissa_digits += 1;
            i += 1;
        }
    }
    if mantissa_digits == 0 {
        return None;
    }
    if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
        i += 1;
        if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    (i == s.len()).then_some(nonzero)
}

// ---------------------------------------------------------------------------
// Doubles: Redis 7.2 d2string (integers, else Grisu2 as in fpconv_dtoa)
// ---------------------------------------------------------------------------

/// Formats `v` exactly like Redis 7.2's `d2string`, the format of double
/// replies (`ZSCORE`, `ZINCRBY`, RESP3 doubles, ...):
///
/// * `nan`, `inf`, `-inf`, `0` and `-0` are spelled out;
/// * integral values within ±2^62 print as integers (`3`, `-1000000`);
/// * everything else prints the Grisu2 digits of `fpconv_dtoa` (shortest
///   round-trip in the vast majority of cases) as a plain integer when the
///   exponent is small (`123456789012345680000`), as a plain decimal when
///   the value is not too small (`0.1`, `0.0012345`, `0.000001`), and in
///   scientific notation otherwise, with a signed exponent without padding
///   (`1e+21`, `1.5e-7`, `1.2345e-5`, `1e+300`).
pub fn format_double(v: f64) -> String {
    let mut out = Vec::with_capacity(24);
    append_double(&mut out, v);
    // The output is ASCII by construction.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends [`format_double`]`(v)` to `out` without an intermediate `String`.
pub fn append_double(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"nan");
    } else if v.is_infinite() {
        out.extend_from_slice(if v < 0.0 { b"-inf" } else { b"inf" });
    } else if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
    } else if let Some(i) = double_to_i64_exact(v) {
        append_i64(out, i);
    } else {
        fpconv_dtoa(v, out);
    }
}

/// Redis's `double2ll`: `Some` when `v` is integral and within ±2^62.
fn double_to_i64_exact(v: f64) -> Option<i64> {
    let limit = (i64::MAX / 2) as f64;
    if v < -limit || v > limit {
        return None;
    }
    let i = v as i64;
    (i as f64 == v).then_some(i)
}

#[derive(Clone, Copy, Debug)]
struct Fp {
    frac: u64,
    exp: i32,
}

const FRAC_MASK: u64 = 0x000F_FFFF_FFFF_FFFF;
const EXP_MASK: u64 = 0x7FF0_0000_0000_0000;
const HIDDEN_BIT: u64 = 0x0010_0000_0000_0000;
const EXP_BIAS: i32 = 1023 + 52;

/// Grisu's cached powers of ten: `10^k ≈ frac * 2^exp` (frac normalized to
/// 64 bits, rounded to nearest) for `k = FIRST_POWER + 8 * index`.
/// Generated with exact rational arithmetic; the `cached_powers_are_exact`
/// test re-derives every entry.
#[rustfmt::skip]
static CACHED_POWERS: [(u64, i32); 87] = [
    (18054884314459144840, -1220), (13451937075301367670, -1193),
    (10022474136428063862, -1166), (14934650266808366570, -1140),
    (11127181549972568877, -1113), (16580792590934885855, -1087),
    (12353653155963782858, -1060), (18408377700990114895, -1034),
    (13715310171984221708, -1007), (10218702384817765436, -980),
    (15227053142812498563, -954), (11345038669416679861, -927),
    (16905424996341287883, -901), (12595523146049147757, -874),
    (9384396036005875287, -847), (13983839803942852151, -821),
    (10418772551374772303, -794), (15525180923007089351, -768),
    (11567161174868858868, -741), (17236413322193710309, -715),
    (12842128665889583758, -688), (9568131466127621947, -661),
    (14257626930069360058, -635), (10622759856335341974, -608),
    (15829145694278690180, -582), (11793632577567316726, -555),
    (17573882009934360870, -529), (13093562431584567480, -502),
    (9755464219737475723, -475), (14536774485912137811, -449),
    (10830740992659433045, -422), (16139061738043178685, -396),
    (12024538023802026127, -369), (17917957937422433684, -343),
    (13349918974505688015, -316), (9946464728195732843, -289),
    (14821387422376473014, -263), (11042794154864902060, -236),
    (16455045573212060422, -210), (12259964326927110867, -183),
    (18268770466636286478, -157), (13611294676837538539, -130),
    (10141204801825835212, -103), (15111572745182864684, -77),
    (11258999068426240000, -50), (16777216000000000000, -24),
    (12500000000000000000, 3), (9313225746154785156, 30),
    (13877787807814456755, 56), (10339757656912845936, 83),
    (15407439555097886824, 109), (11479437019748901445, 136),
    (17105694144590052135, 162), (12744735289059618216, 189),
    (9495567745759798747, 216), (14149498560666738074, 242),
    (10542197943230523224, 269), (15709099088952724970, 295),
    (11704190886730495818, 322), (17440603504673385349, 348),
    (12994262207056124023, 375), (9681479787123295682, 402),
    (14426529090290212157, 428), (10748601772107342003, 455),
    (16016664761464807395, 481), (11933345169920330789, 508),
    (17782069995880619868, 534), (13248674568444952270, 561),
    (9871031767461413346, 588), (14708983551653345445, 614),
    (10959046745042015199, 641), (16330252207878254650, 667),
    (12166986024289022870, 694), (18130221999122236476, 720),
    (13508068024458167312, 747), (10064294952495520794, 774),
    (14996968138956309548, 800), (11173611982879273257, 827),
    (16649979327439178909, 853), (12405201291620119593, 880),
    (9242595204427927429, 907), (13772540099066387757, 933),
    (10261342003245940623, 960), (15290591125556738113, 986),
    (11392378155556871081, 1013), (16975966327722178521, 1039),
    (12648080533535911531, 1066),
];
const FIRST_POWER: i32 = -348;
const POWER_STEP: i32 = 8;
const EXP_MIN: i32 = -60;
const EXP_MAX: i32 = -32;

/// Powers of ten from 10^19 down to 10^0.
static TENS: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 19;
    while i > 0 {
        t[i - 1] = t[i] * 10;
        i -= 1;
    }
    t
};

fn build_fp(d: f64) -> Fp {
    let bits = d.to_bits();
    let frac = bits & FRAC_MASK;
    let biased = ((bits & EXP_MASK) >> 52) as i32;
    if biased != 0 {
        Fp {
            frac: frac + HIDDEN_BIT,
            exp: biased - EXP_BIAS,
        }
    } else {
        Fp {
            frac,
            exp: 1 - EXP_BIAS,
        }
    }
}

/// Shifts `fp` left until its most significant bit is set.
fn normalize(fp: Fp) -> Fp {
    let shift = fp.frac.leading_zeros();
    Fp {
        frac: fp.frac << shift,
        exp: fp.exp - shift as i32,
    }
}

/// The (lower, upper) rounding boundaries of `fp`, both with the exponent
/// of the normalized upper boundary. The lower boundary is closer when the
/// significand is exactly the hidden bit.
fn normalized_boundaries(fp: Fp) -> (Fp, Fp) {
    let upper = normalize(Fp {
        frac: (fp.frac << 1) + 1,
        exp: fp.exp - 1,
    });
    let l_shift: u32 = if fp.frac == HIDDEN_BIT { 2 } else { 1 };
    let lower_frac = (fp.frac << l_shift) - 1;
    let lower_exp = fp.exp - l_shift as i32;
    let lower = Fp {
        frac: lower_frac.wrapping_shl((lower_exp - upper.exp) as u32),
        exp: upper.exp,
    };
    (lower, upper)
}

/// 64x64 -> high 64 bits, rounded half up.
fn multiply(a: Fp, b: Fp) -> Fp {
    let product = u128::from(a.frac) * u128::from(b.frac) + (1u128 << 63);
    Fp {
        frac: (product >> 64) as u64,
        exp: a.exp + b.exp + 64,
    }
}

/// Picks the cached power that brings `exp` into `[EXP_MIN, EXP_MAX]`,
/// starting from the same estimate as fpconv. Returns it and its decimal
/// exponent.
fn cached_power(exp: i32) -> (Fp, i32) {
    const ONE_LOG_TEN: f64 = 0.301_029_995_663_981_14;
    let approx = (f64::from(-(exp + 87)) * ONE_LOG_TEN) as i32;
    let last = CACHED_POWERS.len() as i32 - 1;
    let mut idx = ((approx - FIRST_POWER) / POWER_STEP).clamp(0, last);
    // The scaled exponent moves by ~26.6 per step and the target window is
    // 28 wide, so this settles within a couple of iterations.
    for _ in 0..CACHED_POWERS.len() {
        let current = exp + CACHED_POWERS[idx as usize].1 + 64;
        if current < EXP_MIN && idx < last {
            idx += 1;
        } else if current > EXP_MAX && idx > 0 {
            idx -= 1;
        } else {
            break;
        }
    }
    let (frac, e) = CACHED_POWERS[idx as usize];
    (Fp { frac, exp: e }, FIRST_POWER + idx * POWER_STEP)
}

/// Grisu2's "weeding": nudges the last digit towards the real value.
fn round_digit(digits: &mut [u8], delta: u64, mut rem: u64, kappa: u64, frac: u64) {
    let Some(last) = digits.last_mut() else {
        return;
    };
    while rem < frac
        && delta.wrapping_sub(rem) >= kappa
        && (rem.wrapping_add(kappa) < frac
            || frac.wrapping_sub(rem) > rem.wrapping_add(kappa).wrapping_sub(frac))
    {
        *last = last.wrapping_sub(1);
        rem = rem.wrapping_add(kappa);
    }
}

/// Digit generation of fpconv's Grisu2. Returns the number of digits written
/// into `digits`; `k` is adjusted to the decimal exponent of the last digit.
fn generate_digits(w: Fp, upper: Fp, lower: Fp, digits: &mut [u8; 24], k: &mut i32) -> usize {
    let wfrac = upper.frac.wrapping_sub(w.frac);
    let mut delta = upper.frac.wrapping_sub(lower.frac);
    let shift = (-upper.exp) as u32; // in 32..=60
    let one = 1u64 << shift;
    let mut part1 = upper.frac >> shift;
    let mut part2 = upper.frac & (one - 1);

    let mut idx = 0usize;
    let mut kappa = 10i32;
    for &div in &TENS[10..] {
        let digit = part1 / div;
        if (digit != 0 || idx != 0) && idx < digits.len() {
            digits[idx] = b'0' + digit as u8;
            idx += 1;
        }
        part1 -= digit * div;
        kappa -= 1;
        let tmp = (part1 << shift).wrapping_add(part2);
        if tmp <= delta {
            *k += kappa;
            round_digit(&mut digits[..idx], delta, tmp, div << shift, wfrac);
            return idx;
        }
    }

    // Fractional digits; `unit` walks 10, 100, 1000, ...
    let mut unit_idx = 18usize;
    loop {
        part2 = part2.wrapping_mul(10);
        delta = delta.wrapping_mul(10);
        kappa -= 1;
        let digit = part2 >> shift;
        if (digit != 0 || idx != 0) && idx < digits.len() {
            digits[idx] = b'0' + digit as u8;
            idx += 1;
        }
        part2 &= one - 1;
        if part2 < delta || unit_idx == 0 {
            *k += kappa;
            let unit = TENS[unit_idx];
            round_digit(
                &mut digits[..idx],
                delta,
                part2,
                one,
                wfrac.wrapping_mul(unit),
            );
            return idx;
        }
        unit_idx -= 1;
    }
}

/// Grisu2 digits of a finite, non-zero `d`: returns (digits, count, K) with
/// `d ≈ digits * 10^K`.
fn grisu2(d: f64) -> ([u8; 24], usize, i32) {
    let w = build_fp(d);
    let (lower, upper) = normalized_boundaries(w);
    let w = normalize(w);
    let (cp, k) = cached_power(upper.exp);
    let w = multiply(w, cp);
    let mut upper = multiply(upper, cp);
    let mut lower = multiply(lower, cp);
    lower.frac = lower.frac.wrapping_add(1);
    upper.frac = upper.frac.wrapping_sub(1);
    let mut big_k = -k;
    let mut digits = [0u8; 24];
    let n = generate_digits(w, upper, lower, &mut digits, &mut big_k);
    (digits, n, big_k)
}

/// fpconv's `emit_digits`: lays out `digits * 10^k`.
fn emit_digits(digits: &[u8], k: i32, negative: bool, out: &mut Vec<u8>) {
    let ndigits = digits.len() as i32;
    let mut exp = (k + ndigits - 1).abs();

    // Plain integer.
    if k >= 0 && exp < ndigits + 7 {
        out.extend_from_slice(digits);
        out.resize(out.len() + k as usize, b'0');
        return;
    }

    // Decimal without exponent.
    if k < 0 && (k > -7 || exp < 4) {
        let offset = ndigits - k.abs();
        if offset <= 0 {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-offset) as usize, b'0');
            out.extend_from_slice(digits);
        } else {
            let offset = offset as usize;
            out.extend_from_slice(&digits[..offset]);
            out.push(b'.');
            out.extend_from_slice(&digits[offset..]);
        }
        return;
    }

    // Scientific notation.
    let max_digits = if negative { 17 } else { 18 };
    let ndigits = ndigits.min(max_digits);
    let shown = &digits[..ndigits as usize];
    out.push(shown[0]);
    if ndigits > 1 {
        out.push(b'.');
        out.extend_from_slice(&shown[1..]);
    }
    out.push(b'e');
    out.push(if k + ndigits - 1 < 0 { b'-' } else { b'+' });
    let mut cent = 0;
    if exp > 99 {
        cent = exp / 100;
        out.push(b'0' + cent as u8);
        exp -= cent * 100;
    }
    if exp > 9 {
        let dec = exp / 10;
        out.push(b'0' + dec as u8);
        exp -= dec * 10;
    } else if cent != 0 {
        out.push(b'0');
    }
    out.push(b'0' + (exp % 10) as u8);
}

/// fpconv_dtoa for a finite, non-zero `d`.
fn fpconv_dtoa(d: f64, out: &mut Vec<u8>) {
    let negative = d.is_sign_negative();
    if negative {
        out.push(b'-');
    }
    let (digits, n, k) = grisu2(d.abs());
    emit_digits(&digits[..n], k, negative, out);
}

// ---------------------------------------------------------------------------
// Doubles: %.17g and fixed point
// ---------------------------------------------------------------------------

/// Formats `v` like C's `printf("%.17g", v)` (the double format of Redis
/// 7.0 and earlier): 17 significant digits, correctly rounded; scientific
/// notation (`1.0000000000000001e-05`, `1e+17`) when the decimal exponent is
/// below -4 or at least 17, fixed notation otherwise; trailing zeros and a
/// trailing `.` removed. Non-finite values print as `inf`, `-inf`, `nan`
/// (glibc would print `-nan` for a NaN with the sign bit set).
pub fn format_double_g17(v: f64) -> String {
    const P: i32 = 17;
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    // "d.dddddddddddddddde[-]X", correctly rounded (ties to even).
    let sci = format!("{:.16e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let mut out = String::with_capacity(32);
    if v.is_sign_negative() {
        out.push('-');
    }
    if (-4..P).contains(&x) {
        // Fixed notation with P - 1 - X decimals.
        if x >= 0 {
            let int_len = x as usize + 1;
            out.extend(digits[..int_len].iter().map(|&b| b as char));
            let frac = trim_zeros(&digits[int_len..]);
            if !frac.is_empty() {
                out.push('.');
                out.extend(frac.iter().map(|&b| b as char));
            }
        } else {
            let frac = trim_zeros(&digits);
            out.push('0');
            if !frac.is_empty() {
                out.push('.');
                for _ in 0..(-x - 1) {
                    out.push('0');
                }
                out.extend(frac.iter().map(|&b| b as char));
            }
        }
    } else {
        out.push(digits[0] as char);
        let frac = trim_zeros(&digits[1..]);
        if !frac.is_empty() {
            out.push('.');
            out.extend(frac.iter().map(|&b| b as char));
        }
        out.push('e');
        out.push(if x < 0 { '-' } else { '+' });
        let ax = x.unsigned_abs();
        if ax < 10 {
            out.push('0');
        }
        out.push_str(&ax.to_string());
    }
    out
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let end = digits.iter().rposition(|&b| b != b'0').map_or(0, |p| p + 1);
    &digits[..end]
}

/// C `llrint` on x86-64 in the default rounding mode: round half to even,
/// out-of-range and NaN give `i64::MIN`.
fn llrint(x: f64) -> i64 {
    let r = x.round_ties_even();
    if r.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&r) {
        i64::MIN
    } else {
        r as i64
    }
}

/// Redis 7.2's `fixedpoint_d2string`, used for GEO distances with 4
/// fractional digits: `v * 10^fractional_digits` is rounded (half to even)
/// to an integer, which is printed with exactly `fractional_digits`
/// decimals (`0.0000`, `-12.3457`, `0.7750`). Returns `None` when
/// `fractional_digits` is not in `1..=17` (Redis reports an error then).
pub fn format_fixed_point(v: f64, fractional_digits: u32) -> Option<String> {
    if !(1..=17).contains(&fractional_digits) {
        return None;
    }
    let frac = fractional_digits as usize;
    if v == 0.0 {
        return Some(format!("0.{}", "0".repeat(frac)));
    }
    let scaled = llrint(v * 10f64.powi(fractional_digits as i32));
    let mut out = String::with_capacity(24 + frac);
    if scaled < 0 {
        out.push('-');
    }
    let mut buf = [0u8; MAX_INT_LEN];
    let digits = format_u64(scaled.unsigned_abs(), &mut buf);
    if digits.len() <= frac {
        out.push_str("0.");
        for _ in digits.len()..frac {
            out.push('0');
        }
        out.extend(digits.iter().map(|&b| b as char));
    } else {
        let int_len = digits.len() - frac;
        out.extend(digits[..int_len].iter().map(|&b| b as char));
        out.push('.');
        out.extend(digits[int_len..].iter().map(|&b| b as char));
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// Long doubles (INCRBYFLOAT / HINCRBYFLOAT)
// ---------------------------------------------------------------------------

/// A C `long double` (x87 80-bit extended precision on x86-64), the type in
/// which Redis performs `INCRBYFLOAT` and `HINCRBYFLOAT`. The value is kept
/// as opaque bytes and every operation goes through the C helper, so results
/// match Redis bit for bit.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
pub struct LongDouble {
    bytes: [u8; LD_BYTES],
}

impl LongDouble {
    /// Positive zero.
    pub fn zero() -> Self {
        Self::from_i64(0)
    }

    /// Parses `s` with Redis's `string2ld` rules: the whole input must be
    /// accepted by C `strtold` (decimal, hex, `inf`/`infinity`), with no
    /// leading whitespace, no embedded NUL, fewer than
    /// [`MAX_LONG_DOUBLE_CHARS`] bytes, and not NaN, nor an overflow to
    /// infinity, nor an underflow to zero.
    pub fn parse(s: &[u8]) -> Option<Self> {
        if s.is_empty() || s.len() >= MAX_LONG_DOUBLE_CHARS {
            return None;
        }
        let mut out = Self {
            bytes: [0; LD_BYTES],
        };
        // SAFETY: `s` is valid for `s.len()` bytes (checked below the C
        // buffer size above) and `out.bytes` has room for LD_BYTES bytes,
        // the size the helper writes.
        let ok =
            unsafe { kvik_ld_parse(s.as_ptr().cast::<c_char>(), s.len(), out.bytes.as_mut_ptr()) };
        (ok != 0).then_some(out)
    }

    /// Converts an integer (exact: a long double has a 64-bit significand).
    pub fn from_i64(v: i64) -> Self {
        let mut out = Self {
            bytes: [0; LD_BYTES],
        };
        // SAFETY: the helper writes LD_BYTES bytes into `out.bytes`.
        unsafe { kvik_ld_from_i64(v, out.bytes.as_mut_ptr()) };
        out
    }

    /// Converts a double (exact).
    pub fn from_f64(v: f64) -> Self {
        let mut out = Self {
            bytes: [0; LD_BYTES],
        };
        // SAFETY: the helper writes LD_BYTES bytes into `out.bytes`.
        unsafe { kvik_ld_from_f64(v, out.bytes.as_mut_ptr()) };
        out
    }

    /// Rounds to the nearest double.
    pub fn to_f64(self) -> f64 {
        // SAFETY: `self.bytes` holds a long double written by the helper.
        unsafe { kvik_ld_to_f64(self.bytes.as_ptr()) }
    }

    /// Returns `self + other` computed in long double precision.
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, other: Self) -> Self {
        let mut out = Self {
            bytes: [0; LD_BYTES],
        };
        // SAFETY: both inputs hold long doubles written by the helper and
        // the output buffer has room for LD_BYTES bytes.
        unsafe {
            kvik_ld_add(
                self.bytes.as_ptr(),
                other.bytes.as_ptr(),
                out.bytes.as_mut_ptr(),
            )
        };
        out
    }

    fn classify(self) -> c_int {
        // SAFETY: `self.bytes` holds a long double written by the helper.
        unsafe { kvik_ld_classify(self.bytes.as_ptr()) }
    }

    /// Whether the value is NaN.
    pub fn is_nan(self) -> bool {
        self.classify() == 1
    }

    /// Whether the value is +infinity or -infinity.
    pub fn is_infinite(self) -> bool {
        self.classify() == 2
    }

    /// Whether the value is neither NaN nor infinite.
    pub fn is_finite(self) -> bool {
        self.classify() == 0
    }

    /// Formats like Redis's `ld2string(..., LD_STR_HUMAN)`, the format of
    /// `INCRBYFLOAT`/`HINCRBYFLOAT` results: `%.17Lf` with trailing zeros
    /// and a trailing `.` removed, and `-0` turned into `0` (`10.6`,
    /// `5200`, `3.0000000000000001e-5` is printed as `0.00003`).
    pub fn to_human_bytes(self) -> Vec<u8> {
        self.format_with(kvik_ld_format_human)
    }

    /// Formats like Redis's `ld2string(..., LD_STR_AUTO)` (`%.17Lg`).
    pub fn to_auto_bytes(self) -> Vec<u8> {
        self.format_with(kvik_ld_format_auto)
    }

    fn format_with(
        self,
        f: unsafe extern "C" fn(*const u8, *mut c_char, usize) -> usize,
    ) -> Vec<u8> {
        let mut buf = [0u8; MAX_LONG_DOUBLE_CHARS];
        // SAFETY: `self.bytes` holds a long double written by the helper;
        // `buf` is writable for its full length, which is passed as the
        // capacity, and the helper never writes past it.
        let len = unsafe {
            f(
                self.bytes.as_ptr(),
                buf.as_mut_ptr().cast::<c_char>(),
                buf.len(),
            )
        };
        buf[..len.min(buf.len())].to_vec()
    }
}

impl Default for LongDouble {
    fn default() -> Self {
        Self::zero()
    }
}

impl PartialEq for LongDouble {
    fn eq(&self, other: &Self) -> bool {
        self.partial_cmp(other) == Some(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for LongDouble {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        if self.is_nan() || other.is_nan() {
            return None;
        }
        // SAFETY: both hold long doubles written by the helper.
        let c = unsafe { kvik_ld_cmp(self.bytes.as_ptr(), other.bytes.as_ptr()) };
        Some(c.cmp(&0))
    }
}

impl std::ops::Add for LongDouble {
    type Output = LongDouble;

    fn add(self, rhs: LongDouble) -> LongDouble {
        LongDouble::add(self, rhs)
    }
}

impl fmt::Debug for LongDouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LongDouble({})",
            String::from_utf8_lossy(&self.to_human_bytes())
        )
    }
}

/// Errors of [`incr_by_float`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrFloatError {
    /// The stored value or the increment is not a valid float.
    NotAFloat,
    /// The sum is NaN or infinite.
    NanOrInfinity,
}

impl IncrFloatError {
    /// The error text Redis replies with (after the `ERR ` prefix).
    pub fn message(self) -> &'static str {
        match self {
            IncrFloatError::NotAFloat => "value is not a valid float",
            IncrFloatError::NanOrInfinity => "increment would produce NaN or Infinity",
        }
    }
}

impl fmt::Display for IncrFloatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for IncrFloatError {}

/// `INCRBYFLOAT` arithmetic: parses the current value (`None` for a missing
/// key, which counts as 0) and the increment with [`LongDouble::parse`]
/// (current value first), adds them in long double precision, and returns
/// the new value formatted with [`LongDouble::to_human_bytes`]; this is both
/// what is stored and what is replied.
pub fn incr_by_float(current: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, IncrFloatError> {
    let value = match current {
        Some(s) => LongDouble::parse(s).ok_or(IncrFloatError::NotAFloat)?,
        None => LongDouble::zero(),
    };
    let incr = LongDouble::parse(incr).ok_or(IncrFloatError::NotAFloat)?;
    let sum = value + incr;
    if !sum.is_finite() {
        return Err(IncrFloatError::NanOrInfinity);
    }
    Ok(sum.to_human_bytes())
}

/// Errors of [`hincr_by_float`] and [`parse_hincr_increment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HIncrFloatError {
    /// The increment is not a valid float.
    IncrementNotAFloat,
    /// The increment is infinite.
    IncrementNanOrInfinity,
    /// The value stored in the hash field is not a valid float.
    HashValueNotAFloat,
    /// The sum is NaN or infinite.
    NanOrInfinity,
}

impl HIncrFloatError {
    /// The error text Redis replies with (after the `ERR ` prefix).
    pub fn message(self) -> &'static str {
        match self {
            HIncrFloatError::IncrementNotAFloat => "value is not a valid float",
            HIncrFloatError::IncrementNanOrInfinity => "value is NaN or Infinity",
            HIncrFloatError::HashValueNotAFloat => "hash value is not a float",
            HIncrFloatError::NanOrInfinity => "increment would produce NaN or Infinity",
        }
    }
}

impl fmt::Display for HIncrFloatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for HIncrFloatError {}

/// First step of `HINCRBYFLOAT`: validates the increment. Redis does this
/// before looking the key up, so a bad increment wins over `WRONGTYPE`.
pub fn parse_hincr_increment(incr: &[u8]) -> Result<LongDouble, HIncrFloatError> {
    let v = LongDouble::parse(incr).ok_or(HIncrFloatError::IncrementNotAFloat)?;
    if !v.is_finite() {
        return Err(HIncrFloatError::IncrementNanOrInfinity);
    }
    Ok(v)
}

/// Second step of `HINCRBYFLOAT`: adds `incr` (from
/// [`parse_hincr_increment`]) to the field's current value (`None` when the
/// field or key is missing) and returns the new value, formatted as Redis
/// stores and replies it.
pub fn hincr_by_float(
    current: Option<&[u8]>,
    incr: LongDouble,
) -> Result<Vec<u8>, HIncrFloatError> {
    let value = match current {
        Some(s) => LongDouble::parse(s).ok_or(HIncrFloatError::HashValueNotAFloat)?,
        None => LongDouble::zero(),
    };
    let sum = value + incr;
    if !sum.is_finite() {
        return Err(HIncrFloatError::NanOrInfinity);
    }
    Ok(sum.to_human_bytes())
}

/// C `printf("%.17g")` through the C library; used to cross-check
/// [`format_double_g17`] in tests.
#[cfg(test)]
fn c_format_g17(v: f64) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is writable for its full length, passed as capacity.
    let n = unsafe { kvik_format_g17(v, buf.as_mut_ptr().cast::<c_char>(), buf.len()) };
    String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned()
}

#[cfg(test)]
mod atoi_tests {
    use super::atoi;

    #[test]
    fn c_atoi() {
        assert_eq!(atoi(b"12x"), 12);
        assert_eq!(atoi(b"  -3"), -3);
        assert_eq!(atoi(b" +7"), 7);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b""), 0);
        assert_eq!(atoi(b"99999999999999999999"), i64::MAX);
        assert_eq!(atoi(b"-99999999999999999999"), i64::MIN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ----- integers -------------------------------------------------------

    #[test]
    fn parse_i64_matches_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"1"), Some(1));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"99"), Some(99));
        assert_eq!(parse_i64(b"-99"), Some(-99));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-9223372036854775809"), None);
        assert_eq!(parse_i64(b"18446744073709551616"), None);
        assert_eq!(parse_i64(b"99999999999999999999999"), None);
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"00",
            b"-0",
            b"-01",
            b"1a",
            b"0x10",
            b"1.0",
            b"1e3",
            b"\x001",
            b"1\x00",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn parse_u64_strict() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b"01"), None);
        assert_eq!(parse_u64(b""), None);
    }

    #[test]
    fn parse_u64_strtoull_matches_string2ull() {
        assert_eq!(parse_u64_strtoull(b"0"), Some(0));
        assert_eq!(parse_u64_strtoull(b"123"), Some(123));
        assert_eq!(parse_u64_strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64_strtoull(b"18446744073709551616"), None);
        assert_eq!(parse_u64_strtoull(b"-1"), None);
        assert_eq!(parse_u64_strtoull(b"-0"), Some(0));
        assert_eq!(parse_u64_strtoull(b"+5"), Some(5));
        assert_eq!(parse_u64_strtoull(b" 5"), Some(5));
        assert_eq!(parse_u64_strtoull(b"\t\n007"), Some(7));
        assert_eq!(parse_u64_strtoull(b"5 "), None);
        assert_eq!(parse_u64_strtoull(b""), None);
        assert_eq!(parse_u64_strtoull(b" "), None);
        assert_eq!(parse_u64_strtoull(b"-"), None);
        assert_eq!(parse_u64_strtoull(b"0x10"), None);
        // Beyond i64 range, strtoull negates modulo 2^64.
        assert_eq!(parse_u64_strtoull(b"-18446744073709551615"), Some(1));
        assert_eq!(
            parse_u64_strtoull(b"-9223372036854775809"),
            Some(9223372036854775807)
        );
        // Cut at the first NUL, as on a C string.
        assert_eq!(parse_u64_strtoull(b"12\x0034"), Some(12));
        assert_eq!(parse_u64_strtoull(b"\x0012"), None);
    }

    #[test]
    fn format_integers() {
        let mut buf = [0u8; MAX_INT_LEN];
        for v in [
            0i64,
            1,
            -1,
            9,
            10,
            99,
            100,
            -100,
            12345,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            assert_eq!(format_i64(v, &mut buf), v.to_string().as_bytes());
        }
        for v in [0u64, 7, 10, u64::MAX, 1 << 63] {
            assert_eq!(format_u64(v, &mut buf), v.to_string().as_bytes());
        }
        let mut out = b"x".to_vec();
        append_i64(&mut out, -42);
        append_u64(&mut out, 42);
        assert_eq!(out, b"x-4242");
    }

    proptest! {
        #[test]
        fn i64_roundtrip(v in any::<i64>()) {
            let mut buf = [0u8; MAX_INT_LEN];
            let s = format_i64(v, &mut buf).to_vec();
            prop_assert_eq!(s.clone(), v.to_string().into_bytes());
            prop_assert_eq!(parse_i64(&s), Some(v));
        }

        #[test]
        fn parse_i64_agrees_with_canonical_form(s in "-?[0-9]{0,21}") {
            // string2ll accepts exactly the canonical decimal spellings.
            let expected = s.parse::<i64>().ok().filter(|v| v.to_string() == s);
            prop_assert_eq!(parse_i64(s.as_bytes()), expected);
        }

        #[test]
        fn parse_i64_never_panics(s in proptest::collection::vec(any::<u8>(), 0..30)) {
            let _ = parse_i64(&s);
            let _ = parse_u64(&s);
            let _ = parse_u64_strtoull(&s);
        }
    }

    // ----- double parsing --------------------------------------------------

    #[test]
    fn parse_f64_matches_redis() {
        // Accepted inputs and their values (checked against ZADD/ZSCORE on a
        // real Redis).
        let ok: &[(&[u8], f64)] = &[
            (b"1", 1.0),
            (b"-1.5", -1.5),
            (b"+1", 1.0),
            (b".5", 0.5),
            (b"5.", 5.0),
            (b"1e+5", 1e5),
            (b"1E5", 1e5),
            (b"00012", 12.0),
            (b"0x10", 16.0),
            (b"0X1p3", 8.0),
            (b"0x1p-1070", 2f64.powi(-1070)),
            (b"1e-310", 1e-310),
            (b"1e-320", 1e-320),
            (b"4.9e-324", 5e-324),
            (b"2.5e-324", 5e-324),
            (b"1.7976931348623157e308", f64::MAX),
            (b"inf", f64::INFINITY),
            (b"-inf", f64::NEG_INFINITY),
            (b"+inf", f64::INFINITY),
            (b"Infinity", f64::INFINITY),
            (b"-INFINITY", f64::NEG_INFINITY),
            (b"0e99999999999999999999", 0.0),
        ];
        for &(s, v) in ok {
            assert_eq!(parse_f64(s), Some(v), "{:?}", String::from_utf8_lossy(s));
        }
        assert!(parse_f64(b"-0").unwrap().is_sign_negative());
        let bad: &[&[u8]] = &[
            b"",
            b"1e400",
            b"-1e400",
            b"1e-400",
            b"2.4e-324",
            b"0x1p-1080",
            b"1.7976931348623159e308",
            b"infinit",
            b"nan",
            b"-nan",
            b"NaN",
            b" 1",
            b"\t1",
            b"1 ",
            b".",
            b"1e",
            b"1e+",
            b"0x",
            b"1\x00",
            b"1,5",
            b"--1",
            b"abc",
        ];
        for &s in bad {
            assert_eq!(parse_f64(s), None, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn strtod_reports_prefix_and_range() {
        let r = strtod(b" 12.5abc");
        assert_eq!((r.value, r.consumed, r.range_error), (12.5, 5, false));
        let r = strtod(b"1e999");
        assert!(r.value.is_infinite() && r.range_error && r.consumed == 5);
        let r = strtod(b"x");
        assert_eq!((r.value, r.consumed), (0.0, 0));
        let r = strtod(b"1\x002");
        assert_eq!(r.consumed, 1);
        let long = format!("{}1", "0".repeat(1000));
        assert_eq!(strtod(long.as_bytes()).value, 1.0);
    }

    fn decimal_strategy() -> impl Strategy<Value = String> {
        (
            "[+-]?",
            "[0-9]{0,25}",
            proptest::option::of("[0-9]{0,25}"),
            proptest::option::of(("[eE]", "[+-]?", "[0-9]{1,4}")),
        )
            .prop_map(|(sign, int, frac, exp)| {
                let mut s = format!("{sign}{int}");
                if let Some(f) = frac {
                    s.push('.');
                    s.push_str(&f);
                }
                if let Some((e, es, ed)) = exp {
                    s.push_str(&format!("{e}{es}{ed}"));
                }
                s
            })
    }

    /// `string2d` computed purely through C strtod.
    fn string2d_via_c(s: &[u8]) -> Option<f64> {
        if s.is_empty() || is_c_space(s[0]) {
            return None;
        }
        let r = strtod(s);
        if r.consumed != s.len()
            || r.value.is_nan()
            || (r.range_error && (r.value.is_infinite() || r.value == 0.0))
        {
            return None;
        }
        Some(r.value)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        #[test]
        fn fast_path_agrees_with_strtod(s in decimal_strategy()) {
            let a = parse_f64(s.as_bytes()).map(f64::to_bits);
            let b = string2d_via_c(s.as_bytes()).map(f64::to_bits);
            prop_assert_eq!(a, b, "{}", s);
        }

        #[test]
        fn parse_f64_agrees_with_strtod_on_any_bytes(
            s in proptest::collection::vec(proptest::sample::select(&b"0123456789+-.eEx pinfatyINFATY\x00"[..]), 0..12)
        ) {
            let a = parse_f64(&s).map(f64::to_bits);
            let b = string2d_via_c(&s).map(f64::to_bits);
            prop_assert_eq!(a, b);
        }

        #[test]
        fn parse_f64_roundtrips_formatted(v in any::<f64>()) {
            if v.is_finite() {
                prop_assert_eq!(parse_f64(format_double(v).as_bytes()), Some(v));
                prop_assert_eq!(parse_f64(format_double_g17(v).as_bytes()), Some(v));
            }
        }
    }

    // ----- d2string / fpconv ------------------------------------------------

    #[test]
    fn format_double_specials_and_integers() {
        assert_eq!(format_double(f64::NAN), "nan");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double(0.0), "0");
        assert_eq!(format_double(-0.0), "-0");
        assert_eq!(format_double(1.0), "1");
        assert_eq!(format_double(-3.0), "-3");
        assert_eq!(format_double(1e18), "1000000000000000000");
        assert_eq!(format_double(4611686018427387904.0), "4611686018427387904");
        assert_eq!(
            format_double(-4611686018427387904.0),
            "-4611686018427387904"
        );
        // Just above 2^62 the integer shortcut stops.
        assert_eq!(format_double(4611686018427388928.0), "4611686018427389000");
        let mut out = b"s=".to_vec();
        append_double(&mut out, 2.5);
        assert_eq!(out, b"s=2.5");
    }

    #[test]
    fn format_double_layouts() {
        let cases: &[(f64, &str)] = &[
            (0.1, "0.1"),
            (-0.1, "-0.1"),
            (1.5, "1.5"),
            (6.0221, "6.0221"),
            (123.456, "123.456"),
            (0.3, "0.3"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.0 / 3.0, "0.3333333333333333"),
            (2.0 / 3.0, "0.6666666666666666"),
            (0.000001, "0.000001"),
            (0.0000015, "1.5e-6"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (0.0012345, "0.0012345"),
            (0.00012345, "1.2345e-4"),
            (0.000012345, "1.2345e-5"),
            (1e21, "1e+21"),
            (1e19, "1e+19"),
            (1.5e19, "1.5e+19"),
            (1.2345678901234568e20, "123456789012345680000"),
            (1e22, "1e+22"),
            (1e23, "99999999999999990000000"), // Grisu2 is not always shortest
            (1e300, "1e+300"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-5e-324, "-5e-324"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (1e100, "1e+100"),
            (1.5e100, "1.5e+100"),
            (1e-100, "1e-100"),
            (12345.678, "12345.678"),
            (9007199254740993.0, "9007199254740992"),
            (1e-5, "0.00001"),
            (1.25e-5, "1.25e-5"),
            (1e15 + 0.3, "1000000000000000.3"),
            (123456789.123, "123456789.123"),
            (5e-7, "5e-7"),
        ];
        for &(v, s) in cases {
            assert_eq!(format_double(v), s, "{v:e}");
        }
    }

    /// Exact big-number check of the cached powers: every entry satisfies
    /// |frac * 2^exp - 10^k| <= 2^exp / 2 (round to nearest).
    #[test]
    fn cached_powers_are_exact() {
        use std::cmp::Ordering;
        fn mul_small(a: &mut Vec<u64>, m: u64) {
            let mut carry = 0u128;
            for limb in a.iter_mut() {
                let v = u128::from(*limb) * u128::from(m) + carry;
                *limb = v as u64;
                carry = v >> 64;
            }
            if carry > 0 {
                a.push(carry as u64);
            }
        }
        fn mul_pow10(mut a: Vec<u64>, n: u32) -> Vec<u64> {
            for _ in 0..n {
                mul_small(&mut a, 10);
            }
            a
        }
        fn shl(a: &[u64], bits: u32) -> Vec<u64> {
            let (words, rem) = ((bits / 64) as usize, bits % 64);
            let mut out = vec![0u64; words];
            let mut carry = 0u64;
            for &limb in a {
                out.push((limb << rem) | carry);
                carry = if rem == 0 { 0 } else { limb >> (64 - rem) };
            }
            out.push(carry);
            out
        }
        fn cmp(a: &[u64], b: &[u64]) -> Ordering {
            for i in (0..a.len().max(b.len())).rev() {
                let x = a.get(i).copied().unwrap_or(0);
                let y = b.get(i).copied().unwrap_or(0);
                if x != y {
                    return x.cmp(&y);
                }
            }
            Ordering::Equal
        }
        for (i, &(frac, exp)) in CACHED_POWERS.iter().enumerate() {
            assert_eq!(frac >> 63, 1, "entry {i} not normalized");
            let k = FIRST_POWER + POWER_STEP * i as i32;
            let two_f = u128::from(frac) * 2;
            let lo = |x: u128| vec![x as u64, (x >> 64) as u64];
            let (mut low, mut high) = (lo(two_f - 1), lo(two_f + 1));
            // Check low * 2^exp <= 2 * 10^k <= high * 2^exp, on integers.
            let target;
            if exp >= 0 {
                assert!(k >= 0);
                low = shl(&low, exp as u32);
                high = shl(&high, exp as u32);
                target = mul_pow10(vec![2], k as u32);
            } else if k >= 0 {
                target = shl(&mul_pow10(vec![2], k as u32), (-exp) as u32);
            } else {
                low = mul_pow10(low, k.unsigned_abs());
                high = mul_pow10(high, k.unsigned_abs());
                target = shl(&[2], (-exp) as u32);
            }
            assert_ne!(cmp(&low, &target), Ordering::Greater, "entry {i} too big");
            assert_ne!(
                cmp(&target, &high),
                Ordering::Greater,
                "entry {i} too small"
            );
        }
    }

    #[test]
    fn cached_power_lookup_covers_all_exponents() {
        // Every binary exponent an upper boundary can have must land in the
        // Grisu window.
        for bits in (0u64..0x7FF)
            .map(|e| e << 52)
            .chain([1, 0xFFFF_FFFF, 1 << 40])
        {
            let d = f64::from_bits(bits | 1);
            let (_, upper) = normalized_boundaries(build_fp(d));
            let (cp, _) = cached_power(upper.exp);
            let current = upper.exp + cp.exp + 64;
            assert!((EXP_MIN..=EXP_MAX).contains(&current), "{bits:x}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn format_double_roundtrips(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            let s = format_double(v);
            if v.is_nan() {
                prop_assert_eq!(s, "nan");
            } else {
                let back: f64 = s.parse().unwrap();
                prop_assert_eq!(back.to_bits(), v.to_bits(), "{}", s);
                // Never more than 17 significant digits.
                let mantissa = s.split('e').next().unwrap();
                let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
                let first = digits.iter().position(|&d| d != b'0').unwrap_or(0);
                let last = digits.iter().rposition(|&d| d != b'0').map_or(0, |p| p + 1);
                if double_to_i64_exact(v).is_none() {
                    prop_assert!(last - first <= 17, "{}", s);
                }
            }
        }
    }

    // ----- %.17g --------------------------------------------------------------

    #[test]
    fn format_g17_examples() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (0.1, "0.10000000000000001"),
            (1.5, "1.5"),
            (100.0, "100"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (1.5e17, "1.5e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (1e-7, "9.9999999999999995e-08"),
            (1e300, "1.0000000000000001e+300"),
            (5e-324, "4.9406564584124654e-324"),
            (1.0 + 2f64.powi(-17), "1.0000076293945312"), // a tie: to even
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for &(v, s) in cases {
            assert_eq!(format_double_g17(v), s);
            if v.is_finite() {
                assert_eq!(c_format_g17(v), s);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn format_g17_matches_libc(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            if !v.is_nan() {
                prop_assert_eq!(format_double_g17(v), c_format_g17(v));
            }
        }

        #[test]
        fn format_g17_matches_libc_on_short_decimals(m in -100_000i64..100_000, e in -30i32..30) {
            let v: f64 = format!("{m}e{e}").parse().unwrap();
            prop_assert_eq!(format_double_g17(v), c_format_g17(v));
            let half = v + f64::EPSILON * v.abs();
            prop_assert_eq!(format_double_g17(half), c_format_g17(half));
        }
    }

    // ----- fixed point ------------------------------------------------------

    #[test]
    fn fixed_point() {
        assert_eq!(format_fixed_point(0.0, 4).as_deref(), Some("0.0000"));
        assert_eq!(format_fixed_point(-0.0, 4).as_deref(), Some("0.0000"));
        assert_eq!(format_fixed_point(0.775, 4).as_deref(), Some("0.7750"));
        assert_eq!(
            format_fixed_point(166274.1516, 4).as_deref(),
            Some("166274.1516")
        );
        assert_eq!(
            format_fixed_point(-12.34567, 4).as_deref(),
            Some("-12.3457")
        );
        assert_eq!(format_fixed_point(0.00004, 4).as_deref(), Some("0.0000"));
        assert_eq!(format_fixed_point(-0.00004, 4).as_deref(), Some("0.0000"));
        assert_eq!(format_fixed_point(0.00005, 4).as_deref(), Some("0.0000"));
        // 0.00015 * 1e4 == 1.4999999999999998 in double arithmetic.
        assert_eq!(format_fixed_point(0.00015, 4).as_deref(), Some("0.0001"));
        assert_eq!(format_fixed_point(0.00025, 4).as_deref(), Some("0.0002"));
        assert_eq!(format_fixed_point(0.5, 4).as_deref(), Some("0.5000"));
        assert_eq!(format_fixed_point(0.0001, 4).as_deref(), Some("0.0001"));
        assert_eq!(format_fixed_point(-0.0001, 4).as_deref(), Some("-0.0001"));
        assert_eq!(format_fixed_point(1.0, 1).as_deref(), Some("1.0"));
        assert_eq!(format_fixed_point(1.0, 0), None);
        assert_eq!(format_fixed_point(1.0, 18), None);
        assert_eq!(
            format_fixed_point(f64::NAN, 4).as_deref(),
            Some("-922337203685477.5808")
        );
    }

    // ----- long doubles -----------------------------------------------------

    #[test]
    fn long_double_is_x87_extended_on_x86_64() {
        if cfg!(target_arch = "x86_64") {
            // 2^64 + 1 is not representable in 64-bit significand... but
            // 2^63 + 1 is (it is not in a double).
            let a = LongDouble::parse(b"9223372036854775809").unwrap();
            let b = LongDouble::parse(b"9223372036854775808").unwrap();
            assert!(a > b);
            assert_eq!(a.to_human_bytes(), b"9223372036854775809");
        }
    }

    #[test]
    fn long_double_parse_rules() {
        for ok in [
            &b"1"[..],
            b"-1.5",
            b"+2",
            b".5",
            b"5.",
            b"1e10",
            b"0x10",
            b"inf",
            b"-infinity",
            b"1e4000",
        ] {
            assert!(
                LongDouble::parse(ok).is_some(),
                "{:?}",
                String::from_utf8_lossy(ok)
            );
        }
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"1\x00",
            b"nan",
            b"abc",
            b"1e5000",
            b"1e-5000",
            b"--1",
            b"\n1",
        ] {
            assert!(
                LongDouble::parse(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // 5119 digits overflow even a long double.
        let long_overflow = vec![b'1'; MAX_LONG_DOUBLE_CHARS - 1];
        assert!(LongDouble::parse(&long_overflow).is_none());
        let long_bad = vec![b'0'; MAX_LONG_DOUBLE_CHARS];
        assert!(LongDouble::parse(&long_bad).is_none());
        let mut long_zero = vec![b'0'; MAX_LONG_DOUBLE_CHARS - 1];
        long_zero[MAX_LONG_DOUBLE_CHARS - 2] = b'7';
        assert_eq!(
            LongDouble::parse(&long_zero).unwrap().to_human_bytes(),
            b"7"
        );
    }

    #[test]
    fn long_double_basics() {
        assert_eq!(LongDouble::zero().to_human_bytes(), b"0");
        assert_eq!(LongDouble::from_i64(-42).to_human_bytes(), b"-42");
        assert_eq!(LongDouble::from_f64(0.5).to_f64(), 0.5);
        let inf = LongDouble::parse(b"inf").unwrap();
        assert!(inf.is_infinite() && !inf.is_finite() && !inf.is_nan());
        assert_eq!(inf.to_human_bytes(), b"inf");
        let ninf = LongDouble::parse(b"-inf").unwrap();
        assert_eq!(ninf.to_human_bytes(), b"-inf");
        let nan = inf + ninf;
        assert!(nan.is_nan());
        assert_eq!(nan.to_human_bytes(), b"nan");
        assert!(nan.partial_cmp(&nan).is_none());
        assert_eq!(LongDouble::from_i64(3), LongDouble::parse(b"3.0").unwrap());
        assert_eq!(format!("{:?}", LongDouble::from_i64(7)), "LongDouble(7)");
        assert_eq!(
            LongDouble::parse(b"1e20").unwrap().to_auto_bytes(),
            b"1e+20"
        );
        assert_eq!(LongDouble::default().to_human_bytes(), b"0");
        // The largest long double prints in full (about 4933 digits).
        let max = LongDouble::parse(b"1.18973149535723176502e+4932").unwrap();
        let s = max.to_human_bytes();
        assert!(s.len() > 4900 && s.starts_with(b"11897314953572317"));
    }

    /// `SET k <current>` then `INCRBYFLOAT k <incr>` on a real redis-server
    /// (x86-64): the reply, or the error. `LONG:<len>:<prefix>` abbreviates
    /// very long replies.
    const INCRBYFLOAT_CASES: &[(&str, &str, &str)] = &[
        ("10.50", "0.1", "10.6"),
        ("5.0e3", "2.0e2", "5200"),
        ("3.0e3", "2.0e2", "3200"),
        ("0", "0", "0"),
        ("1", "-1", "0"),
        ("-0", "0", "0"),
        ("-0.0", "-0.0", "0"),
        ("0", "-1e-30", "0"),
        ("1.1", "1e-17", "1.10000000000000001"),
        ("1.1", "1e-18", "1.1"),
        ("1.1", "0.00000000000000001", "1.10000000000000001"),
        ("0.1", "0.2", "0.3"),
        ("1e300", "1e300", "2000000000000000000017994648159118387741047888546581495876520164642531293192361871511698304167500994380700745017228549671807185112369345967826192521041497292574654271283687306588168510215212033579453305864740061102765895241989080589545563779241212358535223254194821301134374772211380178849830208012288"),
        ("1.5", "2.25", "3.75"),
        ("-5", "2", "-3"),
        ("9223372036854775807", "1", "9223372036854775808"),
        ("1e4000", "1e4000", "LONG:4001:199999999999999999999309277461"),
        ("3.14159265358979323846", "0", "3.14159265358979324"),
        ("0.1", "0.7", "0.8"),
        ("100", "-0.00001", "99.99999"),
        ("0x10", "1", "17"),
        ("1e-20", "0", "0"),
        ("-1e-20", "0", "0"),
        ("123456789012345678", "0.1", "123456789012345678.1015625"),
        ("7", "inf", "ERR increment would produce NaN or Infinity"),
        ("inf", "-inf", "ERR increment would produce NaN or Infinity"),
        ("1e4932", "1e4932", "ERR increment would produce NaN or Infinity"),
        ("abc", "1", "ERR value is not a valid float"),
        ("1", "abc", "ERR value is not a valid float"),
        (" 1", "1", "ERR value is not a valid float"),
        ("1", "nan", "ERR value is not a valid float"),
        ("1", "", "ERR value is not a valid float"),
        ("1", "1e5000", "ERR value is not a valid float"),
        ("1.18973149535723176502e+4932", "0", "LONG:4933:118973149535723176502126385303"),
        ("-1e-4950", "0", "0"),
        ("1e-4940", "0", "0"),
        ("5", "-inf", "ERR increment would produce NaN or Infinity"),
        ("inf", "0", "ERR increment would produce NaN or Infinity"),
        ("1", "+inf", "ERR increment would produce NaN or Infinity"),
        ("0x1p-16445", "0", "0"),
        ("1.7976931348623157e308", "1.7976931348623157e308", "359538626972463139991842093548208868096772893888658356970628841530353257046248792709403737216774171128857586838851041378617416726902272110715794556052955234146997955372576789671236326588091188869859074894581254961338834769297758245552436667197907705664206565009503223382416235440319971852753604933726679072768"),
        ("2", "-2.0000000000000000001", "0"),
    ];

    #[test]
    fn incr_by_float_matches_redis() {
        for &(cur, incr, expected) in INCRBYFLOAT_CASES {
            let got = match incr_by_float(Some(cur.as_bytes()), incr.as_bytes()) {
                Ok(v) => String::from_utf8(v).unwrap(),
                Err(e) => format!("ERR {e}"),
            };
            if let Some(long) = expected.strip_prefix("LONG:") {
                let (len, prefix) = long.split_once(':').unwrap();
                assert_eq!(got.len(), len.parse::<usize>().unwrap(), "{cur} + {incr}");
                assert!(got.starts_with(prefix), "{cur} + {incr}");
            } else {
                assert_eq!(got, expected, "{cur} + {incr}");
            }
        }
        assert_eq!(incr_by_float(None, b"2.5").unwrap(), b"2.5");
        assert_eq!(incr_by_float(None, b"x"), Err(IncrFloatError::NotAFloat));
        assert_eq!(
            incr_by_float(Some(b"1\x00"), b"1"),
            Err(IncrFloatError::NotAFloat)
        );
        assert_eq!(
            incr_by_float(Some(b"1"), b"1\x005"),
            Err(IncrFloatError::NotAFloat)
        );
    }

    #[test]
    fn hincr_by_float_steps() {
        assert_eq!(
            parse_hincr_increment(b"x").unwrap_err().message(),
            "value is not a valid float"
        );
        assert_eq!(
            parse_hincr_increment(b"inf").unwrap_err().message(),
            "value is NaN or Infinity"
        );
        assert_eq!(
            parse_hincr_increment(b"-inf").unwrap_err(),
            HIncrFloatError::IncrementNanOrInfinity
        );
        let inc = parse_hincr_increment(b"0.1").unwrap();
        assert_eq!(hincr_by_float(Some(b"10.50"), inc).unwrap(), b"10.6");
        assert_eq!(hincr_by_float(None, inc).unwrap(), b"0.1");
        assert_eq!(
            hincr_by_float(Some(b"x"), inc).unwrap_err().message(),
            "hash value is not a float"
        );
        assert_eq!(
            hincr_by_float(Some(b"inf"), inc).unwrap_err().message(),
            "increment would produce NaN or Infinity"
        );
        let big = parse_hincr_increment(b"1e4932").unwrap();
        assert_eq!(
            hincr_by_float(Some(b"1e4932"), big),
            Err(HIncrFloatError::NanOrInfinity)
        );
    }
}
