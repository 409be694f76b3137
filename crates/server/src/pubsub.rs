//! The Pub/Sub registry: who is subscribed to which channel, pattern and
//! shard channel, and message delivery.
//!
//! Channels (and shard channels) live in a fixed number of mutex-guarded
//! maps chosen by a hash of the channel name, so publishers on different
//! channels rarely contend. Patterns are few in practice and every PUBLISH
//! must try them all, so they sit in one read-mostly map with an atomic
//! count that lets PUBLISH skip the lock when there are none.
//!
//! Delivery appends the encoded message to each subscriber's pushed buffer
//! ([`ClientShared::push_bytes`] style), which wakes the subscriber's task.
//! A subscriber that does not read has its backlog bounded by
//! `client-output-buffer-limit pubsub`: over the hard limit (or over the
//! soft one for longer than the allowed seconds) it is killed and its
//! backlog dropped, as Redis does.

use crate::client::{Client, ClientShared};
use crate::server::Server;
use kvik_protocol::ReplyBuf;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Number of channel map shards (a power of two).
const SHARDS: usize = 64;

/// Which kind of subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE channels.
    Channel,
    /// PSUBSCRIBE patterns.
    Pattern,
    /// SSUBSCRIBE shard channels.
    Shard,
}

impl Kind {
    /// Index into [`ClientShared::pubsub_counts`].
    fn index(self) -> usize {
        match self {
            Kind::Channel => 0,
            Kind::Pattern => 1,
            Kind::Shard => 2,
        }
    }

    /// The reply tag of a (un)subscription confirmation.
    fn tag(self, subscribe: bool) -> &'static [u8] {
        match (self, subscribe) {
            (Kind::Channel, true) => b"subscribe",
            (Kind::Channel, false) => b"unsubscribe",
            (Kind::Pattern, true) => b"psubscribe",
            (Kind::Pattern, false) => b"punsubscribe",
            (Kind::Shard, true) => b"ssubscribe",
            (Kind::Shard, false) => b"sunsubscribe",
        }
    }
}

/// A subscriber as the registry holds it.
#[derive(Debug)]
pub struct Subscriber {
    /// The connection.
    pub shared: Arc<ClientShared>,
    /// Since when (ms) the backlog has been over the soft limit; 0: not.
    soft_since: AtomicI64,
}

/// A connection's own subscriptions (kept in [`Client::pubsub`]).
#[derive(Debug)]
pub struct Subs {
    me: Arc<Subscriber>,
    channels: HashSet<Vec<u8>>,
    patterns: HashSet<Vec<u8>>,
    shard: HashSet<Vec<u8>>,
}

impl Subs {
    fn set(&self, kind: Kind) -> &HashSet<Vec<u8>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }

    fn set_mut(&mut self, kind: Kind) -> &mut HashSet<Vec<u8>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }
}

type SubMap = HashMap<Vec<u8>, Vec<Arc<Subscriber>>>;

/// The server-wide registry.
pub struct PubSub {
    channels: Vec<Mutex<SubMap>>,
    shard_channels: Vec<Mutex<SubMap>>,
    patterns: RwLock<SubMap>,
    /// Number of distinct patterns (PUBLISH skips the lock when 0).
    npatterns: AtomicUsize,
    hasher: foldhash::fast::FixedState,
}

impl Default for PubSub {
    fn default() -> Self {
        Self::new()
    }
}

/// `client-output-buffer-limit pubsub` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputLimit {
    /// Hard limit in bytes (0: none).
    pub hard: u64,
    /// Soft limit in bytes (0: none).
    pub soft: u64,
    /// Seconds the soft limit may be exceeded.
    pub soft_secs: u64,
}

/// Parses the `pubsub` class out of a `client-output-buffer-limit` value
/// (`<class> <hard> <soft> <secs>` triplets).
pub fn parse_output_limit(value: &str) -> OutputLimit {
    let words: Vec<&str> = value.split_whitespace().collect();
    let mut limit = OutputLimit::default();
    for chunk in words.chunks(4) {
        if chunk.len() == 4 && chunk[0].eq_ignore_ascii_case("pubsub") {
            limit = OutputLimit {
                hard: crate::config::parse_memory(chunk[1]).unwrap_or(0),
                soft: crate::config::parse_memory(chunk[2]).unwrap_or(0),
                soft_secs: chunk[3].parse().unwrap_or(0),
            };
        }
    }
    limit
}

/// A message encoded for both protocol versions, each built on demand.
struct Encoded<'a> {
    parts: &'a [&'a [u8]],
    resp2: Option<Vec<u8>>,
    resp3: Option<Vec<u8>>,
}

impl<'a> Encoded<'a> {
    fn new(parts: &'a [&'a [u8]]) -> Self {
        Encoded {
            parts,
            resp2: None,
            resp3: None,
        }
    }

    fn get(&mut self, resp3: bool) -> &[u8] {
        let parts = self.parts;
        let slot = if resp3 {
            &mut self.resp3
        } else {
            &mut self.resp2
        };
        slot.get_or_insert_with(|| {
            let mut b = ReplyBuf::new();
            b.set_resp3(resp3);
            b.push(parts.len());
            for p in parts {
                b.bulk(p);
            }
            std::mem::take(b.raw_mut())
        })
    }
}

impl PubSub {
    /// An empty registry.
    pub fn new() -> Self {
        PubSub {
            channels: (0..SHARDS).map(|_| Mutex::new(SubMap::new())).collect(),
            shard_channels: (0..SHARDS).map(|_| Mutex::new(SubMap::new())).collect(),
            patterns: RwLock::new(SubMap::new()),
            npatterns: AtomicUsize::new(0),
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    fn slot(&self, name: &[u8]) -> usize {
        (self.hasher.hash_one(name) as usize) & (SHARDS - 1)
    }

    fn chan_map(&self, kind: Kind, name: &[u8]) -> &Mutex<SubMap> {
        let i = self.slot(name);
        match kind {
            Kind::Shard => &self.shard_channels[i],
            _ => &self.channels[i],
        }
    }

    fn add(&self, kind: Kind, name: &[u8], sub: &Arc<Subscriber>) {
        if kind == Kind::Pattern {
            let mut p = self.patterns.write();
            let e = p.entry(name.to_vec()).or_default();
            e.push(sub.clone());
            self.npatterns.store(p.len(), Ordering::Release);
        } else {
            self.chan_map(kind, name)
                .lock()
                .entry(name.to_vec())
                .or_default()
                .push(sub.clone());
        }
    }

    fn remove(&self, kind: Kind, name: &[u8], sub: &Arc<Subscriber>) {
        fn drop_from(map: &mut SubMap, name: &[u8], sub: &Arc<Subscriber>) {
            if let Some(v) = map.get_mut(name) {
                v.retain(|s| !Arc::ptr_eq(s, sub));
                if v.is_empty() {
                    map.remove(name);
                }
            }
        }
        if kind == Kind::Pattern {
            let mut p = self.patterns.write();
            drop_from(&mut p, name, sub);
            self.npatterns.store(p.len(), Ordering::Release);
        } else {
            drop_from(&mut self.chan_map(kind, name).lock(), name, sub);
        }
    }

    /// Number of active channels (or shard channels), for INFO stats
    /// `pubsub_channels` / `pubsubshard_channels`.
    pub fn num_channels(&self, shard: bool) -> usize {
        let maps = if shard {
            &self.shard_channels
        } else {
            &self.channels
        };
        maps.iter().map(|m| m.lock().len()).sum()
    }

    /// PUBSUB NUMPAT: distinct patterns.
    pub fn numpat(&self) -> usize {
        self.npatterns.load(Ordering::Acquire)
    }

    /// Subscribers of a channel (PUBSUB NUMSUB / SHARDNUMSUB).
    pub fn numsub(&self, shard: bool, name: &[u8]) -> usize {
        let kind = if shard { Kind::Shard } else { Kind::Channel };
        self.chan_map(kind, name)
            .lock()
            .get(name)
            .map_or(0, |v| v.len())
    }

    /// Active channels matching `pattern` (PUBSUB CHANNELS /
    /// SHARDCHANNELS).
    pub fn channels(&self, shard: bool, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let maps = if shard {
            &self.shard_channels
        } else {
            &self.channels
        };
        let mut out = Vec::new();
        for m in maps {
            for name in m.lock().keys() {
                if pattern.is_none_or(|p| kvik_core::glob::glob_match(p, name, false)) {
                    out.push(name.clone());
                }
            }
        }
        out
    }

    /// Delivers a message; returns the receiver count as Redis counts it.
    /// A message to the publishing connection itself goes straight into
    /// its reply buffer (before the PUBLISH reply, as in Redis).
    pub fn publish(
        &self,
        srv: &Server,
        me: &mut Client,
        out: &mut ReplyBuf,
        shard: bool,
        channel: &[u8],
        message: &[u8],
    ) -> usize {
        let id = me.id();
        self.publish_from(srv, Some((id, out)), shard, channel, message)
    }

    /// Delivers a message from the server itself (keyspace notifications):
    /// every subscriber, including the connection whose command caused it,
    /// gets it through its pushed buffer. Returns the receiver count.
    pub fn publish_server(&self, srv: &Server, channel: &[u8], message: &[u8]) -> usize {
        self.publish_from(srv, None, false, channel, message)
    }

    fn publish_from(
        &self,
        srv: &Server,
        mut me: Option<(u64, &mut ReplyBuf)>,
        shard: bool,
        channel: &[u8],
        message: &[u8],
    ) -> usize {
        // Parsed on first delivery to another connection only: most
        // PUBLISH calls then never touch the configuration lock.
        let limit = LazyLimit {
            srv,
            cell: std::cell::OnceCell::new(),
        };
        let now = crate::util::now_ms();
        let mut receivers = 0;
        let tag: &[u8] = if shard { b"smessage" } else { b"message" };
        let parts = [tag, channel, message];
        let mut enc = Encoded::new(&parts);
        let kind = if shard { Kind::Shard } else { Kind::Channel };
        // Clone the subscriber list so no registry lock is held while
        // appending to (possibly large) buffers.
        let subs: Vec<Arc<Subscriber>> = self
            .chan_map(kind, channel)
            .lock()
            .get(channel)
            .cloned()
            .unwrap_or_default();
        for s in &subs {
            receivers += 1;
            deliver(s, &mut me, &mut enc, &limit, now);
        }
        if !shard && self.npatterns.load(Ordering::Acquire) > 0 {
            let matched: Vec<(Vec<u8>, Vec<Arc<Subscriber>>)> = self
                .patterns
                .read()
                .iter()
                .filter(|(p, _)| kvik_core::glob::glob_match(p, channel, false))
                .map(|(p, v)| (p.clone(), v.clone()))
                .collect();
            for (pat, subs) in &matched {
                let parts = [b"pmessage".as_slice(), pat, channel, message];
                let mut enc = Encoded::new(&parts);
                for s in subs {
                    receivers += 1;
                    deliver(s, &mut me, &mut enc, &limit, now);
                }
            }
        }
        receivers
    }
}

/// The pubsub output limit, read from the configuration when first needed.
struct LazyLimit<'a> {
    srv: &'a Server,
    cell: std::cell::OnceCell<OutputLimit>,
}

impl LazyLimit<'_> {
    fn get(&self) -> OutputLimit {
        *self.cell.get_or_init(|| {
            parse_output_limit(self.srv.config.read().get("client-output-buffer-limit"))
        })
    }
}

/// Appends one message to a subscriber's backlog, enforcing the output
/// buffer limit.
fn deliver(
    s: &Subscriber,
    me: &mut Option<(u64, &mut ReplyBuf)>,
    enc: &mut Encoded<'_>,
    limit: &LazyLimit<'_>,
    now_ms: i64,
) {
    let c = &s.shared;
    if let Some((id, out)) = me {
        if c.id == *id {
            let bytes = enc.get(out.resp3());
            out.raw(bytes);
            return;
        }
    }
    if c.killed.load(Ordering::Relaxed) {
        return;
    }
    let bytes = enc.get(c.resp.load(Ordering::Relaxed) == 3);
    let len = push_backlog(c, bytes);
    let limit = limit.get();
    let mut over = limit.hard > 0 && len > limit.hard;
    if limit.soft > 0 && len > limit.soft {
        let since = s.soft_since.load(Ordering::Relaxed);
        if since == 0 {
            s.soft_since.store(now_ms, Ordering::Relaxed);
        } else if (now_ms - since) as u64 >= limit.soft_secs * 1000 {
            over = true;
        }
    } else {
        s.soft_since.store(0, Ordering::Relaxed);
    }
    close_or_wake(c, over);
}

/// Appends `bytes` to a client's pushed backlog, returning its new length.
pub(crate) fn push_backlog(c: &ClientShared, bytes: &[u8]) -> u64 {
    let len = {
        let mut p = c.pushed.lock();
        p.extend_from_slice(bytes);
        p.len() as u64
    };
    c.has_pushed.store(true, Ordering::Release);
    len
}

/// Closes a client whose backlog went `over` its output buffer limit, or
/// wakes it to send the backlog.
pub(crate) fn close_or_wake(c: &ClientShared, over: bool) {
    if over {
        tracing::warn!(
            "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
            c.id,
            c.addr
        );
        c.kill();
        // Free the backlog now: the connection will never send it.
        *c.pushed.lock() = Vec::new();
    } else {
        c.wake.notify_one();
    }
}

fn subs_of(client: &mut Client) -> &mut Subs {
    client.pubsub.get_or_insert_with(|| {
        Box::new(Subs {
            me: Arc::new(Subscriber {
                shared: client.shared.clone(),
                soft_since: AtomicI64::new(0),
            }),
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shard: HashSet::new(),
        })
    })
}

/// Total subscriptions of a client (the count in confirmations: channels
/// plus patterns for SUBSCRIBE/PSUBSCRIBE, shard channels for SSUBSCRIBE).
fn count(client: &Client, kind: Kind) -> usize {
    let Some(s) = client.pubsub.as_deref() else {
        return 0;
    };
    match kind {
        Kind::Shard => s.shard.len(),
        _ => s.channels.len() + s.patterns.len(),
    }
}

fn store_counts(client: &Client) {
    let s = client.pubsub.as_deref();
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        let n = s.map_or(0, |s| s.set(kind).len());
        client.shared.pubsub_counts[kind.index()].store(n, Ordering::Relaxed);
    }
}

fn confirm(out: &mut ReplyBuf, tag: &[u8], name: Option<&[u8]>, n: usize) {
    out.push(3);
    out.bulk(tag);
    match name {
        Some(n) => out.bulk(n),
        None => out.null(),
    }
    out.int(n as i64);
}

/// (P|S)SUBSCRIBE: one confirmation per name.
pub fn subscribe(
    srv: &Server,
    client: &mut Client,
    out: &mut ReplyBuf,
    kind: Kind,
    names: &[&[u8]],
) {
    for name in names {
        let subs = subs_of(client);
        if subs.set_mut(kind).insert(name.to_vec()) {
            let me = subs.me.clone();
            srv.pubsub.add(kind, name, &me);
        }
        let n = count(client, kind);
        confirm(out, kind.tag(true), Some(name), n);
    }
    store_counts(client);
}

/// (P|S)UNSUBSCRIBE: one confirmation per name, or per subscription when
/// no name is given (`<tag> nil 0` when there is none).
pub fn unsubscribe(
    srv: &Server,
    client: &mut Client,
    out: Option<&mut ReplyBuf>,
    kind: Kind,
    names: &[&[u8]],
) {
    let mut out = out;
    let all: Vec<Vec<u8>>;
    let list: Vec<&[u8]> = if names.is_empty() {
        all = client
            .pubsub
            .as_deref()
            .map(|s| s.set(kind).iter().cloned().collect())
            .unwrap_or_default();
        all.iter().map(|v| v.as_slice()).collect()
    } else {
        names.to_vec()
    };
    for name in &list {
        if let Some(subs) = client.pubsub.as_deref_mut() {
            if subs.set_mut(kind).remove(*name) {
                let me = subs.me.clone();
                srv.pubsub.remove(kind, name, &me);
            }
        }
        let n = count(client, kind);
        if let Some(o) = out.as_deref_mut() {
            confirm(o, kind.tag(false), Some(name), n);
        }
    }
    if list.is_empty() {
        if let Some(o) = out {
            confirm(o, kind.tag(false), None, count(client, kind));
        }
    }
    store_counts(client);
}

/// Drops every subscription of a client silently (RESET, disconnect).
pub fn cleanup(srv: &Server, client: &mut Client) {
    if client.pubsub.is_none() {
        return;
    }
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        unsubscribe(srv, client, None, kind, &[]);
    }
    client.pubsub = None;
    store_counts(client);
}

/// Whether the client has any subscription.
pub fn subscribed(shared: &ClientShared) -> bool {
    shared
        .pubsub_counts
        .iter()
        .any(|c| c.load(Ordering::Relaxed) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_limit_parsing() {
        let l = parse_output_limit("normal 0 0 0 slave 268435456 67108864 60 pubsub 32mb 8mb 60");
        assert_eq!(
            l,
            OutputLimit {
                hard: 32 << 20,
                soft: 8 << 20,
                soft_secs: 60
            }
        );
        assert_eq!(parse_output_limit("normal 0 0 0"), OutputLimit::default());
    }

    #[test]
    fn encoding_both_versions() {
        let parts: [&[u8]; 3] = [b"message", b"ch", b"hi"];
        let mut e = Encoded::new(&parts);
        assert_eq!(
            e.get(false),
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            e.get(true),
            b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
    }
}
