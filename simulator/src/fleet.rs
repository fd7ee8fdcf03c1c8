//! The simulated fleet: trucks wandering the sample city at plausible speeds.

use chrono::{DateTime, Duration, FixedOffset, SecondsFormat};

/// Sample city bounds (near Yancheng).
const LAT: (f64, f64) = (33.30, 33.50);
const LON: (f64, f64) = (120.00, 120.30);

/// A small deterministic generator (SplitMix64): reproducible runs without
/// a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
}

struct Truck {
    device_id: String,
    topic_suffix: String,
    lat: f64,
    lon: f64,
    heading: f64,
    speed_kmh: f64,
    clock: DateTime<FixedOffset>,
}

pub struct Fleet {
    trucks: Vec<Truck>,
    rng: Rng,
    interval_s: i64,
    next: usize,
}

impl Fleet {
    pub fn new(n: u32, seed: u64, start: DateTime<FixedOffset>, interval_s: u32) -> Fleet {
        let mut rng = Rng::new(seed);
        let interval_s = interval_s.max(1) as i64;
        let trucks = (0..n.max(1))
            .map(|i| {
                let device_id = format!("sim{seed}-{i:05}");
                let bucket = crc32fast::hash(device_id.as_bytes()) % 64;
                Truck {
                    topic_suffix: format!("pos/{bucket:02}/{device_id}"),
                    device_id,
                    lat: rng.range(LAT.0, LAT.1),
                    lon: rng.range(LON.0, LON.1),
                    heading: rng.range(0.0, 360.0),
                    speed_kmh: rng.range(20.0, 45.0),
                    // Stagger reports across the interval, as real terminals are.
                    clock: start + Duration::milliseconds((rng.range(0.0, interval_s as f64) * 1000.0) as i64),
                }
            })
            .collect();
        Fleet { trucks, rng, interval_s, next: 0 }
    }

    /// The next message: `batch` consecutive fixes of the next truck.
    pub fn next_message(&mut self, prefix: &str, batch: usize) -> (String, String, usize) {
        let i = self.next;
        self.next = (self.next + 1) % self.trucks.len();
        let mut fixes = Vec::with_capacity(batch);
        for _ in 0..batch {
            fixes.push(self.step(i));
        }
        let truck = &self.trucks[i];
        let topic = format!("{prefix}/{}", truck.topic_suffix);
        let payload = if batch == 1 { fixes.pop().unwrap_or_default() } else { format!("[{}]", fixes.join(",")) };
        (topic, payload, batch)
    }

    /// Moves truck `i` one interval on and returns its fix as JSON.
    fn step(&mut self, i: usize) -> String {
        let turn = self.rng.range(-15.0, 15.0);
        let dv = self.rng.range(-3.0, 3.0);
        let t = &mut self.trucks[i];
        t.heading = (t.heading + turn).rem_euclid(360.0);
        t.speed_kmh = (t.speed_kmh + dv).clamp(15.0, 45.0);
        let metres = t.speed_kmh / 3.6 * self.interval_s as f64;
        let (s, c) = t.heading.to_radians().sin_cos();
        t.lat += metres * c / 111_320.0;
        t.lon += metres * s / (111_320.0 * t.lat.to_radians().cos());
        // Turn back at the edge of the city.
        if !(LAT.0..LAT.1).contains(&t.lat) || !(LON.0..LON.1).contains(&t.lon) {
            t.heading = (t.heading + 180.0).rem_euclid(360.0);
            t.lat = t.lat.clamp(LAT.0, LAT.1);
            t.lon = t.lon.clamp(LON.0, LON.1);
        }
        t.clock += Duration::seconds(self.interval_s);
        format!(
            r#"{{"device_id":"{}","ts":"{}","lat":{:.6},"lon":{:.6},"speed_kmh":{:.1},"heading":{:.0},"acc":true,"tipper_up":false,"cover_closed":true,"load_t":{:.1}}}"#,
            t.device_id,
            t.clock.to_rfc3339_opts(SecondsFormat::Secs, false),
            t.lat,
            t.lon,
            t.speed_kmh,
            t.heading,
            25.0
        )
    }

    /// The simulated time the slowest truck has reached.
    pub fn sim_time(&self) -> String {
        self.trucks
            .iter()
            .map(|t| t.clock)
            .min()
            .map(|c| c.to_rfc3339_opts(SecondsFormat::Secs, false))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_fixes() {
        let start = DateTime::parse_from_rfc3339("2021-06-01T21:00:00+08:00").unwrap();
        let mut a = Fleet::new(3, 7, start, 10);
        let mut b = Fleet::new(3, 7, start, 10);
        for _ in 0..20 {
            assert_eq!(a.next_message("p", 2), b.next_message("p", 2));
        }
    }

    #[test]
    fn fixes_stay_in_the_city_and_time_advances() {
        let start = DateTime::parse_from_rfc3339("2021-06-01T21:00:00+08:00").unwrap();
        let mut f = Fleet::new(1, 1, start, 10);
        let mut last = String::new();
        for _ in 0..2000 {
            let (topic, json, _) = f.next_message("muckwatch/v1", 1);
            assert!(topic.starts_with("muckwatch/v1/pos/"));
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            let (lat, lon) = (v["lat"].as_f64().unwrap(), v["lon"].as_f64().unwrap());
            assert!((LAT.0..=LAT.1).contains(&lat) && (LON.0..=LON.1).contains(&lon));
            let ts = v["ts"].as_str().unwrap().to_string();
            assert!(ts > last);
            last = ts;
        }
    }
}
