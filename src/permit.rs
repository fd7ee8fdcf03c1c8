//! The transport permit (准运证 / 处置核准): which vehicles may carry waste from
//! which source site to which disposal site, along which route corridors, in which
//! daily time windows, between which dates.
//!
//! A permit is parsed once, at the edge (API body or store row), into plain typed
//! values; the rule engine then only compares dates and times. Whether the named
//! sites, routes, firm and plates exist is the API's business, not this module's.

use chrono::{NaiveDate, NaiveTime};
use serde_json::{json, Map, Value};

use crate::identity::{FirmId, Plate};

/// The lifecycle state of a permit (contract values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PermitStatus {
    Active,
    Suspended,
    Revoked,
}

impl PermitStatus {
    pub const ALL: [PermitStatus; 3] = [
        PermitStatus::Active,
        PermitStatus::Suspended,
        PermitStatus::Revoked,
    ];

    /// The wire spelling: `"active"`, `"suspended"` or `"revoked"`.
    pub fn as_str(self) -> &'static str {
        match self {
            PermitStatus::Active => "active",
            PermitStatus::Suspended => "suspended",
            PermitStatus::Revoked => "revoked",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            PermitStatus::Active => "有效",
            PermitStatus::Suspended => "暂停",
            PermitStatus::Revoked => "吊销",
        }
    }

    /// ```
    /// use muckwatch::permit::PermitStatus;
    /// assert_eq!(PermitStatus::parse("revoked"), Some(PermitStatus::Revoked));
    /// assert_eq!(PermitStatus::parse("Active"), None); // exact wire spelling only
    /// ```
    pub fn parse(s: &str) -> Option<PermitStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for PermitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A daily window in city local time, `start` inclusive, `end` exclusive.
/// `end < start` crosses midnight (`21:00-06:00` covers 02:00); an `end` of
/// `"24:00"` is read as `00:00`, which means the same thing ("until midnight").
/// `00:00-24:00` is the whole day: `start == end`, the only window whose
/// ends meet (any other `X-X` is refused as ambiguous), written back as
/// `00:00-24:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl TimeWindow {
    /// ```
    /// use chrono::NaiveTime;
    /// use muckwatch::permit::TimeWindow;
    /// let night = TimeWindow::parse("21:00", "06:00").unwrap();
    /// let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    /// assert!(night.contains(at(2, 0)) && night.contains(at(21, 0)));
    /// assert!(!night.contains(at(7, 30)) && !night.contains(at(6, 0)));
    /// ```
    pub fn parse(start: &str, end: &str) -> Result<TimeWindow, String> {
        let start_t = parse_hhmm(start, false)?;
        let end_t = parse_hhmm(end, true)?;
        let whole_day = start_t == NaiveTime::MIN && end == "24:00";
        if start_t == end_t && !whole_day {
            return Err(format!(
                "window {start}-{end} is empty (use 00:00-24:00 for a whole day)"
            ));
        }
        Ok(TimeWindow {
            start: start_t,
            end: end_t,
        })
    }

    /// Whether this is `00:00-24:00`, the whole day.
    pub fn whole_day(&self) -> bool {
        self.start == self.end
    }

    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.whole_day() {
            true
        } else if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// Whether the window runs past midnight into the next day.
    pub fn crosses_midnight(&self) -> bool {
        self.end < self.start
    }
}

/// One permit, as the contract's JSON body describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Permit {
    pub id: String,
    pub firm_id: FirmId,
    pub plates: Vec<Plate>,
    pub source_site: String,
    pub disposal_site: String,
    /// Route fence ids; may be empty (then no route is checked for this permit).
    pub routes: Vec<String>,
    /// Empty = allowed at any time of day.
    pub windows: Vec<TimeWindow>,
    /// Inclusive local dates.
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    pub status: PermitStatus,
}

impl Permit {
    /// Parses the contract's JSON body
    /// `{id, firm_id, plates[], source_site, disposal_site, routes[], windows[{start,end}],
    /// valid_from "YYYY-MM-DD", valid_until, status? (default active)}`.
    /// Unknown fields are ignored (clients may send more); every error names the field.
    pub fn from_json(v: &Value) -> Result<Permit, String> {
        let obj = v.as_object().ok_or("permit must be a JSON object")?;
        let id = ident(obj, "id")?;
        let firm_id =
            FirmId::parse(str_field(obj, "firm_id")?).map_err(|e| format!("firm_id: {e}"))?;
        let mut plates = Vec::new();
        for (i, item) in array_field(obj, "plates")?.iter().enumerate() {
            let s = item
                .as_str()
                .ok_or_else(|| format!("plates[{i}] must be a string"))?;
            let plate = Plate::parse(s).map_err(|e| format!("plates[{i}]: {e}"))?;
            if plates.contains(&plate) {
                return Err(format!("plates[{i}]: `{s}` is listed twice"));
            }
            plates.push(plate);
        }
        if plates.is_empty() {
            return Err("plates must name at least one vehicle".into());
        }
        let source_site = ident(obj, "source_site")?;
        let disposal_site = ident(obj, "disposal_site")?;
        let mut routes: Vec<String> = Vec::new();
        for (i, item) in array_field(obj, "routes")?.iter().enumerate() {
            let s = item
                .as_str()
                .ok_or_else(|| format!("routes[{i}] must be a string"))?;
            check_ident(s).map_err(|e| format!("routes[{i}]: {e}"))?;
            if !routes.iter().any(|r| r == s) {
                routes.push(s.to_string());
            }
        }
        let mut windows = Vec::new();
        let raw_windows = match obj.get("windows") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(_) => return Err("windows must be an array of {start, end}".into()),
        };
        for (i, item) in raw_windows.iter().enumerate() {
            let w = item
                .as_object()
                .ok_or_else(|| format!("windows[{i}] must be an object {{start, end}}"))?;
            let part = |name: &str| {
                w.get(name)
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("windows[{i}].{name} must be a string \"HH:MM\""))
            };
            let window = TimeWindow::parse(part("start")?, part("end")?)
                .map_err(|e| format!("windows[{i}]: {e}"))?;
            windows.push(window);
        }
        let valid_from = date_field(obj, "valid_from")?;
        let valid_until = date_field(obj, "valid_until")?;
        if valid_until < valid_from {
            return Err(format!(
                "valid_until {valid_until} is before valid_from {valid_from}"
            ));
        }
        let status = match obj.get("status") {
            None | Some(Value::Null) => PermitStatus::Active,
            Some(Value::String(s)) => PermitStatus::parse(s)
                .ok_or_else(|| format!("status must be active, suspended or revoked, got {s:?}"))?,
            Some(_) => return Err("status must be a string".into()),
        };
        Ok(Permit {
            id,
            firm_id,
            plates,
            source_site,
            disposal_site,
            routes,
            windows,
            valid_from,
            valid_until,
            status,
        })
    }

    /// The same field names as [`from_json`](Self::from_json) reads, dates as
    /// `YYYY-MM-DD`, windows as `HH:MM`, plus `status`: `from_json(to_json(p)) == p`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "firm_id": self.firm_id.as_str(),
            "plates": self.plates.iter().map(Plate::as_str).collect::<Vec<_>>(),
            "source_site": self.source_site,
            "disposal_site": self.disposal_site,
            "routes": self.routes,
            "windows": self.windows.iter().map(|w| json!({
                "start": w.start.format("%H:%M").to_string(),
                "end": if w.whole_day() { "24:00".to_string() } else { w.end.format("%H:%M").to_string() },
            })).collect::<Vec<_>>(),
            "valid_from": self.valid_from.format("%Y-%m-%d").to_string(),
            "valid_until": self.valid_until.format("%Y-%m-%d").to_string(),
            "status": self.status.as_str(),
        })
    }

    /// Active and valid on that city-local date (both ends inclusive).
    pub fn valid_on(&self, date: NaiveDate) -> bool {
        self.status == PermitStatus::Active && self.valid_from <= date && date <= self.valid_until
    }

    /// Whether the city-local time of day falls in one of the windows; a permit
    /// without windows allows any time.
    pub fn in_window(&self, t: NaiveTime) -> bool {
        self.windows.is_empty() || self.windows.iter().any(|w| w.contains(t))
    }

    pub fn covers(&self, plate: &Plate) -> bool {
        self.plates.contains(plate)
    }
}

fn str_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(format!("{name} is required")),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(format!("{name} must be a string")),
    }
}

fn array_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a [Value], String> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(format!("{name} is required (an array)")),
        Some(Value::Array(a)) => Ok(a.as_slice()),
        Some(_) => Err(format!("{name} must be an array")),
    }
}

/// Ids end up in URL paths and log lines: 1-64 characters, no spaces, controls, `/ ? #`.
fn check_ident(s: &str) -> Result<(), String> {
    let n = s.chars().count();
    if !(1..=64).contains(&n) {
        return Err(format!("must be 1-64 characters, got {n}"));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#'))
    {
        return Err(format!(
            "`{s}` contains a space, control character, / ? or #"
        ));
    }
    Ok(())
}

fn ident(obj: &Map<String, Value>, name: &str) -> Result<String, String> {
    let s = str_field(obj, name)?;
    check_ident(s).map_err(|e| format!("{name}: {e}"))?;
    Ok(s.to_string())
}

/// A local date field `YYYY-MM-DD` of a JSON object; the error names the field.
pub fn date_field(obj: &Map<String, Value>, name: &str) -> Result<NaiveDate, String> {
    let s = str_field(obj, name)?;
    // `%Y` alone would accept "+2024" or 5-digit years; insist on the plain form.
    let plain = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) if plain => Ok(d),
        _ => Err(format!("{name} must be a date YYYY-MM-DD, got {s:?}")),
    }
}

/// `"HH:MM"`, 24-hour clock; `"24:00"` only as an end, read as midnight (`00:00`).
fn parse_hhmm(s: &str, allow_24: bool) -> Result<NaiveTime, String> {
    let bad = || format!("time {s:?} is not HH:MM");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let two_digits = |t: &str| t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h == 24 && m == 0 && allow_24 {
        return Ok(NaiveTime::MIN);
    }
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Value {
        json!({"id": "P-2024-001", "firm_id": "firm-1", "plates": ["苏J12345", "苏J12346"],
               "source_site": "s01", "disposal_site": "d01", "routes": ["route-s01-d01"],
               "windows": [{"start": "21:00", "end": "06:00"}],
               "valid_from": "2024-06-01", "valid_until": "2024-06-30"})
    }

    #[test]
    fn parses_and_round_trips() {
        let p = Permit::from_json(&body()).expect("valid body");
        assert_eq!(p.status, PermitStatus::Active);
        assert_eq!(p.plates.len(), 2);
        assert!(p.windows[0].crosses_midnight());
        let again = Permit::from_json(&p.to_json()).expect("own output parses");
        assert_eq!(again, p);
        assert_eq!(p.to_json()["windows"][0]["end"], "06:00");
        assert_eq!(p.to_json()["valid_until"], "2024-06-30");
    }

    #[test]
    fn validity_is_inclusive_and_needs_active() {
        let mut p = Permit::from_json(&body()).expect("valid body");
        let d = |day| NaiveDate::from_ymd_opt(2024, 6, day).expect("date");
        assert!(p.valid_on(d(1)) && p.valid_on(d(30)));
        assert!(!p.valid_on(NaiveDate::from_ymd_opt(2024, 7, 1).expect("date")));
        p.status = PermitStatus::Suspended;
        assert!(!p.valid_on(d(10)));
    }

    #[test]
    fn windows() {
        let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("time");
        let p = Permit::from_json(&body()).expect("valid body");
        assert!(p.in_window(at(2, 0)));
        assert!(!p.in_window(at(7, 30)));
        let day = TimeWindow::parse("06:00", "24:00").expect("until midnight");
        assert!(day.contains(at(23, 59)) && !day.contains(at(0, 0)) && !day.contains(at(5, 59)));
        assert!(TimeWindow::parse("08:00", "08:00").is_err());
        assert!(TimeWindow::parse("8:00", "09:00").is_err());
        assert!(TimeWindow::parse("24:00", "09:00").is_err());
        let all = TimeWindow::parse("00:00", "24:00").expect("the whole day");
        assert!(all.whole_day() && !all.crosses_midnight());
        for (h, m) in [(0, 0), (12, 0), (23, 59)] {
            assert!(all.contains(at(h, m)));
        }
        for (a, b) in [("00:00", "00:00"), ("06:00", "06:00")] {
            let e = TimeWindow::parse(a, b).unwrap_err();
            assert!(e.contains("00:00-24:00"), "{e}");
        }
        let mut any = Permit::from_json(&body()).expect("valid body");
        any.windows.clear();
        assert!(any.in_window(at(12, 0)));
    }

    #[test]
    fn errors_name_the_field() {
        let with = |k: &str, v: Value| {
            let mut b = body();
            b[k] = v;
            Permit::from_json(&b).expect_err("must be refused")
        };
        assert!(with("id", json!("")).starts_with("id:"));
        assert!(with("firm_id", json!("a b")).starts_with("firm_id"));
        assert!(with("plates", json!([])).starts_with("plates"));
        assert!(with("plates", json!(["苏J1", "苏J1"])).starts_with("plates[1]"));
        assert!(with("plates", json!([1])).starts_with("plates[0]"));
        assert!(with("source_site", json!(null)).starts_with("source_site"));
        assert!(with("routes", json!("r1")).starts_with("routes"));
        assert!(
            with("windows", json!([{"start": "25:00", "end": "06:00"}])).starts_with("windows[0]")
        );
        assert!(with("windows", json!([{"start": "05:00"}])).starts_with("windows[0].end"));
        assert!(with("valid_from", json!("2024-6-1")).starts_with("valid_from"));
        assert!(with("valid_until", json!("2024-05-01")).starts_with("valid_until"));
        assert!(with("status", json!("paused")).starts_with("status"));
        assert!(Permit::from_json(&json!([])).is_err());
    }
}
