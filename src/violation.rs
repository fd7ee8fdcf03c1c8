//! The contract's violations: the codes, a raised episode ([`Violation`]),
//! the episode as stored ([`StoredViolation`]) and its JSON resource.
//! Detection lives in `rules`; this is only the vocabulary that rules,
//! metrics, storage, the API and the command line share.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::identity::{DeviceId, FirmId, Plate};
use crate::time::format_ms;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationCode {
    NoPermit,
    OutOfHours,
    RouteDeviation,
    RestrictedZone,
    Speeding,
    IllegalDumping,
    WrongDisposalSite,
    CoverOpen,
    Overload,
    TrackGap,
}

impl ViolationCode {
    pub const ALL: [ViolationCode; 10] = [
        ViolationCode::NoPermit,
        ViolationCode::OutOfHours,
        ViolationCode::RouteDeviation,
        ViolationCode::RestrictedZone,
        ViolationCode::Speeding,
        ViolationCode::IllegalDumping,
        ViolationCode::WrongDisposalSite,
        ViolationCode::CoverOpen,
        ViolationCode::Overload,
        ViolationCode::TrackGap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ViolationCode::NoPermit => "NO_PERMIT",
            ViolationCode::OutOfHours => "OUT_OF_HOURS",
            ViolationCode::RouteDeviation => "ROUTE_DEVIATION",
            ViolationCode::RestrictedZone => "RESTRICTED_ZONE",
            ViolationCode::Speeding => "SPEEDING",
            ViolationCode::IllegalDumping => "ILLEGAL_DUMPING",
            ViolationCode::WrongDisposalSite => "WRONG_DISPOSAL_SITE",
            ViolationCode::CoverOpen => "COVER_OPEN",
            ViolationCode::Overload => "OVERLOAD",
            ViolationCode::TrackGap => "TRACK_GAP",
        }
    }

    /// The name officers know it by (the console shows it beside the code).
    pub fn label_zh(self) -> &'static str {
        match self {
            ViolationCode::NoPermit => "无证运输",
            ViolationCode::OutOfHours => "超时段运输",
            ViolationCode::RouteDeviation => "偏离路线",
            ViolationCode::RestrictedZone => "闯禁区",
            ViolationCode::Speeding => "超速",
            ViolationCode::IllegalDumping => "偷倒乱倒",
            ViolationCode::WrongDisposalSite => "未按指定消纳场",
            ViolationCode::CoverOpen => "未密闭运输",
            ViolationCode::Overload => "超载",
            ViolationCode::TrackGap => "轨迹异常",
        }
    }

    pub fn parse(s: &str) -> Option<ViolationCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ViolationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
/// `uncertainty`: for the codes judged from where the truck was (ROUTE_DEVIATION,
/// SPEEDING, RESTRICTED_ZONE by fixes inside), how sure that is given the terminal's
/// GPS noise; `None` for the others.
///
/// `ended_ms` is `None` while the episode goes on; [`RuleEvent::Ended`](crate::rules::RuleEvent::Ended) follows. It is
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
    pub uncertainty: Option<Uncertainty>,
}

/// How sure a violation is, given the GPS noise of the terminal that reported it: what
/// a reviewing officer (or a firm contesting the fine) weighs the evidence with.
/// Stored as JSON with the violation; the resource's `uncertainty` (null when the code
/// does not depend on position).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Uncertainty {
    /// The terminal's GPS noise at the raise: σ per axis, metres, learnt from its track.
    pub sigma_m: f64,
    /// The one-sided confidence of the test that raised it (`rules.noise_z_run`, `rules.noise_z_fix`).
    pub confidence: f64,
    /// The band, at that confidence, of the most likely value: ROUTE_DEVIATION the
    /// mean distance from the centre line (`measured`), SPEEDING the mean speed from
    /// positions alone over the episode (an independent check of the reported speed),
    /// RESTRICTED_ZONE the mean depth inside the zone, metres.
    pub low: f64,
    pub high: f64,
    /// Fixes behind the estimate.
    pub fixes: u32,
}

/// A violation as stored: the episode, its id and its case.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredViolation {
    pub id: i64,
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
    pub uncertainty: Option<Uncertainty>,
    pub case_id: Option<i64>,
    /// Withdrawn (contract status `withdrawn`): the evidence fell away after the
    /// raise, e.g. a TRACK_GAP whose silence the terminal's 补报 backfill covered.
    /// Kept, with an audit line on its case, never deleted.
    pub withdrawn: bool,
}

impl StoredViolation {
    /// The violation as detection raised it (without its id and case).
    pub fn as_raised(&self) -> Violation {
        Violation {
            code: self.code,
            plate: self.plate.clone(),
            device_id: self.device_id,
            firm_id: self.firm_id.clone(),
            permit_id: self.permit_id.clone(),
            started_ms: self.started_ms,
            ended_ms: self.ended_ms,
            lat: self.lat,
            lon: self.lon,
            measured: self.measured,
            fences: self.fences.clone(),
            uncertainty: self.uncertainty,
        }
    }

    /// The contract's `status`.
    pub fn status(&self) -> &'static str {
        if self.withdrawn {
            "withdrawn"
        } else {
            "raised"
        }
    }
}

/// The contract's violation resource (API responses, `muckwatch replay`).
pub fn violation_json(v: &StoredViolation, tz: chrono_tz::Tz) -> Value {
    json!({
        "id": v.id, "code": v.code.as_str(), "plate": v.plate, "device_id": v.device_id, "firm_id": v.firm_id,
        "permit_id": v.permit_id, "started_at": format_ms(v.started_ms, tz),
        "ended_at": v.ended_ms.map(|e| format_ms(e, tz)), "lat": v.lat, "lon": v.lon,
        "measured": v.measured, "fences": v.fences, "case_id": v.case_id, "status": v.status(),
        "uncertainty": v.uncertainty.map(|u| json!({
            "sigma_m": round1(u.sigma_m), "confidence": u.confidence,
            "low": round1(u.low), "high": round1(u.high), "fixes": u.fixes,
        })),
    })
}

/// To 0.1 (metres, km/h): more digits would claim a precision the noise denies.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for (i, c) in ViolationCode::ALL.into_iter().enumerate() {
            assert_eq!(ViolationCode::parse(c.as_str()), Some(c));
            assert_eq!(c.index(), i);
        }
        assert_eq!(ViolationCode::parse("SPEED"), None);
    }
}
