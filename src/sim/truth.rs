//! Ground truth: what the simulator made the trucks do that a rule should catch.
//!
//! File format (NDJSON): an optional first line describing the run,
//! `{"fleet":{"scenario","seed","start","end","sigma_m","interval_s","trucks","plates":[..]}}`,
//! then one line per violation episode, sorted by start:
//! `{"plate","code","start","end","device_id","note"}` (times RFC 3339 in the city's
//! offset). `note` says how it came about ("detour into rz-01", "side effect: off
//! route on the way to d03"), for whoever reads a miss or a false alarm.
//!
//! Entries are recorded from the truck's true state, second by second, while a
//! scripted behaviour is under way ([`Recorder::observe`]): a violation's truth is
//! exactly when the condition held, whatever the terminal then reports.

use chrono::{DateTime, FixedOffset, SecondsFormat};
use serde_json::{json, Value};

use crate::violation::ViolationCode;

/// Conditions that lapse for less than this are one episode (a second at a zone's
/// edge is not a new incident).
const MERGE_MS: i64 = 30_000;

#[derive(Debug, Clone, PartialEq)]
pub struct TruthEntry {
    pub plate: String,
    pub device_id: String,
    pub code: ViolationCode,
    pub start_ms: i64,
    pub end_ms: i64,
    pub note: String,
}

/// The run a truth file describes: scoring only looks at these plates and times.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetHeader {
    pub scenario: String,
    pub seed: u64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub sigma_m: f64,
    pub interval_s: u32,
    pub plates: Vec<String>,
}

fn rfc3339(ms: i64, offset: FixedOffset) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&offset)
                .to_rfc3339_opts(SecondsFormat::Secs, false)
        })
        .unwrap_or_default()
}

fn parse_time(v: &Value, field: &str, line: usize) -> Result<i64, String> {
    let s = v[field]
        .as_str()
        .ok_or_else(|| format!("line {line}: `{field}` must be an RFC 3339 string"))?;
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("line {line}: `{field}` {s:?}: {e}"))
}

impl TruthEntry {
    pub fn to_json(&self, offset: FixedOffset) -> Value {
        json!({"plate": self.plate, "code": self.code.as_str(), "start": rfc3339(self.start_ms, offset),
               "end": rfc3339(self.end_ms, offset), "device_id": self.device_id, "note": self.note})
    }
}

impl FleetHeader {
    pub fn to_json(&self, offset: FixedOffset) -> Value {
        json!({"fleet": {"scenario": self.scenario, "seed": self.seed, "start": rfc3339(self.start_ms, offset),
               "end": rfc3339(self.end_ms, offset), "sigma_m": self.sigma_m, "interval_s": self.interval_s,
               "trucks": self.plates.len(), "plates": self.plates}})
    }
}

/// The whole file, header first, entries sorted by (start, plate, code).
pub fn to_ndjson(header: &FleetHeader, entries: &[TruthEntry], offset: FixedOffset) -> String {
    let mut sorted: Vec<&TruthEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| (a.start_ms, &a.plate, a.code).cmp(&(b.start_ms, &b.plate, b.code)));
    let mut out = header.to_json(offset).to_string();
    out.push('\n');
    for e in sorted {
        out.push_str(&e.to_json(offset).to_string());
        out.push('\n');
    }
    out
}

/// Reads a truth file; the header is optional. Errors name the line.
pub fn parse(text: &str) -> Result<(Option<FleetHeader>, Vec<TruthEntry>), String> {
    let mut header = None;
    let mut entries = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let n = i + 1;
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("line {n}: not JSON: {e}"))?;
        if let Some(f) = v.get("fleet") {
            let plates = f["plates"].as_array().map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect()
            });
            header = Some(FleetHeader {
                scenario: f["scenario"].as_str().unwrap_or_default().to_string(),
                seed: f["seed"].as_u64().unwrap_or_default(),
                start_ms: parse_time(f, "start", n)?,
                end_ms: parse_time(f, "end", n)?,
                sigma_m: f["sigma_m"].as_f64().unwrap_or_default(),
                interval_s: f["interval_s"]
                    .as_u64()
                    .and_then(|x| u32::try_from(x).ok())
                    .unwrap_or_default(),
                plates: plates.unwrap_or_default(),
            });
            continue;
        }
        let code = v["code"]
            .as_str()
            .ok_or_else(|| format!("line {n}: `code` is missing"))?;
        let code = ViolationCode::parse(code)
            .ok_or_else(|| format!("line {n}: `{code}` is not a violation code"))?;
        let plate = v["plate"]
            .as_str()
            .ok_or_else(|| format!("line {n}: `plate` is missing"))?;
        entries.push(TruthEntry {
            plate: plate.to_string(),
            device_id: v["device_id"].as_str().unwrap_or_default().to_string(),
            code,
            start_ms: parse_time(&v, "start", n)?,
            end_ms: parse_time(&v, "end", n)?,
            note: v["note"].as_str().unwrap_or_default().to_string(),
        });
    }
    Ok((header, entries))
}

/// Turns a truck's second-by-second conditions into episodes.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Per code: (start, last second the condition held, note) of the open episode.
    open: [Option<(i64, i64, &'static str)>; ViolationCode::ALL.len()],
    done: Vec<(ViolationCode, i64, i64, String)>,
}

impl Recorder {
    /// The condition of `code` at time `t_ms` (one call per simulated second).
    pub fn observe(&mut self, code: ViolationCode, active: bool, t_ms: i64, note: &'static str) {
        let slot = &mut self.open[code.index()];
        match (slot.as_mut(), active) {
            (None, true) => *slot = Some((t_ms, t_ms, note)),
            (Some(open), true) => open.1 = t_ms,
            (Some(&mut (start, last, note)), false) if t_ms - last > MERGE_MS => {
                self.done.push((code, start, last, note.to_string()));
                *slot = None;
            }
            _ => {}
        }
    }

    /// An episode known as a whole (a silence: last fix before, first fix after).
    pub fn push(
        &mut self,
        code: ViolationCode,
        start_ms: i64,
        end_ms: i64,
        note: impl Into<String>,
    ) {
        self.done.push((code, start_ms, end_ms, note.into()));
    }

    /// Closes what is still open at the end of the run (at its last qualifying second).
    pub fn finish(mut self) -> Vec<(ViolationCode, i64, i64, String)> {
        for (code, slot) in ViolationCode::ALL.into_iter().zip(self.open.iter_mut()) {
            if let Some((start, last, note)) = slot.take() {
                self.done.push((code, start, last, note.to_string()));
            }
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lapses_merge_and_long_ones_split() {
        let mut r = Recorder::default();
        let code = ViolationCode::RouteDeviation;
        for t in 0..100 {
            let active = (10..40).contains(&t) || (50..60).contains(&t) || (95..100).contains(&t);
            r.observe(code, active, t * 1000, "x");
        }
        let done = r.finish();
        assert_eq!(done.len(), 2, "{done:?}");
        assert_eq!(
            (done[0].1, done[0].2),
            (10_000, 59_000),
            "10 s lapse merged"
        );
        assert_eq!(
            (done[1].1, done[1].2),
            (95_000, 99_000),
            "closed at the end"
        );
    }

    #[test]
    fn the_file_round_trips() {
        let offset = FixedOffset::east_opt(8 * 3600).expect("offset");
        let header = FleetHeader {
            scenario: "mixed".into(),
            seed: 3,
            start_ms: 1_622_552_400_000,
            end_ms: 1_622_584_800_000,
            sigma_m: 8.0,
            interval_s: 10,
            plates: vec!["苏J00001".into(), "苏J00002".into()],
        };
        let entries = vec![
            TruthEntry {
                plate: "苏J00002".into(),
                device_id: "d2".into(),
                code: ViolationCode::Speeding,
                start_ms: 1_622_553_000_000,
                end_ms: 1_622_553_060_000,
                note: "burst".into(),
            },
            TruthEntry {
                plate: "苏J00001".into(),
                device_id: "d1".into(),
                code: ViolationCode::TrackGap,
                start_ms: 1_622_552_500_000,
                end_ms: 1_622_553_100_000,
                note: "silent".into(),
            },
        ];
        let text = to_ndjson(&header, &entries, offset);
        assert!(
            text.lines()
                .nth(1)
                .is_some_and(|l| l.contains("TRACK_GAP") && l.contains("+08:00")),
            "{text}"
        );
        let (h, e) = parse(&text).expect("parses");
        assert_eq!(h, Some(header));
        assert_eq!(e.len(), 2);
        assert!(e.contains(&entries[0]) && e.contains(&entries[1]));
        assert!(parse("{\"code\":\"FAST\",\"plate\":\"x\"}")
            .unwrap_err()
            .contains("line 1"));
    }
}
