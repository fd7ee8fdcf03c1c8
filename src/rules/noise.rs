//! GPS noise: how far each terminal's fixes stray, learnt from its own track, and the
//! confidence tests that keep noise from being fined.
//!
//! A city's street canyons put fixes 20-40 m from the truck. A rule that reads each raw
//! fix (outside the corridor? inside the 30 km/h zone?) then fines noise. So:
//!
//! - [`NoiseEstimate`]: per vehicle, the residual of each fix against where the track
//!   before it says the truck should be: the previous fix moved on by the reported
//!   (Doppler) speed and heading, or not at all for a standing truck, or, without a
//!   heading, by the velocity of the two fixes before. For white noise of σ per axis
//!   the residual (scaled to the difference of two fixes) is 2-D normal with σ√2 per
//!   axis, so its mean length is σ√π. A weighted mean of the lengths (the last
//!   `noise_window` or so; each clipped at three times the current mean, so that a
//!   bend the prediction misses is not taken for noise) gives σ. `gps_sigma_prior_m`
//!   stands in until the track has said enough, and a track noisier than the prior
//!   counts as noisy at once. JSON terminals report no HDOP or satellite count; a
//!   JT/T 808 profile that maps them could feed the same estimate.
//! - Evidence against a fence edge must exceed the noise: ROUTE_DEVIATION raises only
//!   once the mean distance past the corridor's edge over the run's fixes exceeds
//!   `noise_z_route·σ/√n`, on top of the contract's 60 s and 3 fixes (a one-sided test;
//!   4 ≈ 99.997 %, because the fixes of a run are the ones noise put outside); a
//!   speed zone's lower limit applies only `noise_z_zone·σ` inside it. With a clean
//!   track (σ of a few metres) both come back to the contract's rules, the floor.
//!
//! What it costs: a deviation `m` metres past the edge is proven after
//! `n = (z·σ/m)²` fixes, so with the sample city's 300 m detours, or 110 m past a 40 m
//! corridor at σ = 30 m, no later than the contract's own 3 fixes; 30 m past it at
//! σ = 30 m takes 16 fixes (8 minutes at 30 s). Fixed size, no heap: a few words per
//! vehicle.
//!
//! Limits: the simulator's noise is white; real multipath wanders for tens of seconds,
//! which residuals between consecutive fixes under-estimate. A projection change (a
//! reload that moves the plane's origin) costs one clipped residual.

use crate::fix::Fix;
use crate::geofence::PlanePoint;

use super::RulesConfig;

/// Mean length of a 2-D residual between two fixes with σ = 1 per axis: √π.
const RESIDUAL_PER_SIGMA: f64 = 1.772_453_850_905_516;
/// Pairs further apart than this say more about the road than about the terminal.
const MAX_PAIR_S: f64 = 120.0;
/// Pairs whose headings differ by more than this (a turn) are not used.
const MAX_TURN_DEG: f64 = 45.0;
/// Below this reported speed (km/h) a truck is standing: it should not move.
const STANDING_KMH: f64 = 1.0;

/// One terminal's noise, learnt from its track.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct NoiseEstimate {
    /// Weighted mean residual length, metres (meaningful once `samples > 0`).
    mean_residual_m: f64,
    samples: u32,
    /// What the previous fix reported (for the prediction).
    prev_speed_kmh: f32,
    prev_heading: Option<f32>,
    /// The last two fixes (plane point, time) of an unbroken track.
    prev: Option<(PlanePoint, i64)>,
    prev2: Option<(PlanePoint, i64)>,
}

impl NoiseEstimate {
    /// σ per axis, metres, never below `gps_sigma_min_m`. Erring on the side of the
    /// truck: a track noisier than the prior counts as noisy at once, a cleaner one
    /// only as its residuals outweigh the prior (`noise_prior_weight` of them).
    pub fn sigma_m(&self, config: &RulesConfig) -> f64 {
        let prior = config.gps_sigma_prior_m;
        let sigma = if self.samples == 0 {
            prior
        } else {
            let learnt = self.mean_residual_m / RESIDUAL_PER_SIGMA;
            let (n, w) = (f64::from(self.samples), config.noise_prior_weight);
            learnt.max((learnt * n + prior * w) / (n + w))
        };
        sigma.max(config.gps_sigma_min_m)
    }

    /// Learns from this fix (at `p` in the plane) against the ones before it, then
    /// remembers it. `continuous`: no silence since the previous fix (see
    /// `Observation::continuous`); after one, the track starts over.
    pub fn observe(&mut self, config: &RulesConfig, p: PlanePoint, fix: &Fix, continuous: bool) {
        if !continuous {
            self.prev = None;
        }
        if let Some(r) = self.residual(p, fix) {
            self.learn(r, config);
        }
        self.prev2 = self.prev;
        self.prev = Some((p, fix.ts_ms));
        self.prev_speed_kmh = fix.speed_kmh as f32;
        self.prev_heading = fix.heading.map(|h| h as f32);
    }

    /// How far the fix is from where the track before it says the truck should be,
    /// scaled to the spread of the difference of two fixes (σ√2 per axis).
    fn residual(&self, p: PlanePoint, fix: &Fix) -> Option<f64> {
        let (prev_p, prev_ts) = self.prev?;
        let dt = (fix.ts_ms - prev_ts) as f64 / 1000.0;
        if !(dt > 0.0 && dt <= MAX_PAIR_S) {
            return None;
        }
        let (v0, v1) = (f64::from(self.prev_speed_kmh), fix.speed_kmh);
        let (dx, dy) = (p.x - prev_p.x, p.y - prev_p.y);
        let r = if v0 < STANDING_KMH && v1 < STANDING_KMH {
            // standing: the truck should not have moved at all
            dx.hypot(dy)
        } else if let (Some(h0), Some(h1)) = (self.prev_heading, fix.heading) {
            // the reported (Doppler) velocities, averaged over the step
            let h0 = f64::from(h0);
            let turn = (h1 - h0).rem_euclid(360.0);
            if turn.min(360.0 - turn) > MAX_TURN_DEG {
                return None;
            }
            let (s0, c0) = h0.to_radians().sin_cos();
            let (s1, c1) = h1.to_radians().sin_cos();
            let k = dt / 3.6 / 2.0;
            (dx - k * (v0 * s0 + v1 * s1)).hypot(dy - k * (v0 * c0 + v1 * c1))
        } else {
            // no heading: constant velocity from the two fixes before
            let (p2, t2) = self.prev2?;
            let dt0 = (prev_ts - t2) as f64 / 1000.0;
            if !(dt0 > 0.0 && dt0 <= MAX_PAIR_S) {
                return None;
            }
            let k = dt / dt0;
            let (ex, ey) = (dx - k * (prev_p.x - p2.x), dy - k * (prev_p.y - p2.y));
            // p - (1+k)·p1 + k·p2 has (1 + (1+k)² + k²)·σ² per axis
            ex.hypot(ey) / ((1.0 + (1.0 + k).powi(2) + k * k) / 2.0).sqrt()
        };
        r.is_finite().then_some(r)
    }

    fn learn(&mut self, r: f64, config: &RulesConfig) {
        let current = self.sigma_m(config) * RESIDUAL_PER_SIGMA;
        let r = r.min(3.0 * current);
        let window = f64::from(config.noise_window.max(1));
        let alpha = (1.0 / (f64::from(self.samples) + 1.0)).max(1.0 / window);
        self.mean_residual_m = if self.samples == 0 {
            r
        } else {
            self.mean_residual_m + alpha * (r - self.mean_residual_m)
        };
        self.samples = self.samples.saturating_add(1);
    }
}

/// The fixes of a run outside a fence, summed: enough to test whether the truck's
/// mean position is outside by more than the noise.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct RunEvidence {
    pub fixes: u32,
    /// Sum of the metres by which each fix is past the edge.
    pub sum_excess_m: f64,
    /// Sum of the measured values (distance from the centre line).
    pub sum_value: f64,
}

impl RunEvidence {
    pub fn add(&mut self, excess_m: f64, value: f64) {
        self.fixes = self.fixes.saturating_add(1);
        self.sum_excess_m += excess_m;
        self.sum_value += value;
    }

    /// Half-width of the one-sided band of a mean of `fixes` fixes.
    pub fn band_m(&self, z: f64, sigma_m: f64) -> f64 {
        z * sigma_m / f64::from(self.fixes.max(1)).sqrt()
    }

    /// The mean excess is past the edge by more than the noise allows by chance.
    pub fn proven(&self, z: f64, sigma_m: f64) -> bool {
        self.fixes > 0 && self.sum_excess_m / f64::from(self.fixes) > self.band_m(z, sigma_m)
    }

    pub fn mean_value(&self) -> f64 {
        self.sum_value / f64::from(self.fixes.max(1))
    }
}

/// One-sided confidence of a z threshold (the standard normal CDF at z), for evidence.
pub(crate) fn confidence(z: f64) -> f64 {
    // Abramowitz & Stegun 7.1.26 erf, |error| < 1.5e-7: plenty for a label.
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    let erf = if x >= 0.0 { y } else { -y };
    0.5 * (1.0 + erf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::DeviceId;
    use crate::sim::noise::Rng;

    fn fix(ts_ms: i64, speed_kmh: f64, heading: Option<f64>) -> Fix {
        Fix {
            device_id: DeviceId::parse("T-1").expect("id"),
            ts_ms,
            lat: 0.0,
            lon: 0.0,
            speed_kmh,
            heading,
            acc: Some(true),
            tipper_up: None,
            cover_closed: None,
            load_t: None,
        }
    }

    /// σ learnt from 200 fixes of a truck driving north-east at 36 km/h, a fix every
    /// `every_s`, each off by `sigma` per axis.
    fn learnt(sigma: f64, every_s: i64, heading: bool, seed: u64) -> f64 {
        let config = RulesConfig::default();
        let mut rng = Rng::new(seed);
        let mut est = NoiseEstimate::default();
        let step = 10.0 * every_s as f64 / std::f64::consts::SQRT_2;
        for i in 0..200 {
            let t = i as f64 * step;
            let p = PlanePoint::new(t + sigma * rng.normal(), t + sigma * rng.normal());
            let f = fix(i * every_s * 1000, 36.0, heading.then_some(45.0));
            est.observe(&config, p, &f, true);
        }
        est.sigma_m(&config)
    }

    #[test]
    fn learns_a_terminals_noise_from_its_track_with_or_without_heading() {
        for (sigma, every_s) in [(8.0, 10), (30.0, 30), (40.0, 30)] {
            for heading in [true, false] {
                let got = learnt(sigma, every_s, heading, 7);
                assert!(
                    (got - sigma).abs() < 0.2 * sigma,
                    "σ {sigma}, heading {heading}: learnt {got}"
                );
            }
        }
        // a clean track comes down to the floor, below the prior
        let clean = learnt(0.0, 10, true, 1);
        assert_eq!(clean, RulesConfig::default().gps_sigma_min_m);
    }

    #[test]
    fn a_silence_starts_the_track_over_and_a_parked_truck_still_teaches() {
        let config = RulesConfig::default();
        let mut est = NoiseEstimate::default();
        let mut rng = Rng::new(3);
        for i in 0..100 {
            let p = PlanePoint::new(20.0 * rng.normal(), 20.0 * rng.normal());
            // standing, no heading reported: where it stands is all there is
            est.observe(&config, p, &fix(i * 30_000, 0.0, None), i % 10 != 0);
        }
        let got = est.sigma_m(&config);
        assert!((got - 20.0).abs() < 4.0, "{got}");
    }

    #[test]
    fn run_evidence_needs_the_mean_past_the_edge_to_beat_the_noise() {
        let mut run = RunEvidence::default();
        run.add(20.0, 60.0);
        run.add(30.0, 70.0);
        run.add(25.0, 65.0);
        // 25 m past on average: z·σ/√3 is 17 m at σ = 10, 69 m at σ = 30
        assert!(run.proven(3.0, 10.0));
        assert!(!run.proven(4.0, 30.0));
        assert_eq!(run.mean_value(), 65.0);
        assert!(!RunEvidence::default().proven(0.0, 30.0));
        assert!((confidence(3.0) - 0.998_65).abs() < 1e-4);
        assert!((confidence(0.0) - 0.5).abs() < 1e-6);
        assert!((confidence(4.0) - 0.999_968).abs() < 1e-5);
    }
}
