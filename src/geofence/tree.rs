//! R-tree entries and allocation-free traversals.
//!
//! rstar's own iterators keep their work list in a small inline buffer that spills to
//! the heap on deep or wide searches, and its nearest-neighbour search uses a heap.
//! The rule engine calls these queries for every fix of every truck, so the walks here
//! recurse on the call stack instead (depth is the tree height, ~5 for a city) and never
//! allocate. The nearest search also carries its bound across several trees (a
//! permit's routes), which rstar's cannot.

use rstar::{
    Envelope, ParentNode, PointDistance, RStarInsertionStrategy, RTree, RTreeNode, RTreeObject,
    RTreeParams, AABB,
};

use super::model::{FenceIdx, FenceKind};

pub(crate) type P2 = [f64; 2];

/// Node size of the containment trees. They are bulk-loaded once and only walked by
/// "which boxes contain p", where wider nodes than rstar's default (6) pay off: fewer
/// levels, fewer pointer hops (measured: ~10% on the benchmark city). The segment trees
/// keep the default: nearest-neighbour search prunes better with narrow nodes.
#[derive(Debug)]
pub(crate) struct HitParams;

impl RTreeParams for HitParams {
    const MIN_SIZE: usize = NODE_SIZE / 2;
    const MAX_SIZE: usize = NODE_SIZE;
    const REINSERTION_COUNT: usize = NODE_SIZE / 4;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

const NODE_SIZE: usize = 12;

pub(crate) type HitTree = RTree<HitLeaf, HitParams>;
pub(crate) type SegTree = RTree<SegEntry>;

/// What an entry of the containment tree is, exactly (the envelope is only a
/// pre-filter).
#[derive(Debug, Clone, Copy)]
pub(crate) enum HitGeom {
    /// Index into `FenceSet::polys`.
    Poly(u32),
    Circle {
        centre: P2,
        radius: f64,
    },
    /// One corridor segment; its envelope is inflated by the half-width, so "which
    /// corridors contain p" is the same point-in-envelope walk as for areas.
    Capsule {
        a: P2,
        b: P2,
        hw2: f64,
    },
}

/// What a containment-tree leaf stands for (kept beside the tree, see [`HitLeaf`]).
#[derive(Debug, Clone)]
pub(crate) struct HitInfo {
    pub fence: FenceIdx,
    pub kind: FenceKind,
    pub geom: HitGeom,
}

/// Leaf of the containment tree: one polygon (a MultiPolygon gives one leaf per part),
/// circle, or corridor segment, so that `containing` is a single walk.
///
/// Why f32 boxes and the geometry beside the tree: the walk is bound by memory
/// traffic, not arithmetic, and this more than halves the bytes per tree slot (40
/// instead of 96).
/// Boxes are rounded outwards and query points to nearest, and rounding is monotone, so
/// a box that contains a point in f64 still contains it in f32; the exact test after it
/// runs in f64 on [`HitInfo`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct HitLeaf {
    pub env: AABB<P2f>,
    /// index into `FenceSet::hit_info`
    pub slot: u32,
}

impl RTreeObject for HitLeaf {
    type Envelope = AABB<P2f>;
    fn envelope(&self) -> AABB<P2f> {
        self.env
    }
}

pub(crate) type P2f = [f32; 2];

/// The f32 box containing the f64 box (rounded outwards).
pub(crate) fn env32(min: P2, max: P2) -> AABB<P2f> {
    let down = |v: f64| {
        let f = v as f32;
        if f as f64 > v {
            f.next_down()
        } else {
            f
        }
    };
    let up = |v: f64| {
        let f = v as f32;
        if (f as f64) < v {
            f.next_up()
        } else {
            f
        }
    };
    AABB::from_corners([down(min[0]), down(min[1])], [up(max[0]), up(max[1])])
}

/// A query point for f32 boxes (rounded to nearest: see [`HitLeaf`]).
#[inline]
pub(crate) fn p32(p: P2) -> P2f {
    [p[0] as f32, p[1] as f32]
}

/// One straight segment of a route corridor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegEntry {
    pub a: P2,
    pub b: P2,
    pub fence: FenceIdx,
    /// half-width², so the corridor test needs no square root
    pub hw2: f64,
}

impl RTreeObject for SegEntry {
    type Envelope = AABB<P2>;
    fn envelope(&self) -> AABB<P2> {
        AABB::from_corners(self.a, self.b)
    }
}

impl PointDistance for SegEntry {
    fn distance_2(&self, p: &P2) -> f64 {
        seg_dist2(self.a, self.b, *p)
    }
}

/// Squared distance from `p` to the closed segment a-b.
#[inline]
pub(crate) fn seg_dist2(a: P2, b: P2, p: P2) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let (px, py) = (p[0] - a[0], p[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        ((px * dx + py * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ex, ey) = (px - t * dx, py - t * dy);
    ex * ex + ey * ey
}

/// Closest point of segment a-b to `p`.
#[inline]
pub(crate) fn seg_closest(a: P2, b: P2, p: P2) -> P2 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    [a[0] + t * dx, a[1] + t * dy]
}

/// Squared distance between segments a-b and c-d (0 when they intersect).
pub(crate) fn seg_seg_dist2(a: P2, b: P2, c: P2, d: P2) -> f64 {
    use geo::{Coord, Intersects, Line};
    let l1 = Line::new(Coord { x: a[0], y: a[1] }, Coord { x: b[0], y: b[1] });
    let l2 = Line::new(Coord { x: c[0], y: c[1] }, Coord { x: d[0], y: d[1] });
    if l1.intersects(&l2) {
        return 0.0;
    }
    seg_dist2(a, b, c)
        .min(seg_dist2(a, b, d))
        .min(seg_dist2(c, d, a))
        .min(seg_dist2(c, d, b))
}

/// Calls `f` for every leaf of the containment tree whose box contains `p`.
pub(crate) fn for_each_at<F>(node: &ParentNode<HitLeaf>, p: &P2f, f: &mut F)
where
    F: FnMut(&HitLeaf),
{
    for child in node.children() {
        match child {
            RTreeNode::Leaf(t) => {
                if box_contains(&t.env, p) {
                    f(t)
                }
            }
            RTreeNode::Parent(n) => {
                if box_contains(&n.envelope(), p) {
                    for_each_at(n, p, f)
                }
            }
        }
    }
}

/// Point in box without short-circuiting: most boxes do not contain the point, so one
/// well-predicted branch beats four poorly predicted ones (the walk tests ~90 boxes per
/// fix on a large city).
#[inline(always)]
pub(crate) fn box_contains(env: &AABB<P2f>, p: &P2f) -> bool {
    let (lo, hi) = (env.lower(), env.upper());
    (lo[0] <= p[0]) & (p[0] <= hi[0]) & (lo[1] <= p[1]) & (p[1] <= hi[1])
}

/// Calls `f` for every leaf under a node whose envelope is within √`r2` of `p`
/// (leaves are not pre-tested; `f` does the exact test).
pub(crate) fn for_each_near<T, P, F>(node: &ParentNode<T>, p: &P, r2: P::Scalar, f: &mut F)
where
    T: RTreeObject<Envelope = AABB<P>>,
    P: rstar::Point,
    F: FnMut(&T),
{
    for child in node.children() {
        match child {
            RTreeNode::Leaf(t) => f(t),
            RTreeNode::Parent(n) => {
                if n.envelope().distance_2(p) <= r2 {
                    for_each_near(n, p, r2, f)
                }
            }
        }
    }
}

/// Calls `f` for every leaf whose envelope intersects `env`.
pub(crate) fn for_each_in<T, P, F>(node: &ParentNode<T>, env: &AABB<P>, f: &mut F)
where
    T: RTreeObject<Envelope = AABB<P>>,
    P: rstar::Point,
    F: FnMut(&T),
{
    for child in node.children() {
        match child {
            RTreeNode::Leaf(t) => {
                if t.envelope().intersects(env) {
                    f(t)
                }
            }
            RTreeNode::Parent(n) => {
                if n.envelope().intersects(env) {
                    for_each_in(n, env, f)
                }
            }
        }
    }
}

/// Best-first branch-and-bound nearest search. `best` holds the squared distance to
/// beat and the winner so far; ties keep the first found (deterministic for a given
/// tree).
pub(crate) fn nearest<'a, T>(node: &'a ParentNode<T>, p: &P2, best: &mut (f64, Option<&'a T>))
where
    T: PointDistance<Envelope = AABB<P2>>,
{
    const W: usize = 16; // >= every node size used here
    let children = node.children();
    let n = children.len().min(W);
    let mut order = [(0.0f64, 0usize); W];
    for (i, child) in children.iter().take(n).enumerate() {
        let d = match child {
            RTreeNode::Leaf(t) => t.distance_2(p),
            RTreeNode::Parent(c) => c.envelope().distance_2(p),
        };
        // insertion sort by distance
        let mut j = i;
        while j > 0 && order[j - 1].0 > d {
            order[j] = order[j - 1];
            j -= 1;
        }
        order[j] = (d, i);
    }
    for &(d, i) in &order[..n] {
        if d >= best.0 {
            break;
        }
        match &children[i] {
            RTreeNode::Leaf(t) => *best = (d, Some(t)),
            RTreeNode::Parent(c) => nearest(c, p, best),
        }
    }
    // only reached with custom tree parameters wider than W
    for child in children.iter().skip(W) {
        match child {
            RTreeNode::Leaf(t) => {
                let d = t.distance_2(p);
                if d < best.0 {
                    *best = (d, Some(t));
                }
            }
            RTreeNode::Parent(c) => {
                if c.envelope().distance_2(p) < best.0 {
                    nearest(c, p, best)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_matches_scan() {
        let mut segs = Vec::new();
        let mut s = 12345u64;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 * 1000.0
        };
        for i in 0..500 {
            let a = [rnd(), rnd()];
            let b = [a[0] + rnd() / 20.0, a[1] + rnd() / 20.0];
            segs.push(SegEntry {
                a,
                b,
                fence: FenceIdx(i),
                hw2: 1.0,
            });
        }
        let tree = RTree::bulk_load(segs.clone());
        for _ in 0..200 {
            let p = [rnd(), rnd()];
            let mut best = (f64::INFINITY, None);
            nearest(tree.root(), &p, &mut best);
            let scan = segs
                .iter()
                .map(|s| s.distance_2(&p))
                .fold(f64::INFINITY, f64::min);
            assert_eq!(best.0, scan);
        }
    }

    #[test]
    fn segment_distances() {
        assert_eq!(seg_dist2([0., 0.], [10., 0.], [5., 3.]), 9.0);
        assert_eq!(seg_dist2([0., 0.], [10., 0.], [13., 4.]), 25.0);
        assert_eq!(seg_seg_dist2([0., 0.], [10., 0.], [5., -1.], [5., 1.]), 0.0);
        assert_eq!(
            seg_seg_dist2([0., 0.], [10., 0.], [12., 0.], [20., 0.]),
            4.0
        );
        assert_eq!(seg_closest([0., 0.], [10., 0.], [5., 3.]), [5., 0.]);
    }
}
