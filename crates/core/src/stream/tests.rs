use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

type Model = BTreeMap<StreamId, Vec<Vec<u8>>>;

fn small_limits() -> NodeLimits {
    NodeLimits {
        max_bytes: 200,
        max_entries: 5,
    }
}

fn check(s: &Stream, m: &Model) {
    assert_eq!(s.len() as usize, m.len());
    let got: Vec<(StreamId, Vec<Vec<u8>>)> = s
        .range(StreamId::MIN, StreamId::MAX, false, 0)
        .into_iter()
        .map(|e| (e.id, e.fields.iter().map(|f| f.to_vec()).collect()))
        .collect();
    let want: Vec<(StreamId, Vec<Vec<u8>>)> = m.iter().map(|(k, v)| (*k, v.clone())).collect();
    assert_eq!(got, want);
    let first = m.keys().next().copied().unwrap_or(StreamId::MIN);
    assert_eq!(s.first_id, first);
}

#[derive(Debug, Clone)]
enum Op {
    Add(u8, u8, u8),
    Del(u8),
    TrimMax(u8, bool),
    TrimMin(u8, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, 0u8..3, any::<u8>()).prop_map(|(a, b, c)| Op::Add(a, b, c)),
        1 => any::<u8>().prop_map(Op::Del),
        1 => (0u8..40, any::<bool>()).prop_map(|(n, a)| Op::TrimMax(n, a)),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(n, a)| Op::TrimMin(n, a)),
    ]
}

#[test]
fn append_and_range() {
    let mut s = Stream::new();
    for i in 1..=20u64 {
        let v = i.to_string();
        s.append(StreamId::new(i, 0), &[b"f", v.as_bytes()], small_limits());
    }
    assert_eq!(s.len(), 20);
    assert_eq!(s.node_count(), 4);
    let r = s.range(StreamId::new(3, 0), StreamId::new(5, 0), false, 0);
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].fields, vec![b"f".as_slice(), b"3".as_slice()]);
    let r = s.range(StreamId::MIN, StreamId::MAX, true, 2);
    assert_eq!(r[0].id, StreamId::new(20, 0));
    assert_eq!(r[1].id, StreamId::new(19, 0));
}

#[test]
fn approx_trim_removes_whole_nodes() {
    let mut s = Stream::new();
    for i in 1..=23u64 {
        s.append(StreamId::new(i, 0), &[b"a", b"1"], small_limits());
    }
    let n = s.trim(Trim {
        strategy: TrimStrategy::MaxLen(10),
        approx: true,
        limit: 0,
    });
    assert_eq!(n, 10);
    assert_eq!(s.len(), 13);
    let n = s.trim(Trim {
        strategy: TrimStrategy::MaxLen(10),
        approx: false,
        limit: 0,
    });
    assert_eq!(n, 3);
    assert_eq!(s.first_id, StreamId::new(14, 0));
}

#[test]
fn rax_nodes_like_redis() {
    let mut s = Stream::new();
    assert_eq!(s.rax_nodes(), 1);
    s.append(StreamId::new(1, 0), &[b"a", b"1"], small_limits());
    assert_eq!(s.rax_nodes(), 2);
}

#[test]
fn tombstones_and_lag() {
    let mut s = Stream::new();
    for i in 1..=5u64 {
        s.append(StreamId::new(i, 0), &[b"a", b"1"], small_limits());
    }
    assert_eq!(s.estimate_distance(StreamId::new(5, 0)), Some(5));
    assert_eq!(s.estimate_distance(StreamId::new(1, 0)), Some(1));
    assert_eq!(s.estimate_distance(StreamId::new(0, 5)), Some(0));
    assert!(s.delete(StreamId::new(3, 0)));
    assert!(s.range_has_tombstones(Some(StreamId::new(2, 0)), None));
    assert_eq!(s.estimate_distance(StreamId::new(2, 0)), None);
    assert_eq!(s.max_deleted_id, StreamId::new(3, 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn matches_btreemap_model(ops in proptest::collection::vec(op(), 1..120)) {
        let mut s = Stream::new();
        let mut m: Model = BTreeMap::new();
        let mut next = 1u64;
        for o in ops {
            match o {
                Op::Add(step, shape, v) => {
                    let id = StreamId::new(next / 3, next % 3);
                    next += step as u64 + 1;
                    let val = v.to_string().into_bytes();
                    let pairs: Vec<Vec<u8>> = match shape {
                        0 => vec![b"f".to_vec(), val.clone()],
                        1 => vec![b"f".to_vec(), val.clone(), b"g".to_vec(), b"xyz".to_vec()],
                        _ => vec![b"other".to_vec(), vec![b'x'; v as usize]],
                    };
                    let refs: Vec<&[u8]> = pairs.iter().map(|p| p.as_slice()).collect();
                    s.append(id, &refs, small_limits());
                    m.insert(id, pairs);
                }
                Op::Del(i) => {
                    let ids: Vec<StreamId> = m.keys().copied().collect();
                    if !ids.is_empty() {
                        let id = ids[i as usize % ids.len()];
                        prop_assert!(s.delete(id));
                        m.remove(&id);
                        prop_assert!(!s.delete(id));
                    }
                }
                Op::TrimMax(n, approx) => {
                    let before = m.len();
                    let removed = s.trim(Trim { strategy: TrimStrategy::MaxLen(n as u64), approx, limit: 0 });
                    if approx {
                        prop_assert!(s.len() >= n as u64 || before < n as usize);
                    } else {
                        prop_assert_eq!(s.len(), (n as u64).min(before as u64));
                    }
                    let drop = removed as usize;
                    let keys: Vec<StreamId> = m.keys().take(drop).copied().collect();
                    for k in keys { m.remove(&k); }
                }
                Op::TrimMin(n, approx) => {
                    let min = StreamId::new(n as u64 / 3, n as u64 % 3);
                    let removed = s.trim(Trim { strategy: TrimStrategy::MinId(min), approx, limit: 0 });
                    let keys: Vec<StreamId> = m.keys().take(removed as usize).copied().collect();
                    for k in &keys { prop_assert!(*k < min); m.remove(k); }
                    if !approx {
                        prop_assert!(m.keys().next().is_none_or(|k| *k >= min));
                    }
                }
            }
            check(&s, &m);
        }
        // Random ranges in both directions.
        let ids: Vec<StreamId> = m.keys().copied().collect();
        for (i, a) in ids.iter().enumerate().step_by(3) {
            let b = ids[(i * 7) % ids.len()];
            let want: Vec<StreamId> = m.range(*a..=b.max(*a)).map(|(k, _)| *k).collect();
            let got: Vec<StreamId> = s.range(*a, b.max(*a), false, 0).iter().map(|e| e.id).collect();
            prop_assert_eq!(&got, &want);
            let mut rev = want.clone();
            rev.reverse();
            let got: Vec<StreamId> = s.range(*a, b.max(*a), true, 0).iter().map(|e| e.id).collect();
            prop_assert_eq!(&got, &rev);
            let got: Vec<StreamId> = s.range(*a, StreamId::MAX, false, 2).iter().map(|e| e.id).collect();
            let want2: Vec<StreamId> = m.range(*a..).take(2).map(|(k, _)| *k).collect();
            prop_assert_eq!(got, want2);
        }
    }
}
