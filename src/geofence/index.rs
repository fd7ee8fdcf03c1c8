//! [`FenceSet`]: the immutable, indexed set of fences in force, built once per load.
//!
//! Layout, chosen for the per-fix queries (see `query.rs`):
//! - one "containment" R-tree of everything that can contain a point, by bounding box:
//!   each polygon of a (Multi)Polygon, each circle, and each corridor segment with its
//!   box grown by the half-width (a route is many short segments, so the box of the
//!   whole route would be useless); then an exact test (a [`PreparedPolygon`], a
//!   distance). One walk answers `containing`, which is most of the per-fix work;
//! - one R-tree of all corridor segments with tight boxes for nearest-route searches,
//!   plus one small R-tree per route so that "distance to this permit's routes" does
//!   not wade through the city's other corridors.

use std::collections::HashMap;
use std::path::Path;

use geo::LinesIter;
use rstar::RTree;

use super::geometry::build_shape;
use super::load::{self, FeatureSpec, FenceError};
use super::model::{Fence, FenceIdx, FenceKind, Shape};
use super::pip::PreparedPolygon;
use super::projection::{PlanePoint, Projection};
use super::tree::{env32, HitGeom, HitInfo, HitLeaf, HitTree, SegEntry, SegTree, P2};

/// The fences in force: immutable, `Send + Sync`, shared behind an `Arc` and replaced
/// whole on reload (see [`FenceHandle`](super::FenceHandle)).
#[derive(Debug)]
pub struct FenceSet {
    pub(crate) fences: Vec<Fence>,
    pub(crate) by_id: HashMap<String, FenceIdx>,
    pub(crate) projection: Projection,
    pub(crate) hits: HitTree,
    /// The same leaves split by kind, for `areas_crossed` (which asks about one kind).
    pub(crate) hits_by_kind: [HitTree; 5],
    pub(crate) hit_info: Vec<HitInfo>,
    /// Prepared polygons, in the containment tree's leaf order (see [`pack`]).
    pub(crate) polys: Vec<PreparedPolygon>,
    pub(crate) segments: SegTree,
    /// Per fence: its own segment tree (routes only).
    pub(crate) route_trees: Vec<Option<SegTree>>,
    /// The file versions this set was read from (`load_dir` only), taken before
    /// reading so that a change during the read triggers another reload.
    pub(crate) source: Option<load::Fingerprint>,
}

impl FenceSet {
    /// An empty set (no fences): every query answers "nothing".
    pub fn empty() -> FenceSet {
        FenceSet::build(Vec::new()).unwrap_or_else(|_| unreachable!("an empty set always builds"))
    }

    /// Loads every `*.geojson` in `dir` (not recursive). An empty directory gives an
    /// empty set; a bad file refuses the whole load with an error naming the file, the
    /// feature and the reason.
    pub fn load_dir(dir: &Path) -> Result<FenceSet, FenceError> {
        let source = load::dir_fingerprint(dir);
        let mut set = FenceSet::build(load::read_dir(dir)?)?;
        set.source = Some(source);
        Ok(set)
    }

    /// Builds a set from GeoJSON features (tests, benches, or fences from elsewhere).
    /// `source` labels the features in error messages, like a file name.
    pub fn from_features(
        source: &str,
        features: impl IntoIterator<Item = geojson::Feature>,
    ) -> Result<FenceSet, FenceError> {
        let specs = features
            .into_iter()
            .enumerate()
            .map(|(i, f)| load::parse_feature(source, i, f))
            .collect::<Result<Vec<_>, _>>()?;
        FenceSet::build(specs)
    }

    /// Builds a set from the text of one GeoJSON file.
    pub fn from_geojson_str(source: &str, text: &str) -> Result<FenceSet, FenceError> {
        FenceSet::build(load::parse_file(source, text)?)
    }

    fn build(specs: Vec<FeatureSpec>) -> Result<FenceSet, FenceError> {
        let mut by_id: HashMap<String, FenceIdx> = HashMap::with_capacity(specs.len());
        for (i, s) in specs.iter().enumerate() {
            if let Some(prev) = by_id.insert(s.id.clone(), FenceIdx(i as u32)) {
                let first = &specs[prev.index()].file;
                return Err(FenceError::feature(
                    &s.file,
                    &s.id,
                    format!("duplicate id (already defined in {first})"),
                ));
            }
        }
        let projection = projection_for(&specs);
        let mut fences = Vec::with_capacity(specs.len());
        let mut hits = Vec::new();
        let mut polys = Vec::new();
        let mut all_segments = Vec::new();
        let mut route_trees = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let idx = FenceIdx(i as u32);
            let shape = build_shape(&projection, &spec.geom, spec.half_width_m)
                .map_err(|reason| FenceError::feature(&spec.file, &spec.id, reason))?;
            let mut route_tree = None;
            match &shape {
                Shape::Area(mp) => {
                    for poly in &mp.0 {
                        let prepared = PreparedPolygon::new(poly);
                        let (min, max) = prepared.bbox();
                        hits.push((
                            [min.x, min.y],
                            [max.x, max.y],
                            HitInfo {
                                fence: idx,
                                kind: spec.kind,
                                geom: HitGeom::Poly(polys.len() as u32),
                            },
                        ));
                        polys.push(prepared);
                    }
                }
                Shape::Circle { centre, radius_m } => hits.push((
                    [centre.x - radius_m, centre.y - radius_m],
                    [centre.x + radius_m, centre.y + radius_m],
                    HitInfo {
                        fence: idx,
                        kind: spec.kind,
                        geom: HitGeom::Circle {
                            centre: [centre.x, centre.y],
                            radius: *radius_m,
                        },
                    },
                )),
                Shape::Corridor {
                    lines,
                    half_width_m,
                } => {
                    let segs: Vec<SegEntry> = lines
                        .lines_iter()
                        .filter(|l| l.start != l.end)
                        .map(|l| SegEntry {
                            a: [l.start.x, l.start.y],
                            b: [l.end.x, l.end.y],
                            fence: idx,
                            hw2: half_width_m * half_width_m,
                        })
                        .collect();
                    hits.extend(segs.iter().map(|s| {
                        (
                            [
                                s.a[0].min(s.b[0]) - half_width_m,
                                s.a[1].min(s.b[1]) - half_width_m,
                            ],
                            [
                                s.a[0].max(s.b[0]) + half_width_m,
                                s.a[1].max(s.b[1]) + half_width_m,
                            ],
                            HitInfo {
                                fence: idx,
                                kind: spec.kind,
                                geom: HitGeom::Capsule {
                                    a: s.a,
                                    b: s.b,
                                    hw2: s.hw2,
                                },
                            },
                        )
                    }));
                    all_segments.extend_from_slice(&segs);
                    route_tree = Some(RTree::bulk_load(segs));
                }
            }
            route_trees.push(route_tree);
            fences.push(Fence {
                id: spec.id,
                kind: spec.kind,
                name: spec.name,
                half_width_m: spec.half_width_m,
                speed_limit_kmh: spec.speed_limit_kmh,
                radius_m: spec.radius_m,
                schedule: spec.schedule,
                file: spec.file,
                shape,
                raw: spec.geom,
                feature: spec.feature,
            });
        }
        let (hits, hit_info, polys) = pack(hits, polys);
        let hits_by_kind = FenceKind::ALL.map(|kind| {
            let leaves = hits
                .iter()
                .filter(|l| hit_info[l.slot as usize].kind == kind)
                .copied();
            RTree::bulk_load_with_params(leaves.collect())
        });
        Ok(FenceSet {
            fences,
            by_id,
            projection,
            hits,
            hit_info,
            hits_by_kind,
            polys,
            segments: RTree::bulk_load(all_segments),
            route_trees,
            source: None,
        })
    }

    pub fn len(&self) -> usize {
        self.fences.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fences.is_empty()
    }

    /// Handle of the fence with this id.
    pub fn get(&self, id: &str) -> Option<FenceIdx> {
        self.by_id.get(id).copied()
    }

    /// The fence behind a handle from this set. Panics on a handle from another set
    /// that is out of range (a programming error, never input-driven).
    pub fn fence(&self, idx: FenceIdx) -> &Fence {
        &self.fences[idx.index()]
    }

    /// All fences with their handles, in load order (files by name, then file order).
    pub fn iter(&self) -> impl Iterator<Item = (FenceIdx, &Fence)> {
        self.fences
            .iter()
            .enumerate()
            .map(|(i, f)| (FenceIdx(i as u32), f))
    }

    /// Number of fences of one kind.
    pub fn count(&self, kind: FenceKind) -> usize {
        self.fences.iter().filter(|f| f.kind == kind).count()
    }

    /// The plane of this set (origin at the centre of the loaded fences).
    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    /// WGS-84 degrees to this set's plane (metres).
    #[inline]
    pub fn project(&self, lat: f64, lon: f64) -> PlanePoint {
        self.projection.project(lat, lon)
    }

    /// Back from the plane to WGS-84 `(lat, lon)`.
    pub fn unproject(&self, p: PlanePoint) -> (f64, f64) {
        self.projection.unproject(p)
    }

    /// FeatureCollection of the loaded fences as they were read (WGS-84 geometry and
    /// all properties), for `GET /api/v1/geofences`.
    pub fn to_geojson(&self) -> serde_json::Value {
        let fc = geojson::FeatureCollection::new(self.fences.iter().map(|f| f.feature.clone()));
        serde_json::to_value(&fc).unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}))
    }
}

/// Builds the containment tree and lays the leaves' geometry out in the tree's own
/// (spatially sorted) order, so that the few entries one query looks at sit next to
/// each other in memory: the walk is bound by cache misses, and this saves several
/// per fix on a large city.
fn pack(
    hits: Vec<(P2, P2, HitInfo)>,
    polys: Vec<PreparedPolygon>,
) -> (HitTree, Vec<HitInfo>, Vec<PreparedPolygon>) {
    let leaves = hits.iter().enumerate().map(|(i, (min, max, _))| HitLeaf {
        env: env32(*min, *max),
        slot: i as u32,
    });
    let mut tree: HitTree = RTree::bulk_load_with_params(leaves.collect());
    let mut order = Vec::with_capacity(hits.len());
    for (k, leaf) in tree.iter_mut().enumerate() {
        order.push(leaf.slot as usize);
        leaf.slot = k as u32;
    }
    let mut packed_polys = Vec::with_capacity(polys.len());
    let info = order
        .into_iter()
        .map(|o| {
            let mut h = hits[o].2.clone();
            if let HitGeom::Poly(i) = &mut h.geom {
                // a fresh copy, so the edge lists are allocated in this order too
                packed_polys.push(polys[*i as usize].clone());
                *i = (packed_polys.len() - 1) as u32;
            }
            h
        })
        .collect();
    (tree, info, packed_polys)
}

/// Plane centred on the loaded fences (or on 0,0 for an empty set, where nothing is
/// ever inside anything).
fn projection_for(specs: &[FeatureSpec]) -> Projection {
    let (mut min_lon, mut min_lat, mut max_lon, mut max_lat) =
        (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for [lon, lat] in specs.iter().flat_map(|s| s.geom.positions()) {
        min_lon = min_lon.min(lon);
        max_lon = max_lon.max(lon);
        min_lat = min_lat.min(lat);
        max_lat = max_lat.max(lat);
    }
    if min_lon > max_lon {
        return Projection::new(0.0, 0.0);
    }
    Projection::for_bbox(min_lon, min_lat, max_lon, max_lat)
}
