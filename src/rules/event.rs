//! What the rule engine takes about a vehicle and what it gives back.

use std::sync::Arc;

use crate::fix::DeviceId;
use crate::permit::Permit;
use crate::registry::{FirmId, Plate};
use crate::violation::ViolationCode;

/// Everything the rules need to know about the vehicle behind a fix, besides the fix.
/// Built by the pipeline from the registry and the permit store; cheap to keep per
/// vehicle and to replace when a permit changes (the permits are shared `Arc`s).
#[derive(Debug, Clone)]
pub struct VehicleContext {
    pub plate: Plate,
    pub device_id: DeviceId,
    pub firm_id: FirmId,
    /// Tonnes; 0 or less (unknown) disables OVERLOAD.
    pub rated_load_t: f64,
    /// Every permit that lists this plate, whatever its status or dates: the rules
    /// pick the ones active and valid on the fix's local date. With several valid at
    /// once, the first in this order is "the" permit a violation names (list the
    /// newest first); sites, routes and windows of all valid permits are allowed.
    pub permits: Vec<Arc<Permit>>,
}

/// One raised violation.
///
/// `measured`, per code (the unit the API documents):
/// - NO_PERMIT, OUT_OF_HOURS, COVER_OPEN: seconds the condition had lasted at raise time;
/// - ROUTE_DEVIATION: metres from the nearest route's centre line, the largest seen in
///   the episode up to the raise;
/// - RESTRICTED_ZONE, SPEEDING: km/h, the highest reported speed of the episode up to
///   the raise;
/// - ILLEGAL_DUMPING, WRONG_DISPOSAL_SITE: tonnes unloaded (load before the unloading
///   began minus the load at raise time; 0 without load readings);
/// - OVERLOAD: tonnes, the highest load reading of the episode up to the raise;
/// - TRACK_GAP: seconds without a fix (silence), or between the two fixes (jump).
///
/// `lat`/`lon` are where the vehicle was when the violation was raised (where an
/// officer would go); for TRACK_GAP, the last fix before the silence or jump.
///
/// `fences`: ROUTE_DEVIATION the nearest route; RESTRICTED_ZONE the zones entered or
/// crossed; SPEEDING the speed zone whose limit applied (none = city default);
/// WRONG_DISPOSAL_SITE the disposal site used; OVERLOAD the permit's source site (the
/// freight source unit of 一超四罚); others none.
///
/// `ended_ms` is `None` while the episode goes on; [`RuleEvent::Ended`] follows. It is
/// `Some` only when the episode was already over when it was raised (a TRACK_GAP found
/// when the next fix arrives); no `Ended` follows such a one.
///
/// The evidence fixes are not kept here: they are the vehicle's fixes in
/// `[started_ms, ended_ms]`, which the store holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    pub code: ViolationCode,
    pub plate: Plate,
    pub device_id: DeviceId,
    pub firm_id: FirmId,
    pub permit_id: Option<String>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub lat: f64,
    pub lon: f64,
    pub measured: f64,
    pub fences: Vec<String>,
}

/// What one fix (or watermark step) produced.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleEvent {
    Raised(Violation),
    /// The episode raised earlier for this device and code, identified by its
    /// `started_ms`, is over: set its `ended_ms` (its last qualifying fix).
    Ended {
        code: ViolationCode,
        device_id: DeviceId,
        started_ms: i64,
        ended_ms: i64,
    },
}

impl RuleEvent {
    pub fn code(&self) -> ViolationCode {
        match self {
            RuleEvent::Raised(v) => v.code,
            RuleEvent::Ended { code, .. } => *code,
        }
    }
}
