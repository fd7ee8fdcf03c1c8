//! WGS-84 <-> local metric plane (transverse Mercator, Gauss-Krüger, scale 1 on
//! the central meridian).
//!
//! Why transverse Mercator and not a cheap equirectangular plane: the rules compare
//! distances against half-widths of tens of metres, and an equirectangular plane on a
//! sphere is already off by metres a few kilometres from its origin. Transverse
//! Mercator on the WGS-84 ellipsoid is conformal, so the only distortion is a scale
//! factor `k ≈ 1 + x²/(2R²)`, i.e. 31 ppm at 50 km from the central meridian: a pair of
//! points 10 km apart 50 km off the meridian is off by ~0.3 m, a city-sized area by
//! millimetres. The series are Krüger's in the form of Karney (2011), "Transverse
//! Mercator with an accuracy of a few nanometers", to sixth order in n, which is exact
//! to well under a millimetre within thousands of kilometres of the meridian.

/// A point of the local plane, in metres east (`x`) and north (`y`) of the projection
/// origin. Only meaningful together with the [`Projection`] (hence the `FenceSet`)
/// that produced it: after a reload, project again.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PlanePoint {
    pub x: f64,
    pub y: f64,
}

impl PlanePoint {
    pub const fn new(x: f64, y: f64) -> Self {
        PlanePoint { x, y }
    }

    /// Euclidean distance in metres.
    pub fn distance(self, other: PlanePoint) -> f64 {
        (self.x - other.x).hypot(self.y - other.y)
    }

    pub fn is_finite(self) -> bool {
        self.x.is_finite() && self.y.is_finite()
    }
}

impl From<PlanePoint> for geo::Coord<f64> {
    fn from(p: PlanePoint) -> Self {
        geo::Coord { x: p.x, y: p.y }
    }
}

impl From<geo::Coord<f64>> for PlanePoint {
    fn from(c: geo::Coord<f64>) -> Self {
        PlanePoint { x: c.x, y: c.y }
    }
}

impl From<PlanePoint> for [f64; 2] {
    fn from(p: PlanePoint) -> Self {
        [p.x, p.y]
    }
}

const A: f64 = 6_378_137.0; // WGS-84 semi-major axis, metres
const F: f64 = 1.0 / 298.257_223_563; // WGS-84 flattening

/// Ellipsoid constants derived once per projection (cheap; kept per instance so that
/// the struct stays `Copy` and needs no lazy statics).
#[derive(Debug, Clone, Copy)]
struct Series {
    /// e, first eccentricity
    e: f64,
    /// rectifying radius A = a/(1+n)(1 + n²/4 + n⁴/64 + n⁶/256)
    rect: f64,
    alpha: [f64; 6],
    beta: [f64; 6],
}

impl Series {
    fn wgs84() -> Series {
        let n = F / (2.0 - F);
        let (n2, n3) = (n * n, n * n * n);
        let (n4, n5, n6) = (n2 * n2, n2 * n3, n3 * n3);
        let alpha = [
            n / 2.0 - 2.0 / 3.0 * n2 + 5.0 / 16.0 * n3 + 41.0 / 180.0 * n4 - 127.0 / 288.0 * n5
                + 7891.0 / 37800.0 * n6,
            13.0 / 48.0 * n2 - 3.0 / 5.0 * n3 + 557.0 / 1440.0 * n4 + 281.0 / 630.0 * n5
                - 1983433.0 / 1935360.0 * n6,
            61.0 / 240.0 * n3 - 103.0 / 140.0 * n4
                + 15061.0 / 26880.0 * n5
                + 167603.0 / 181440.0 * n6,
            49561.0 / 161280.0 * n4 - 179.0 / 168.0 * n5 + 6601661.0 / 7257600.0 * n6,
            34729.0 / 80640.0 * n5 - 3418889.0 / 1995840.0 * n6,
            212378941.0 / 319334400.0 * n6,
        ];
        let beta = [
            n / 2.0 - 2.0 / 3.0 * n2 + 37.0 / 96.0 * n3 - 1.0 / 360.0 * n4 - 81.0 / 512.0 * n5
                + 96199.0 / 604800.0 * n6,
            n2 / 48.0 + n3 / 15.0 - 437.0 / 1440.0 * n4 + 46.0 / 105.0 * n5
                - 1118711.0 / 3870720.0 * n6,
            17.0 / 480.0 * n3 - 37.0 / 840.0 * n4 - 209.0 / 4480.0 * n5 + 5569.0 / 90720.0 * n6,
            4397.0 / 161280.0 * n4 - 11.0 / 504.0 * n5 - 830251.0 / 7257600.0 * n6,
            4583.0 / 161280.0 * n5 - 108847.0 / 3991680.0 * n6,
            20648693.0 / 638668800.0 * n6,
        ];
        Series {
            e: (F * (2.0 - F)).sqrt(),
            rect: A / (1.0 + n) * (1.0 + n2 / 4.0 + n4 / 64.0 + n6 / 256.0),
            alpha,
            beta,
        }
    }

    /// Conformal latitude tangent τ' from geographic latitude tangent τ.
    fn tau_prime(&self, tau: f64) -> f64 {
        let sigma = (self.e * (self.e * tau / tau.hypot(1.0)).atanh()).sinh();
        tau * sigma.hypot(1.0) - sigma * tau.hypot(1.0)
    }

    /// Forward projection relative to the central meridian: (easting, northing from the
    /// equator), metres.
    fn forward(&self, lat_deg: f64, dlon_deg: f64) -> (f64, f64) {
        let tau = lat_deg.to_radians().tan();
        let lam = dlon_deg.to_radians();
        let tp = self.tau_prime(tau);
        let xi_p = tp.atan2(lam.cos());
        let eta_p = (lam.sin() / tp.hypot(lam.cos())).asinh();
        let (mut xi, mut eta) = (xi_p, eta_p);
        for (j, a) in self.alpha.iter().enumerate() {
            let k = 2.0 * (j as f64 + 1.0);
            xi += a * (k * xi_p).sin() * (k * eta_p).cosh();
            eta += a * (k * xi_p).cos() * (k * eta_p).sinh();
        }
        (self.rect * eta, self.rect * xi)
    }

    /// Inverse of [`Series::forward`]: (latitude, longitude offset), degrees.
    fn inverse(&self, x: f64, y: f64) -> (f64, f64) {
        let xi = y / self.rect;
        let eta = x / self.rect;
        let (mut xi_p, mut eta_p) = (xi, eta);
        for (j, b) in self.beta.iter().enumerate() {
            let k = 2.0 * (j as f64 + 1.0);
            xi_p -= b * (k * xi).sin() * (k * eta).cosh();
            eta_p -= b * (k * xi).cos() * (k * eta).sinh();
        }
        let tp = xi_p.sin() / eta_p.sinh().hypot(xi_p.cos());
        let lam = eta_p.sinh().atan2(xi_p.cos());
        // Newton iteration for τ from τ' (Karney 2011, eqs 19-21); converges in 2-3 steps.
        let e2m = 1.0 - self.e * self.e;
        let mut tau = tp;
        for _ in 0..5 {
            let tpi = self.tau_prime(tau);
            let dtau =
                (tp - tpi) / tpi.hypot(1.0) * (1.0 + e2m * tau * tau) / (e2m * tau.hypot(1.0));
            tau += dtau;
            if dtau.abs() < 1e-14 * tau.abs().max(1.0) {
                break;
            }
        }
        (tau.atan().to_degrees(), lam.to_degrees())
    }
}

/// A transverse Mercator plane centred on (`lat0`, `lon0`): the central meridian is
/// `lon0` and `(lat0, lon0)` maps to (0, 0).
///
/// ```
/// use muckwatch::geofence::Projection;
/// let p = Projection::new(33.4, 120.15);
/// let a = p.project(33.4, 120.15);
/// assert!(a.x.abs() < 1e-9 && a.y.abs() < 1e-9);
/// let b = p.project(33.5, 120.15); // 0.1° north: about 11.09 km
/// assert!((b.y - 11_090.0).abs() < 10.0);
/// let (lat, lon) = p.unproject(b);
/// assert!((lat - 33.5).abs() < 1e-10 && (lon - 120.15).abs() < 1e-10);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Projection {
    lat0: f64,
    lon0: f64,
    northing0: f64,
    series: Series,
}

impl Projection {
    pub fn new(lat0: f64, lon0: f64) -> Projection {
        let series = Series::wgs84();
        let (_, northing0) = series.forward(lat0, 0.0);
        Projection {
            lat0,
            lon0,
            northing0,
            series,
        }
    }

    /// The projection for a set of fences: origin at the centre of their bounding box,
    /// rounded to 0.1° so that editing one fence does not move the plane of the whole
    /// city (keeps numbers in logs and tests stable across reloads). The rounding moves
    /// the origin by at most ~6 km, which costs nothing measurable in accuracy.
    pub fn for_bbox(min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> Projection {
        let round = |v: f64| (v * 10.0).round() / 10.0;
        Projection::new(
            round((min_lat + max_lat) / 2.0),
            round((min_lon + max_lon) / 2.0),
        )
    }

    pub fn origin(&self) -> (f64, f64) {
        (self.lat0, self.lon0)
    }

    /// WGS-84 degrees -> plane metres. Not finite for points 90° or more of longitude
    /// away from the central meridian (callers treat those as "outside everything").
    pub fn project(&self, lat: f64, lon: f64) -> PlanePoint {
        let mut dlon = lon - self.lon0;
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        let (x, y) = self.series.forward(lat, dlon);
        PlanePoint {
            x,
            y: y - self.northing0,
        }
    }

    /// Plane metres -> WGS-84 degrees `(lat, lon)`.
    pub fn unproject(&self, p: PlanePoint) -> (f64, f64) {
        let (lat, dlon) = self.series.inverse(p.x, p.y + self.northing0);
        let mut lon = self.lon0 + dlon;
        if lon > 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        (lat, lon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_is_exact_to_micrometres() {
        let p = Projection::new(33.4, 120.15);
        for &(lat, lon) in &[
            (33.4, 120.15),
            (33.0, 119.6),
            (33.9, 120.7),
            (-10.0, 125.0),
            (60.0, 100.0),
        ] {
            let q = p.project(lat, lon);
            let (lat2, lon2) = p.unproject(q);
            assert!((lat - lat2).abs() < 1e-10, "{lat} {lat2}");
            assert!((lon - lon2).abs() < 1e-10, "{lon} {lon2}");
        }
    }

    #[test]
    fn equator_scale_matches_known_values() {
        // 1° of longitude on the equator along the central meridian's normal: UTM tables
        // give easting 111_319.49 * (1 + small) ; northing of 10° latitude on the meridian
        // is the meridian arc 1_105_854.83 m.
        let p = Projection::new(0.0, 0.0);
        let q = p.project(10.0, 0.0);
        assert!((q.y - 1_105_854.833).abs() < 0.01, "{}", q.y);
        assert!(q.x.abs() < 1e-9);
    }
}
