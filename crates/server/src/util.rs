//! Small shared helpers: clocks, number parsing for arguments, glob on
//! strings, keyspace-notification class flags.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const STRIPES: usize = 8;

#[repr(align(64))]
#[derive(Debug, Default)]
struct Stripe(AtomicU64);

/// A statistics counter updated on every command by every worker thread:
/// each thread adds to its own cache line, readers sum the stripes, so
/// counting never bounces a line between cores. Its methods mirror
/// `AtomicU64`'s (the ordering argument is accepted for symmetry; all
/// accesses are relaxed).
#[derive(Debug, Default)]
pub struct Counter([Stripe; STRIPES]);

impl Counter {
    /// Adds `n`; returns nothing meaningful (0), unlike `AtomicU64`.
    #[inline]
    pub fn fetch_add(&self, n: u64, _: Ordering) -> u64 {
        self.0[crate::alloc::slot() % STRIPES]
            .0
            .fetch_add(n, Ordering::Relaxed);
        0
    }

    /// The total.
    pub fn load(&self, _: Ordering) -> u64 {
        self.0
            .iter()
            .fold(0u64, |acc, s| acc.wrapping_add(s.0.load(Ordering::Relaxed)))
    }

    /// Sets the total (CONFIG RESETSTAT uses 0).
    pub fn store(&self, v: u64, _: Ordering) {
        for (i, s) in self.0.iter().enumerate() {
            s.0.store(if i == 0 { v } else { 0 }, Ordering::Relaxed);
        }
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix time in microseconds.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Parses an argument as Redis's `string2ll` does.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    kvik_core::num::parse_i64(s)
}

/// [`parse_i64`] on a `&str`.
pub fn parse_i64_str(s: &str) -> Option<i64> {
    parse_i64(s.as_bytes())
}

/// Glob match of UTF-8 strings (config names, client names).
pub fn glob_match_str(pattern: &str, s: &str) -> bool {
    kvik_core::glob::glob_match(pattern.as_bytes(), s.as_bytes(), true)
}

/// Keyspace notification classes, as Redis's `NOTIFY_*` bits.
pub mod notify {
    /// K
    pub const KEYSPACE: u64 = 1 << 0;
    /// E
    pub const KEYEVENT: u64 = 1 << 1;
    /// g
    pub const GENERIC: u64 = 1 << 2;
    /// $
    pub const STRING: u64 = 1 << 3;
    /// l
    pub const LIST: u64 = 1 << 4;
    /// s
    pub const SET: u64 = 1 << 5;
    /// h
    pub const HASH: u64 = 1 << 6;
    /// z
    pub const ZSET: u64 = 1 << 7;
    /// x
    pub const EXPIRED: u64 = 1 << 8;
    /// e
    pub const EVICTED: u64 = 1 << 9;
    /// t
    pub const STREAM: u64 = 1 << 10;
    /// m
    pub const KEY_MISS: u64 = 1 << 11;
    /// d
    pub const MODULE: u64 = 1 << 12;
    /// n
    pub const NEW: u64 = 1 << 13;
    /// A = g$lshzxetd
    pub const ALL: u64 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// Parses `notify-keyspace-events` class letters.
pub fn parse_notify_flags(s: &str) -> Option<u64> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => notify::ALL,
            'g' => notify::GENERIC,
            '$' => notify::STRING,
            'l' => notify::LIST,
            's' => notify::SET,
            'h' => notify::HASH,
            'z' => notify::ZSET,
            'x' => notify::EXPIRED,
            'e' => notify::EVICTED,
            'K' => notify::KEYSPACE,
            'E' => notify::KEYEVENT,
            't' => notify::STREAM,
            'm' => notify::KEY_MISS,
            'd' => notify::MODULE,
            'n' => notify::NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// Renders notify flags back to letters as Redis's `keyspaceEventsFlagsToString`.
pub fn notify_flags_string(f: u64) -> String {
    let mut s = String::new();
    if f & notify::ALL == notify::ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (notify::GENERIC, 'g'),
            (notify::STRING, '$'),
            (notify::LIST, 'l'),
            (notify::SET, 's'),
            (notify::HASH, 'h'),
            (notify::ZSET, 'z'),
            (notify::EXPIRED, 'x'),
            (notify::EVICTED, 'e'),
            (notify::STREAM, 't'),
            (notify::MODULE, 'd'),
            (notify::NEW, 'n'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [
        (notify::KEYSPACE, 'K'),
        (notify::KEYEVENT, 'E'),
        (notify::KEY_MISS, 'm'),
    ] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// ASCII-lowercases `name` into `buf` when it fits (command lookup without
/// allocation), else returns None.
pub fn lower_into<'a>(name: &[u8], buf: &'a mut [u8; 32]) -> Option<&'a str> {
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(&buf[..name.len()]).ok()
}

/// Resident set size of this process in bytes (Linux), 0 elsewhere.
pub fn rss_bytes() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
