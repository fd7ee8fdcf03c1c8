//! Scoring detection against the simulator's ground truth (`muckwatch score`).
//!
//! A detected violation matches a truth entry of the same plate and code whose
//! `[start, end]` overlaps the detection's `[started_at, ended_at or started_at]`
//! widened by a tolerance on each side; each truth entry is matched at most once (the
//! one starting nearest to the detection), so a second detection of one incident is
//! a false positive, as an officer sent twice would count it. Per code: truth and
//! detected counts, true and false positives, misses, precision, recall, and the
//! detection delay (detected start minus true start: how late the first evidence fix
//! is, not how long the rule waits before raising).

use std::fmt::Write;

use chrono::{DateTime, FixedOffset, SecondsFormat};

use super::truth::{FleetHeader, TruthEntry};
use crate::store::{Store, ViolationFilter};
use crate::violation::ViolationCode;

/// The default matching tolerance.
pub const TOLERANCE_MS: i64 = 300_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub plate: String,
    pub code: ViolationCode,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CodeScore {
    pub code: ViolationCode,
    pub truth: usize,
    pub detected: usize,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    /// Seconds, per true positive.
    pub delays_s: Vec<f64>,
}

impl CodeScore {
    /// TP / detected; 1 when nothing was detected (nothing wrongly raised).
    pub fn precision(&self) -> f64 {
        if self.detected == 0 {
            1.0
        } else {
            self.tp as f64 / self.detected as f64
        }
    }

    /// TP / truth; 1 when there was nothing to find.
    pub fn recall(&self) -> f64 {
        if self.truth == 0 {
            1.0
        } else {
            self.tp as f64 / self.truth as f64
        }
    }

    pub fn mean_delay_s(&self) -> Option<f64> {
        (!self.delays_s.is_empty())
            .then(|| self.delays_s.iter().sum::<f64>() / self.delays_s.len() as f64)
    }

    pub fn max_delay_s(&self) -> Option<f64> {
        self.delays_s.iter().copied().reduce(f64::max)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub codes: Vec<CodeScore>,
    pub false_positives: Vec<Detected>,
    pub misses: Vec<TruthEntry>,
}

impl Score {
    pub fn code(&self, code: ViolationCode) -> &CodeScore {
        &self.codes[code.index()]
    }
}

pub fn score(truth: &[TruthEntry], detected: &[Detected], tolerance_ms: i64) -> Score {
    let mut codes: Vec<CodeScore> = ViolationCode::ALL
        .into_iter()
        .map(|code| CodeScore {
            code,
            truth: 0,
            detected: 0,
            tp: 0,
            fp: 0,
            fn_: 0,
            delays_s: Vec::new(),
        })
        .collect();
    let mut matched = vec![false; truth.len()];
    let mut by_start: Vec<&Detected> = detected.iter().collect();
    by_start.sort_by(|a, b| (a.start_ms, &a.plate).cmp(&(b.start_ms, &b.plate)));
    let mut false_positives = Vec::new();
    for d in by_start {
        let c = &mut codes[d.code.index()];
        c.detected += 1;
        let (lo, hi) = (
            d.start_ms - tolerance_ms,
            d.end_ms.unwrap_or(d.start_ms).max(d.start_ms) + tolerance_ms,
        );
        let best = truth
            .iter()
            .enumerate()
            .filter(|(i, t)| {
                !matched[*i]
                    && t.code == d.code
                    && t.plate == d.plate
                    && t.start_ms <= hi
                    && t.end_ms >= lo
            })
            .min_by_key(|(_, t)| (t.start_ms - d.start_ms).abs());
        match best {
            Some((i, t)) => {
                matched[i] = true;
                c.tp += 1;
                c.delays_s.push((d.start_ms - t.start_ms) as f64 / 1000.0);
            }
            None => {
                c.fp += 1;
                false_positives.push(d.clone());
            }
        }
    }
    let mut misses = Vec::new();
    for (t, m) in truth.iter().zip(&matched) {
        let c = &mut codes[t.code.index()];
        c.truth += 1;
        if !m {
            c.fn_ += 1;
            misses.push(t.clone());
        }
    }
    Score {
        codes,
        false_positives,
        misses,
    }
}

/// The table, then the false positives and misses one per line (for a look at the track).
pub fn table(score: &Score, offset: FixedOffset) -> String {
    let time = |ms: i64| {
        DateTime::from_timestamp_millis(ms)
            .map(|t| {
                t.with_timezone(&offset)
                    .to_rfc3339_opts(SecondsFormat::Secs, false)
            })
            .unwrap_or_default()
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:>6} {:>8} {:>5} {:>5} {:>5} {:>9} {:>7} {:>12} {:>11}",
        "code",
        "truth",
        "detected",
        "TP",
        "FP",
        "FN",
        "precision",
        "recall",
        "mean delay s",
        "max delay s"
    );
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |d| format!("{d:.1}"));
    let mut total = CodeScore {
        code: ViolationCode::NoPermit,
        truth: 0,
        detected: 0,
        tp: 0,
        fp: 0,
        fn_: 0,
        delays_s: Vec::new(),
    };
    for c in &score.codes {
        let _ = writeln!(
            out,
            "{:<20} {:>6} {:>8} {:>5} {:>5} {:>5} {:>9.3} {:>7.3} {:>12} {:>11}",
            c.code.as_str(),
            c.truth,
            c.detected,
            c.tp,
            c.fp,
            c.fn_,
            c.precision(),
            c.recall(),
            fmt(c.mean_delay_s()),
            fmt(c.max_delay_s())
        );
        total.truth += c.truth;
        total.detected += c.detected;
        total.tp += c.tp;
        total.fp += c.fp;
        total.fn_ += c.fn_;
        total.delays_s.extend_from_slice(&c.delays_s);
    }
    let _ = writeln!(
        out,
        "{:<20} {:>6} {:>8} {:>5} {:>5} {:>5} {:>9.3} {:>7.3} {:>12} {:>11}",
        "all",
        total.truth,
        total.detected,
        total.tp,
        total.fp,
        total.fn_,
        total.precision(),
        total.recall(),
        fmt(total.mean_delay_s()),
        fmt(total.max_delay_s())
    );
    for d in &score.false_positives {
        let _ = writeln!(
            out,
            "false positive: {} {} from {} (no truth within the tolerance)",
            d.code,
            d.plate,
            time(d.start_ms)
        );
    }
    for t in &score.misses {
        let _ = writeln!(
            out,
            "missed: {} {} {} .. {} ({})",
            t.code,
            t.plate,
            time(t.start_ms),
            time(t.end_ms),
            t.note
        );
    }
    out
}

/// The violations detected, from the store; with a header, only the run's plates and
/// those starting within its span (give or take the tolerance).
pub async fn load_detected(
    store: &Store,
    header: Option<&FleetHeader>,
    tolerance_ms: i64,
) -> anyhow::Result<Vec<Detected>> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let (page, total) = store
            .violations(&ViolationFilter::default(), 1000, offset)
            .await?;
        let n = page.len() as i64;
        // a withdrawn violation (a TRACK_GAP covered by 补报) is not a detection
        for v in page.into_iter().filter(|v| !v.withdrawn) {
            let code = v.code;
            let plate = v.plate.to_string();
            let in_run = header.is_none_or(|h| {
                h.plates.contains(&plate)
                    && v.started_ms >= h.start_ms - tolerance_ms
                    && v.started_ms <= h.end_ms + tolerance_ms
            });
            if in_run {
                out.push(Detected {
                    plate,
                    code,
                    start_ms: v.started_ms,
                    end_ms: v.ended_ms,
                });
            }
        }
        offset += n;
        if n == 0 || offset >= total {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ViolationCode::*;

    fn t(plate: &str, code: ViolationCode, start: i64, end: i64) -> TruthEntry {
        TruthEntry {
            plate: plate.into(),
            device_id: String::new(),
            code,
            start_ms: start * 1000,
            end_ms: end * 1000,
            note: String::new(),
        }
    }

    fn d(plate: &str, code: ViolationCode, start: i64, end: Option<i64>) -> Detected {
        Detected {
            plate: plate.into(),
            code,
            start_ms: start * 1000,
            end_ms: end.map(|e| e * 1000),
        }
    }

    #[test]
    fn matching_counts_each_truth_once_and_within_the_tolerance() {
        let truth = [
            t("A", Speeding, 1000, 1060),
            t("A", Speeding, 5000, 5060),
            t("B", CoverOpen, 2000, 2240),
            t("C", TrackGap, 100, 99_999),
        ];
        let detected = [
            d("A", Speeding, 1010, Some(1055)), // TP, 10 s late
            d("A", Speeding, 1030, Some(1050)), // the same incident again: FP
            d("A", Speeding, 5350, None), // 290 s after the start, within 5 min of the span: TP
            d("B", Speeding, 2000, None), // wrong code: FP
            d("C", TrackGap, 100, None),  // still open: TP
        ];
        let s = score(&truth, &detected, TOLERANCE_MS);
        let sp = s.code(Speeding);
        assert_eq!(
            (sp.truth, sp.detected, sp.tp, sp.fp, sp.fn_),
            (2, 4, 2, 2, 0)
        );
        assert_eq!(sp.delays_s, vec![10.0, 350.0]);
        assert_eq!(s.code(CoverOpen).fn_, 1);
        assert_eq!(s.code(CoverOpen).recall(), 0.0);
        assert_eq!(s.code(TrackGap).tp, 1);
        assert_eq!(s.code(Overload).precision(), 1.0);
        assert_eq!(s.false_positives.len(), 2);
        assert_eq!(s.misses, vec![truth[2].clone()]);
        let far = score(
            &truth[..1],
            &[d("A", Speeding, 1060 + 301, None)],
            TOLERANCE_MS,
        );
        assert_eq!(far.code(Speeding).tp, 0, "beyond the tolerance");
        let offset = FixedOffset::east_opt(8 * 3600).expect("offset");
        let text = table(&s, offset);
        assert!(
            text.contains("SPEEDING") && text.contains("missed: COVER_OPEN B"),
            "{text}"
        );
    }
}
