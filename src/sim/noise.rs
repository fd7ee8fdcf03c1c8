//! Deterministic randomness and the sensor noise the simulated terminals add.
//!
//! Everything random in the simulator comes from [`Rng`] streams derived from the run's
//! seed, one stream per truck and purpose, so that a run is reproducible bit for bit
//! and adding a truck does not change what the others do.

use crate::geofence::PlanePoint;

/// SplitMix64: tiny, fast, good enough statistically for a simulation, and with no
/// dependency whose output could change between versions (which would break
/// `--seed` reproducibility).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// An independent stream for `(seed, a, b)`, e.g. (run seed, truck, purpose).
    pub fn stream(seed: u64, a: u64, b: u64) -> Rng {
        let mut mix = Rng::new(seed);
        let x = mix.next_u64() ^ a.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut mix = Rng::new(x);
        Rng::new(mix.next_u64() ^ b.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.unit() * (hi - lo)
    }

    /// Uniform integer in [0, n); 0 when n is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.unit() * n as f64) as usize % n
        }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box-Muller; one of the pair is dropped to keep the stream simple).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// What a terminal adds to the truth before it reports.
///
/// Position: independent Gaussian error east and north with standard deviation
/// `sigma_m` per axis, fresh on every fix (white noise: consecutive fixes are not
/// correlated, which is the worst case for rules that count single fixes and the
/// kindest for rules that need a run of them). Speed: Gaussian `speed_sigma_kmh`
/// while moving, exactly 0 when standing (a terminal reports 0 from the Doppler
/// speed of a parked truck). Heading: a couple of degrees. Load: the scale's noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SensorNoise {
    pub sigma_m: f64,
    pub speed_sigma_kmh: f64,
    pub heading_sigma_deg: f64,
    pub load_sigma_t: f64,
}

impl SensorNoise {
    pub fn gps(sigma_m: f64) -> SensorNoise {
        SensorNoise {
            sigma_m: sigma_m.max(0.0),
            speed_sigma_kmh: 0.5,
            heading_sigma_deg: 2.0,
            load_sigma_t: 0.15,
        }
    }

    pub fn position(&self, rng: &mut Rng, p: PlanePoint) -> PlanePoint {
        PlanePoint::new(
            p.x + self.sigma_m * rng.normal(),
            p.y + self.sigma_m * rng.normal(),
        )
    }

    pub fn speed_kmh(&self, rng: &mut Rng, true_kmh: f64) -> f64 {
        if true_kmh <= 0.0 {
            return 0.0;
        }
        (true_kmh + self.speed_sigma_kmh * rng.normal()).clamp(0.0, 250.0)
    }

    pub fn heading_deg(&self, rng: &mut Rng, true_deg: f64) -> f64 {
        (true_deg + self.heading_sigma_deg * rng.normal()).rem_euclid(360.0)
    }

    pub fn load_t(&self, rng: &mut Rng, true_t: f64) -> f64 {
        (true_t + self.load_sigma_t * rng.normal()).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u64> = (0..5).map(|_| Rng::stream(7, 1, 2).next_u64()).collect();
        assert!(
            a.windows(2).all(|w| w[0] == w[1]),
            "same stream, same numbers"
        );
        let mut x = Rng::stream(7, 1, 2);
        let mut y = Rng::stream(7, 2, 2);
        let same = (0..100).filter(|_| x.next_u64() == y.next_u64()).count();
        assert_eq!(same, 0);
    }

    #[test]
    fn gps_noise_has_the_configured_sigma_and_no_bias() {
        let noise = SensorNoise::gps(8.0);
        let mut rng = Rng::new(42);
        let n = 50_000;
        let (mut sx, mut sxx, mut sy) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let p = noise.position(&mut rng, PlanePoint::new(100.0, -50.0));
            sx += p.x - 100.0;
            sxx += (p.x - 100.0).powi(2);
            sy += p.y + 50.0;
        }
        let mean_x = sx / n as f64;
        let sd_x = (sxx / n as f64 - mean_x * mean_x).sqrt();
        assert!(
            mean_x.abs() < 0.15 && (sy / n as f64).abs() < 0.15,
            "unbiased"
        );
        assert!((sd_x - 8.0).abs() < 0.15, "sigma per axis {sd_x}");
        assert_eq!(
            SensorNoise::gps(0.0).position(&mut rng, PlanePoint::new(1.0, 2.0)),
            PlanePoint::new(1.0, 2.0)
        );
    }

    #[test]
    fn a_standing_truck_reports_zero_speed_and_readings_stay_in_range() {
        let noise = SensorNoise::gps(8.0);
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            assert_eq!(noise.speed_kmh(&mut rng, 0.0), 0.0);
            assert!(noise.load_t(&mut rng, 0.0) >= 0.0);
            let h = noise.heading_deg(&mut rng, 359.5);
            assert!((0.0..360.0).contains(&h));
        }
    }
}
