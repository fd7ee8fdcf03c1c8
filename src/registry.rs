//! Firms, vehicles and the device -> vehicle context map the hot path consults.
//!
//! Registration is rare and lookups happen for every fix, so the map is an
//! immutable snapshot behind an `ArcSwap`: readers never lock, writers copy.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::fix::DeviceId;
use crate::permit::Permit;
use crate::rules::VehicleContext;

/// A firm id: 1-64 characters of `[0-9A-Za-z_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct FirmId(String);

impl FirmId {
    pub fn parse(s: &str) -> Result<FirmId, String> {
        if s.is_empty() || s.len() > 64 {
            return Err(format!("firm id must be 1-64 characters, got {}", s.len()));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "firm id `{s}` has characters outside [0-9A-Za-z_-]"
            ));
        }
        Ok(FirmId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FirmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A licence plate such as `苏J12345`: 2-16 characters, no spaces, no `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Plate(String);

impl Plate {
    pub fn parse(s: &str) -> Result<Plate, String> {
        let n = s.chars().count();
        if !(2..=16).contains(&n) {
            return Err(format!("plate must be 2-16 characters, got {n}"));
        }
        if s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '?' || c == '#')
        {
            return Err(format!(
                "plate `{s}` contains a space, control character, / ? or #"
            ));
        }
        Ok(Plate(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Firm {
    pub id: FirmId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vehicle {
    pub plate: Plate,
    #[serde(serialize_with = "ser_device")]
    pub device_id: DeviceId,
    pub firm_id: FirmId,
    pub rated_load_t: f64,
}

fn ser_device<S: serde::Serializer>(d: &DeviceId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.as_str())
}

/// What the hot path needs about each device: its vehicle and permits, as
/// one swappable snapshot. Writers (registrations, rare) serialise on a
/// mutex and replace only the contexts they touch.
#[derive(Default)]
pub struct Registry {
    by_device: ArcSwap<HashMap<DeviceId, Arc<VehicleContext>>>,
    write: Mutex<Sources>,
}

#[derive(Default)]
struct Sources {
    vehicles: HashMap<Plate, Vehicle>,
    permits: HashMap<String, Arc<Permit>>,
}

impl Registry {
    pub fn new(
        vehicles: impl IntoIterator<Item = Vehicle>,
        permits: impl IntoIterator<Item = Permit>,
    ) -> Registry {
        let sources = Sources {
            vehicles: vehicles.into_iter().map(|v| (v.plate.clone(), v)).collect(),
            permits: permits
                .into_iter()
                .map(|p| (p.id.clone(), Arc::new(p)))
                .collect(),
        };
        let map = sources
            .vehicles
            .values()
            .map(|v| (v.device_id, Arc::new(sources.context(v))))
            .collect();
        Registry {
            by_device: ArcSwap::from_pointee(map),
            write: Mutex::new(sources),
        }
    }

    /// Replaces everything, e.g. with what another instance registered.
    pub fn replace_all(&self, vehicles: Vec<Vehicle>, permits: Vec<Permit>) {
        let fresh = Registry::new(vehicles, permits);
        let Ok(mut sources) = self.write.lock() else {
            return;
        };
        if let Ok(mut new_sources) = fresh.write.lock() {
            std::mem::swap(&mut *sources, &mut *new_sources);
        }
        self.by_device.store(fresh.by_device.load_full());
    }

    pub fn context_of(&self, device: &DeviceId) -> Option<Arc<VehicleContext>> {
        self.by_device.load().get(device).cloned()
    }

    pub fn is_registered(&self, device: &DeviceId) -> bool {
        self.by_device.load().contains_key(device)
    }

    /// Adds or replaces a vehicle (a plate moved to a new device leaves the old one).
    pub fn upsert_vehicle(&self, vehicle: Vehicle) {
        let plate = vehicle.plate.clone();
        self.update(&[plate], |s| {
            s.vehicles.insert(vehicle.plate.clone(), vehicle);
        });
    }

    /// Adds or replaces a permit (status changes included).
    pub fn upsert_permit(&self, permit: Permit) {
        let mut plates = permit.plates.clone();
        self.update_with(|s| {
            if let Some(old) = s.permits.get(&permit.id) {
                plates.extend(old.plates.iter().cloned());
            }
            s.permits.insert(permit.id.clone(), Arc::new(permit));
            plates
        });
    }

    fn update(&self, plates: &[Plate], change: impl FnOnce(&mut Sources)) {
        self.update_with(|s| {
            change(s);
            plates.to_vec()
        });
    }

    /// Applies a change to the sources and rebuilds the contexts of the
    /// plates it returns.
    fn update_with(&self, change: impl FnOnce(&mut Sources) -> Vec<Plate>) {
        let Ok(mut sources) = self.write.lock() else {
            return;
        };
        let plates = change(&mut sources);
        let fresh: Vec<Arc<VehicleContext>> = plates
            .iter()
            .filter_map(|p| sources.vehicles.get(p))
            .map(|v| Arc::new(sources.context(v)))
            .collect();
        let mut map = HashMap::clone(&self.by_device.load());
        map.retain(|_, c| !plates.contains(&c.plate));
        for c in fresh {
            map.insert(c.device_id, c);
        }
        self.by_device.store(Arc::new(map));
    }

    pub fn len(&self) -> usize {
        self.by_device.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Sources {
    fn context(&self, v: &Vehicle) -> VehicleContext {
        let mut permits: Vec<Arc<Permit>> = self
            .permits
            .values()
            .filter(|p| p.plates.contains(&v.plate))
            .cloned()
            .collect();
        permits.sort_by(|a, b| a.id.cmp(&b.id));
        VehicleContext {
            plate: v.plate.clone(),
            device_id: v.device_id,
            firm_id: v.firm_id.clone(),
            rated_load_t: v.rated_load_t,
            permits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plates_and_firms_parse() {
        assert!(Plate::parse("苏J12345").is_ok());
        assert!(Plate::parse("苏J 12345").is_err());
        assert!(Plate::parse("a/b").is_err());
        assert!(FirmId::parse("firm-1").is_ok());
        assert!(FirmId::parse("firm 1").is_err());
        assert!(FirmId::parse("").is_err());
    }

    #[test]
    fn upsert_replaces_a_plate_moved_to_a_new_device() {
        let v = |dev: &str| Vehicle {
            plate: Plate::parse("苏J00001").unwrap(),
            device_id: DeviceId::parse(dev).unwrap(),
            firm_id: FirmId::parse("f1").unwrap(),
            rated_load_t: 30.0,
        };
        let r = Registry::new([v("d1")], []);
        r.upsert_vehicle(v("d2"));
        assert_eq!(r.len(), 1);
        assert!(r.is_registered(&DeviceId::parse("d2").unwrap()));
        assert!(!r.is_registered(&DeviceId::parse("d1").unwrap()));
    }
}
