//! Firms, vehicles and the device -> vehicle map the hot path consults.
//!
//! Registration is rare and lookups happen for every fix, so the map is an
//! immutable snapshot behind an `ArcSwap`: readers never lock, writers copy.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::fix::DeviceId;

/// A firm id: 1-64 characters of `[0-9A-Za-z_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct FirmId(String);

impl FirmId {
    pub fn parse(s: &str) -> Result<FirmId, String> {
        if s.is_empty() || s.len() > 64 {
            return Err(format!("firm id must be 1-64 characters, got {}", s.len()));
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("firm id `{s}` has characters outside [0-9A-Za-z_-]"));
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
        if s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '?' || c == '#') {
            return Err(format!("plate `{s}` contains a space, control character, / ? or #"));
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

/// Which vehicle each device belongs to, as one swappable snapshot.
#[derive(Default)]
pub struct Registry {
    by_device: ArcSwap<HashMap<DeviceId, Arc<Vehicle>>>,
}

impl Registry {
    pub fn new(vehicles: impl IntoIterator<Item = Vehicle>) -> Registry {
        let map = vehicles.into_iter().map(|v| (v.device_id, Arc::new(v))).collect();
        Registry { by_device: ArcSwap::from_pointee(map) }
    }

    pub fn vehicle_of(&self, device: &DeviceId) -> Option<Arc<Vehicle>> {
        self.by_device.load().get(device).cloned()
    }

    pub fn is_registered(&self, device: &DeviceId) -> bool {
        self.by_device.load().contains_key(device)
    }

    /// Adds or replaces a vehicle (by device). Copies the map: fine for
    /// registrations, which come one at a time from an administrator.
    pub fn upsert(&self, vehicle: Vehicle) {
        let vehicle = Arc::new(vehicle);
        self.by_device.rcu(|old| {
            let mut map = HashMap::clone(old);
            map.retain(|_, v| v.plate != vehicle.plate);
            map.insert(vehicle.device_id, vehicle.clone());
            map
        });
    }

    pub fn len(&self) -> usize {
        self.by_device.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let r = Registry::new([v("d1")]);
        r.upsert(v("d2"));
        assert_eq!(r.len(), 1);
        assert!(r.is_registered(&DeviceId::parse("d2").unwrap()));
        assert!(!r.is_registered(&DeviceId::parse("d1").unwrap()));
    }
}
