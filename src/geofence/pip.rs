//! Exact point-in-polygon and segment-crosses-polygon for prepared polygons.
//!
//! Why not call geo's `Intersects` directly: it walks every edge of every ring, which is
//! fine for a 20-vertex site but costs ~10 µs per fix for a 10,000-vertex district
//! outline. Here the edges are bucketed into horizontal bands once at load time, so a
//! query only looks at the edges whose y-range overlaps the point's band. The per-edge
//! rule is the one geo uses (robust orientation, boundary counts as inside), so the
//! answers are identical to geo's — the property tests check exactly that.

use geo::kernels::{Kernel, RobustKernel};
use geo::{Coord, Intersects, Line, Orientation, Polygon};

/// Polygons with at most this many edges get a single band (a plain scan is faster
/// than any bookkeeping at that size).
const SMALL: usize = 16;
/// Upper bound on band entries per edge on average, so that long edges spanning many
/// bands (spiky shapes) cannot blow memory up.
const MAX_ENTRIES_PER_EDGE: usize = 8;

#[derive(Debug, Clone)]
pub(crate) struct PreparedPolygon {
    min: Coord<f64>,
    max: Coord<f64>,
    /// Edges of all rings; for a valid polygon the even-odd rule over all of them gives
    /// "inside the exterior and outside every hole".
    edges: Vec<Line<f64>>,
    y0: f64,
    inv_h: f64,
    nbands: usize,
    /// CSR: edges of band b are `band_edges[band_start[b]..band_start[b + 1]]`.
    band_start: Vec<u32>,
    band_edges: Vec<u32>,
}

impl PreparedPolygon {
    pub(crate) fn new(poly: &Polygon<f64>) -> PreparedPolygon {
        let edges: Vec<Line<f64>> = std::iter::once(poly.exterior())
            .chain(poly.interiors())
            .flat_map(|r| r.lines())
            .filter(|l| l.start != l.end)
            .collect();
        let (mut min, mut max) = (
            Coord {
                x: f64::INFINITY,
                y: f64::INFINITY,
            },
            Coord {
                x: f64::NEG_INFINITY,
                y: f64::NEG_INFINITY,
            },
        );
        for c in edges.iter().flat_map(|l| [l.start, l.end]) {
            min = Coord {
                x: min.x.min(c.x),
                y: min.y.min(c.y),
            };
            max = Coord {
                x: max.x.max(c.x),
                y: max.y.max(c.y),
            };
        }
        let mut nbands = if edges.len() <= SMALL {
            1
        } else {
            (edges.len() / 4).min(4096)
        };
        loop {
            if nbands == 1 {
                // no band lists: `edges_in_band` reads `edges` directly
                let (y0, inv_h, band_start, band_edges) = (min.y, 0.0, vec![0, 0], Vec::new());
                return PreparedPolygon {
                    min,
                    max,
                    edges,
                    y0,
                    inv_h,
                    nbands,
                    band_start,
                    band_edges,
                };
            }
            let p = PreparedPolygon::with_bands(min, max, &edges, nbands);
            if p.band_edges.len() <= MAX_ENTRIES_PER_EDGE * edges.len() {
                return PreparedPolygon { edges, ..p };
            }
            nbands /= 2;
        }
    }

    fn with_bands(
        min: Coord<f64>,
        max: Coord<f64>,
        edges: &[Line<f64>],
        nbands: usize,
    ) -> PreparedPolygon {
        let h = max.y - min.y;
        let inv_h = if h > 0.0 { nbands as f64 / h } else { 0.0 };
        let mut p = PreparedPolygon {
            min,
            max,
            edges: Vec::new(),
            y0: min.y,
            inv_h,
            nbands,
            band_start: vec![0; nbands + 1],
            band_edges: Vec::new(),
        };
        // counting pass, then fill: two passes avoid a Vec per band
        for l in edges {
            let (a, b) = p.band_range(l.start.y.min(l.end.y), l.start.y.max(l.end.y));
            for band in a..=b {
                p.band_start[band + 1] += 1;
            }
        }
        for i in 0..nbands {
            p.band_start[i + 1] += p.band_start[i];
        }
        let mut fill = p.band_start.clone();
        p.band_edges = vec![0; p.band_start[nbands] as usize];
        for (i, l) in edges.iter().enumerate() {
            let (a, b) = p.band_range(l.start.y.min(l.end.y), l.start.y.max(l.end.y));
            for slot in &mut fill[a..=b] {
                p.band_edges[*slot as usize] = i as u32;
                *slot += 1;
            }
        }
        p
    }

    /// Band of a y coordinate; monotone in y, so an edge whose y-range contains p.y is
    /// always listed in p's band.
    #[inline]
    fn band(&self, y: f64) -> usize {
        let b = ((y - self.y0) * self.inv_h) as isize; // NaN -> 0
        b.clamp(0, self.nbands as isize - 1) as usize
    }

    #[inline]
    fn band_range(&self, ymin: f64, ymax: f64) -> (usize, usize) {
        (self.band(ymin), self.band(ymax))
    }

    /// Edges of a band; with a single band that is every edge, read directly (most
    /// fences are small, and this skips an indirection per edge).
    #[inline]
    fn edges_in_band(&self, band: usize) -> impl Iterator<Item = &Line<f64>> {
        let (direct, listed) = if self.nbands == 1 {
            (&self.edges[..], &[][..])
        } else {
            let (s, e) = (
                self.band_start[band] as usize,
                self.band_start[band + 1] as usize,
            );
            (&[][..], &self.band_edges[s..e])
        };
        direct
            .iter()
            .chain(listed.iter().map(|&i| &self.edges[i as usize]))
    }

    pub(crate) fn bbox(&self) -> (Coord<f64>, Coord<f64>) {
        (self.min, self.max)
    }

    /// Point in the closed polygon (boundary counts as inside).
    #[inline]
    pub(crate) fn contains(&self, p: Coord<f64>) -> bool {
        if !(p.x >= self.min.x && p.x <= self.max.x && p.y >= self.min.y && p.y <= self.max.y) {
            return false;
        }
        let mut inside = false;
        for l in self.edges_in_band(self.band(p.y)) {
            let (s, e) = (l.start, l.end);
            if (s.y <= p.y) != (e.y <= p.y) {
                // the edge straddles the horizontal line through p (half-open in y)
                match RobustKernel::orient2d(s, e, p) {
                    Orientation::Collinear => return true,
                    o => {
                        if (o == Orientation::CounterClockwise) == (e.y > s.y) {
                            inside = !inside;
                        }
                    }
                }
            } else if s.y.max(e.y) == p.y
                && between(p.x, s.x, e.x)
                && RobustKernel::orient2d(s, e, p) == Orientation::Collinear
            {
                return true; // on a horizontal edge or on a vertex at p's height
            }
        }
        inside
    }

    /// Whether the closed segment a-b touches the closed polygon (same answer as geo's
    /// `Polygon::intersects(&Line)`).
    pub(crate) fn intersects_segment(&self, a: Coord<f64>, b: Coord<f64>) -> bool {
        let (lo, hi) = (
            Coord {
                x: a.x.min(b.x),
                y: a.y.min(b.y),
            },
            Coord {
                x: a.x.max(b.x),
                y: a.y.max(b.y),
            },
        );
        if hi.x < self.min.x || lo.x > self.max.x || hi.y < self.min.y || lo.y > self.max.y {
            return false;
        }
        if self.contains(a) || self.contains(b) {
            return true;
        }
        let seg = Line::new(a, b);
        let (first, last) = self.band_range(lo.y, hi.y);
        (first..=last).any(|band| {
            self.edges_in_band(band).any(|l| {
                let (emin_x, emax_x) = (l.start.x.min(l.end.x), l.start.x.max(l.end.x));
                let (emin_y, emax_y) = (l.start.y.min(l.end.y), l.start.y.max(l.end.y));
                emax_x >= lo.x
                    && emin_x <= hi.x
                    && emax_y >= lo.y
                    && emin_y <= hi.y
                    && l.intersects(&seg)
            })
        })
    }
}

#[inline]
fn between(v: f64, a: f64, b: f64) -> bool {
    v >= a.min(b) && v <= a.max(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{polygon, LineString};

    fn square_with_hole() -> Polygon<f64> {
        polygon!(
            exterior: [(x: 0., y: 0.), (x: 10., y: 0.), (x: 10., y: 10.), (x: 0., y: 10.)],
            interiors: [[(x: 4., y: 4.), (x: 6., y: 4.), (x: 6., y: 6.), (x: 4., y: 6.)]],
        )
    }

    #[test]
    fn boundary_hole_and_vertices() {
        let p = PreparedPolygon::new(&square_with_hole());
        let c = |x, y| Coord { x, y };
        assert!(p.contains(c(1., 1.)));
        assert!(p.contains(c(0., 5.))); // on the exterior edge
        assert!(p.contains(c(10., 10.))); // on a vertex
        assert!(p.contains(c(5., 0.))); // on the horizontal bottom edge
        assert!(!p.contains(c(5., 5.))); // in the hole
        assert!(p.contains(c(4., 5.))); // on the hole's edge
        assert!(p.contains(c(6., 6.))); // hole vertex
        assert!(!p.contains(c(10.1, 5.)));
        assert!(!p.contains(c(-1., 10.))); // level with the top edge, outside
    }

    #[test]
    fn many_vertices_use_bands() {
        // a 10,000-vertex circle-ish polygon
        let n = 10_000;
        let ring: LineString<f64> = (0..n)
            .map(|i| {
                let t = i as f64 / n as f64 * std::f64::consts::TAU;
                (1000.0 * t.cos(), 1000.0 * t.sin())
            })
            .collect();
        let poly = Polygon::new(ring, vec![]);
        let p = PreparedPolygon::new(&poly);
        assert!(p.nbands > 100);
        for (x, y) in [
            (0.0, 0.0),
            (999.0, 0.0),
            (0.0, -999.0),
            (1001.0, 0.0),
            (707.0, 707.0),
            (708.0, 708.0),
        ] {
            let c = Coord { x, y };
            assert_eq!(p.contains(c), poly.intersects(&c), "{x},{y}");
        }
        let a = Coord { x: -2000.0, y: 0.5 };
        let b = Coord { x: 2000.0, y: 0.7 };
        assert!(p.intersects_segment(a, b));
        assert!(!p.intersects_segment(
            Coord {
                x: 1500.0,
                y: -2000.0
            },
            Coord {
                x: 1500.0,
                y: 2000.0
            }
        ));
    }
}
