//! Weekly schedules of restricted zones: `[{"days":"Mon-Fri","start":"07:00","end":"09:00"}]`
//! in city-local time. Parsed once at load into bitmasks and seconds so that the rule
//! engine's per-fix check is a few integer comparisons.

use chrono::{Datelike, NaiveDateTime, Timelike};
use serde_json::Value;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const ALL_DAYS: u8 = 0b111_1111;

/// One weekly window. `end <= start` means the window crosses midnight: it starts on
/// the listed day and ends on the next one (`Fri 22:00-06:00` is active Saturday 03:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// bit 0 = Monday .. bit 6 = Sunday: the days the window starts on.
    days: u8,
    start_s: u32,
    /// 1..=86400 (`"24:00"` is allowed as an end).
    end_s: u32,
}

impl Window {
    /// `days` like `"Mon-Fri"`, `"Sat,Sun"`, `"Fri-Mon"`, `"daily"`; times `"HH:MM"`.
    ///
    /// ```
    /// use muckwatch::geofence::Window;
    /// assert!(Window::parse("Mon-Fri", "07:00", "08:30").is_ok());
    /// assert!(Window::parse("Mon-Fry", "07:00", "08:30").is_err());
    /// ```
    pub fn parse(days: &str, start: &str, end: &str) -> Result<Window, String> {
        let start_s = parse_time(start, false)?;
        let end_s = parse_time(end, true)?;
        if start_s == end_s {
            return Err(format!(
                "window {start}-{end} is empty (use 00:00-24:00 for a whole day)"
            ));
        }
        Ok(Window {
            days: parse_days(days)?,
            start_s,
            end_s,
        })
    }

    fn is_active(&self, weekday: u32, secs: u32) -> bool {
        let today = self.days & (1 << weekday) != 0;
        if self.start_s < self.end_s {
            today && self.start_s <= secs && secs < self.end_s
        } else {
            let yesterday = self.days & (1 << ((weekday + 6) % 7)) != 0;
            (today && secs >= self.start_s) || (yesterday && secs < self.end_s)
        }
    }
}

/// A fence's weekly schedule: active when any window is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    windows: Vec<Window>,
}

impl Schedule {
    pub fn new(windows: Vec<Window>) -> Schedule {
        Schedule { windows }
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// Parses the `schedule` property (a non-empty array of window objects).
    pub fn from_json(v: &Value) -> Result<Schedule, String> {
        let items = v
            .as_array()
            .ok_or("schedule must be an array of {days,start,end}")?;
        if items.is_empty() {
            return Err(
                "schedule is an empty list (omit it for a zone that is always in force)".into(),
            );
        }
        let mut windows = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let obj = item
                .as_object()
                .ok_or_else(|| format!("schedule[{i}] is not an object"))?;
            let field = |name: &str| -> Result<Option<&str>, String> {
                match obj.get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.as_str())),
                    Some(_) => Err(format!("schedule[{i}].{name} must be a string")),
                }
            };
            let days = field("days")?.unwrap_or("daily");
            let start = field("start")?.ok_or_else(|| format!("schedule[{i}] has no start"))?;
            let end = field("end")?.ok_or_else(|| format!("schedule[{i}] has no end"))?;
            windows
                .push(Window::parse(days, start, end).map_err(|e| format!("schedule[{i}]: {e}"))?);
        }
        Ok(Schedule { windows })
    }

    /// Whether the schedule is in force at this city-local time.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use muckwatch::geofence::{Schedule, Window};
    /// let s = Schedule::new(vec![Window::parse("Mon-Fri", "07:00", "08:30").unwrap()]);
    /// let mon = NaiveDate::from_ymd_opt(2024, 6, 3).unwrap(); // a Monday
    /// assert!(s.is_active(mon.and_hms_opt(7, 45, 0).unwrap()));
    /// assert!(!s.is_active(mon.and_hms_opt(8, 30, 0).unwrap())); // end is exclusive
    /// ```
    pub fn is_active(&self, local: NaiveDateTime) -> bool {
        let weekday = local.weekday().num_days_from_monday();
        let secs = local.num_seconds_from_midnight();
        self.windows.iter().any(|w| w.is_active(weekday, secs))
    }
}

fn parse_time(s: &str, allow_24: bool) -> Result<u32, String> {
    let bad = || format!("time {s:?} is not HH:MM");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let digits = |t: &str| !t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || m.len() != 2 || !digits(m) {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if (h == 24 && m == 0 && allow_24) || (h < 24 && m < 60) {
        Ok(h * 3600 + m * 60)
    } else {
        Err(bad())
    }
}

fn parse_day(s: &str) -> Result<u32, String> {
    let l = s.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| l.len() >= 3 && full_name(d).starts_with(l.as_str()))
        .map(|i| i as u32)
        .ok_or_else(|| format!("unknown day {s:?} (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
}

fn full_name(short: &str) -> &'static str {
    match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    }
}

fn parse_days(s: &str) -> Result<u8, String> {
    let l = s.trim().to_ascii_lowercase();
    if matches!(l.as_str(), "daily" | "*" | "all" | "every day" | "everyday") {
        return Ok(ALL_DAYS);
    }
    let mut mask = 0u8;
    for part in l.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse_day(a)?, parse_day(b)?);
                let mut d = a;
                loop {
                    mask |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => mask |= 1 << parse_day(part)?,
        }
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, 0))
            .expect("valid")
    }

    #[test]
    fn school_hours() {
        let v = serde_json::json!([
            {"days":"Mon-Fri","start":"07:00","end":"08:30"},
            {"days":"Mon-Fri","start":"16:30","end":"18:00"}
        ]);
        let s = Schedule::from_json(&v).expect("parses");
        // 2024-06-03 is a Monday, 2024-06-08 a Saturday
        assert!(!s.is_active(at(2024, 6, 3, 6, 59)));
        assert!(s.is_active(at(2024, 6, 3, 7, 0)));
        assert!(s.is_active(at(2024, 6, 3, 8, 29)));
        assert!(!s.is_active(at(2024, 6, 3, 8, 30)));
        assert!(s.is_active(at(2024, 6, 7, 17, 0)));
        assert!(!s.is_active(at(2024, 6, 8, 7, 30)));
    }

    #[test]
    fn crossing_midnight_belongs_to_the_start_day() {
        let s = Schedule::new(vec![Window::parse("Fri", "22:00", "06:00").expect("ok")]);
        assert!(s.is_active(at(2024, 6, 7, 23, 0))); // Friday night
        assert!(s.is_active(at(2024, 6, 8, 5, 59))); // Saturday early
        assert!(!s.is_active(at(2024, 6, 8, 23, 0))); // Saturday night
        assert!(!s.is_active(at(2024, 6, 7, 5, 0))); // Friday early (Thursday not listed)
    }

    #[test]
    fn day_lists_and_ranges() {
        assert_eq!(parse_days("Mon-Fri"), Ok(0b001_1111));
        assert_eq!(parse_days("sat,sun"), Ok(0b110_0000));
        assert_eq!(parse_days("Fri-Mon"), Ok(0b111_0001));
        assert_eq!(parse_days("Monday,Wed"), Ok(0b000_0101));
        assert_eq!(parse_days("daily"), Ok(ALL_DAYS));
        assert!(parse_days("Mo").is_err());
        assert!(parse_days("Mondays").is_err());
        assert!(parse_days("").is_err());
    }

    #[test]
    fn bad_windows_are_refused() {
        assert!(Window::parse("Mon", "7:00", "24:00").is_ok());
        assert!(Window::parse("Mon", "24:00", "06:00").is_err());
        assert!(Window::parse("Mon", "07:60", "08:00").is_err());
        assert!(Window::parse("Mon", "0700", "08:00").is_err());
        assert!(Window::parse("Mon", "08:00", "08:00").is_err());
        assert!(Schedule::from_json(&serde_json::json!([])).is_err());
        assert!(Schedule::from_json(&serde_json::json!({"days":"Mon"})).is_err());
        assert!(Schedule::from_json(&serde_json::json!([{"start":"07:00"}])).is_err());
    }
}
