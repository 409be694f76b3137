//! Model tests: every operation checked against a sorted Vec / map model.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// The model: member → score, ordered views computed on demand.
#[derive(Default)]
struct Model {
    map: BTreeMap<Vec<u8>, f64>,
    big: bool,
}

impl Model {
    fn sorted(&self) -> Vec<(Vec<u8>, f64)> {
        let mut v: Vec<(Vec<u8>, f64)> = self.map.iter().map(|(m, s)| (m.clone(), *s)).collect();
        v.sort_by(|a, b| cmp_pair(a.1, &a.0, b.1, &b.0));
        v
    }

    fn add(&mut self, m: &[u8], score: f64, f: AddFlags, limits: Limits) -> AddOutcome {
        if score.is_nan() {
            return AddOutcome::Nan;
        }
        match self.map.get(m).copied() {
            Some(cur) => {
                if f.nx {
                    return AddOutcome::Skipped;
                }
                let mut new = score;
                if f.incr {
                    new += cur;
                    if new.is_nan() {
                        return AddOutcome::Nan;
                    }
                }
                if (f.lt && new >= cur) || (f.gt && new <= cur) {
                    return AddOutcome::Skipped;
                }
                if new != cur {
                    let stored = if self.big { new } else { new + 0.0 };
                    self.map.insert(m.to_vec(), stored);
                    AddOutcome::Updated(new)
                } else {
                    AddOutcome::Unchanged(new)
                }
            }
            None if f.xx => AddOutcome::Skipped,
            None => {
                if self.map.len() + 1 > limits.max_entries || m.len() > limits.max_value {
                    self.big = true;
                }
                // The listpack stores -0 as 0.
                let stored = if self.big { score } else { score + 0.0 };
                self.map.insert(m.to_vec(), stored);
                AddOutcome::Added(score)
            }
        }
    }
}

fn same_outcome(a: AddOutcome, b: AddOutcome) -> bool {
    match (a, b) {
        (AddOutcome::Added(x), AddOutcome::Added(y))
        | (AddOutcome::Updated(x), AddOutcome::Updated(y))
        | (AddOutcome::Unchanged(x), AddOutcome::Unchanged(y)) => x.to_bits() == y.to_bits(),
        (a, b) => a == b,
    }
}

fn owned(v: Iter<'_>) -> Vec<(Vec<u8>, f64)> {
    v.map(|(m, s)| (m.to_vec(), s)).collect()
}

fn check_same(z: &ZSet, model: &Model) {
    z.check();
    let sorted = model.sorted();
    assert_eq!(z.len(), sorted.len());
    assert_eq!(
        z.encoding(),
        if model.big { "skiplist" } else { "listpack" }
    );
    let got = owned(z.iter());
    assert_eq!(got.len(), sorted.len());
    for (g, w) in got.iter().zip(&sorted) {
        assert_eq!(g.0, w.0);
        assert_eq!(g.1.to_bits(), w.1.to_bits());
    }
    for (i, (m, s)) in sorted.iter().enumerate() {
        assert_eq!(z.score(m).map(f64::to_bits), Some(s.to_bits()));
        let (r, rs) = z.rank(m).expect("rank");
        assert_eq!(r, i);
        assert_eq!(rs.to_bits(), s.to_bits());
        let (gm, gs) = z.get(i).expect("get");
        assert_eq!(gm, &m[..]);
        assert_eq!(gs.to_bits(), s.to_bits());
    }
    assert!(z.get(sorted.len()).is_none());
    assert!(z.score(b"never-a-member").is_none());
    assert!(z.rank(b"never-a-member").is_none());
}

fn score_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-5i32..6).prop_map(f64::from),
        Just(2.5),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        any::<f64>(),
    ]
}

fn member_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0u8..40).prop_map(|i| format!("m{i}").into_bytes()),
        (0u8..4).prop_map(|i| format!("long-member-{i}").into_bytes()),
        Just(Vec::new()),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Add(Vec<u8>, f64, u8),
    Remove(Vec<u8>),
    RemoveRange(usize, usize),
    Pop(bool),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (member_strategy(), score_strategy(), any::<u8>()).prop_map(|(m, s, f)| Op::Add(m, s, f)),
        2 => member_strategy().prop_map(Op::Remove),
        1 => (0usize..50, 0usize..8).prop_map(|(a, n)| Op::RemoveRange(a, a + n)),
        1 => any::<bool>().prop_map(Op::Pop),
    ]
}

fn flags_of(f: u8) -> AddFlags {
    // Only the combinations ZADD accepts.
    let mut fl = AddFlags {
        incr: f & 1 != 0,
        ..AddFlags::default()
    };
    match (f >> 1) % 6 {
        0 => {}
        1 => fl.nx = true,
        2 => fl.xx = true,
        3 => fl.gt = true,
        4 => fl.lt = true,
        _ => {
            fl.xx = true;
            fl.gt = true;
        }
    }
    fl
}

fn run_ops(ops: &[Op], limits: Limits) -> (ZSet, Model) {
    let mut z = ZSet::new();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Add(m, s, f) => {
                let fl = flags_of(*f);
                let a = z.add(m, *s, fl, limits);
                let b = model.add(m, *s, fl, limits);
                assert!(same_outcome(a, b), "{a:?} vs {b:?}");
            }
            Op::Remove(m) => {
                assert_eq!(z.remove(m), model.map.remove(m).is_some());
            }
            Op::RemoveRange(a, b) => {
                let sorted = model.sorted();
                let to = (*b).min(sorted.len());
                let n = to.saturating_sub(*a);
                for (m, _) in sorted.iter().take(to).skip(*a) {
                    model.map.remove(m);
                }
                assert_eq!(z.remove_range(*a, *b), n);
            }
            Op::Pop(max) => {
                let sorted = model.sorted();
                let want = if *max { sorted.last() } else { sorted.first() }.cloned();
                if let Some((m, _)) = &want {
                    model.map.remove(m);
                }
                let got = z.pop(*max);
                assert_eq!(
                    got.map(|(m, s)| (m, s.to_bits())),
                    want.map(|(m, s)| (m, s.to_bits()))
                );
            }
        }
        z.check();
    }
    (z, model)
}

fn check_ranges(z: &ZSet, model: &Model, ranges: &[(f64, f64, bool, bool)]) {
    let sorted = model.sorted();
    for &(a, b, minex, maxex) in ranges {
        let r = ScoreRange {
            min: a,
            max: b,
            minex,
            maxex,
        };
        let want: Vec<usize> = (0..sorted.len())
            .filter(|&i| r.gte_min(sorted[i].1) && r.lte_max(sorted[i].1))
            .collect();
        let (lo, hi) = z.score_range_ranks(&r);
        if want.is_empty() {
            assert_eq!(lo, hi, "{r:?}");
        } else {
            assert_eq!((lo, hi), (want[0], want[want.len() - 1] + 1), "{r:?}");
        }
        let via_iter: Vec<Vec<u8>> = z.range_by_score(&r).map(|(m, _)| m.to_vec()).collect();
        let want_m: Vec<Vec<u8>> = want.iter().map(|&i| sorted[i].0.clone()).collect();
        assert_eq!(via_iter, want_m);
    }
    // Rank windows, both directions.
    let n = sorted.len();
    for start in [0, 1, n / 2, n.saturating_sub(1), n, n + 3] {
        for count in [0, 1, 2, 7, 100, usize::MAX] {
            let fwd: Vec<Vec<u8>> = z
                .iter_range(start, count, false)
                .map(|(m, _)| m.to_vec())
                .collect();
            let want: Vec<Vec<u8>> = sorted
                .iter()
                .skip(start)
                .take(count)
                .map(|e| e.0.clone())
                .collect();
            assert_eq!(fwd, want, "fwd {start} {count}");
            let rev: Vec<Vec<u8>> = z
                .iter_range(start, count, true)
                .map(|(m, _)| m.to_vec())
                .collect();
            let want: Vec<Vec<u8>> = if start >= n {
                Vec::new()
            } else {
                sorted[..=start]
                    .iter()
                    .rev()
                    .take(count)
                    .map(|e| e.0.clone())
                    .collect()
            };
            assert_eq!(rev, want, "rev {start} {count}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn small_limits_match_model(ops in proptest::collection::vec(op_strategy(), 0..120),
                                ranges in proptest::collection::vec((score_strategy(), score_strategy(), any::<bool>(), any::<bool>()), 0..8)) {
        let limits = Limits { max_entries: 8, max_value: 6 };
        let (z, model) = run_ops(&ops, limits);
        check_same(&z, &model);
        let ranges: Vec<_> = ranges.into_iter().filter(|r| !r.0.is_nan() && !r.1.is_nan()).collect();
        check_ranges(&z, &model, &ranges);
        let clone = z.clone();
        prop_assert!(clone == z);
        check_same(&clone, &model);
    }

    #[test]
    fn default_limits_match_model(ops in proptest::collection::vec(op_strategy(), 0..300)) {
        let (z, model) = run_ops(&ops, Limits::DEFAULT);
        check_same(&z, &model);
    }

    #[test]
    fn tree_only_matches_model(ops in proptest::collection::vec(op_strategy(), 0..400),
                               ranges in proptest::collection::vec((score_strategy(), score_strategy(), any::<bool>(), any::<bool>()), 0..8)) {
        let limits = Limits { max_entries: 0, max_value: 0 };
        let (z, model) = run_ops(&ops, limits);
        check_same(&z, &model);
        let ranges: Vec<_> = ranges.into_iter().filter(|r| !r.0.is_nan() && !r.1.is_nan()).collect();
        check_ranges(&z, &model, &ranges);
    }

    #[test]
    fn lex_ranges_match_model(members in proptest::collection::btree_set(proptest::collection::vec(97u8..100, 0..4), 0..200),
                              bounds in proptest::collection::vec((0u8..4, proptest::collection::vec(97u8..100, 0..4), 0u8..4, proptest::collection::vec(97u8..100, 0..4)), 1..10),
                              big in any::<bool>()) {
        let limits = if big { Limits { max_entries: 0, max_value: 0 } } else { Limits { max_entries: 1000, max_value: 64 } };
        let mut z = ZSet::new();
        for m in &members {
            z.insert(m, 0.0, limits);
        }
        let sorted: Vec<&Vec<u8>> = members.iter().collect();
        for (k1, v1, k2, v2) in &bounds {
            fn mk(k: u8, v: &[u8]) -> LexBound<'_> {
                match k { 0 => LexBound::Min, 1 => LexBound::Max, 2 => LexBound::Incl(v), _ => LexBound::Excl(v) }
            }
            let r = LexRange { min: mk(*k1, v1), max: mk(*k2, v2) };
            let want: Vec<usize> = (0..sorted.len()).filter(|&i| r.gte_min(sorted[i]) && r.lte_max(sorted[i])).collect();
            let (lo, hi) = z.lex_range_ranks(&r);
            if want.is_empty() {
                prop_assert_eq!(lo, hi);
            } else {
                prop_assert_eq!((lo, hi), (want[0], want[want.len() - 1] + 1));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Stored results (ZRANGESTORE, ZUNIONSTORE...) and the conversion back
    /// to listpack pick the encoding from the final contents.
    #[test]
    fn stored_results_and_conversion_back(pairs in proptest::collection::btree_map(member_strategy(), score_strategy(), 0..40),
                                          max_entries in 0usize..30, max_value in 0usize..20) {
        let limits = Limits { max_entries, max_value };
        let pairs: Vec<(Vec<u8>, f64)> = pairs.into_iter().filter(|(_, s)| !s.is_nan()).collect();
        let fits = pairs.len() <= max_entries && pairs.iter().all(|(m, _)| m.len() <= max_value);
        let z = ZSet::from_unique_pairs(pairs.clone(), limits);
        prop_assert_eq!(z.encoding(), if fits { "listpack" } else { "skiplist" });
        let mut model = Model { big: !fits, ..Model::default() };
        for (m, s) in &pairs {
            model.map.insert(m.clone(), if fits { s + 0.0 } else { *s });
        }
        check_same(&z, &model);
        // A skiplist built for the same pairs converts back exactly when
        // they fit.
        let mut big = ZSet::with_hint(usize::MAX, 0, limits);
        for (m, s) in &pairs {
            big.insert(m, *s, Limits { max_entries: 0, max_value: 0 });
        }
        big.convert_to_listpack_if_needed(limits);
        prop_assert_eq!(big.encoding(), if fits { "listpack" } else { "skiplist" });
        check_same(&big, &model);
    }
}

#[test]
fn send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<ZSet>();
}

#[test]
fn big_tree_sequential_random_and_deletes() {
    let limits = Limits::DEFAULT;
    let mut z = ZSet::new();
    let mut model = Model::default();
    // Ascending, descending and pseudo-random insertion orders.
    let mut x: u64 = 12345;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..6000u32 {
        let m = format!("a{i}");
        z.insert(m.as_bytes(), f64::from(i), limits);
        model.add(m.as_bytes(), f64::from(i), AddFlags::default(), limits);
    }
    for i in 0..6000u32 {
        let m = format!("d{i}");
        z.insert(m.as_bytes(), -f64::from(i), limits);
        model.add(m.as_bytes(), -f64::from(i), AddFlags::default(), limits);
    }
    for _ in 0..8000 {
        let v = next();
        let m = format!("r{}", v % 5000);
        let s = (v % 97) as f64;
        z.insert(m.as_bytes(), s, limits);
        model.add(m.as_bytes(), s, AddFlags::default(), limits);
    }
    check_same(&z, &model);
    check_ranges(
        &z,
        &model,
        &[(0.0, 10.0, false, true), (-100.0, 5.0, true, false)],
    );
    // Delete most of it in several patterns.
    for i in (0..6000u32).step_by(2) {
        let m = format!("a{i}");
        assert!(z.remove(m.as_bytes()));
        model.map.remove(m.as_bytes());
    }
    assert_eq!(z.remove_range(100, 3100), 3000);
    let sorted = model.sorted();
    for (m, _) in &sorted[100..3100] {
        model.map.remove(m);
    }
    for _ in 0..500 {
        let (m, _) = z.pop(true).unwrap();
        model.map.remove(&m);
        let (m, _) = z.pop(false).unwrap();
        model.map.remove(&m);
    }
    check_same(&z, &model);
    let n = z.len();
    assert_eq!(z.remove_range(0, n), n);
    assert!(z.is_empty());
    z.check();
    assert_eq!(z.encoding(), "skiplist");
}

#[test]
fn conversions() {
    let limits = Limits::DEFAULT;
    assert_eq!(ZSet::with_hint(128, 64, limits).encoding(), "listpack");
    assert_eq!(ZSet::with_hint(129, 1, limits).encoding(), "skiplist");
    assert_eq!(ZSet::with_hint(1, 65, limits).encoding(), "skiplist");
    let mut z = ZSet::new();
    z.insert(b"a", 1.0, limits);
    z.maybe_convert(128, limits);
    assert_eq!(z.encoding(), "listpack");
    z.maybe_convert(129, limits);
    assert_eq!(z.encoding(), "skiplist");
    z.convert_to_listpack_if_needed(limits);
    assert_eq!(z.encoding(), "listpack");
    assert_eq!(z.score(b"a"), Some(1.0));
    let pairs: Vec<(Vec<u8>, f64)> = (0..129)
        .map(|i| (format!("m{i}").into_bytes(), 1.0))
        .collect();
    let z = ZSet::from_unique_pairs(pairs.clone(), limits);
    assert_eq!(z.encoding(), "skiplist");
    let z = ZSet::from_unique_pairs(pairs[..128].to_vec(), limits);
    assert_eq!(z.encoding(), "listpack");
    let z = ZSet::from_unique_pairs(vec![(vec![b'x'; 65], 1.0)], limits);
    assert_eq!(z.encoding(), "skiplist");
}

#[test]
fn parse_ranges() {
    let r = ScoreRange::parse(b"(1", b"+inf").unwrap();
    assert!(r.minex && !r.maxex && r.min == 1.0 && r.max == f64::INFINITY);
    assert_eq!(ScoreRange::parse(b"", b"(").unwrap().max, 0.0);
    assert!(ScoreRange::parse(b" 1", b"1e400").is_some());
    assert!(ScoreRange::parse(b"1 ", b"2").is_none());
    assert!(ScoreRange::parse(b"nan", b"2").is_none());
    assert!(ScoreRange::parse(b"1\0junk", b"2").is_some());
    assert!(ScoreRange::parse(b"[1", b"2").is_none());
    assert!(LexRange::parse(b"-", b"+").is_some());
    assert!(LexRange::parse(b"", b"+").is_none());
    assert!(LexRange::parse(b"-a", b"+").is_none());
    assert!(LexRange::parse(b"a", b"+").is_none());
    assert_eq!(LexBound::parse(b"(").unwrap(), LexBound::Excl(b""));
    assert!(LexRange::parse(b"+", b"-").unwrap().is_empty());
    assert!(LexRange::parse(b"-", b"-").unwrap().is_empty());
    assert!(LexRange::parse(b"[a", b"(a").unwrap().is_empty());
    assert!(!LexRange::parse(b"[a", b"[a").unwrap().is_empty());
}
