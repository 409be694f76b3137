//! The order index of a large sorted set: a B+tree of record handles
//! ordered by (score, member), with subtree sizes in the inner nodes so
//! rank lookups, rank → element and range bounds are O(log n).
//!
//! * Leaves are sorted arrays of up to [`LEAF_CAP`] handles (8 bytes each).
//! * Inner nodes hold up to [`NODE_CAP`] children, each with its element
//!   count and its largest record (the separator used for navigation).
//! * All leaves are at the same depth. A node falling below a quarter of
//!   its capacity is merged with a sibling or takes elements from it.
//! * Splits at the right (left) edge of the tree leave the full node full,
//!   so ascending (descending) insertion, the common case of timestamps
//!   and counters, packs leaves completely.
//!
//! The tree never frees records: the owning set does, after removing them.

use super::rec::Rec;
use std::cmp::Ordering;

/// Most handles in a leaf.
#[cfg(not(test))]
pub(crate) const LEAF_CAP: usize = 64;
/// Tiny nodes in tests, so small sets exercise splits, merges and deep trees.
#[cfg(test)]
pub(crate) const LEAF_CAP: usize = 8;
const LEAF_MIN: usize = LEAF_CAP / 4;
/// Most children of an inner node.
#[cfg(not(test))]
pub(crate) const NODE_CAP: usize = 64;
#[cfg(test)]
pub(crate) const NODE_CAP: usize = 8;
const NODE_MIN: usize = NODE_CAP / 4;

/// Orders a record against a (score, member) key. Scores are never NaN;
/// `-0` and `0` compare equal, as in Redis.
#[inline]
pub(crate) fn cmp_key(r: Rec, score: f64, member: &[u8]) -> Ordering {
    let s = r.score();
    if s < score {
        Ordering::Less
    } else if s > score {
        Ordering::Greater
    } else {
        r.member().cmp(member)
    }
}

pub(crate) enum Node {
    Leaf(Vec<Rec>),
    Inner(Box<Inner>),
}

pub(crate) struct Inner {
    kids: Vec<Node>,
    counts: Vec<usize>,
    maxes: Vec<Rec>,
}

impl Inner {
    fn new() -> Inner {
        Inner {
            kids: Vec::new(),
            counts: Vec::new(),
            maxes: Vec::new(),
        }
    }

    fn push(&mut self, kid: Node) {
        self.counts.push(kid.count());
        self.maxes.push(kid.max());
        self.kids.push(kid);
    }
}

impl Node {
    /// Elements in the subtree.
    fn count(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Inner(n) => n.counts.iter().sum(),
        }
    }

    /// Largest record of a non-empty subtree.
    fn max(&self) -> Rec {
        match self {
            Node::Leaf(v) => *v.last().expect("max of an empty leaf"),
            Node::Inner(n) => *n.maxes.last().expect("max of an empty node"),
        }
    }

    /// Direct entries (handles of a leaf, children of an inner node).
    fn width(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Inner(n) => n.kids.len(),
        }
    }
}

/// Where a removal happens.
enum Loc<'a> {
    Key(f64, &'a [u8]),
    Rank(usize),
}

/// An order-statistic B+tree of records.
pub(crate) struct Tree {
    root: Node,
    len: usize,
    /// Nodes allocated (leaves and inner), for memory accounting.
    nodes: usize,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            root: Node::Leaf(Vec::new()),
            len: 0,
            nodes: 1,
        }
    }
}

impl Tree {
    /// Elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Approximate heap bytes of the nodes (records not included).
    pub(crate) fn heap_size(&self) -> usize {
        // Leaves are allocated with room for LEAF_CAP handles; inner nodes
        // are a small fraction and costed alike.
        self.nodes * (LEAF_CAP * 8 + 32)
    }

    /// Builds a tree from records sorted by (score, member), leaves full.
    pub(crate) fn from_sorted(recs: Vec<Rec>) -> Tree {
        let len = recs.len();
        if len == 0 {
            return Tree::default();
        }
        let mut nodes = 0;
        let mut level: Vec<Node> = Vec::new();
        for chunk in even_chunks(len, LEAF_CAP) {
            let mut leaf = Vec::with_capacity(LEAF_CAP);
            leaf.extend_from_slice(&recs[chunk.0..chunk.1]);
            level.push(Node::Leaf(leaf));
            nodes += 1;
        }
        while level.len() > 1 {
            let n = level.len();
            let mut up = Vec::new();
            let mut it = level.into_iter();
            for (a, b) in even_chunks(n, NODE_CAP) {
                let mut inner = Inner::new();
                for _ in a..b {
                    if let Some(kid) = it.next() {
                        inner.push(kid);
                    }
                }
                up.push(Node::Inner(Box::new(inner)));
                nodes += 1;
            }
            level = up;
        }
        Tree {
            root: level.pop().unwrap_or(Node::Leaf(Vec::new())),
            len,
            nodes,
        }
    }

    /// Inserts a record (its key must not be present).
    pub(crate) fn insert(&mut self, rec: Rec) {
        let (score, member) = (rec.score(), rec.member());
        if let Some(right) = insert_in(
            &mut self.root,
            rec,
            score,
            member,
            true,
            true,
            &mut self.nodes,
        ) {
            let left = std::mem::replace(&mut self.root, Node::Leaf(Vec::new()));
            let mut inner = Inner::new();
            inner.push(left);
            inner.push(right);
            self.root = Node::Inner(Box::new(inner));
            self.nodes += 1;
        }
        self.len += 1;
    }

    /// Removes the record with key (score, member).
    pub(crate) fn remove(&mut self, score: f64, member: &[u8]) -> Option<Rec> {
        self.remove_loc(Loc::Key(score, member))
    }

    /// Removes the record at `rank` (0-based, ascending).
    pub(crate) fn remove_at(&mut self, rank: usize) -> Option<Rec> {
        if rank >= self.len {
            return None;
        }
        self.remove_loc(Loc::Rank(rank))
    }

    fn remove_loc(&mut self, mut loc: Loc<'_>) -> Option<Rec> {
        let r = remove_in(&mut self.root, &mut loc, &mut self.nodes)?;
        self.len -= 1;
        // Collapse single-child roots (and empty trees) level by level.
        loop {
            match &mut self.root {
                Node::Inner(n) if n.kids.len() == 1 => {
                    let kid = n.kids.pop().unwrap_or(Node::Leaf(Vec::new()));
                    self.root = kid;
                    self.nodes -= 1;
                }
                _ => break,
            }
        }
        if self.len == 0 && !matches!(&self.root, Node::Leaf(_)) {
            *self = Tree::default();
        }
        Some(r)
    }

    /// The record at `rank`.
    pub(crate) fn get(&self, mut rank: usize) -> Option<Rec> {
        if rank >= self.len {
            return None;
        }
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(v) => return v.get(rank).copied(),
                Node::Inner(n) => {
                    let mut i = 0;
                    while rank >= n.counts[i] {
                        rank -= n.counts[i];
                        i += 1;
                    }
                    node = &n.kids[i];
                }
            }
        }
    }

    /// Rank of the record with key (score, member).
    pub(crate) fn rank(&self, score: f64, member: &[u8]) -> Option<usize> {
        let mut node = &self.root;
        let mut acc = 0;
        loop {
            match node {
                Node::Leaf(v) => {
                    let p = v.partition_point(|x| cmp_key(*x, score, member) == Ordering::Less);
                    return (p < v.len() && cmp_key(v[p], score, member) == Ordering::Equal)
                        .then_some(acc + p);
                }
                Node::Inner(n) => {
                    let i = n
                        .maxes
                        .partition_point(|m| cmp_key(*m, score, member) == Ordering::Less);
                    if i == n.kids.len() {
                        return None;
                    }
                    acc += n.counts[..i].iter().sum::<usize>();
                    node = &n.kids[i];
                }
            }
        }
    }

    /// Number of leading records for which `pred` holds; `pred` must hold
    /// for a prefix of the order and fail for the rest.
    pub(crate) fn partition_point(&self, pred: impl Fn(Rec) -> bool) -> usize {
        let mut node = &self.root;
        let mut acc = 0;
        loop {
            match node {
                Node::Leaf(v) => return acc + v.partition_point(|x| pred(*x)),
                Node::Inner(n) => {
                    let i = n.maxes.partition_point(|m| pred(*m));
                    acc += n.counts[..i].iter().sum::<usize>();
                    if i == n.kids.len() {
                        return acc;
                    }
                    node = &n.kids[i];
                }
            }
        }
    }

    /// Iterates `count` records from `rank`, ascending or descending. The
    /// range must lie inside the tree.
    pub(crate) fn iter_at(&self, rank: usize, count: usize, rev: bool) -> Iter<'_> {
        let mut it = Iter {
            stack: Vec::new(),
            leaf: &[],
            pos: 0,
            remaining: 0,
            rev,
        };
        if count == 0 || rank >= self.len {
            return it;
        }
        let mut r = rank;
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(v) => {
                    it.leaf = v;
                    it.pos = r;
                    break;
                }
                Node::Inner(n) => {
                    let mut i = 0;
                    while r >= n.counts[i] {
                        r -= n.counts[i];
                        i += 1;
                    }
                    it.stack.push((n, i));
                    node = &n.kids[i];
                }
            }
        }
        it.remaining = if rev {
            count.min(rank + 1)
        } else {
            count.min(self.len - rank)
        };
        it
    }

    /// Visits every record in order (for freeing and copying).
    pub(crate) fn for_each(&self, mut f: impl FnMut(Rec)) {
        fn walk(node: &Node, f: &mut impl FnMut(Rec)) {
            match node {
                Node::Leaf(v) => v.iter().for_each(|r| f(*r)),
                Node::Inner(n) => n.kids.iter().for_each(|k| walk(k, f)),
            }
        }
        walk(&self.root, &mut f);
    }

    /// Checks the structural invariants (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        fn walk(
            node: &Node,
            depth: usize,
            leaf_depth: &mut Option<usize>,
            root: bool,
            prev: &mut Option<Rec>,
        ) -> usize {
            match node {
                Node::Leaf(v) => {
                    match leaf_depth {
                        Some(d) => assert_eq!(*d, depth, "leaves at different depths"),
                        None => *leaf_depth = Some(depth),
                    }
                    assert!(root || !v.is_empty(), "empty non-root leaf");
                    assert!(v.len() <= LEAF_CAP);
                    for r in v {
                        if let Some(p) = prev {
                            assert_eq!(cmp_key(*p, r.score(), r.member()), Ordering::Less);
                        }
                        *prev = Some(*r);
                    }
                    v.len()
                }
                Node::Inner(n) => {
                    assert!(n.kids.len() <= NODE_CAP);
                    assert!(!root || n.kids.len() >= 2, "single-child root");
                    assert_eq!(n.kids.len(), n.counts.len());
                    assert_eq!(n.kids.len(), n.maxes.len());
                    let mut total = 0;
                    for (i, k) in n.kids.iter().enumerate() {
                        let c = walk(k, depth + 1, leaf_depth, false, prev);
                        assert_eq!(c, n.counts[i], "stale count");
                        assert!(c > 0, "empty subtree");
                        assert!(n.maxes[i] == k.max(), "stale max");
                        total += c;
                    }
                    total
                }
            }
        }
        let total = walk(&self.root, 0, &mut None, true, &mut None);
        assert_eq!(total, self.len);
    }
}

/// Splits `n` items into consecutive ranges of at most `cap`, as even as
/// possible.
fn even_chunks(n: usize, cap: usize) -> impl Iterator<Item = (usize, usize)> {
    let parts = n.div_ceil(cap).max(1);
    let base = n / parts;
    let extra = n % parts;
    let mut start = 0;
    (0..parts).map(move |i| {
        let size = base + usize::from(i < extra);
        let r = (start, start + size);
        start += size;
        r
    })
}

/// Inserts into the subtree; returns a new right sibling when it split.
/// `leftmost`/`rightmost` say whether the node is on the tree's edge.
fn insert_in(
    node: &mut Node,
    rec: Rec,
    score: f64,
    member: &[u8],
    leftmost: bool,
    rightmost: bool,
    nodes: &mut usize,
) -> Option<Node> {
    match node {
        Node::Leaf(v) => {
            let pos = v.partition_point(|x| cmp_key(*x, score, member) == Ordering::Less);
            if v.len() < LEAF_CAP {
                if v.capacity() == v.len() {
                    v.reserve_exact(LEAF_CAP - v.len());
                }
                v.insert(pos, rec);
                return None;
            }
            // Full: split the LEAF_CAP + 1 records (with `rec` at `pos`) at
            // `at` without ever growing a leaf past its capacity.
            let at = if rightmost && pos == LEAF_CAP {
                LEAF_CAP
            } else if leftmost && pos == 0 {
                1
            } else {
                let total = LEAF_CAP + 1;
                total / 2
            };
            let mut right = Vec::with_capacity(LEAF_CAP);
            if pos < at {
                right.extend_from_slice(&v[at - 1..]);
                v.truncate(at - 1);
                v.insert(pos, rec);
            } else {
                right.extend_from_slice(&v[at..]);
                v.truncate(at);
                right.insert(pos - at, rec);
            }
            *nodes += 1;
            Some(Node::Leaf(right))
        }
        Node::Inner(n) => {
            let last = n.kids.len() - 1;
            let i = n
                .maxes
                .partition_point(|m| cmp_key(*m, score, member) == Ordering::Less)
                .min(last);
            let split = insert_in(
                &mut n.kids[i],
                rec,
                score,
                member,
                leftmost && i == 0,
                rightmost && i == last,
                nodes,
            );
            let Some(right) = split else {
                n.counts[i] += 1;
                n.maxes[i] = n.kids[i].max();
                return None;
            };
            n.counts[i] = n.kids[i].count();
            n.maxes[i] = n.kids[i].max();
            n.counts.insert(i + 1, right.count());
            n.maxes.insert(i + 1, right.max());
            n.kids.insert(i + 1, right);
            let len = n.kids.len();
            if len <= NODE_CAP {
                return None;
            }
            let at = if rightmost && i + 1 == len - 1 {
                len - 1
            } else if leftmost && i == 0 {
                1
            } else {
                len / 2
            };
            let right = Inner {
                kids: n.kids.split_off(at),
                counts: n.counts.split_off(at),
                maxes: n.maxes.split_off(at),
            };
            *nodes += 1;
            Some(Node::Inner(Box::new(right)))
        }
    }
}

fn remove_in(node: &mut Node, loc: &mut Loc<'_>, nodes: &mut usize) -> Option<Rec> {
    match node {
        Node::Leaf(v) => {
            let pos = match *loc {
                Loc::Key(s, m) => {
                    let p = v.partition_point(|x| cmp_key(*x, s, m) == Ordering::Less);
                    if p >= v.len() || cmp_key(v[p], s, m) != Ordering::Equal {
                        return None;
                    }
                    p
                }
                Loc::Rank(r) => r,
            };
            (pos < v.len()).then(|| v.remove(pos))
        }
        Node::Inner(n) => {
            let i = match loc {
                Loc::Key(s, m) => {
                    let i = n
                        .maxes
                        .partition_point(|x| cmp_key(*x, *s, m) == Ordering::Less);
                    if i == n.kids.len() {
                        return None;
                    }
                    i
                }
                Loc::Rank(r) => {
                    let mut i = 0;
                    while i + 1 < n.counts.len() && *r >= n.counts[i] {
                        *r -= n.counts[i];
                        i += 1;
                    }
                    i
                }
            };
            let rec = remove_in(&mut n.kids[i], loc, nodes)?;
            n.counts[i] -= 1;
            fix_kid(n, i, nodes);
            Some(rec)
        }
    }
}

/// Restores the invariants of child `i` after a removal below it: drops
/// it when empty, merges it with or refills it from a sibling when it is
/// under a quarter full, and refreshes its separator.
fn fix_kid(n: &mut Inner, i: usize, nodes: &mut usize) {
    if n.counts[i] == 0 {
        if n.kids.len() > 1 {
            n.kids.remove(i);
            n.counts.remove(i);
            n.maxes.remove(i);
            *nodes -= 1;
        }
        // A lone empty child is removed by the parent (or the root
        // collapse), which sees this whole node empty.
        return;
    }
    let (width, min) = match &n.kids[i] {
        Node::Leaf(v) => (v.len(), LEAF_MIN),
        Node::Inner(c) => (c.kids.len(), NODE_MIN),
    };
    if width >= min || n.kids.len() == 1 {
        n.maxes[i] = n.kids[i].max();
        return;
    }
    let (l, r) = if i + 1 < n.kids.len() {
        (i, i + 1)
    } else {
        (i - 1, i)
    };
    let (left, right) = n.kids.split_at_mut(r);
    let (a, b) = (&mut left[l], &mut right[0]);
    let cap = if matches!(a, Node::Leaf(_)) {
        LEAF_CAP
    } else {
        NODE_CAP
    };
    let total = a.width() + b.width();
    match (a, b) {
        (Node::Leaf(a), Node::Leaf(b)) => {
            if total <= cap {
                if a.capacity() < total {
                    a.reserve_exact(cap - a.len());
                }
                a.append(b);
            } else if a.len() < b.len() {
                let take = (total / 2) - a.len();
                a.extend(b.drain(..take));
            } else {
                let keep = total / 2;
                let moved: Vec<Rec> = a.drain(keep..).collect();
                b.splice(0..0, moved);
            }
        }
        (Node::Inner(a), Node::Inner(b)) => {
            if total <= cap {
                a.kids.append(&mut b.kids);
                a.counts.append(&mut b.counts);
                a.maxes.append(&mut b.maxes);
            } else if a.kids.len() < b.kids.len() {
                let take = (total / 2) - a.kids.len();
                a.kids.extend(b.kids.drain(..take));
                a.counts.extend(b.counts.drain(..take));
                a.maxes.extend(b.maxes.drain(..take));
            } else {
                let keep = total / 2;
                let kids: Vec<Node> = a.kids.drain(keep..).collect();
                let counts: Vec<usize> = a.counts.drain(keep..).collect();
                let maxes: Vec<Rec> = a.maxes.drain(keep..).collect();
                b.kids.splice(0..0, kids);
                b.counts.splice(0..0, counts);
                b.maxes.splice(0..0, maxes);
            }
        }
        _ => unreachable!("siblings at different depths"),
    }
    if total <= cap {
        n.kids.remove(r);
        n.counts.remove(r);
        n.maxes.remove(r);
        *nodes -= 1;
        n.counts[l] = n.kids[l].count();
        n.maxes[l] = n.kids[l].max();
    } else {
        for k in [l, r] {
            n.counts[k] = n.kids[k].count();
            n.maxes[k] = n.kids[k].max();
        }
    }
}

/// Iterator over a rank range of a [`Tree`].
pub(crate) struct Iter<'a> {
    stack: Vec<(&'a Inner, usize)>,
    leaf: &'a [Rec],
    pos: usize,
    remaining: usize,
    rev: bool,
}

impl Iter<'_> {
    fn next_leaf(&mut self) {
        while let Some((n, i)) = self.stack.pop() {
            if i + 1 < n.kids.len() {
                self.stack.push((n, i + 1));
                let mut node = &n.kids[i + 1];
                loop {
                    match node {
                        Node::Leaf(v) => {
                            self.leaf = v;
                            self.pos = 0;
                            return;
                        }
                        Node::Inner(c) => {
                            self.stack.push((c, 0));
                            node = &c.kids[0];
                        }
                    }
                }
            }
        }
    }

    fn prev_leaf(&mut self) {
        while let Some((n, i)) = self.stack.pop() {
            if i > 0 {
                self.stack.push((n, i - 1));
                let mut node = &n.kids[i - 1];
                loop {
                    match node {
                        Node::Leaf(v) => {
                            self.leaf = v;
                            self.pos = v.len() - 1;
                            return;
                        }
                        Node::Inner(c) => {
                            let last = c.kids.len() - 1;
                            self.stack.push((c, last));
                            node = &c.kids[last];
                        }
                    }
                }
            }
        }
    }
}

impl Iterator for Iter<'_> {
    type Item = Rec;

    fn next(&mut self) -> Option<Rec> {
        if self.remaining == 0 {
            return None;
        }
        let r = self.leaf[self.pos];
        self.remaining -= 1;
        if self.remaining > 0 {
            if self.rev {
                if self.pos == 0 {
                    self.prev_leaf();
                } else {
                    self.pos -= 1;
                }
            } else {
                self.pos += 1;
                if self.pos == self.leaf.len() {
                    self.next_leaf();
                }
            }
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}
