//! Firms, vehicles and the device -> vehicle context map the hot path consults.
//!
//! Registration is rare and lookups happen for every fix, so the map is an
//! immutable snapshot behind an `ArcSwap`: readers never lock, writers copy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::identity::DeviceId;
use crate::permit::Permit;
use crate::rules::VehicleContext;

/// At their old path for code written against it; they live in [`crate::identity`].
pub use crate::identity::{Firm, FirmId, Plate, Vehicle};

/// What the hot path needs about each device: its vehicle and permits, as
/// one swappable snapshot. Writers (registrations, rare) serialise on a
/// mutex and replace only the contexts they touch.
#[derive(Default)]
pub struct Registry {
    by_device: ArcSwap<HashMap<DeviceId, Arc<VehicleContext>>>,
    /// The same contexts in plate order, for the live map's pages.
    by_plate: ArcSwap<Vec<Arc<VehicleContext>>>,
    write: Mutex<Sources>,
    /// Moves on every change, for readers caching what they made of it.
    version: std::sync::atomic::AtomicU64,
}

fn plate_order(map: &HashMap<DeviceId, Arc<VehicleContext>>) -> Vec<Arc<VehicleContext>> {
    let mut v: Vec<Arc<VehicleContext>> = map.values().cloned().collect();
    v.sort_by(|a, b| a.plate.as_str().cmp(b.plate.as_str()));
    v
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
            by_plate: ArcSwap::from_pointee(plate_order(&map)),
            by_device: ArcSwap::from_pointee(map),
            write: Mutex::new(sources),
            version: Default::default(),
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
        self.by_plate.store(fresh.by_plate.load_full());
        self.bump();
    }

    /// How many times the vehicles or permits changed.
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    fn bump(&self) {
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Every registered vehicle's context, in plate order.
    pub fn by_plate(&self) -> Arc<Vec<Arc<VehicleContext>>> {
        self.by_plate.load_full()
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
        self.by_plate.store(Arc::new(plate_order(&map)));
        self.by_device.store(Arc::new(map));
        self.bump();
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
