//! The automatic checks of an application, each named with its result and
//! why: pure functions of the request and of what the caller looked up
//! ([`Facts`]), run on submission and again when the bureau approves (the
//! world may have changed meanwhile: a vehicle sold, a fence reloaded, the
//! firm blacklisted).

use chrono::NaiveDate;
use serde_json::{json, Value};

use super::PermitRequest;
use crate::geofence::{FenceIdx, FenceKind, FenceSet, PlanePoint, Shape};
use crate::identity::Plate;

/// The longest permit an application may ask for, in days: a year (a
/// leap year's). Longer work is applied for again.
pub const MAX_PERMIT_DAYS: i64 = 366;

/// One automatic check (the wire spelling is `as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckName {
    /// Every vehicle is registered to the applying firm.
    Vehicles,
    /// The source and disposal sites are loaded fences of those kinds.
    Sites,
    /// At least one route, each a loaded route.
    Routes,
    /// Every route's corridor meets both sites.
    RoutesTouchSites,
    /// The firm is not at the blacklist grade (信用评价).
    Credit,
    /// The dates are in order, not in the past, at most a year apart.
    Dates,
}

impl CheckName {
    pub const ALL: [CheckName; 6] = [
        CheckName::Vehicles,
        CheckName::Sites,
        CheckName::Routes,
        CheckName::RoutesTouchSites,
        CheckName::Credit,
        CheckName::Dates,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckName::Vehicles => "vehicles",
            CheckName::Sites => "sites",
            CheckName::Routes => "routes",
            CheckName::RoutesTouchSites => "routes_touch_sites",
            CheckName::Credit => "credit",
            CheckName::Dates => "dates",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            CheckName::Vehicles => "车辆属本企业",
            CheckName::Sites => "工地与消纳场存在",
            CheckName::Routes => "路线存在",
            CheckName::RoutesTouchSites => "路线连通两端场地",
            CheckName::Credit => "企业信用",
            CheckName::Dates => "有效期合理",
        }
    }

    pub fn parse(s: &str) -> Option<CheckName> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Why, in English and in Chinese (the firm's staff and the bureau read
/// the latter; the API's other messages are English).
#[derive(Debug, Clone, PartialEq)]
pub struct Why {
    pub en: String,
    pub zh: String,
}

/// `why!("en {}", x; "中文 {}", x)`: the two sentences of a [`Why`].
macro_rules! why {
    ($($en:expr),+; $($zh:expr),+) => {
        Why { en: format!($($en),+), zh: format!($($zh),+) }
    };
}

/// A check's result: passed or not, and why, in words a firm can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub name: CheckName,
    pub passed: bool,
    pub reason: String,
    pub reason_zh: String,
}

impl CheckResult {
    fn new(name: CheckName, problems: Vec<Why>, ok: Why) -> CheckResult {
        let passed = problems.is_empty();
        let (reason, reason_zh) = if passed {
            (ok.en, ok.zh)
        } else {
            let en: Vec<&str> = problems.iter().map(|w| w.en.as_str()).collect();
            let zh: Vec<&str> = problems.iter().map(|w| w.zh.as_str()).collect();
            (en.join("; "), zh.join("；"))
        };
        CheckResult {
            name,
            passed,
            reason,
            reason_zh,
        }
    }

    /// `{"name", "result": "pass"|"fail", "reason", "reason_zh", "label_zh"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name.as_str(),
            "result": if self.passed { "pass" } else { "fail" },
            "reason": self.reason,
            "reason_zh": self.reason_zh,
            "label_zh": self.name.label_zh(),
        })
    }

    /// Reads what [`to_json`](Self::to_json) wrote (a stored row).
    pub fn from_json(v: &Value) -> Result<CheckResult, String> {
        let name = v["name"]
            .as_str()
            .and_then(CheckName::parse)
            .ok_or_else(|| format!("check without a known name: {v}"))?;
        let passed = match v["result"].as_str() {
            Some("pass") => true,
            Some("fail") => false,
            _ => return Err(format!("check {} without pass/fail", name.as_str())),
        };
        let reason = v["reason"].as_str().unwrap_or_default().to_string();
        let reason_zh = v["reason_zh"].as_str().unwrap_or(&reason).to_string();
        Ok(CheckResult {
            name,
            passed,
            reason,
            reason_zh,
        })
    }
}

/// A line for the audit trail: `6/6 passed` or `5/6 passed; failed: dates`.
pub fn summary(checks: &[CheckResult]) -> String {
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    let passed = checks.len() - failed.len();
    if failed.is_empty() {
        format!("{passed}/{} passed", checks.len())
    } else {
        format!(
            "{passed}/{} passed; failed: {}",
            checks.len(),
            failed.join(", ")
        )
    }
}

/// Who a plate is registered to, as far as the applying firm may know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VehicleFact {
    /// Registered to the applying firm.
    Own,
    /// Not registered, or registered to another firm: the firm is told
    /// neither which, nor whose (it must not learn of others' vehicles).
    NotOwn,
}

/// What the checks need to know about the world.
pub struct Facts<'a> {
    /// Each requested plate's registration.
    pub vehicles: &'a [(Plate, VehicleFact)],
    pub fences: &'a FenceSet,
    /// Why the firm is blacklisted, if it is (in the cycle of `valid_from`
    /// or the one before).
    pub blacklisted: Option<String>,
    /// The city-local date the application was submitted: a permit may not
    /// start before it.
    pub submitted_on: NaiveDate,
    /// The city-local date the checks run: a permit that has ended by then
    /// is not granted.
    pub today: NaiveDate,
}

/// Runs every check, in [`CheckName::ALL`]'s order.
pub fn run_checks(r: &PermitRequest, f: &Facts) -> Vec<CheckResult> {
    vec![
        vehicles(r, f),
        sites(r, f.fences),
        routes(r, f.fences),
        routes_touch_sites(r, f.fences),
        credit(f),
        dates(r, f),
    ]
}

fn vehicles(r: &PermitRequest, f: &Facts) -> CheckResult {
    let problems = r
        .plates
        .iter()
        .filter(|p| {
            !f.vehicles
                .iter()
                .any(|(q, fact)| q == *p && *fact == VehicleFact::Own)
        })
        .map(
            |p| why!("vehicle `{p}` is not registered to your firm"; "车辆 {p} 未登记在本企业名下"),
        )
        .collect();
    let n = r.plates.len();
    CheckResult::new(
        CheckName::Vehicles,
        problems,
        why!("{n} vehicle(s), all registered to the firm"; "{n} 辆车均登记在本企业名下"),
    )
}

/// `id` names a loaded fence of `kind`, or why not.
fn fence_of(fences: &FenceSet, id: &str, kind: FenceKind) -> Result<FenceIdx, Why> {
    let (what, what_zh) = (kind.as_str(), kind_zh(kind));
    match fences.get(id) {
        None => Err(
            why!("{what} `{id}` is not one of the city's geofences"; "{what_zh} {id} 不在本市电子围栏中"),
        ),
        Some(idx) if fences.fence(idx).kind != kind => {
            let actual = fences.fence(idx).kind;
            Err(
                why!("`{id}` is a {}, not a {what}", actual.as_str(); "{id} 是{}，不是{what_zh}", kind_zh(actual)),
            )
        }
        Some(idx) => Ok(idx),
    }
}

fn kind_zh(kind: FenceKind) -> &'static str {
    match kind {
        FenceKind::SourceSite => "出土工地",
        FenceKind::DisposalSite => "消纳场",
        FenceKind::Route => "路线",
        FenceKind::RestrictedZone => "禁区",
        FenceKind::SpeedZone => "限速区",
    }
}

fn sites(r: &PermitRequest, fences: &FenceSet) -> CheckResult {
    let problems = [
        fence_of(fences, &r.source_site, FenceKind::SourceSite),
        fence_of(fences, &r.disposal_site, FenceKind::DisposalSite),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    let (s, d) = (&r.source_site, &r.disposal_site);
    CheckResult::new(
        CheckName::Sites,
        problems,
        why!("source site `{s}` and disposal site `{d}` exist"; "出土工地 {s} 与消纳场 {d} 均存在"),
    )
}

fn routes(r: &PermitRequest, fences: &FenceSet) -> CheckResult {
    let mut problems: Vec<Why> = r
        .routes
        .iter()
        .filter_map(|id| fence_of(fences, id, FenceKind::Route).err())
        .collect();
    if r.routes.is_empty() {
        problems.push(why!("no route named: an application names its approved route(s)"; "未填写路线：申请须注明核准路线"));
    }
    let n = r.routes.len();
    CheckResult::new(
        CheckName::Routes,
        problems,
        why!("{n} route(s), all loaded"; "{n} 条路线均存在"),
    )
}

fn routes_touch_sites(r: &PermitRequest, fences: &FenceSet) -> CheckResult {
    let (Ok(source), Ok(disposal)) = (
        fence_of(fences, &r.source_site, FenceKind::SourceSite),
        fence_of(fences, &r.disposal_site, FenceKind::DisposalSite),
    ) else {
        return CheckResult::new(
            CheckName::RoutesTouchSites,
            vec![
                why!("cannot be checked: the sites are not both loaded (see `sites`)"; "无法检查：工地或消纳场不存在（见 sites）"),
            ],
            why!(""; ""),
        );
    };
    let mut problems = Vec::new();
    for id in &r.routes {
        let Ok(route) = fence_of(fences, id, FenceKind::Route) else {
            problems.push(why!("route `{id}` cannot be checked (see `routes`)"; "路线 {id} 无法检查（见 routes）"));
            continue;
        };
        for (site, name) in [(source, &r.source_site), (disposal, &r.disposal_site)] {
            if !corridor_meets(fences, route, site) {
                problems
                    .push(why!("route `{id}` does not reach `{name}`"; "路线 {id} 未连通 {name}"));
            }
        }
    }
    if r.routes.is_empty() {
        problems.push(why!("no route to check (see `routes`)"; "没有可检查的路线（见 routes）"));
    }
    let (s, d) = (&r.source_site, &r.disposal_site);
    CheckResult::new(
        CheckName::RoutesTouchSites,
        problems,
        why!("every route reaches both `{s}` and `{d}`"; "每条路线均连通 {s} 与 {d}"),
    )
}

/// Whether the corridor of `route` meets the area (or circle) `site`: one
/// of its line's segments crosses or touches the site, or one of its
/// vertices lies within the corridor's half-width of the site's edge (a
/// route drawn to the gate, not into the yard).
fn corridor_meets(fences: &FenceSet, route: FenceIdx, site: FenceIdx) -> bool {
    let Shape::Corridor {
        lines,
        half_width_m,
    } = fences.fence(route).shape()
    else {
        return false;
    };
    let kind = fences.fence(site).kind;
    let mut crossed = Vec::new();
    lines.iter().flat_map(|l| l.lines()).any(|seg| {
        let a = PlanePoint::new(seg.start.x, seg.start.y);
        let b = PlanePoint::new(seg.end.x, seg.end.y);
        fences.areas_crossed(a, b, kind, &mut crossed);
        crossed.contains(&site)
            || [a, b]
                .into_iter()
                .any(|p| fences.edge_distance(site, p) <= *half_width_m)
    })
}

fn credit(f: &Facts) -> CheckResult {
    let problems = f
        .blacklisted
        .iter()
        .map(|en| why!("{en}"; "企业信用等级为黑名单等级，不予新办准运证（{en}）"))
        .collect();
    CheckResult::new(
        CheckName::Credit,
        problems,
        why!("the firm is not at the blacklist grade"; "企业信用等级未列入黑名单"),
    )
}

fn dates(r: &PermitRequest, f: &Facts) -> CheckResult {
    let (from, until, max) = (r.valid_from, r.valid_until, MAX_PERMIT_DAYS);
    let mut problems = Vec::new();
    if until < from {
        problems.push(why!("valid_until {until} is before valid_from {from}"; "有效期止 {until} 早于有效期起 {from}"));
    } else if (until - from).num_days() + 1 > max {
        let days = (until - from).num_days() + 1;
        problems.push(why!("{from} to {until} is {days} days; a permit runs at most {max}"; "{from} 至 {until} 共 {days} 天，准运证有效期最长 {max} 天"));
    }
    let on = f.submitted_on;
    if from < on {
        problems.push(why!("valid_from {from} is before the application ({on})"; "有效期起 {from} 早于申请日期（{on}）"));
    }
    let today = f.today;
    if until < today {
        problems.push(why!("valid_until {until} has passed ({today})"; "有效期止 {until} 已过（今日 {today}）"));
    }
    CheckResult::new(
        CheckName::Dates,
        problems,
        why!("{from} to {until}"; "{from} 至 {until}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::FirmId;

    /// Site `a` and disposal site `b` (squares about 1 km apart on the
    /// same latitude), a circle disposal site `c`, and routes: `ab` from
    /// one into the other, `gate` stopping 30 m short of `b` (inside its
    /// 50 m corridor), `short` stopping 300 m short, `ac` into the circle.
    fn city() -> FenceSet {
        let square = |id: &str, kind: &str, lon: f64| {
            format!(
                r#"{{"type":"Feature","properties":{{"id":"{id}","kind":"{kind}"}},
                "geometry":{{"type":"Polygon","coordinates":[[[{lon},33.0],[{e},33.0],[{e},33.002],[{lon},33.002],[{lon},33.0]]]}}}}"#,
                e = lon + 0.002
            )
        };
        let route = |id: &str, to_lon: f64| {
            format!(
                r#"{{"type":"Feature","properties":{{"id":"{id}","kind":"route","half_width_m":50}},
                "geometry":{{"type":"LineString","coordinates":[[120.001,33.001],[{to_lon},33.001]]}}}}"#
            )
        };
        // 0.001 degree of longitude at 33° is about 93 m.
        let features = [
            square("a", "source_site", 120.0),
            square("b", "disposal_site", 120.012),
            r#"{"type":"Feature","properties":{"id":"c","kind":"disposal_site","radius_m":100},
               "geometry":{"type":"Point","coordinates":[120.001,33.02]}}"#
                .to_string(),
            route("ab", 120.013),
            route("gate", 120.012 - 0.00032),
            route("short", 120.012 - 0.0032),
            r#"{"type":"Feature","properties":{"id":"ac","kind":"route"},
               "geometry":{"type":"LineString","coordinates":[[120.001,33.001],[120.001,33.0195]]}}"#
                .to_string(),
        ];
        let doc = format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        );
        FenceSet::from_geojson_str("city", &doc).expect("test city")
    }

    fn request(disposal: &str, routes: &[&str], from: &str, until: &str) -> PermitRequest {
        let firm = FirmId::parse("firm-a").expect("firm");
        PermitRequest::from_json(
            &json!({"plates": ["苏J00001"], "source_site": "a", "disposal_site": disposal,
                    "routes": routes, "valid_from": from, "valid_until": until}),
            &firm,
        )
        .expect("request")
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn failing(r: &PermitRequest, fences: &FenceSet, today: &str) -> Vec<(CheckName, String)> {
        let plate = Plate::parse("苏J00001").expect("plate");
        let facts = Facts {
            vehicles: &[(plate, VehicleFact::Own)],
            fences,
            blacklisted: None,
            submitted_on: date(today),
            today: date(today),
        };
        run_checks(r, &facts)
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| (c.name, c.reason))
            .collect()
    }

    #[test]
    fn a_route_touches_a_site_it_enters_or_reaches_within_its_corridor() {
        let city = city();
        let ok = |d: &str, routes: &[&str]| {
            failing(
                &request(d, routes, "2024-06-01", "2024-06-30"),
                &city,
                "2024-06-01",
            )
        };
        assert_eq!(ok("b", &["ab"]), []);
        assert_eq!(ok("b", &["gate"]), [], "30 m short, corridor 50 m");
        assert_eq!(ok("c", &["ac"]), [], "a circle site");
        let short = ok("b", &["ab", "short"]);
        assert_eq!(
            short,
            [(
                CheckName::RoutesTouchSites,
                "route `short` does not reach `b`".to_string()
            )]
        );
        let wrong = ok("c", &["ab"]);
        assert_eq!(wrong.len(), 1);
        assert!(wrong[0].1.contains("does not reach `c`"), "{wrong:?}");
    }

    #[test]
    fn missing_or_wrong_kind_fences_are_named() {
        let city = city();
        let f = failing(
            &request("a", &["b", "nowhere"], "2024-06-01", "2024-06-30"),
            &city,
            "2024-06-01",
        );
        let names: Vec<CheckName> = f.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                CheckName::Sites,
                CheckName::Routes,
                CheckName::RoutesTouchSites
            ]
        );
        assert!(
            f[0].1.contains("`a` is a source_site, not a disposal_site"),
            "{f:?}"
        );
        assert!(
            f[1].1.contains("`b` is a disposal_site, not a route"),
            "{f:?}"
        );
        assert!(f[1]
            .1
            .contains("route `nowhere` is not one of the city's geofences"));
    }

    #[test]
    fn dates_in_order_not_past_at_most_a_year() {
        let city = city();
        let dates = |from: &str, until: &str, today: &str| -> Vec<String> {
            failing(&request("b", &["ab"], from, until), &city, today)
                .into_iter()
                .map(|(n, why)| {
                    assert_eq!(n, CheckName::Dates);
                    why
                })
                .collect()
        };
        assert!(
            dates("2024-06-01", "2024-06-01", "2024-06-01").is_empty(),
            "one day"
        );
        assert!(
            dates("2024-01-01", "2024-12-31", "2024-01-01").is_empty(),
            "366 days"
        );
        assert_eq!(
            dates("2024-01-01", "2025-01-01", "2024-01-01"),
            ["2024-01-01 to 2025-01-01 is 367 days; a permit runs at most 366"]
        );
        assert_eq!(
            dates("2024-06-02", "2024-06-01", "2024-06-01"),
            ["valid_until 2024-06-01 is before valid_from 2024-06-02"]
        );
        assert_eq!(
            dates("2024-05-31", "2024-06-30", "2024-06-01"),
            ["valid_from 2024-05-31 is before the application (2024-06-01)"]
        );
    }

    #[test]
    fn results_round_trip_and_summarise() {
        let c = CheckResult {
            name: CheckName::RoutesTouchSites,
            passed: false,
            reason: "route `x` does not reach `d01`".into(),
            reason_zh: "路线 x 未连通 d01".into(),
        };
        assert_eq!(CheckResult::from_json(&c.to_json()), Ok(c.clone()));
        assert_eq!(c.to_json()["result"], "fail");
        let ok = CheckResult {
            name: CheckName::Dates,
            passed: true,
            reason: "fine".into(),
            reason_zh: "通过".into(),
        };
        assert_eq!(
            summary(&[ok.clone(), c]),
            "1/2 passed; failed: routes_touch_sites"
        );
        assert_eq!(summary(&[ok]), "1/1 passed");
        assert!(CheckResult::from_json(&json!({"name": "luck", "result": "pass"})).is_err());
    }
}
