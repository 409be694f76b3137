//! Geospatial indexing as Redis does it: a point is stored as the score of a
//! sorted-set member, a 52-bit interleaved geohash (26 bits of longitude and
//! 26 of latitude) over longitudes [-180, 180] and latitudes
//! [-85.05112878, 85.05112878] (the Web Mercator limits).
//!
//! Everything here reproduces Redis's arithmetic operation for operation
//! (same constants, same evaluation order, same libm calls), because the
//! replies print decoded coordinates with 17 decimals and distances with 4:
//! any deviation would show. Searches follow Redis's plan: estimate a
//! geohash precision from the radius, take the center cell and its eight
//! neighbours, drop the neighbours the bounding box does not reach, and
//! query each cell's score range; the command layer then filters candidates
//! with [`GeoShape::contains`].

use crate::num::LongDouble;

/// Geohash precision Redis stores: 26 steps per axis, 52 bits.
pub const STEP_MAX: u8 = 26;
/// Smallest latitude that can be indexed.
pub const LAT_MIN: f64 = -85.05112878;
/// Largest latitude that can be indexed.
pub const LAT_MAX: f64 = 85.05112878;
/// Smallest longitude.
pub const LONG_MIN: f64 = -180.0;
/// Largest longitude.
pub const LONG_MAX: f64 = 180.0;
/// Earth's quadratic mean radius for WGS-84, as Redis uses it.
pub const EARTH_RADIUS_M: f64 = 6372797.560856;
/// Half the Web Mercator world width in meters (step estimation).
const MERCATOR_MAX: f64 = 20037726.37;
/// Degrees to radians, computed as C's `M_PI / 180.0`.
const D_R: f64 = std::f64::consts::PI / 180.0;

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// A geohash: `step` bits per axis, interleaved in the low `2 * step` bits
/// of `bits` (latitude in the even positions, longitude in the odd ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashBits {
    /// The interleaved bits.
    pub bits: u64,
    /// Bits per axis.
    pub step: u8,
}

impl HashBits {
    /// The "no cell" marker Redis uses for pruned neighbours.
    pub const ZERO: HashBits = HashBits { bits: 0, step: 0 };

    /// Whether this is [`HashBits::ZERO`] (Redis's `HASHISZERO`).
    pub fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The hash left-aligned to 52 bits: the sorted-set score of the cell's
    /// first point (Redis's `geohashAlign52Bits`).
    pub fn align52(&self) -> u64 {
        // Steps are 1..=26 wherever Redis aligns, so the shift is in range.
        self.bits << (52 - u32::from(self.step) * 2)
    }

    /// The half-open score range `[min, max)` of every point inside this
    /// cell (Redis's `scoresOfGeoHashBox`).
    pub fn score_range(&self) -> (u64, u64) {
        let next = HashBits {
            bits: self.bits.wrapping_add(1),
            step: self.step,
        };
        (self.align52(), next.align52())
    }
}

/// A closed interval of one coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Range {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
}

/// The rectangle a geohash cell covers.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Area {
    /// The cell.
    pub hash: HashBits,
    /// Its longitudes.
    pub longitude: Range,
    /// Its latitudes.
    pub latitude: Range,
}

/// Redis's coordinate ranges: longitude ±180, latitude ±85.05112878.
pub const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
/// See [`LONG_RANGE`].
pub const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};
/// The latitude range of standard geohash strings (GEOHASH re-encodes with
/// it).
pub const STANDARD_LAT_RANGE: Range = Range {
    min: -90.0,
    max: 90.0,
};

/// Spreads the 32 bits of `x` into the even bits and those of `y` into the
/// odd bits of the result.
fn interleave64(x: u32, y: u32) -> u64 {
    fn spread(v: u32) -> u64 {
        let mut v = u64::from(v);
        v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        (v | (v << 1)) & 0x5555_5555_5555_5555
    }
    spread(x) | (spread(y) << 1)
}

/// Inverse of [`interleave64`]: the even bits in the low 32 bits of the
/// result, the odd bits in the high 32.
fn deinterleave64(v: u64) -> u64 {
    fn squash(v: u64) -> u64 {
        let mut v = v & 0x5555_5555_5555_5555;
        v = (v | (v >> 1)) & 0x3333_3333_3333_3333;
        v = (v | (v >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
        (v | (v >> 16)) & 0x0000_0000_FFFF_FFFF
    }
    squash(v) | (squash(v >> 1) << 32)
}

/// C's conversion of a double to `uint32_t` for the values geohash encoding
/// produces (`0 ..= 2^step`): truncation toward zero.
fn offset_to_u32(v: f64) -> u32 {
    v as u32
}

/// Encodes a point at `step` bits per axis within the given ranges (Redis's
/// `geohashEncode`). `None` when the point is outside the indexable area or
/// the ranges, or `step` is not in `1..=32`.
pub fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<HashBits> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let long_offset = (longitude - long_range.min) / (long_range.max - long_range.min) * scale;
    Some(HashBits {
        bits: interleave64(offset_to_u32(lat_offset), offset_to_u32(long_offset)),
        step,
    })
}

/// [`encode`] with Redis's ranges.
pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<HashBits> {
    encode(LONG_RANGE, LAT_RANGE, longitude, latitude, step)
}

/// The 52-bit score GEOADD stores for a point, or `None` outside the
/// indexable area.
pub fn encode_score(longitude: f64, latitude: f64) -> Option<u64> {
    encode_wgs84(longitude, latitude, STEP_MAX).map(|h| h.align52())
}

/// The rectangle covered by a cell (Redis's `geohashDecode`); `None` for
/// [`HashBits::ZERO`].
pub fn decode(long_range: Range, lat_range: Range, hash: HashBits) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << hash.step) as f64;
    // `+ 1` wraps like C's uint32_t arithmetic (only reachable for scores
    // that GEOADD did not produce).
    Some(Area {
        hash,
        latitude: Range {
            min: lat_range.min + (f64::from(ilato) / div) * lat_scale,
            max: lat_range.min + (f64::from(ilato.wrapping_add(1)) / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (f64::from(ilono) / div) * long_scale,
            max: long_range.min + (f64::from(ilono.wrapping_add(1)) / div) * long_scale,
        },
    })
}

/// The center of a cell, clamped to the indexable area, as
/// `(longitude, latitude)` (Redis's `geohashDecodeAreaToLongLat`).
pub fn area_center(area: &Area) -> (f64, f64) {
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// C's `(uint64_t)double` as GCC compiles it for x86-64 (values of 2^63
/// and above go through a subtraction; out-of-range conversions give the
/// "integer indefinite" value), so arbitrary scores set with ZADD decode to
/// the same position as in Redis.
fn c_double_to_u64(v: f64) -> u64 {
    fn cvttsd2si(v: f64) -> i64 {
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if v.is_nan() || !(-LIMIT..LIMIT).contains(&v) {
            i64::MIN
        } else {
            v as i64
        }
    }
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if v >= TWO63 {
        (cvttsd2si(v - TWO63) as u64) ^ (1 << 63)
    } else {
        cvttsd2si(v) as u64
    }
}

/// Decodes a sorted-set score to `(longitude, latitude)` as GEOPOS and the
/// searches do (Redis's `decodeGeohash`): the score is read as a 26-step
/// geohash and the cell center returned.
pub fn decode_score(score: f64) -> (f64, f64) {
    let hash = HashBits {
        bits: c_double_to_u64(score),
        step: STEP_MAX,
    };
    // A step-26 hash is never ZERO, so decoding cannot fail.
    decode(LONG_RANGE, LAT_RANGE, hash)
        .map(|a| area_center(&a))
        .unwrap_or((0.0, 0.0))
}

/// The 11-character standard geohash string of a score (GEOHASH): the
/// decoded position re-encoded over latitudes ±90, in base32, the last
/// character always `0` (Redis keeps 52 bits only).
pub fn geohash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score);
    let bits = encode(LONG_RANGE, STANDARD_LAT_RANGE, lon, lat, STEP_MAX)
        .map(|h| h.bits)
        .unwrap_or(0);
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().enumerate().take(10) {
        let idx = (bits >> (52 - (i + 1) * 5)) & 0x1f;
        *c = ALPHABET[idx as usize];
    }
    out
}

/// The eight cells around a cell.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Neighbors {
    /// North.
    pub north: HashBits,
    /// East.
    pub east: HashBits,
    /// West.
    pub west: HashBits,
    /// South.
    pub south: HashBits,
    /// North-east.
    pub north_east: HashBits,
    /// South-east.
    pub south_east: HashBits,
    /// North-west.
    pub north_west: HashBits,
    /// South-west.
    pub south_west: HashBits,
}

/// Moves a cell one step east (`d > 0`) or west (`d < 0`) along the
/// longitude bits, wrapping around.
fn move_x(hash: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let mut x = hash.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> shift;
    if d > 0 {
        x = x.wrapping_add(zz.wrapping_add(1));
    } else {
        x |= zz;
        x = x.wrapping_sub(zz.wrapping_add(1));
    }
    x &= 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    hash.bits = x | y;
}

/// Moves a cell one step north (`d > 0`) or south (`d < 0`) along the
/// latitude bits, wrapping around.
fn move_y(hash: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let x = hash.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    if d > 0 {
        y = y.wrapping_add(zz.wrapping_add(1));
    } else {
        y |= zz;
        y = y.wrapping_sub(zz.wrapping_add(1));
    }
    y &= 0x5555_5555_5555_5555u64 >> shift;
    hash.bits = x | y;
}

/// The eight neighbours of a cell (Redis's `geohashNeighbors`). `hash.step`
/// must be in `1..=32`.
pub fn neighbors(hash: HashBits) -> Neighbors {
    let at = |dx: i8, dy: i8| {
        let mut h = hash;
        move_x(&mut h, dx);
        move_y(&mut h, dy);
        h
    };
    Neighbors {
        east: at(1, 0),
        west: at(-1, 0),
        south: at(0, -1),
        north: at(0, 1),
        north_west: at(-1, 1),
        south_west: at(-1, -1),
        north_east: at(1, 1),
        south_east: at(1, -1),
    }
}

/// The geohash precision Redis searches with for a radius around a latitude
/// (Redis's `geohashEstimateStepsByRadius`): the largest cell still at
/// least as big as the radius, coarser near the poles.
pub fn estimate_steps_by_radius(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    // Terminates: a positive radius doubles past the bound within ~1100
    // iterations even when subnormal (NaN and infinity fail the test).
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// Haversine distance in meters between two points given in degrees
/// (Redis's `geohashGetDistance`).
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    // Same longitude: only the latitude difference matters (Redis takes
    // this shortcut too, and it changes the last bits of the result).
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// Distance in meters along a meridian (Redis's `geohashGetLatDistance`).
pub fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_M * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// The kind of search area.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShapeKind {
    /// BYRADIUS: a radius in the shape's unit.
    Circle {
        /// Radius (unit).
        radius: f64,
    },
    /// BYBOX: an axis-aligned rectangle in the shape's unit.
    Box {
        /// East-west extent (unit).
        width: f64,
        /// North-south extent (unit).
        height: f64,
    },
}

/// A search area: a center, a shape measured in some unit, and that unit's
/// size in meters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoShape {
    /// Center longitude.
    pub longitude: f64,
    /// Center latitude.
    pub latitude: f64,
    /// Meters per unit (1, 1000, 0.3048 or 1609.34).
    pub conversion: f64,
    /// Circle or box.
    pub kind: ShapeKind,
}

/// Meters per unit for GEODIST / search units (Redis's
/// `extractUnitOrReply`): `m`, `km`, `ft`, `mi`, case-insensitive, compared
/// as C strings (the argument ends at its first NUL).
pub fn parse_unit(unit: &[u8]) -> Option<f64> {
    let u = unit.split(|&b| b == 0).next().unwrap_or(unit);
    if u.eq_ignore_ascii_case(b"m") {
        Some(1.0)
    } else if u.eq_ignore_ascii_case(b"km") {
        Some(1000.0)
    } else if u.eq_ignore_ascii_case(b"ft") {
        Some(0.3048)
    } else if u.eq_ignore_ascii_case(b"mi") {
        Some(1609.34)
    } else {
        None
    }
}

/// The cells a search visits, in Redis's order, each as a half-open score
/// range: the center cell, then N, S, E, W, NE, NW, SE, SW, with pruned
/// neighbours left out and a neighbour identical to the previously visited
/// one skipped (huge radii make neighbours coincide).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPlan {
    /// Precision of the cells.
    pub step: u8,
    /// The center cell.
    pub center: HashBits,
    /// Score ranges `[min, max)` to scan, in order.
    pub ranges: Vec<(u64, u64)>,
}

impl GeoShape {
    /// The bounding box `[min_lon, min_lat, max_lon, max_lat]` of the area
    /// (Redis's `geohashBoundingBox`).
    pub fn bounding_box(&self) -> [f64; 4] {
        let (half_h, half_w) = match self.kind {
            ShapeKind::Circle { radius } => (radius, radius),
            ShapeKind::Box { width, height } => (height / 2.0, width / 2.0),
        };
        let height = self.conversion * half_h;
        let width = self.conversion * half_w;
        let lat = self.latitude;
        let lon = self.longitude;
        let lat_delta = rad_deg(height / EARTH_RADIUS_M);
        let long_delta_top = rad_deg(width / EARTH_RADIUS_M / deg_rad(lat + lat_delta).cos());
        let long_delta_bottom = rad_deg(width / EARTH_RADIUS_M / deg_rad(lat - lat_delta).cos());
        // The box is widest on the side nearer the equator.
        let southern = lat < 0.0;
        let delta = if southern {
            long_delta_bottom
        } else {
            long_delta_top
        };
        [lon - delta, lat - lat_delta, lon + delta, lat + lat_delta]
    }

    /// The radius used to pick the precision: the circle's radius, or the
    /// half-diagonal of the box, in meters.
    fn radius_meters(&self) -> f64 {
        let r = match self.kind {
            ShapeKind::Circle { radius } => radius,
            ShapeKind::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        };
        r * self.conversion
    }

    /// The cells to scan (Redis's `geohashCalculateAreasByShapeWGS84` and
    /// the visiting order of `membersOfAllNeighbors`).
    pub fn plan(&self) -> SearchPlan {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounding_box();
        let lon = self.longitude;
        let lat = self.latitude;
        let mut steps = estimate_steps_by_radius(self.radius_meters(), lat);
        let cell = |steps: u8| {
            let hash = encode_wgs84(lon, lat, steps).unwrap_or(HashBits {
                bits: 0,
                step: steps,
            });
            let area = decode(LONG_RANGE, LAT_RANGE, hash).unwrap_or_default();
            (hash, neighbors(hash), area)
        };
        let (mut hash, mut nb, mut area) = cell(steps);

        // When the area reaches past a neighbour, the cells are too small
        // to cover it: go one step coarser.
        let decoded = |h: HashBits| decode(LONG_RANGE, LAT_RANGE, h).unwrap_or_default();
        let decrease = decoded(nb.north).latitude.max < max_lat
            || decoded(nb.south).latitude.min > min_lat
            || decoded(nb.east).longitude.max < max_lon
            || decoded(nb.west).longitude.min > min_lon;
        if steps > 1 && decrease {
            steps -= 1;
            (hash, nb, area) = cell(steps);
        }

        // Drop the neighbours the bounding box does not reach.
        if steps >= 2 {
            if area.latitude.min < min_lat {
                nb.south = HashBits::ZERO;
                nb.south_west = HashBits::ZERO;
                nb.south_east = HashBits::ZERO;
            }
            if area.latitude.max > max_lat {
                nb.north = HashBits::ZERO;
                nb.north_east = HashBits::ZERO;
                nb.north_west = HashBits::ZERO;
            }
            if area.longitude.min < min_lon {
                nb.west = HashBits::ZERO;
                nb.south_west = HashBits::ZERO;
                nb.north_west = HashBits::ZERO;
            }
            if area.longitude.max > max_lon {
                nb.east = HashBits::ZERO;
                nb.south_east = HashBits::ZERO;
                nb.north_east = HashBits::ZERO;
            }
        }

        let cells = [
            hash,
            nb.north,
            nb.south,
            nb.east,
            nb.west,
            nb.north_east,
            nb.north_west,
            nb.south_east,
            nb.south_west,
        ];
        let mut ranges = Vec::with_capacity(9);
        // Index of the last visited cell; 0 (the center) disables the
        // duplicate check, exactly as in Redis.
        let mut last = 0usize;
        for (i, c) in cells.iter().enumerate() {
            if c.is_zero() {
                continue;
            }
            if last != 0 && *c == cells[last] {
                continue;
            }
            ranges.push(c.score_range());
            last = i;
        }
        SearchPlan {
            step: steps,
            center: hash,
            ranges,
        }
    }

    /// Whether the point stored with `score` lies in the area; if so, its
    /// distance from the center in meters and its decoded
    /// `(longitude, latitude)` (Redis's `geoWithinShape`).
    pub fn contains(&self, score: f64) -> Option<(f64, f64, f64)> {
        let (plon, plat) = decode_score(score);
        let dist = match self.kind {
            ShapeKind::Circle { radius } => {
                let d = distance(self.longitude, self.latitude, plon, plat);
                if d > radius * self.conversion {
                    return None;
                }
                d
            }
            ShapeKind::Box { width, height } => {
                let width_m = width * self.conversion;
                let height_m = height * self.conversion;
                if lat_distance(plat, self.latitude) > height_m / 2.0 {
                    return None;
                }
                if distance(plon, plat, self.longitude, plat) > width_m / 2.0 {
                    return None;
                }
                distance(self.longitude, self.latitude, plon, plat)
            }
        };
        Some((dist, plon, plat))
    }
}

/// A decoded coordinate as GEOPOS and WITHCOORD print it (Redis's
/// `addReplyHumanLongDouble`: `%.17Lf` of the value with trailing zeros
/// removed, e.g. `13.36138933897018433`).
pub fn format_coord(v: f64) -> Vec<u8> {
    LongDouble::from_f64(v).to_human_bytes()
}

/// A distance as GEODIST and WITHDIST print it: fixed point with 4
/// decimals (Redis 7.2's `fixedpoint_d2string`).
pub fn format_distance(meters_in_unit: f64) -> String {
    crate::num::format_fixed_point(meters_in_unit, 4).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values below were obtained from redis-server 7.0.15.

    /// `(lon, lat, ZSCORE, GEOPOS lon, GEOPOS lat, GEOHASH, GEODIST km to
    /// the next row)` for points added with GEOADD to redis-server 7.0.15.
    const REDIS_POINTS: &[(f64, f64, u64, &str, &str, &str, &str)] = &[
        (
            -63.420205,
            -59.390556,
            670489891157573,
            "-63.42020720243453979",
            "-59.39055594648431224",
            "4t6yhu6bfj0",
            "4591.8979",
        ),
        (
            54.33641,
            -72.728588,
            2413206915811137,
            "54.33640748262405396",
            "-72.72858820067659735",
            "j5ndk2nt600",
            "6099.1231",
        ),
        (
            12.917522,
            -22.846315,
            2565386645889365,
            "12.91752129793167114",
            "-22.84631502056135943",
            "k7cnjbyq840",
            "17470.8408",
        ),
        (
            -159.120387,
            1.264818,
            1137579691935506,
            "-159.12038952112197876",
            "1.26481698698608369",
            "82nz5nk0440",
            "1617.1431",
        ),
        (
            -166.501563,
            -11.286869,
            366653446779210,
            "-166.5015605092048645",
            "-11.28686872194447233",
            "2mcxg1m30r0",
            "6540.6878",
        ),
        (
            -154.852048,
            -69.619716,
            54403622050029,
            "-154.85204547643661499",
            "-69.61971721265112478",
            "0e9guq05vb0",
            "17055.7727",
        ),
        (
            -27.173092,
            55.597546,
            2140048239824085,
            "-27.1730920672416687",
            "55.59754597450515234",
            "g3usm9jpjj0",
            "15176.5024",
        ),
        (
            -135.431294,
            -47.077052,
            139332520505109,
            "-135.43129652738571167",
            "-47.07705291545452297",
            "0zxsnjvuq10",
            "16785.9131",
        ),
        (
            45.87596,
            76.155291,
            3888200601233053,
            "45.87595850229263306",
            "76.15529040959270901",
            "vj895ztuer0",
            "10497.5038",
        ),
        (
            27.757062,
            -17.574651,
            2640737810600474,
            "27.75706261396408081",
            "-17.57465011307023417",
            "ksgsp8sh4r0",
            "9223.3171",
        ),
        (
            171.451838,
            -77.126286,
            3004414679481742,
            "171.4518401026725769",
            "-77.12628632186996924",
            "pf3cjrx6v60",
            "5037.2537",
        ),
        (
            129.048645,
            -35.78746,
            3145609402393483,
            "129.04864758253097534",
            "-35.78746063562434188",
            "qceu2t46gm0",
            "13634.4085",
        ),
        (
            180.0,
            85.05112878,
            13510798882111488,
            "180",
            "85.0511287799999991",
            "bp05b5048p0",
            "18919.8446",
        ),
        (
            -180.0,
            -85.05112878,
            0,
            "-179.99999731779098511",
            "-85.05112751263942528",
            "00bh0hbj200",
            "10560.8119",
        ),
        (
            0.0,
            0.0,
            3377699720527872,
            "0.00000268220901489",
            "0.00000126736058093",
            "s0000000000",
            "0.0006",
        ),
        (
            -1e-06,
            1e-06,
            1876499844737706,
            "-0.00000268220901489",
            "0.00000126736058093",
            "ebpbpbpbpb0",
            "8545.5835",
        ),
    ];

    #[test]
    fn matches_redis_on_random_points() {
        for (i, &(lon, lat, score, plon, plat, hash, dist)) in REDIS_POINTS.iter().enumerate() {
            assert_eq!(encode_score(lon, lat), Some(score), "row {i}");
            let (dlon, dlat) = decode_score(score as f64);
            assert_eq!(format_coord(dlon), plon.as_bytes(), "row {i}");
            assert_eq!(format_coord(dlat), plat.as_bytes(), "row {i}");
            assert_eq!(&geohash_string(score as f64), hash.as_bytes(), "row {i}");
            let next = REDIS_POINTS[(i + 1) % REDIS_POINTS.len()].2;
            let (nlon, nlat) = decode_score(next as f64);
            assert_eq!(
                format_distance(distance(dlon, dlat, nlon, nlat) / 1000.0),
                dist,
                "row {i}"
            );
        }
    }

    #[test]
    fn interleave_roundtrip() {
        for &(x, y) in &[
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ff_ffff, 0x155_5555),
            (u32::MAX, 7),
        ] {
            let v = interleave64(x, y);
            let d = deinterleave64(v);
            assert_eq!(d as u32, x);
            assert_eq!((d >> 32) as u32, y);
        }
        assert_eq!(interleave64(1, 0), 1);
        assert_eq!(interleave64(0, 1), 2);
    }

    #[test]
    fn sicily_scores() {
        // ZSCORE Sicily Palermo / Catania after the redis.io GEOADD.
        assert_eq!(encode_score(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(encode_score(15.087269, 37.502669), Some(3479447370796909));
        assert_eq!(encode_score(200.0, 0.0), None);
        assert_eq!(encode_score(0.0, 85.06), None);
    }

    #[test]
    fn positions() {
        let (lon, lat) = decode_score(3479099956230698.0);
        assert_eq!(format_coord(lon), b"13.36138933897018433");
        assert_eq!(format_coord(lat), b"38.11555639549629859");
        let (lon, lat) = decode_score(3479447370796909.0);
        assert_eq!(format_coord(lon), b"15.08726745843887329");
        assert_eq!(format_coord(lat), b"37.50266842333162032");
    }

    #[test]
    fn distances() {
        let (lon1, lat1) = decode_score(3479099956230698.0);
        let (lon2, lat2) = decode_score(3479447370796909.0);
        let d = distance(lon1, lat1, lon2, lat2);
        assert_eq!(format_distance(d), "166274.1516");
        assert_eq!(format_distance(d / 1000.0), "166.2742");
        assert_eq!(format_distance(d / 1609.34), "103.3182");
    }

    #[test]
    fn hashes() {
        assert_eq!(&geohash_string(3479099956230698.0), b"sqc8b49rny0");
        assert_eq!(&geohash_string(3479447370796909.0), b"sqdtr74hyu0");
    }

    #[test]
    fn units() {
        assert_eq!(parse_unit(b"KM"), Some(1000.0));
        assert_eq!(parse_unit(b"mi"), Some(1609.34));
        assert_eq!(parse_unit(b"m\0x"), Some(1.0));
        assert_eq!(parse_unit(b"meters"), None);
    }

    #[test]
    fn steps() {
        assert_eq!(estimate_steps_by_radius(0.0, 0.0), 26);
        assert_eq!(estimate_steps_by_radius(f64::INFINITY, 0.0), 1);
        assert_eq!(estimate_steps_by_radius(1e-300, 0.0), 26);
        assert_eq!(estimate_steps_by_radius(100_000.0, 0.0), 7);
        assert_eq!(estimate_steps_by_radius(100_000.0, 70.0), 6);
        assert_eq!(estimate_steps_by_radius(100_000.0, -81.0), 5);
    }

    #[test]
    fn neighbours_wrap() {
        let h = encode_wgs84(0.0, 0.0, 2).unwrap();
        let n = neighbors(h);
        let a = decode(LONG_RANGE, LAT_RANGE, h).unwrap();
        let e = decode(LONG_RANGE, LAT_RANGE, n.east).unwrap();
        assert_eq!(e.longitude.min, a.longitude.max);
        let w = decode(LONG_RANGE, LAT_RANGE, n.west).unwrap();
        assert_eq!(w.longitude.max, a.longitude.min);
        let no = decode(LONG_RANGE, LAT_RANGE, n.north).unwrap();
        assert_eq!(no.latitude.min, a.latitude.max);
    }

    #[test]
    fn odd_scores_decode_without_panicking() {
        for s in [-1.0, 0.0, 1e300, -1e300, f64::INFINITY, 4503599627370496.0] {
            let (lon, lat) = decode_score(s);
            assert!((LONG_MIN..=LONG_MAX).contains(&lon));
            assert!((LAT_MIN..=LAT_MAX).contains(&lat));
            let _ = geohash_string(s);
        }
    }

    #[test]
    fn search_plan_covers_center() {
        let shape = GeoShape {
            longitude: 15.0,
            latitude: 37.0,
            conversion: 1000.0,
            kind: ShapeKind::Circle { radius: 200.0 },
        };
        let plan = shape.plan();
        let score = encode_score(15.0, 37.0).unwrap();
        assert!(plan
            .ranges
            .iter()
            .any(|&(lo, hi)| (lo..hi).contains(&score)));
        assert!(shape.contains(3479099956230698.0).is_some());
        let huge = GeoShape {
            kind: ShapeKind::Circle { radius: 1e9 },
            ..shape
        };
        assert!(!huge.plan().ranges.is_empty());
    }
}
