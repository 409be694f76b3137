//! GEO commands (Redis's `geo.c`) on top of sorted sets: a geo key is a
//! sorted set whose scores are 52-bit geohashes (see `kvik_core::geo`).
//! GEOADD, GEOPOS, GEODIST, GEOHASH, and the searches GEOSEARCH,
//! GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and their `_RO` variants,
//! all through one generic search as in Redis.
//!
//! Argument checks happen in Redis's order: the source key's type first,
//! then the options left to right (each one validated as it is met), then
//! the combinations, then a missing key answers empty.

use super::sort::{c_keyword, pqsort};
use crate::dispatch::{err, CommandTable, Ctx};
use kvik_core::entry::{Entry, NewValue, ValueRef};
use kvik_core::geo::{self, GeoShape, ShapeKind};
use kvik_core::object::Object;
use kvik_core::zset::{ScoreRange, ZSet};
use kvik_protocol::ReplyBuf;
use std::cmp::Ordering;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("geoadd", geoadd);
    t.add("geopos", geopos);
    t.add("geodist", geodist);
    t.add("geohash", geohash);
    t.add("georadius", georadius);
    t.add("georadius_ro", georadius_ro);
    t.add("georadiusbymember", georadiusbymember);
    t.add("georadiusbymember_ro", georadiusbymember_ro);
    t.add("geosearch", geosearch);
    t.add("geosearchstore", geosearchstore);
}

const ERR_DECODE_MEMBER: &str = "ERR could not decode requested zset member";
const ERR_UNIT: &str = "ERR unsupported unit provided. please use M, KM, FT, MI";

// ---------------------------------------------------------------------------
// Argument helpers
// ---------------------------------------------------------------------------

/// Parses a double as Redis's `getDoubleFromObjectOrReply`, replying `msg`
/// (or the standard "not a valid float") on failure.
fn arg_f64(out: &mut ReplyBuf, arg: &[u8], msg: Option<&str>) -> Option<f64> {
    let v = kvik_core::num::parse_f64(arg);
    if v.is_none() {
        out.error(msg.unwrap_or(err::NOT_FLOAT));
    }
    v
}

/// Parses `longitude latitude` and checks the indexable range (Redis's
/// `extractLongLatOrReply`), replying the error on failure.
fn arg_lonlat(out: &mut ReplyBuf, lon: &[u8], lat: &[u8]) -> Option<(f64, f64)> {
    let x = arg_f64(out, lon, None)?;
    let y = arg_f64(out, lat, None)?;
    if !(geo::LONG_MIN..=geo::LONG_MAX).contains(&x) || !(geo::LAT_MIN..=geo::LAT_MAX).contains(&y)
    {
        out.error(&format!(
            "ERR invalid longitude,latitude pair {x:.6},{y:.6}"
        ));
        return None;
    }
    Some((x, y))
}

/// Parses a unit, replying Redis's error when unknown.
fn arg_unit(out: &mut ReplyBuf, unit: &[u8]) -> Option<f64> {
    let v = geo::parse_unit(unit);
    if v.is_none() {
        out.error(ERR_UNIT);
    }
    v
}

/// `radius unit` (Redis's `extractDistanceOrReply`): the radius in the unit
/// and the unit's size in meters.
fn arg_radius(out: &mut ReplyBuf, radius: &[u8], unit: &[u8]) -> Option<(f64, f64)> {
    let r = arg_f64(out, radius, Some("ERR need numeric radius"))?;
    if r < 0.0 {
        out.error("ERR radius cannot be negative");
        return None;
    }
    let conv = arg_unit(out, unit)?;
    Some((r, conv))
}

/// `width height unit` (Redis's `extractBoxOrReply`).
fn arg_box(out: &mut ReplyBuf, w: &[u8], h: &[u8], unit: &[u8]) -> Option<(f64, f64, f64)> {
    let width = arg_f64(out, w, Some("ERR need numeric width"))?;
    let height = arg_f64(out, h, Some("ERR need numeric height"))?;
    if height < 0.0 || width < 0.0 {
        out.error("ERR height or width cannot be negative");
        return None;
    }
    let conv = arg_unit(out, unit)?;
    Some((width, height, conv))
}

/// A decoded coordinate: a bulk string in RESP2, a double in RESP3, with
/// Redis's `%.17Lf`-based text.
fn reply_coord(out: &mut ReplyBuf, v: f64) {
    out.double_text(&geo::format_coord(v));
}

/// Looks up a key that must be a sorted set for reading: `Ok(None)` when
/// missing, `Err(())` (WRONGTYPE) for another type.
fn read_zset<'k>(ks: &'k mut crate::db::Keyspace<'_>, key: &[u8]) -> Result<Option<&'k ZSet>, ()> {
    match ks.lookup_read(key) {
        None => Ok(None),
        Some(e) => match e.value() {
            ValueRef::Obj(Object::ZSet(z)) => Ok(Some(z)),
            _ => Err(()),
        },
    }
}

// ---------------------------------------------------------------------------
// GEOADD / GEOPOS / GEODIST / GEOHASH
// ---------------------------------------------------------------------------

/// `GEOADD key [NX|XX] [CH] lon lat member [lon lat member ...]`: ZADD with
/// the encoded positions as scores.
fn geoadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let mut xx = false;
    let mut nx = false;
    let mut ch = false;
    let mut longidx = 2;
    while longidx < args.len() {
        let opt = args[longidx];
        if c_keyword(opt, "nx") {
            nx = true;
        } else if c_keyword(opt, "xx") {
            xx = true;
        } else if c_keyword(opt, "ch") {
            ch = true;
        } else {
            break;
        }
        longidx += 1;
    }
    if !(args.len() - longidx).is_multiple_of(3) || (xx && nx) {
        return ctx.error(err::SYNTAX);
    }
    let triples = &args[longidx..];
    if triples.is_empty() {
        // ZADD with no score/member pairs.
        return ctx.error(err::SYNTAX);
    }
    let mut pairs: Vec<(u64, &[u8])> = Vec::with_capacity(triples.len() / 3);
    for t in triples.chunks_exact(3) {
        let Some((lon, lat)) = arg_lonlat(ctx.out, t[0], t[1]) else {
            return;
        };
        // In range by the check above, so encoding succeeds.
        let score = geo::encode_score(lon, lat).unwrap_or(0);
        pairs.push((score, t[2]));
    }
    zadd_scores(ctx, args[1], &pairs, nx, xx, ch);
}

/// `GEOPOS key [member ...]`.
fn geopos(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let z = match read_zset(&mut ctx.ks, args[1]) {
        Ok(z) => z,
        Err(()) => return ctx.out.error(err::WRONGTYPE),
    };
    let out = &mut *ctx.out;
    out.array(args.len() - 2);
    for m in &args[2..] {
        match z.and_then(|z| zset_score(z, m)) {
            None => out.null_array(),
            Some(score) => {
                let (lon, lat) = geo::decode_score(score);
                out.array(2);
                reply_coord(out, lon);
                reply_coord(out, lat);
            }
        }
    }
}

/// `GEODIST key member1 member2 [unit]`.
fn geodist(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let mut to_meter = 1.0;
    if args.len() == 5 {
        match arg_unit(ctx.out, args[4]) {
            Some(u) => to_meter = u,
            None => return,
        }
    } else if args.len() > 5 {
        return ctx.error(err::SYNTAX);
    }
    let z = match read_zset(&mut ctx.ks, args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return ctx.out.null(),
        Err(()) => return ctx.out.error(err::WRONGTYPE),
    };
    let (Some(s1), Some(s2)) = (zset_score(z, args[2]), zset_score(z, args[3])) else {
        return ctx.out.null();
    };
    let (lon1, lat1) = geo::decode_score(s1);
    let (lon2, lat2) = geo::decode_score(s2);
    let d = geo::distance(lon1, lat1, lon2, lat2) / to_meter;
    ctx.out.bulk(geo::format_distance(d).as_bytes());
}

/// `GEOHASH key [member ...]`.
fn geohash(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let z = match read_zset(&mut ctx.ks, args[1]) {
        Ok(z) => z,
        Err(()) => return ctx.out.error(err::WRONGTYPE),
    };
    let out = &mut *ctx.out;
    out.array(args.len() - 2);
    for m in &args[2..] {
        match z.and_then(|z| zset_score(z, m)) {
            None => out.null(),
            Some(score) => out.bulk(&geo::geohash_string(score)),
        }
    }
}

// ---------------------------------------------------------------------------
// Searches
// ---------------------------------------------------------------------------

/// Which search command runs (Redis's `georadiusGeneric` flags).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// GEORADIUS / GEORADIUS_RO: center given as coordinates.
    RadiusCoords { store_ok: bool },
    /// GEORADIUSBYMEMBER / _RO: center given as a member.
    RadiusMember { store_ok: bool },
    /// GEOSEARCH.
    Search,
    /// GEOSEARCHSTORE.
    SearchStore,
}

fn georadius(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    search_generic(ctx, args, Variant::RadiusCoords { store_ok: true });
}

fn georadius_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    search_generic(ctx, args, Variant::RadiusCoords { store_ok: false });
}

fn georadiusbymember(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    search_generic(ctx, args, Variant::RadiusMember { store_ok: true });
}

fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    search_generic(ctx, args, Variant::RadiusMember { store_ok: false });
}

fn geosearch(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    search_generic(ctx, args, Variant::Search);
}

fn geosearchstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    search_generic(ctx, args, Variant::SearchStore);
}

/// Result ordering.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// One match.
struct Point {
    member: Vec<u8>,
    /// Distance from the center, in meters until the reply converts it.
    dist: f64,
    score: f64,
    lon: f64,
    lat: f64,
}

/// Everything the options of a search said.
struct Search<'a> {
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    sort: Sort,
    any: bool,
    count: i64,
    store: Option<&'a [u8]>,
    storedist: bool,
    /// Center, once known.
    center: Option<(f64, f64)>,
    /// Shape and conversion, once known.
    shape: Option<(ShapeKind, f64)>,
}

/// Parses a search's arguments in Redis's order, replying the error and
/// returning `None` on failure. `z` is the source (already type-checked).
fn parse_search<'a>(
    out: &mut ReplyBuf,
    args: &[&'a [u8]],
    variant: Variant,
    z: Option<&ZSet>,
) -> Option<Search<'a>> {
    let mut s = Search {
        withdist: false,
        withhash: false,
        withcoord: false,
        sort: Sort::None,
        any: false,
        count: 0,
        store: None,
        storedist: false,
        center: None,
        shape: None,
    };
    let base = match variant {
        Variant::RadiusCoords { .. } => {
            s.center = Some(arg_lonlat(out, args[2], args[3])?);
            let (r, conv) = arg_radius(out, args[4], args[5])?;
            s.shape = Some((ShapeKind::Circle { radius: r }, conv));
            6
        }
        Variant::RadiusMember { .. } => {
            // Without a source key the member and radius are not looked
            // at; parsing goes on only to choose the empty reply.
            if let Some(z) = z {
                match zset_score(z, args[2]) {
                    Some(score) => s.center = Some(geo::decode_score(score)),
                    None => {
                        out.error(ERR_DECODE_MEMBER);
                        return None;
                    }
                }
                let (r, conv) = arg_radius(out, args[3], args[4])?;
                s.shape = Some((ShapeKind::Circle { radius: r }, conv));
            }
            5
        }
        Variant::Search => 2,
        Variant::SearchStore => {
            s.store = Some(args[1]);
            3
        }
    };
    let is_search = matches!(variant, Variant::Search | Variant::SearchStore);
    let store_ok = matches!(
        variant,
        Variant::RadiusCoords { store_ok: true } | Variant::RadiusMember { store_ok: true }
    );
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let rest = &args[base..];
    let remaining = rest.len();
    let mut i = 0;
    while i < remaining {
        let arg = rest[i];
        if c_keyword(arg, "withdist") {
            s.withdist = true;
        } else if c_keyword(arg, "withhash") {
            s.withhash = true;
        } else if c_keyword(arg, "withcoord") {
            s.withcoord = true;
        } else if c_keyword(arg, "any") {
            s.any = true;
        } else if c_keyword(arg, "asc") {
            s.sort = Sort::Asc;
        } else if c_keyword(arg, "desc") {
            s.sort = Sort::Desc;
        } else if c_keyword(arg, "count") && i + 1 < remaining {
            let Some(n) = kvik_core::num::parse_i64(rest[i + 1]) else {
                out.error(err::NOT_INT);
                return None;
            };
            if n <= 0 {
                out.error("ERR COUNT must be > 0");
                return None;
            }
            s.count = n;
            i += 1;
        } else if (c_keyword(arg, "store") || c_keyword(arg, "storedist"))
            && i + 1 < remaining
            && store_ok
        {
            s.store = Some(rest[i + 1]);
            s.storedist = c_keyword(arg, "storedist");
            i += 1;
        } else if c_keyword(arg, "storedist") && variant == Variant::SearchStore {
            s.storedist = true;
        } else if c_keyword(arg, "frommember") && i + 1 < remaining && is_search && !fromloc {
            if let Some(z) = z {
                match zset_score(z, rest[i + 1]) {
                    Some(score) => s.center = Some(geo::decode_score(score)),
                    None => {
                        out.error(ERR_DECODE_MEMBER);
                        return None;
                    }
                }
            }
            frommember = true;
            i += 1;
        } else if c_keyword(arg, "fromlonlat") && i + 2 < remaining && is_search && !frommember {
            s.center = Some(arg_lonlat(out, rest[i + 1], rest[i + 2])?);
            fromloc = true;
            i += 2;
        } else if c_keyword(arg, "byradius") && i + 2 < remaining && is_search && !bybox {
            let (r, conv) = arg_radius(out, rest[i + 1], rest[i + 2])?;
            s.shape = Some((ShapeKind::Circle { radius: r }, conv));
            byradius = true;
            i += 2;
        } else if c_keyword(arg, "bybox") && i + 3 < remaining && is_search && !byradius {
            let (width, height, conv) = arg_box(out, rest[i + 1], rest[i + 2], rest[i + 3])?;
            s.shape = Some((ShapeKind::Box { width, height }, conv));
            bybox = true;
            i += 3;
        } else {
            out.error(err::SYNTAX);
            return None;
        }
        i += 1;
    }

    if s.store.is_some() && (s.withdist || s.withhash || s.withcoord) {
        out.error(if variant == Variant::SearchStore {
            "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        } else {
            "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        });
        return None;
    }
    if is_search && !(frommember || fromloc) {
        out.error_bytes(&named_error(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for ",
            args[0],
        ));
        return None;
    }
    if is_search && !(byradius || bybox) {
        out.error_bytes(&named_error(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for ",
            args[0],
        ));
        return None;
    }
    if s.any && s.count == 0 {
        out.error("ERR the ANY argument requires COUNT argument");
        return None;
    }
    Some(s)
}

/// An error message ending with the command name as the client typed it
/// (Redis prints `argv[0]` with `%s`, so it stops at a NUL).
fn named_error(prefix: &str, name: &[u8]) -> Vec<u8> {
    let mut m = prefix.as_bytes().to_vec();
    m.extend_from_slice(super::c_str(name));
    m
}

/// Collects the members inside the shape, visiting the cells of Redis's
/// search plan in order and stopping early at `limit` (ANY).
fn collect_points(z: &ZSet, shape: &GeoShape, limit: usize) -> Vec<Point> {
    let plan = shape.plan();
    let mut found: Vec<Point> = Vec::new();
    for &(min, max) in &plan.ranges {
        if limit != 0 && found.len() >= limit {
            break;
        }
        zset_scan_scores(z, min as f64, max as f64, &mut |member, score| {
            if let Some((dist, lon, lat)) = shape.contains(score) {
                found.push(Point {
                    member: member.to_vec(),
                    dist,
                    score,
                    lon,
                    lat,
                });
            }
            !(limit != 0 && found.len() >= limit)
        });
    }
    found
}

fn search_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], variant: Variant) {
    let src = match variant {
        Variant::SearchStore => args[2],
        _ => args[1],
    };
    // A STORE destination the key specs did not name (the specs only find
    // the first STORE keyword) may live in a shard that is not locked:
    // take every lock before touching any key.
    if matches!(
        variant,
        Variant::RadiusCoords { store_ok: true } | Variant::RadiusMember { store_ok: true }
    ) && args
        .iter()
        .skip(5)
        .any(|a| c_keyword(a, "store") || c_keyword(a, "storedist"))
    {
        ctx.ks.lock_all();
    }

    let (search, points) = {
        let z = match read_zset(&mut ctx.ks, src) {
            Ok(z) => z,
            Err(()) => return ctx.out.error(err::WRONGTYPE),
        };
        let Some(search) = parse_search(ctx.out, args, variant, z) else {
            return;
        };
        let Some(z) = z else {
            // Missing source: an empty result (the destination is deleted).
            match search.store {
                Some(dst) => {
                    if ctx.ks.remove(dst).is_some() {
                        ctx.ks.notify(crate::util::notify::GENERIC, "del", dst);
                    }
                    ctx.out.int(0);
                }
                None => ctx.out.array(0),
            }
            return;
        };
        let (Some((lon, lat)), Some((kind, conversion))) = (search.center, search.shape) else {
            // Unreachable: with a source key, parsing sets both.
            return ctx.out.array(0);
        };
        let shape = GeoShape {
            longitude: lon,
            latitude: lat,
            conversion,
            kind,
        };
        let limit = if search.any { search.count as usize } else { 0 };
        let points = collect_points(z, &shape, limit);
        (search, points)
    };
    let conversion = search.shape.map(|(_, c)| c).unwrap_or(1.0);
    reply_points(ctx, search, points, conversion);
}

/// Sorts, trims to COUNT, then replies or stores.
fn reply_points(ctx: &mut Ctx<'_>, s: Search<'_>, mut points: Vec<Point>, conversion: f64) {
    if points.is_empty() && s.store.is_none() {
        return ctx.out.array(0);
    }
    let mut sort = s.sort;
    // COUNT without an order means the nearest ones (except with ANY).
    if s.count != 0 && sort == Sort::None && !s.any {
        sort = Sort::Asc;
    }
    let total = points.len();
    let returned = if s.count == 0 || (total as i64) < s.count {
        total
    } else {
        s.count as usize
    };
    if sort != Sort::None {
        let desc = sort == Sort::Desc;
        let mut cmp = |a: &Point, b: &Point| {
            let c = a.dist.partial_cmp(&b.dist).unwrap_or(Ordering::Less);
            if desc {
                c.reverse()
            } else {
                c
            }
        };
        if returned == total {
            // glibc's qsort is a stable merge sort for these sizes.
            points.sort_by(&mut cmp);
        } else if returned > 0 {
            pqsort(&mut points, &mut cmp, 0, returned - 1);
        }
    }
    points.truncate(returned);

    match s.store {
        None => {
            let options =
                usize::from(s.withdist) + usize::from(s.withhash) + usize::from(s.withcoord);
            let out = &mut *ctx.out;
            out.array(returned);
            for p in &points {
                if options > 0 {
                    out.array(options + 1);
                }
                out.bulk(&p.member);
                if s.withdist {
                    out.bulk(geo::format_distance(p.dist / conversion).as_bytes());
                }
                if s.withhash {
                    out.int(p.score as i64);
                }
                if s.withcoord {
                    out.array(2);
                    reply_coord(out, p.lon);
                    reply_coord(out, p.lat);
                }
            }
        }
        Some(dst) => {
            if returned > 0 {
                let members: Vec<(Vec<u8>, f64)> = points
                    .into_iter()
                    .map(|p| {
                        let score = if s.storedist {
                            p.dist / conversion
                        } else {
                            p.score
                        };
                        (p.member, score)
                    })
                    .collect();
                let z = build_zset(ctx, members);
                ctx.ks
                    .insert(Entry::new(dst, NewValue::Obj(Object::ZSet(z)), None));
                let event = if ctx.cmd.spec.name.eq_ignore_ascii_case("geosearchstore") {
                    "geosearchstore"
                } else {
                    "georadiusstore"
                };
                ctx.ks.notify(crate::util::notify::ZSET, event, dst);
            } else if ctx.ks.remove(dst).is_some() {
                ctx.ks.notify(crate::util::notify::GENERIC, "del", dst);
            }
            ctx.out.int(returned as i64);
        }
    }
}

// ---------------------------------------------------------------------------
// Sorted-set access
// ---------------------------------------------------------------------------

/// A member's score.
fn zset_score(z: &ZSet, member: &[u8]) -> Option<f64> {
    z.score(member)
}

/// Visits the members with `min <= score < max` in score order until
/// `visit` returns false (Redis's `geoGetPointsInRange`).
fn zset_scan_scores(z: &ZSet, min: f64, max: f64, visit: &mut dyn FnMut(&[u8], f64) -> bool) {
    let range = ScoreRange {
        min,
        max,
        minex: false,
        maxex: true,
    };
    for (member, score) in z.range_by_score(&range) {
        if !visit(member, score) {
            break;
        }
    }
}

/// The sorted set GEORADIUS STORE / GEOSEARCHSTORE write, encoded as Redis
/// encodes it (built as a skiplist, then `zsetConvertToListpackIfNeeded`).
fn build_zset(ctx: &Ctx<'_>, mut members: Vec<(Vec<u8>, f64)>) -> ZSet {
    // A member is found at most once (the cells of a plan never overlap);
    // stay safe anyway, as the builder wants distinct members.
    members.sort_by(|a, b| a.0.cmp(&b.0));
    members.dedup_by(|a, b| a.0 == b.0);
    ZSet::from_unique_pairs(members, super::zsets::limits(ctx))
}

/// ZADD of `(score, member)` pairs with the NX/XX/CH flags, as Redis's
/// GEOADD does it: the argument vector is rewritten into a ZADD call and
/// ZADD's own handler runs (same checks, same encoding decisions, same
/// reply).
fn zadd_scores(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    pairs: &[(u64, &[u8])],
    nx: bool,
    xx: bool,
    ch: bool,
) {
    let scores: Vec<String> = pairs.iter().map(|(s, _)| s.to_string()).collect();
    let mut argv: Vec<&[u8]> = Vec::with_capacity(5 + 2 * pairs.len());
    argv.push(b"zadd");
    argv.push(key);
    if nx {
        argv.push(b"nx");
    }
    if xx {
        argv.push(b"xx");
    }
    if ch {
        argv.push(b"ch");
    }
    for (score, (_, member)) in scores.iter().zip(pairs) {
        argv.push(score.as_bytes());
        argv.push(member);
    }
    match ctx.srv.commands.get(b"zadd").and_then(|c| c.handler) {
        Some(zadd) => zadd(ctx, &argv),
        None => ctx.error("ERR unknown command 'zadd'"),
    }
}
