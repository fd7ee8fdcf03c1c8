//! What the rule engine takes about a vehicle and what it gives back.

use std::sync::Arc;

use crate::identity::{DeviceId, FirmId, Plate};
use crate::permit::Permit;
use crate::violation::{Violation, ViolationCode};

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
    /// A fix of this device arrived older than its vehicle's state (a 补报
    /// backfill or a late delivery): it changes no state, but it may fill the
    /// silence of a TRACK_GAP raised earlier, which is then withdrawn.
    Late {
        device_id: DeviceId,
        ts_ms: i64,
    },
}

impl RuleEvent {
    pub fn code(&self) -> ViolationCode {
        match self {
            RuleEvent::Raised(v) => v.code,
            RuleEvent::Ended { code, .. } => *code,
            RuleEvent::Late { .. } => ViolationCode::TrackGap,
        }
    }
}
