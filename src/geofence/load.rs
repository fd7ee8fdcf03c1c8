//! Reading `geofences/*.geojson`: files -> features -> [`FeatureSpec`]s whose
//! properties are parsed into types (kind, schedule, widths) and whose coordinates are
//! checked (finite, in range, closed rings). Geometry that needs the plane (ring
//! self-intersections, holes) is checked when the set is built, see `geometry.rs`.
//!
//! Every refusal is a [`FenceError`] naming the file, the feature and the reason, so an
//! admin who edits a file sees at once what to fix; one bad feature refuses the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use geojson::{Feature, GeoJson, GeometryValue, Position};
use serde_json::{Map, Value};

use super::model::{FenceKind, DEFAULT_HALF_WIDTH_M};
use super::schedule::Schedule;

/// Why a set of fences was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct FenceError {
    /// The file (path as found in the directory), or a label such as `<memory>`.
    pub file: String,
    /// The feature's id, or `#N` (1-based position) when it has none; `None` for errors
    /// about the whole file (unreadable, not GeoJSON).
    pub feature: Option<String>,
    pub reason: String,
}

impl fmt::Display for FenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.feature {
            Some(id) => write!(f, "{}: feature {}: {}", self.file, id, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

impl std::error::Error for FenceError {}

impl FenceError {
    pub(crate) fn file(file: &str, reason: impl Into<String>) -> FenceError {
        FenceError {
            file: file.to_string(),
            feature: None,
            reason: reason.into(),
        }
    }
    pub(crate) fn feature(file: &str, feature: &str, reason: impl Into<String>) -> FenceError {
        FenceError {
            file: file.to_string(),
            feature: Some(feature.to_string()),
            reason: reason.into(),
        }
    }
}

/// Longitude/latitude pair in degrees, as in GeoJSON (`[lon, lat]`).
pub(crate) type LonLat = [f64; 2];

/// Geometry as read, in WGS-84. Rings keep their closing position.
#[derive(Debug, Clone)]
pub(crate) enum RawGeom {
    /// polygons -> rings (first = exterior) -> positions
    Polygons(Vec<Vec<Vec<LonLat>>>),
    Lines(Vec<Vec<LonLat>>),
    Circle(LonLat, f64),
}

impl RawGeom {
    pub(crate) fn positions(&self) -> Box<dyn Iterator<Item = LonLat> + '_> {
        match self {
            RawGeom::Polygons(p) => Box::new(p.iter().flatten().flatten().copied()),
            RawGeom::Lines(l) => Box::new(l.iter().flatten().copied()),
            RawGeom::Circle(c, _) => Box::new(std::iter::once(*c)),
        }
    }
}

/// A feature whose properties and coordinates passed the checks of this module.
#[derive(Debug, Clone)]
pub(crate) struct FeatureSpec {
    pub id: String,
    pub kind: FenceKind,
    pub name: String,
    pub half_width_m: Option<f64>,
    pub speed_limit_kmh: Option<f64>,
    pub radius_m: Option<f64>,
    pub schedule: Option<Schedule>,
    pub file: String,
    pub geom: RawGeom,
    pub feature: Feature,
}

/// The `*.geojson` files of `dir`, sorted by name (deterministic load order and
/// messages). Subdirectories (e.g. `tools/`) and other files are ignored.
pub(crate) fn geojson_files(dir: &Path) -> Result<Vec<PathBuf>, FenceError> {
    let label = dir.display().to_string();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| FenceError::file(&label, format!("cannot read geofence directory: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| FenceError::file(&label, format!("cannot list directory: {e}")))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "geojson") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// What identifies a directory's fence files cheaply: each `*.geojson` with its mtime
/// and length (the length catches rewrites within one mtime tick on coarse clocks), or
/// the error listing the directory.
pub(crate) type Fingerprint = Result<Vec<(PathBuf, Option<SystemTime>, u64)>, String>;

pub(crate) fn dir_fingerprint(dir: &Path) -> Fingerprint {
    let files = geojson_files(dir).map_err(|e| e.to_string())?;
    Ok(files
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let mtime = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (p, mtime, len)
        })
        .collect())
}

/// Reads every `*.geojson` of `dir`. An empty directory gives no features (Ok).
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<FeatureSpec>, FenceError> {
    let mut specs = Vec::new();
    for path in geojson_files(dir)? {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| FenceError::file(&label, format!("cannot read: {e}")))?;
        specs.extend(parse_file(&label, &text)?);
    }
    Ok(specs)
}

/// Parses one file's text (a FeatureCollection, or a single Feature).
pub(crate) fn parse_file(label: &str, text: &str) -> Result<Vec<FeatureSpec>, FenceError> {
    let geojson: GeoJson = text
        .parse()
        .map_err(|e| FenceError::file(label, format!("not valid GeoJSON: {e}")))?;
    let features = match geojson {
        GeoJson::FeatureCollection(fc) => fc.features,
        GeoJson::Feature(f) => vec![f],
        GeoJson::Geometry(_) => {
            return Err(FenceError::file(
                label,
                "expected a FeatureCollection, found a bare Geometry",
            ))
        }
    };
    features
        .into_iter()
        .enumerate()
        .map(|(i, f)| parse_feature(label, i, f))
        .collect()
}

/// Checks one feature's properties and coordinates. `position` is 0-based.
pub(crate) fn parse_feature(
    file: &str,
    position: usize,
    feature: Feature,
) -> Result<FeatureSpec, FenceError> {
    let empty = Map::new();
    let props = feature.properties.as_ref().unwrap_or(&empty);
    let id = match props.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        None | Some(Value::Null) => match &feature.id {
            Some(geojson::feature::Id::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(geojson::feature::Id::Number(n)) => n.to_string(),
            _ => {
                return Err(FenceError::feature(
                    file,
                    &format!("#{}", position + 1),
                    "properties.id is missing",
                ))
            }
        },
        Some(_) => {
            return Err(FenceError::feature(
                file,
                &format!("#{}", position + 1),
                "properties.id must be a non-empty string",
            ))
        }
    };
    let err = |reason: String| FenceError::feature(file, &id, reason);
    let kind: FenceKind = match props.get("kind") {
        Some(Value::String(s)) => s.parse().map_err(err)?,
        _ => return Err(err("properties.kind is missing (source_site, disposal_site, route, restricted_zone or speed_zone)".into())),
    };
    let name = match props.get("name") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => id.clone(),
        Some(_) => return Err(err("properties.name must be a string".into())),
    };
    let half_width_m = positive(props, "half_width_m").map_err(err)?;
    let speed_limit_kmh = positive(props, "speed_limit_kmh").map_err(err)?;
    let radius_m = positive(props, "radius_m").map_err(err)?;
    let schedule = match props.get("schedule") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Schedule::from_json(v).map_err(err)?),
    };
    if kind == FenceKind::SpeedZone && speed_limit_kmh.is_none() {
        return Err(err("a speed_zone needs speed_limit_kmh".into()));
    }
    let value = &feature
        .geometry
        .as_ref()
        .ok_or_else(|| err("feature has no geometry".into()))?
        .value;
    let geom = parse_geometry(value, kind, radius_m).map_err(err)?;
    Ok(FeatureSpec {
        half_width_m: match kind {
            FenceKind::Route => Some(half_width_m.unwrap_or(DEFAULT_HALF_WIDTH_M)),
            _ => half_width_m,
        },
        id,
        kind,
        name,
        speed_limit_kmh,
        radius_m,
        schedule,
        file: file.to_string(),
        geom,
        feature,
    })
}

/// An optional property that, when present, must be a finite number > 0.
fn positive(props: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => Ok(Some(x)),
            _ => Err(format!("{key} must be a number greater than 0, got {v}")),
        },
    }
}

fn parse_geometry(
    value: &GeometryValue,
    kind: FenceKind,
    radius_m: Option<f64>,
) -> Result<RawGeom, String> {
    let want = if kind == FenceKind::Route {
        "LineString or MultiLineString"
    } else {
        "Polygon, MultiPolygon or Point with radius_m"
    };
    let type_name = match value {
        GeometryValue::Point { .. } => "Point",
        GeometryValue::MultiPoint { .. } => "MultiPoint",
        GeometryValue::LineString { .. } => "LineString",
        GeometryValue::MultiLineString { .. } => "MultiLineString",
        GeometryValue::Polygon { .. } => "Polygon",
        GeometryValue::MultiPolygon { .. } => "MultiPolygon",
        GeometryValue::GeometryCollection { .. } => "GeometryCollection",
    };
    let wrong = || format!("a {kind} must be a {want}, not a {type_name}");
    match (kind, value) {
        (FenceKind::Route, GeometryValue::LineString { coordinates }) => {
            Ok(RawGeom::Lines(vec![line(coordinates)?]))
        }
        (FenceKind::Route, GeometryValue::MultiLineString { coordinates }) => {
            if coordinates.is_empty() {
                return Err("MultiLineString has no lines".into());
            }
            let lines = coordinates
                .iter()
                .enumerate()
                .map(|(i, l)| line(l).map_err(|e| format!("line {i}: {e}")));
            Ok(RawGeom::Lines(lines.collect::<Result<_, _>>()?))
        }
        (FenceKind::Route, _) => Err(wrong()),
        (_, GeometryValue::Polygon { coordinates }) => {
            Ok(RawGeom::Polygons(vec![polygon(coordinates)?]))
        }
        (_, GeometryValue::MultiPolygon { coordinates }) => {
            if coordinates.is_empty() {
                return Err("MultiPolygon has no polygons".into());
            }
            let polys = coordinates
                .iter()
                .enumerate()
                .map(|(i, p)| polygon(p).map_err(|e| format!("polygon {i}: {e}")));
            Ok(RawGeom::Polygons(polys.collect::<Result<_, _>>()?))
        }
        (_, GeometryValue::Point { coordinates }) => match radius_m {
            Some(r) => Ok(RawGeom::Circle(position(coordinates)?, r)),
            None => Err("a Point fence needs radius_m (a circle of that radius)".into()),
        },
        _ => Err(wrong()),
    }
}

fn position(p: &Position) -> Result<LonLat, String> {
    match p.as_slice() {
        [lon, lat] | [lon, lat, _] | [lon, lat, _, _] => {
            if !lon.is_finite() || !lat.is_finite() {
                Err(format!("coordinate [{lon}, {lat}] is not finite"))
            } else if !(-180.0..=180.0).contains(lon) || !(-90.0..=90.0).contains(lat) {
                Err(format!(
                    "coordinate [{lon}, {lat}] is out of range (expected [lon, lat] in degrees)"
                ))
            } else {
                Ok([*lon, *lat])
            }
        }
        other => Err(format!(
            "a position needs 2 numbers [lon, lat], got {}",
            other.len()
        )),
    }
}

fn line(coords: &[Position]) -> Result<Vec<LonLat>, String> {
    let pts = coords.iter().map(position).collect::<Result<Vec<_>, _>>()?;
    if pts.len() < 2 {
        return Err(format!(
            "a LineString needs at least 2 positions, got {}",
            pts.len()
        ));
    }
    if pts.windows(2).all(|w| w[0] == w[1]) {
        return Err("the line has zero length (all positions equal)".into());
    }
    Ok(pts)
}

fn polygon(rings: &[Vec<Position>]) -> Result<Vec<Vec<LonLat>>, String> {
    if rings.is_empty() {
        return Err("polygon has no rings".into());
    }
    rings
        .iter()
        .enumerate()
        .map(|(i, ring)| {
            let role = if i == 0 {
                "exterior ring".to_string()
            } else {
                format!("hole {i}")
            };
            let pts = ring
                .iter()
                .map(position)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{role}: {e}"))?;
            if pts.len() < 4 {
                return Err(format!(
                    "{role} needs at least 4 positions (closed), got {}",
                    pts.len()
                ));
            }
            if pts.first() != pts.last() {
                return Err(format!(
                    "{role} is not closed: first and last positions differ"
                ));
            }
            Ok(pts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<FeatureSpec>, FenceError> {
        parse_file("t.geojson", text)
    }

    fn fc(props: &str, geom: &str) -> String {
        format!(
            r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{props},"geometry":{geom}}}]}}"#
        )
    }

    const SQUARE: &str = r#"{"type":"Polygon","coordinates":[[[120,33],[120.01,33],[120.01,33.01],[120,33.01],[120,33]]]}"#;

    #[test]
    fn reads_a_site() {
        let specs = parse(&fc(
            r#"{"id":"s1","kind":"source_site","name":"A"}"#,
            SQUARE,
        ))
        .expect("ok");
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].kind, FenceKind::SourceSite);
        assert_eq!(specs[0].name, "A");
    }

    #[test]
    fn route_default_half_width() {
        let g = r#"{"type":"LineString","coordinates":[[120,33],[120.01,33]]}"#;
        let specs = parse(&fc(r#"{"id":"r1","kind":"route"}"#, g)).expect("ok");
        assert_eq!(specs[0].half_width_m, Some(50.0));
        assert_eq!(specs[0].name, "r1");
    }

    #[test]
    fn errors_name_file_feature_and_reason() {
        let e = parse(&fc(r#"{"id":"z1","kind":"speed_zone"}"#, SQUARE)).expect_err("no limit");
        assert_eq!(
            e.to_string(),
            "t.geojson: feature z1: a speed_zone needs speed_limit_kmh"
        );
        let e = parse(&fc(r#"{"id":"z2","kind":"zone"}"#, SQUARE)).expect_err("bad kind");
        assert!(e.to_string().contains("unknown kind"), "{e}");
        let e = parse(&fc(r#"{"kind":"route"}"#, SQUARE)).expect_err("no id");
        assert_eq!(e.feature.as_deref(), Some("#1"));
        let unclosed = r#"{"type":"Polygon","coordinates":[[[120,33],[120.01,33],[120.01,33.01],[120,33.01]]]}"#;
        let e = parse(&fc(r#"{"id":"s","kind":"source_site"}"#, unclosed)).expect_err("unclosed");
        assert!(e.reason.contains("not closed"), "{e}");
        let e = parse(&fc(r#"{"id":"r","kind":"route"}"#, SQUARE)).expect_err("wrong type");
        assert!(e.reason.contains("route must be a LineString"), "{e}");
        let e = parse(&fc(
            r#"{"id":"c","kind":"restricted_zone"}"#,
            r#"{"type":"Point","coordinates":[120,33]}"#,
        ))
        .expect_err("no radius");
        assert!(e.reason.contains("radius_m"), "{e}");
        let e = parse(&fc(
            r#"{"id":"c","kind":"restricted_zone","radius_m":-3}"#,
            r#"{"type":"Point","coordinates":[120,33]}"#,
        ))
        .expect_err("negative radius");
        assert!(e.reason.contains("radius_m"), "{e}");
        let e = parse(&fc(
            r#"{"id":"c","kind":"source_site"}"#,
            r#"{"type":"Polygon","coordinates":[[[200,33],[120.01,33],[120.01,33.01],[200,33]]]}"#,
        ))
        .expect_err("range");
        assert!(e.reason.contains("out of range"), "{e}");
        let e = parse(r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"n","kind":"source_site"},"geometry":{"type":"Polygon","coordinates":[[[NaN,33],[1,2],[3,4],[NaN,33]]]}}]}"#)
            .expect_err("NaN is not JSON");
        assert!(e.reason.contains("not valid GeoJSON"), "{e}");
    }
}
