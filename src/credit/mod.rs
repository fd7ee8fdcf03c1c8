//! Firm credit (建筑垃圾运输企业信用评价): the scheme as configuration
//! (`[credit]`: base, cycle, points per code, grade bands, blacklist grade),
//! the cycle a violation counts in, score and grade, and
//! [`plan_credit`]: which violations of a case are charged or reversed
//! after a check change. Pure; the store writes what a plan says.

mod ledger;

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, TimeZone};
use serde::Deserialize;

use crate::violation::ViolationCode;

pub use ledger::{plan_credit, CaseViolation, CreditPlan};

/// A credit grade, A best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grade {
    A,
    B,
    C,
    D,
}

impl Grade {
    pub const ALL: [Grade; 4] = [Grade::A, Grade::B, Grade::C, Grade::D];

    pub fn as_str(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
        }
    }

    pub fn parse(s: &str) -> Option<Grade> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// How long a credit cycle lasts (`cycle = "year"` or `"half_year"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleKind {
    Year,
    HalfYear,
}

/// One cycle: `2021` (a year) or `2021H1` / `2021H2` (half years).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cycle {
    pub year: i32,
    /// 0 for a whole year, else 1 or 2.
    pub half: u8,
}

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.half {
            0 => write!(f, "{}", self.year),
            h => write!(f, "{}H{h}", self.year),
        }
    }
}

impl Cycle {
    /// The cycle before this one.
    pub fn previous(self) -> Cycle {
        match self.half {
            0 => Cycle {
                year: self.year - 1,
                half: 0,
            },
            1 => Cycle {
                year: self.year - 1,
                half: 2,
            },
            _ => Cycle {
                year: self.year,
                half: 1,
            },
        }
    }

    /// First local day of the cycle and first local day after it.
    fn days(self) -> Option<(NaiveDate, NaiveDate)> {
        let (m0, m1, y1) = match self.half {
            0 => (1, 1, self.year + 1),
            1 => (1, 7, self.year),
            _ => (7, 1, self.year + 1),
        };
        Some((
            NaiveDate::from_ymd_opt(self.year, m0, 1)?,
            NaiveDate::from_ymd_opt(y1, m1, 1)?,
        ))
    }

    /// `[from, to)` in UTC milliseconds: the cycle's local days in `tz`.
    pub fn bounds_ms(self, tz: chrono_tz::Tz) -> Option<(i64, i64)> {
        let (a, b) = self.days()?;
        let start = |d: NaiveDate| {
            tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                .earliest()
                .map(|t| t.timestamp_millis())
        };
        Some((start(a)?, start(b)?))
    }
}

/// `[credit]` as written in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CreditSettings {
    pub base: u32,
    /// `year` or `half_year`.
    pub cycle: String,
    /// Points per violation code; codes not named keep the default.
    pub points: BTreeMap<String, u32>,
    /// Lowest score of each grade above D: `{ A = 90, B = 80, C = 60 }`.
    pub grades: BTreeMap<String, u32>,
    pub blacklist_grade: String,
}

impl Default for CreditSettings {
    fn default() -> Self {
        CreditSettings {
            base: 100,
            cycle: "year".into(),
            points: BTreeMap::new(),
            grades: BTreeMap::new(),
            blacklist_grade: "D".into(),
        }
    }
}

/// The credit scheme, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditScheme {
    pub base: i64,
    pub cycle: CycleKind,
    points: BTreeMap<ViolationCode, i64>,
    /// Lowest score of A, B and C, descending.
    thresholds: [(Grade, i64); 3],
    pub blacklist_grade: Grade,
}

impl Default for CreditScheme {
    /// Quanzhou-like: 100 a year; 20 for transport without approval, 10 for
    /// dumping outside designated sites, 5 for overload or a restricted zone,
    /// 3 for speeding, hours, route, cover or a silent terminal.
    fn default() -> Self {
        use ViolationCode::*;
        CreditScheme {
            base: 100,
            cycle: CycleKind::Year,
            points: BTreeMap::from([
                (NoPermit, 20),
                (IllegalDumping, 10),
                (WrongDisposalSite, 10),
                (Overload, 5),
                (RestrictedZone, 5),
                (Speeding, 3),
                (OutOfHours, 3),
                (RouteDeviation, 3),
                (CoverOpen, 3),
                (TrackGap, 3),
            ]),
            thresholds: [(Grade::A, 90), (Grade::B, 80), (Grade::C, 60)],
            blacklist_grade: Grade::D,
        }
    }
}

impl CreditSettings {
    pub fn scheme(&self) -> Result<CreditScheme, String> {
        let mut s = CreditScheme {
            base: i64::from(self.base),
            ..CreditScheme::default()
        };
        s.cycle = match self.cycle.as_str() {
            "year" => CycleKind::Year,
            "half_year" => CycleKind::HalfYear,
            other => {
                return Err(format!(
                    "credit.cycle: `{other}` is not `year` or `half_year`"
                ))
            }
        };
        for (code, &p) in &self.points {
            let c = ViolationCode::parse(code)
                .ok_or_else(|| format!("credit.points: `{code}` is not a violation code"))?;
            s.points.insert(c, i64::from(p));
        }
        for (grade, &min) in &self.grades {
            let slot = s
                .thresholds
                .iter_mut()
                .find(|(g, _)| g.as_str() == grade)
                .ok_or_else(|| format!("credit.grades: `{grade}` is not A, B or C"))?;
            slot.1 = i64::from(min);
        }
        if !s.thresholds.windows(2).all(|w| w[0].1 > w[1].1) {
            return Err("credit.grades: A must need more points than B, and B more than C".into());
        }
        s.blacklist_grade = Grade::parse(&self.blacklist_grade).ok_or_else(|| {
            format!(
                "credit.blacklist_grade: `{}` is not A, B, C or D",
                self.blacklist_grade
            )
        })?;
        Ok(s)
    }
}

impl CreditScheme {
    pub fn points(&self, code: ViolationCode) -> i64 {
        self.points.get(&code).copied().unwrap_or(0)
    }

    pub fn grade(&self, score: i64) -> Grade {
        self.thresholds
            .iter()
            .find(|(_, min)| score >= *min)
            .map(|(g, _)| *g)
            .unwrap_or(Grade::D)
    }

    /// Whether a firm of this grade gets no new permit.
    pub fn blacklisted(&self, grade: Grade) -> bool {
        grade >= self.blacklist_grade
    }

    /// The cycle of local date `d`.
    pub fn cycle_of_date(&self, d: NaiveDate) -> Cycle {
        Cycle {
            year: d.year(),
            half: match self.cycle {
                CycleKind::Year => 0,
                CycleKind::HalfYear if d.month() <= 6 => 1,
                CycleKind::HalfYear => 2,
            },
        }
    }

    /// The cycle of instant `ms`, by its local date in `tz`.
    pub fn cycle_of_ms(&self, ms: i64, tz: chrono_tz::Tz) -> Cycle {
        let d = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&tz)
            .date_naive();
        self.cycle_of_date(d)
    }

    /// Parses a `?cycle=` of this scheme's kind: `2021`, or `2021H1`.
    pub fn parse_cycle(&self, s: &str) -> Result<Cycle, String> {
        let bad = || match self.cycle {
            CycleKind::Year => format!("cycle `{s}` is not a year like 2021"),
            CycleKind::HalfYear => format!("cycle `{s}` is not a half year like 2021H1"),
        };
        let (year, half) = match self.cycle {
            CycleKind::Year => (s, 0),
            CycleKind::HalfYear => match s.split_once('H') {
                Some((y, "1")) => (y, 1),
                Some((y, "2")) => (y, 2),
                _ => return Err(bad()),
            },
        };
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        Ok(Cycle { year, half })
    }

    /// The score after `codes` were charged: base less their points.
    pub fn score(&self, codes: impl IntoIterator<Item = ViolationCode>) -> i64 {
        self.base - codes.into_iter().map(|c| self.points(c)).sum::<i64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scheme_grades_and_blacklists() {
        let s = CreditScheme::default();
        assert_eq!(s.grade(100), Grade::A);
        assert_eq!(s.grade(90), Grade::A);
        assert_eq!(s.grade(89), Grade::B);
        assert_eq!(s.grade(60), Grade::C);
        assert_eq!(s.grade(59), Grade::D);
        assert_eq!(s.grade(-20), Grade::D);
        assert!(s.blacklisted(Grade::D) && !s.blacklisted(Grade::C));
        assert_eq!(
            s.score([ViolationCode::NoPermit, ViolationCode::Speeding]),
            77
        );
    }

    #[test]
    fn settings_are_checked_and_named() {
        let mut set = CreditSettings::default();
        set.points.insert("SPEED".into(), 1);
        assert!(set.scheme().unwrap_err().contains("SPEED"));
        let mut set = CreditSettings::default();
        set.grades.insert("B".into(), 95);
        assert!(set.scheme().unwrap_err().contains("credit.grades"));
        let mut set = CreditSettings {
            cycle: "half_year".into(),
            blacklist_grade: "C".into(),
            ..Default::default()
        };
        set.points.insert("SPEEDING".into(), 1);
        let s = set.scheme().unwrap();
        assert_eq!(s.points(ViolationCode::Speeding), 1);
        assert!(s.blacklisted(Grade::C));
        assert_eq!(s.parse_cycle("2021H2").unwrap().to_string(), "2021H2");
        assert!(s.parse_cycle("2021").is_err());
    }

    #[test]
    fn the_deployed_configuration_holds_a_valid_scheme() {
        let settings: crate::configuration::Settings =
            toml::from_str(include_str!("../../deploy/muckwatch.toml")).unwrap();
        let s = settings.credit.scheme().unwrap();
        assert_eq!(s, CreditScheme::default());
    }

    #[test]
    fn cycles_follow_local_dates() {
        let s = CreditScheme::default();
        let tz = chrono_tz::Asia::Shanghai;
        // 2020-12-31T16:30Z is already 2021-01-01 in Shanghai.
        let ms = 1_609_432_200_000;
        assert_eq!(s.cycle_of_ms(ms, tz).to_string(), "2021");
        let c = s.parse_cycle("2021").unwrap();
        let (a, b) = c.bounds_ms(tz).unwrap();
        assert!(a <= ms && ms < b);
        assert_eq!(a, 1_609_430_400_000);
        assert_eq!(c.previous().to_string(), "2020");
        assert!(s.parse_cycle("21").is_err() && s.parse_cycle("-202").is_err());
        let h = Cycle {
            year: 2021,
            half: 1,
        };
        assert_eq!(h.previous().to_string(), "2020H2");
    }
}
