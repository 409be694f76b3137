//! Streams: entries keyed by 128-bit IDs, consumer groups and their
//! pending-entries lists.
//!
//! Entries live in packed nodes kept in a `BTreeMap` keyed by the node's
//! master ID (the ID of the first entry appended to it), as Redis keeps
//! listpacks in a radix tree. A node starts with its master field list;
//! each entry is stored as a flags byte, varint deltas of its ID against
//! the master ID, and its values (field names are omitted when they equal
//! the master fields). Deleted entries are only flagged, and a node is
//! dropped when its last live entry goes. Nodes are closed with Redis's
//! `stream-node-max-bytes` / `stream-node-max-entries` rules (bytes
//! measured as Redis's listpack would be), so approximate trimming removes
//! the same whole nodes Redis would.

use crate::hash::{get_varint, put_varint};
use std::collections::{BTreeMap, BTreeSet};

mod group;
#[cfg(test)]
mod tests;

pub use group::{Consumer, Group, PendingEntry};

/// A stream entry ID: milliseconds and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// `0-0`.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// Builds an ID.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// Whether this is `0-0`.
    pub fn is_zero(&self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// The next ID, or None after the largest.
    pub fn incr(&self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID, or None before `0-0`.
    pub fn decr(&self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    /// `ms-seq` as text.
    pub fn format(&self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }

    /// The 16-byte big-endian key (Redis's radix tree key).
    pub fn to_be(&self) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&self.ms.to_be_bytes());
        k[8..].copy_from_slice(&self.seq.to_be_bytes());
        k
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Node size limits (`stream-node-max-bytes`, `stream-node-max-entries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    /// Bytes (as a Redis listpack would measure them); 0 = unlimited.
    pub max_bytes: u64,
    /// Entries, live and deleted; 0 = unlimited.
    pub max_entries: u64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_bytes: 4096,
            max_entries: 100,
        }
    }
}

/// Listpack's largest size (Redis's `STREAM_LISTPACK_MAX_SIZE`).
const LISTPACK_MAX: u64 = 1 << 30;

const FLAG_DELETED: u8 = 1;
const FLAG_SAME: u8 = 2;

/// A packed node of entries.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    /// Master fields, then entries.
    buf: Vec<u8>,
    /// Offset of the first entry.
    data_start: u32,
    /// Entries, live and deleted.
    count: u32,
    /// Live entries.
    live: u32,
    /// Master field count.
    nfields: u32,
    /// Size the same content would have as a Redis listpack.
    lp_bytes: u32,
}

fn put_bytes(buf: &mut Vec<u8>, s: &[u8]) {
    put_varint(buf, s.len() as u64);
    buf.extend_from_slice(s);
}

fn get_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let n = get_varint(buf, pos) as usize;
    let s = &buf[*pos..*pos + n];
    *pos += n;
    s
}

/// Bytes a listpack element takes for an integer value.
fn lp_int_size(v: i64) -> u64 {
    let enc = if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
        3
    } else if (-(1 << 23)..(1 << 23)).contains(&v) {
        4
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
        5
    } else {
        9
    };
    enc + lp_backlen(enc)
}

fn lp_backlen(l: u64) -> u64 {
    if l < 128 {
        1
    } else if l < 16384 {
        2
    } else if l < 2_097_152 {
        3
    } else if l < 268_435_456 {
        4
    } else {
        5
    }
}

/// Bytes a listpack element takes for a string (stored as an integer when
/// it is the canonical text of one).
fn lp_str_size(s: &[u8]) -> u64 {
    if !s.is_empty() && s.len() <= 20 {
        if let Some(v) = crate::num::parse_i64(s) {
            let mut b = itoa_buf(v);
            if b.as_slice() == s {
                b.clear();
                return lp_int_size(v);
            }
        }
    }
    let l = s.len() as u64;
    let enc = if l < 64 {
        1 + l
    } else if l < 4096 {
        2 + l
    } else {
        5 + l
    };
    enc + lp_backlen(enc)
}

fn itoa_buf(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

impl Node {
    fn new(fields: &[&[u8]]) -> Node {
        let mut buf = Vec::new();
        let mut lp = 6 + 1 + lp_int_size(1) + lp_int_size(0) + lp_int_size(fields.len() as i64);
        for f in fields {
            put_bytes(&mut buf, f);
            lp += lp_str_size(f);
        }
        lp += lp_int_size(0);
        Node {
            data_start: buf.len() as u32,
            buf,
            count: 0,
            live: 0,
            nfields: fields.len() as u32,
            lp_bytes: lp.min(u32::MAX as u64) as u32,
        }
    }

    fn master_fields(&self) -> Vec<&[u8]> {
        let mut pos = 0;
        let mut out = Vec::with_capacity(self.nfields as usize);
        for _ in 0..self.nfields {
            out.push(get_bytes(&self.buf, &mut pos));
        }
        out
    }

    fn same_fields(&self, pairs: &[&[u8]]) -> bool {
        if pairs.len() / 2 != self.nfields as usize {
            return false;
        }
        let mut pos = 0;
        for i in 0..self.nfields as usize {
            if get_bytes(&self.buf, &mut pos) != pairs[i * 2] {
                return false;
            }
        }
        true
    }

    fn append(&mut self, master: StreamId, id: StreamId, pairs: &[&[u8]]) {
        let same = self.same_fields(pairs);
        let mut flags = 0u8;
        if same {
            flags |= FLAG_SAME;
        }
        self.buf.push(flags);
        let dms = id.ms - master.ms;
        put_varint(&mut self.buf, dms);
        let dseq = id.seq.wrapping_sub(master.seq);
        put_varint(&mut self.buf, if dms == 0 { dseq } else { id.seq });
        let nf = pairs.len() / 2;
        let mut lp = lp_int_size(flags as i64)
            + lp_int_size(dms as i64)
            + lp_int_size(dseq as i64)
            + lp_int_size(if same { 3 + nf } else { 4 + 2 * nf } as i64);
        if same {
            for v in pairs.iter().skip(1).step_by(2) {
                put_bytes(&mut self.buf, v);
                lp += lp_str_size(v);
            }
        } else {
            put_varint(&mut self.buf, nf as u64);
            lp += lp_int_size(nf as i64);
            for s in pairs {
                put_bytes(&mut self.buf, s);
                lp += lp_str_size(s);
            }
        }
        self.count += 1;
        self.live += 1;
        self.lp_bytes = (self.lp_bytes as u64 + lp).min(u32::MAX as u64) as u32;
    }

    /// Reads the flags and ID of the entry at `*pos`, advancing past them.
    fn head(&self, master: StreamId, pos: &mut usize) -> (u8, StreamId) {
        let buf = &self.buf[..];
        let flags = buf[*pos];
        *pos += 1;
        let dms = get_varint(buf, pos);
        let s = get_varint(buf, pos);
        let id = if dms == 0 {
            StreamId::new(master.ms, master.seq.wrapping_add(s))
        } else {
            StreamId::new(master.ms + dms, s)
        };
        (flags, id)
    }

    /// Decodes the entry at `pos`: (flags, id, fields/values, next pos).
    fn decode<'a>(
        &'a self,
        master: StreamId,
        mut pos: usize,
        out: &mut Vec<&'a [u8]>,
    ) -> (u8, StreamId, usize) {
        let buf = &self.buf[..];
        let (flags, id) = self.head(master, &mut pos);
        out.clear();
        if flags & FLAG_SAME != 0 {
            let mut fpos = 0;
            for _ in 0..self.nfields {
                out.push(get_bytes(buf, &mut fpos));
                out.push(get_bytes(buf, &mut pos));
            }
        } else {
            let nf = get_varint(buf, &mut pos);
            for _ in 0..nf * 2 {
                out.push(get_bytes(buf, &mut pos));
            }
        }
        (flags, id, pos)
    }

    /// Skips the entry at `pos`: (flags, id, next pos).
    fn skip(&self, master: StreamId, mut pos: usize) -> (u8, StreamId, usize) {
        let buf = &self.buf[..];
        let (flags, id) = self.head(master, &mut pos);
        let n = if flags & FLAG_SAME != 0 {
            self.nfields as u64
        } else {
            get_varint(buf, &mut pos) * 2
        };
        for _ in 0..n {
            let l = get_varint(buf, &mut pos) as usize;
            pos += l;
        }
        (flags, id, pos)
    }

    /// Offsets and IDs of all entries (deleted included).
    fn positions(&self, master: StreamId) -> Vec<(usize, u8, StreamId)> {
        let mut v = Vec::with_capacity(self.count as usize);
        let mut pos = self.data_start as usize;
        while pos < self.buf.len() {
            let (f, id, next) = self.skip(master, pos);
            v.push((pos, f, id));
            pos = next;
        }
        v
    }

    fn last_id(&self, master: StreamId) -> StreamId {
        let mut pos = self.data_start as usize;
        let mut last = master;
        while pos < self.buf.len() {
            let (_, id, next) = self.skip(master, pos);
            last = id;
            pos = next;
        }
        last
    }
}

/// One entry read from a stream: its ID and alternating fields and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The ID.
    pub id: StreamId,
    /// field, value, field, value, ...
    pub fields: Vec<&'a [u8]>,
}

/// How XADD / XTRIM trim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimStrategy {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Remove entries with IDs below this one.
    MinId(StreamId),
}

/// A trim request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trim {
    /// What to keep.
    pub strategy: TrimStrategy,
    /// `~`: only remove whole nodes.
    pub approx: bool,
    /// At most this many entries removed (0 = no limit); only with `~`.
    pub limit: u64,
}

/// A stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    len: u64,
    /// The last ID generated (or set by XSETID).
    pub last_id: StreamId,
    /// The first live entry's ID (0-0 when empty).
    pub first_id: StreamId,
    /// The largest ID removed by XDEL.
    pub max_deleted_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// Consumer groups by name.
    pub groups: BTreeMap<Box<[u8]>, Group>,
}

impl Stream {
    /// An empty stream.
    pub fn new() -> Stream {
        Stream::default()
    }

    /// The Redis encoding name (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    /// Approximate heap bytes used.
    pub fn heap_size(&self) -> usize {
        let nodes: usize = self
            .nodes
            .values()
            .map(|n| n.buf.capacity() + std::mem::size_of::<Node>() + 32)
            .sum();
        let groups: usize = self.groups.values().map(|g| g.heap_size()).sum();
        nodes + groups
    }

    /// Live entries.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether there are no live entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of nodes (Redis's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of radix tree nodes Redis would use to index the nodes
    /// (`radix-tree-nodes`).
    pub fn rax_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.to_be()).collect();
        if keys.is_empty() {
            return 1;
        }
        rax_count(&keys, 0)
    }

    /// Appends an entry with ID `id` (which must be greater than
    /// `last_id`) and field/value pairs `pairs`.
    pub fn append(&mut self, id: StreamId, pairs: &[&[u8]], limits: NodeLimits) {
        debug_assert!(id > self.last_id || (self.nodes.is_empty() && id >= self.last_id));
        let mut max_bytes = limits.max_bytes;
        if max_bytes == 0 || max_bytes > LISTPACK_MAX {
            max_bytes = LISTPACK_MAX;
        }
        let tot: u64 = pairs.iter().map(|s| s.len() as u64).sum();
        let need_new = match self.nodes.last_key_value() {
            None => true,
            Some((_, n)) => {
                n.lp_bytes as u64 + tot >= max_bytes
                    || (limits.max_entries > 0 && n.count as u64 >= limits.max_entries)
            }
        };
        if need_new {
            let fields: Vec<&[u8]> = pairs.iter().step_by(2).copied().collect();
            if let Some(n) = self.nodes.values_mut().next_back() {
                n.buf.shrink_to_fit();
            }
            self.nodes.insert(id, Node::new(&fields));
        }
        let (master, node) = self.nodes.iter_mut().next_back().expect("a node");
        node.append(*master, id, pairs);
        if self.len == 0 {
            self.first_id = id;
        }
        self.len += 1;
        self.last_id = id;
        self.entries_added += 1;
    }

    /// Entries with IDs in `start..=end`, forward or reversed, at most
    /// `count` (0 = all); `f` returns false to stop early.
    pub fn for_range<'a>(
        &'a self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
        mut f: impl FnMut(Entry<'a>) -> bool,
    ) {
        if start > end {
            return;
        }
        let mut seen = 0usize;
        let mut fields = Vec::new();
        // Hands the entry at `pos` to `f`; false once the walk must stop.
        let mut emit = |node: &'a Node, master: StreamId, pos: usize, id: StreamId| -> bool {
            node.decode(master, pos, &mut fields);
            if !f(Entry {
                id,
                fields: std::mem::take(&mut fields),
            }) {
                return false;
            }
            seen += 1;
            count == 0 || seen < count
        };
        if !rev {
            let first_key = self
                .nodes
                .range(..=start)
                .next_back()
                .map(|(k, _)| *k)
                .unwrap_or(StreamId::MIN);
            for (master, node) in self.nodes.range(first_key..=end) {
                let mut pos = node.data_start as usize;
                while pos < node.buf.len() {
                    let (flags, id, next) = node.skip(*master, pos);
                    if id > end {
                        return;
                    }
                    if flags & FLAG_DELETED == 0 && id >= start && !emit(node, *master, pos, id) {
                        return;
                    }
                    pos = next;
                }
            }
        } else {
            for (master, node) in self.nodes.range(..=end).rev() {
                let pos = node.positions(*master);
                for &(p, flags, id) in pos.iter().rev() {
                    if id < start {
                        return;
                    }
                    if flags & FLAG_DELETED != 0 || id > end {
                        continue;
                    }
                    if !emit(node, *master, p, id) {
                        return;
                    }
                }
                if *master < start {
                    return;
                }
            }
        }
    }

    /// Entries in `start..=end` collected into a vector.
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool, count: usize) -> Vec<Entry<'_>> {
        let mut v = Vec::new();
        self.for_range(start, end, rev, count, |e| {
            v.push(e);
            true
        });
        v
    }

    /// The live entry with ID `id`.
    pub fn get(&self, id: StreamId) -> Option<Entry<'_>> {
        self.range(id, id, false, 1).pop()
    }

    /// The first (or last) live entry's ID.
    pub fn edge_id(&self, first: bool) -> Option<StreamId> {
        let mut out = None;
        self.for_range(StreamId::MIN, StreamId::MAX, !first, 1, |e| {
            out = Some(e.id);
            false
        });
        out
    }

    /// The last entry (XINFO's `last-entry`, XREAD's `+`).
    pub fn last_entry(&self) -> Option<Entry<'_>> {
        self.range(StreamId::MIN, StreamId::MAX, true, 1).pop()
    }

    fn refresh_first(&mut self) {
        self.first_id = if self.len == 0 {
            StreamId::MIN
        } else {
            self.edge_id(true).unwrap_or(StreamId::MIN)
        };
    }

    /// Deletes the entry `id`; returns whether it existed. Updates
    /// `max_deleted_id` and `first_id` as XDEL does.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let mut pos = node.data_start as usize;
        let mut found = None;
        while pos < node.buf.len() {
            let (flags, eid, next) = node.skip(master, pos);
            if eid == id {
                if flags & FLAG_DELETED == 0 {
                    found = Some(pos);
                }
                break;
            }
            if eid > id {
                break;
            }
            pos = next;
        }
        let Some(p) = found else {
            return false;
        };
        node.buf[p] |= FLAG_DELETED;
        node.live -= 1;
        if node.live == 0 {
            self.nodes.remove(&master);
        }
        self.len -= 1;
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if self.len == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.refresh_first();
        }
        true
    }

    /// Trims as XADD / XTRIM do; returns the number of entries removed.
    pub fn trim(&mut self, t: Trim) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let TrimStrategy::MaxLen(m) = t.strategy {
                if self.len <= m {
                    break;
                }
            }
            let Some((&master, node)) = self.nodes.iter_mut().next() else {
                break;
            };
            let entries = node.live as u64;
            if t.limit > 0 && deleted + entries > t.limit {
                break;
            }
            let remove = match t.strategy {
                TrimStrategy::MaxLen(m) => self.len - entries >= m,
                TrimStrategy::MinId(min) => node.last_id(master) < min,
            };
            if remove {
                self.nodes.remove(&master);
                self.len -= entries;
                deleted += entries;
                continue;
            }
            if t.approx {
                break;
            }
            let mut pos = node.data_start as usize;
            let mut removed = 0u32;
            while pos < node.buf.len() {
                let (flags, id, next) = node.skip(master, pos);
                let stop = match t.strategy {
                    TrimStrategy::MaxLen(m) => self.len <= m,
                    TrimStrategy::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                if flags & FLAG_DELETED == 0 {
                    node.buf[pos] |= FLAG_DELETED;
                    removed += 1;
                    self.len -= 1;
                }
                pos = next;
            }
            node.live -= removed;
            deleted += removed as u64;
            if node.live == 0 {
                self.nodes.remove(&master);
            }
            break;
        }
        self.refresh_first();
        deleted
    }

    /// Sets the last ID and counters (XSETID); no checks.
    pub fn set_id(
        &mut self,
        last: StreamId,
        entries_added: Option<u64>,
        max_deleted: Option<StreamId>,
    ) {
        self.last_id = last;
        if let Some(n) = entries_added {
            self.entries_added = n;
        }
        if let Some(m) = max_deleted {
            self.max_deleted_id = m;
        }
    }

    /// Whether a deleted entry may lie in `start..=end` (Redis's
    /// `streamRangeHasTombstones`).
    pub fn range_has_tombstones(&self, start: Option<StreamId>, end: Option<StreamId>) -> bool {
        if self.len == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        let s = start.unwrap_or(StreamId::MIN);
        let e = end.unwrap_or(StreamId::MAX);
        s <= self.max_deleted_id && self.max_deleted_id <= e
    }

    /// The logical read counter of `id` (Redis's
    /// `streamEstimateDistanceFromFirstEverEntry`), or None when it
    /// cannot be known.
    pub fn estimate_distance(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.len == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        } else if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero()
            || (id < self.first_id && self.max_deleted_id < self.first_id)
        {
            if id < self.first_id {
                return Some(self.entries_added - self.len);
            } else if id == self.first_id {
                return Some(self.entries_added - self.len + 1);
            }
        }
        None
    }

    /// A group's lag (XINFO), or None when it cannot be computed.
    pub fn group_lag(&self, g: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read {
            if !self.range_has_tombstones(Some(g.last_id), None) {
                return Some(self.entries_added.saturating_sub(read));
            }
        }
        self.estimate_distance(g.last_id)
            .map(|r| self.entries_added.saturating_sub(r))
    }

    /// Updates a group's read counter and last ID after delivering `id`
    /// with `>` (Redis's `streamReplyWithRange` with a group).
    pub fn advance_group(&mut self, group: &[u8], id: StreamId) {
        let tomb = self.range_has_tombstones(Some(id), None);
        let est = if self.entries_added > 0 {
            Some(self.estimate_distance(id))
        } else {
            None
        };
        if let Some(g) = self.groups.get_mut(group) {
            if id > g.last_id {
                match g.entries_read {
                    Some(n) if !tomb => g.entries_read = Some(n + 1),
                    _ => {
                        if let Some(e) = est {
                            g.entries_read = e;
                        }
                    }
                }
                g.last_id = id;
            }
        }
    }

    /// IDs of all live entries (tests and debugging).
    pub fn ids(&self) -> Vec<StreamId> {
        self.range(StreamId::MIN, StreamId::MAX, false, 0)
            .into_iter()
            .map(|e| e.id)
            .collect()
    }

    /// Master IDs of the nodes (tests and debugging).
    pub fn node_ids(&self) -> Vec<StreamId> {
        self.nodes.keys().copied().collect()
    }

    /// The master fields of the node holding `id` (tests).
    pub fn node_fields(&self, id: StreamId) -> Vec<Vec<u8>> {
        self.nodes
            .range(..=id)
            .next_back()
            .map(|(_, n)| n.master_fields().into_iter().map(|f| f.to_vec()).collect())
            .unwrap_or_default()
    }
}

/// Redis radix tree node count for sorted 16-byte keys sharing `depth`
/// bytes of prefix: compressed chains of single-child positions are one
/// node, branch points and each of their children are nodes, and the
/// end of a key is a node.
fn rax_count(keys: &[[u8; 16]], depth: usize) -> usize {
    if depth == 16 {
        return 1;
    }
    let first = keys[0];
    let last = keys[keys.len() - 1];
    if first[depth] == last[depth] {
        let mut l = depth;
        while l < 16 && first[l] == last[l] {
            l += 1;
        }
        return 1 + rax_count(keys, l);
    }
    let mut total = 1;
    let mut i = 0;
    while i < keys.len() {
        let c = keys[i][depth];
        let mut j = i;
        while j < keys.len() && keys[j][depth] == c {
            j += 1;
        }
        total += rax_count(&keys[i..j], depth + 1);
        i = j;
    }
    total
}

/// Set of IDs (a consumer's pending entries).
pub type IdSet = BTreeSet<StreamId>;
