//! The fleet: the cast made into trucks with identities and permits, run tick by tick
//! in simulated time, every fix in time order across the fleet (so that muckwatch's
//! fleet watermark moves as it would with real terminals).

use std::sync::Arc;

use chrono::{Duration, FixedOffset, NaiveDate, Timelike};

use super::noise::{Rng, SensorNoise};
use super::oracle::{local_time, Duty};
use super::plan::{expand, Strength};
use super::route::routes;
use super::scenario::{cast, Cast, Role, SimConfig};
use super::seed::{SeedData, SeedVehicle};
use super::truck::{Identity, SimFix, Truck};
use super::truth::{to_ndjson, FleetHeader, TruthEntry};
use crate::fix::DeviceId;
use crate::geofence::FenceSet;
use crate::identity::{FirmId, Plate};
use crate::permit::{Permit, PermitStatus, TimeWindow};
use crate::violation::ViolationCode as C;

const FIRMS: [(&str, &str); 4] = [
    ("sim-firm-1", "盐城市通达渣土运输有限公司"),
    ("sim-firm-2", "盐城市城建土方工程有限公司"),
    ("sim-firm-3", "亭湖区顺安运输有限公司"),
    ("sim-firm-4", "盐都区宏远渣土清运有限公司"),
];

pub struct Fleet {
    pub config: SimConfig,
    pub header: FleetHeader,
    pub seed: SeedData,
    /// The part each truck plays, by truck index.
    pub roles: Vec<Role>,
    trucks: Vec<Truck>,
    devices: Vec<DeviceId>,
    order: Vec<usize>,
    tick: i64,
}

impl Fleet {
    /// Casts and builds the fleet for `config` over `fences`.
    pub fn plan(fences: Arc<FenceSet>, config: &SimConfig) -> Result<Fleet, String> {
        if config.interval_s == 0 || config.hours <= 0.0 || config.trucks == 0 {
            return Err("interval, hours and trucks must be above 0".into());
        }
        let all_routes = routes(&fences, config.rules.speed_default_kmh);
        let casts = cast(&fences, &all_routes, config)?;
        let strength = Strength::for_rules(&config.rules, config.interval_s);
        let offset = *config.start.offset();
        let start_date = local_time(config.tz, config.start_ms()).date();
        let mut fleet = Fleet {
            config: config.clone(),
            header: FleetHeader {
                scenario: config.scenario.clone(),
                seed: config.seed,
                start_ms: config.start_ms(),
                end_ms: config.end_ms(),
                sigma_m: config.sigma_m,
                interval_s: config.interval_s,
                plates: Vec::new(),
            },
            seed: SeedData {
                firms: FIRMS
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                ..SeedData::default()
            },
            roles: Vec::new(),
            trucks: Vec::new(),
            devices: Vec::new(),
            order: Vec::new(),
            tick: 0,
        };
        for (i, c) in casts.iter().enumerate() {
            let plate = plate_for(config.seed, i);
            // 12 digits, as a JT/T 808 terminal's phone number (BCD): the
            // seed's last six, the truck's five, so any truck can speak it.
            let device = DeviceId::parse(&format!("0{:06}{i:05}", config.seed % 1_000_000))
                .map_err(|e| e.to_string())?;
            let firm = FIRMS[i % FIRMS.len()].0;
            let permit = fleet.permit_for(i, c, &plate, firm, start_date)?;
            let duty = Duty {
                fences: fences.clone(),
                tz: config.tz,
                permits: permit.iter().cloned().collect(),
                rated_load_t: c.rated_load_t,
                moving_kmh: config.rules.moving_kmh,
                city_limit_kmh: config.rules.speed_default_kmh,
            };
            let id = Identity {
                index: i,
                plate: plate.clone(),
                device,
                interval_ms: i64::from(config.interval_s) * 1000,
                phase_ms: i64::from(c.phase_s) * 1000,
                noise: SensorNoise::gps(config.sigma_m),
                rng: Rng::stream(config.seed, i as u64, 100),
                offset,
            };
            let steps = expand(
                &c.route,
                c.cruise_ms,
                c.wait_secs,
                &c.trips,
                &strength,
                c.role != Role::Unpermitted,
            );
            let truck = Truck::new(id, duty, steps, config.start_ms(), c.route.path.point(0.0));
            let truck = match c.role {
                Role::Expired => truck.watch_always(&[C::NoPermit], "driving on an expired permit"),
                Role::Unpermitted => {
                    truck.watch_always(&[C::NoPermit], "driving with no permit at all")
                }
                Role::OutOfHours => truck.watch_always(
                    &[C::OutOfHours],
                    "driving before its permit's window opened",
                ),
                _ => truck,
            };
            fleet.seed.vehicles.push(SeedVehicle {
                plate: plate.clone(),
                device_id: device.to_string(),
                firm_id: firm.into(),
                rated_load_t: c.rated_load_t,
            });
            fleet.seed.permits.extend(permit);
            fleet.header.plates.push(plate);
            fleet.devices.push(device);
            fleet.roles.push(c.role);
            fleet.trucks.push(truck);
        }
        let mut order: Vec<usize> = (0..casts.len()).collect();
        order.sort_by_key(|&i| (casts[i].phase_s, i));
        fleet.order = order;
        Ok(fleet)
    }

    /// The permit a truck is registered with, as its part needs (none when unpermitted).
    fn permit_for(
        &self,
        i: usize,
        c: &Cast,
        plate: &str,
        firm: &str,
        date: NaiveDate,
    ) -> Result<Option<Permit>, String> {
        let cfg = &self.config;
        let hhmm = |ms: i64| {
            let t = local_time(cfg.tz, ms).time();
            format!("{:02}:{:02}", t.hour(), t.minute())
        };
        let night =
            |from_ms: i64| TimeWindow::parse(&hhmm(from_ms), &hhmm(cfg.end_ms() + 3_600_000));
        let mut windows = if cfg.hours <= 20.0 {
            vec![night(cfg.start_ms() - 3_600_000)?]
        } else {
            Vec::new()
        };
        let (mut valid_from, mut valid_until) =
            (date - Duration::days(30), date + Duration::days(30));
        match c.role {
            Role::Unpermitted => return Ok(None),
            Role::Expired => {
                (valid_from, valid_until) = (date - Duration::days(90), date - Duration::days(1))
            }
            Role::OutOfHours => {
                let opens = match (c.trips.first(), c.trips.get(1)) {
                    (_, Some(second)) => {
                        second.trip.start_ms + 500 * i64::from(second.trip.load_secs)
                    }
                    (Some(t), None) => {
                        t.trip.start_ms
                            + 1000 * i64::from(t.trip.load_secs + t.trip.fwd_secs)
                            + 500 * i64::from(t.trip.unload_secs)
                    }
                    (None, None) => {
                        return Err(format!(
                            "truck {i} has no trip to drive out of hours; simulate more hours"
                        ))
                    }
                };
                windows = vec![night(opens)?];
            }
            _ => {}
        }
        Ok(Some(Permit {
            id: format!("SIM{}-{i:05}", cfg.seed % 100_000),
            firm_id: FirmId::parse(firm)?,
            plates: vec![Plate::parse(plate)?],
            source_site: c.route.source.clone(),
            disposal_site: c.route.disposal.clone(),
            routes: vec![c.route.id.clone()],
            windows,
            valid_from,
            valid_until,
            status: PermitStatus::Active,
        }))
    }

    pub fn len(&self) -> usize {
        self.trucks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trucks.is_empty()
    }

    pub fn device(&self, truck: usize) -> &DeviceId {
        &self.devices[truck]
    }

    /// Start of the next tick (simulated time reached).
    pub fn sim_time_ms(&self) -> i64 {
        self.header.start_ms + self.tick * i64::from(self.config.interval_s) * 1000
    }

    /// Share of the simulated span done, 0..=1.
    pub fn progress(&self) -> f64 {
        let span = (self.header.end_ms - self.header.start_ms).max(1) as f64;
        ((self.sim_time_ms() - self.header.start_ms) as f64 / span).clamp(0.0, 1.0)
    }

    /// The fixes of the next reporting tick, in time order; false once the night is over.
    pub fn next_tick(&mut self, out: &mut Vec<SimFix>) -> bool {
        let base = self.sim_time_ms();
        if base >= self.header.end_ms {
            return false;
        }
        for &i in &self.order {
            let truck = &mut self.trucks[i];
            truck.advance_to(base + truck.id.phase_ms);
            out.extend(truck.report());
        }
        self.tick += 1;
        true
    }

    /// Runs to the end without sending anything; returns the number of fixes.
    pub fn run_dry(&mut self) -> u64 {
        let mut buf = Vec::new();
        let mut n = 0;
        while self.next_tick(&mut buf) {
            n += buf.len() as u64;
            buf.clear();
        }
        n
    }

    /// The ground truth of the run (call once the run is over).
    pub fn finish(self) -> Vec<TruthEntry> {
        let end = self.sim_time_ms().min(self.header.end_ms);
        self.trucks
            .into_iter()
            .flat_map(|t| t.finish(end))
            .collect()
    }

    pub fn truth_ndjson(
        header: &FleetHeader,
        entries: &[TruthEntry],
        offset: FixedOffset,
    ) -> String {
        to_ndjson(header, entries, offset)
    }

    pub fn offset(&self) -> FixedOffset {
        *self.config.start.offset()
    }
}

/// `苏J` + a letter for the seed + the truck number: plates of runs with different
/// seeds do not collide in one database.
fn plate_for(seed: u64, i: usize) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let letter = LETTERS[(seed % LETTERS.len() as u64) as usize] as char;
    if i < 9999 {
        format!("苏J{letter}{:04}", i + 1)
    } else {
        format!("苏J{letter}{:06}", i + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geofence::FenceKind;
    use crate::sim::route::speed_limit_at;

    /// Without GPS noise, an honest fleet's fixes show what the trucks really do:
    /// in time order, inside their corridors (or sites), under every limit.
    #[test]
    fn honest_trucks_keep_to_their_corridors_and_under_the_limits() {
        let fences =
            Arc::new(FenceSet::load_dir(std::path::Path::new("geofences")).expect("sample city"));
        let config = SimConfig {
            trucks: 12,
            sigma_m: 0.0,
            ..SimConfig::default()
        }
        .with_scenario("honest")
        .expect("scenario");
        let mut fleet = Fleet::plan(fences.clone(), &config).expect("cast");
        let corridor: Vec<(crate::geofence::FenceIdx, f64)> = (0..fleet.len())
            .map(|i| {
                let route = &fleet.seed.permits[i].routes[0];
                let idx = fences.get(route).expect("route");
                (idx, fences.fence(idx).half_width_m.unwrap_or(50.0))
            })
            .collect();
        let (mut last_ts, mut fixes, mut parked, mut brushing) = (i64::MIN, 0, 0, 0);
        let (mut tick, mut inside) = (Vec::new(), Vec::new());
        while fleet.next_tick(&mut tick) {
            for f in tick.drain(..) {
                assert!(f.ts_ms >= last_ts, "fixes in time order");
                last_ts = f.ts_ms;
                fixes += 1;
                let v: serde_json::Value = serde_json::from_str(&f.json).expect("fix JSON");
                let p = fences.project(
                    v["lat"].as_f64().expect("lat"),
                    v["lon"].as_f64().expect("lon"),
                );
                fences.containing(p, &mut inside);
                let in_site = inside.iter().any(|&i| {
                    matches!(
                        fences.fence(i).kind,
                        FenceKind::SourceSite | FenceKind::DisposalSite
                    )
                });
                let (route, hw) = corridor[f.truck];
                let off = fences.distance_to_routes(p, &[route]).expect("distance").1;
                assert!(
                    in_site || off <= hw - 9.0,
                    "truck {} {} m off a {hw} m corridor: {}",
                    f.truck,
                    off,
                    f.json
                );
                brushing += usize::from(off > hw / 2.0 && !in_site);
                let speed = v["speed_kmh"].as_f64().expect("speed");
                let limit = speed_limit_at(&fences, p, 40.0, &mut inside);
                // the margin is 8 km/h, the terminal's speed noise 0.5 km/h (6 sigma = 3)
                assert!(
                    speed <= limit - 5.0,
                    "{speed} km/h where the limit is {limit}: {}",
                    f.json
                );
                parked += usize::from(v["acc"] == false && !in_site);
            }
        }
        assert!(
            fixes > 30_000 && parked > 0 && brushing > 100,
            "{fixes} fixes, {parked} parked, {brushing} brushing"
        );
        assert!(fleet.finish().is_empty());
    }
}
