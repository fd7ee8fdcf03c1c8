//! Episode and quiet-period bookkeeping, shared by every rule.
//!
//! Each rule only decides, per fix, whether its condition holds (a [`Verdict`]); the
//! [`Episode`] turns that stream into at most one raise per episode:
//! - a *run* starts at the first qualifying fix (or earlier, at `began_ms`, when the
//!   condition was seen between two fixes) and grows with every qualifying fix;
//! - the run is *raised* once, at the fix where it has lasted long enough and has
//!   enough fixes (its [`Threshold`]), unless the code is in its quiet period;
//! - the first fix on which the condition no longer holds ends it: a raised episode
//!   ends at its last qualifying fix, and the quiet period runs from there.
//!
//! A run that starts inside the quiet period is kept: if it is still going when the
//! quiet period is over, it is raised then, with its true start. So a condition that
//! flaps is raised at most once per quiet period, and one that persists is not lost.

/// When a run is due: `min_ms` of event time from its start to the current fix, and
/// at least `min_fixes` qualifying fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Threshold {
    pub min_ms: i64,
    pub min_fixes: u32,
}

impl Threshold {
    /// Raised on the first qualifying fix (conditions seen between two fixes: a zone
    /// crossed, a load dropped, a jump).
    pub const IMMEDIATE: Threshold = Threshold {
        min_ms: 0,
        min_fixes: 1,
    };

    /// Not due however long the run lasts (the run goes on, unraised).
    pub const NEVER: Threshold = Threshold {
        min_ms: i64::MAX,
        min_fixes: u32::MAX,
    };

    pub fn seconds(s: u64) -> Threshold {
        Threshold {
            min_ms: secs_to_ms(s),
            min_fixes: 1,
        }
    }

    pub fn fixes(n: u32) -> Threshold {
        Threshold {
            min_ms: 0,
            min_fixes: n,
        }
    }
}

pub(crate) fn secs_to_ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// What one fix says about one rule's condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// The condition holds. `began_ms` is where a new run starts (the fix's own time,
    /// or the previous fix's for a condition seen between the two); `value` feeds the
    /// episode's peak (speed, distance, load).
    Qualifies {
        began_ms: i64,
        value: f64,
        threshold: Threshold,
    },
    /// In a hysteresis band: a raised episode goes on; anything else is over.
    Holds,
    /// The condition does not hold: the run, and a raised episode, end.
    Clear,
    /// The fix carries nothing about this condition (e.g. no load reading): no change.
    Unknown,
}

/// What the caller must emit after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Nothing,
    /// Raise now; the episode's `started_ms` and `peak` are set.
    Raise,
    /// A raised episode is over: it ran from `started_ms` to `ended_ms` (its last
    /// qualifying fix).
    Ended {
        started_ms: i64,
        ended_ms: i64,
    },
}

/// One code's episode state for one vehicle: a few words, no heap.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Episode {
    /// Start of the current run (valid while `fixes > 0`).
    pub started_ms: i64,
    /// The run's last qualifying fix.
    pub last_ms: i64,
    /// Qualifying fixes in the current run; 0 = no run.
    pub fixes: u32,
    /// The run has been raised (and not ended).
    pub raised: bool,
    /// Highest `value` seen in the run.
    pub peak: f64,
    /// A rule-specific value captured when the run began (the load before unloading).
    pub baseline: Option<f64>,
    /// No raise before this time (end of the last episode + quiet period).
    pub quiet_until_ms: Option<i64>,
}

impl Episode {
    pub fn in_run(&self) -> bool {
        self.fixes > 0
    }

    pub fn step(&mut self, ts_ms: i64, verdict: Verdict, quiet_ms: i64) -> Outcome {
        match verdict {
            Verdict::Qualifies {
                began_ms,
                value,
                threshold,
            } => {
                if self.qualify(ts_ms, began_ms, value, threshold) {
                    Outcome::Raise
                } else {
                    Outcome::Nothing
                }
            }
            Verdict::Holds if self.raised => {
                self.last_ms = ts_ms;
                Outcome::Nothing
            }
            Verdict::Holds | Verdict::Clear => self.end(quiet_ms),
            Verdict::Unknown => Outcome::Nothing,
        }
    }

    /// A qualifying fix; true when it raises the run.
    pub fn qualify(&mut self, ts_ms: i64, began_ms: i64, value: f64, threshold: Threshold) -> bool {
        if self.fixes == 0 {
            self.started_ms = began_ms.min(ts_ms);
            self.peak = value;
        }
        self.fixes = self.fixes.saturating_add(1);
        self.last_ms = ts_ms;
        if value > self.peak {
            self.peak = value;
        }
        if self.raised {
            return false;
        }
        let due = ts_ms - self.started_ms >= threshold.min_ms && self.fixes >= threshold.min_fixes;
        let quiet = self.quiet_until_ms.is_some_and(|q| ts_ms < q);
        self.raised = due && !quiet;
        self.raised
    }

    /// The condition stopped: the run ends; a raised episode reports its span and
    /// starts the quiet period.
    pub fn end(&mut self, quiet_ms: i64) -> Outcome {
        let outcome = if self.raised {
            self.quiet_until_ms = Some(self.last_ms.saturating_add(quiet_ms));
            Outcome::Ended {
                started_ms: self.started_ms,
                ended_ms: self.last_ms,
            }
        } else {
            Outcome::Nothing
        };
        self.fixes = 0;
        self.raised = false;
        outcome
    }

    /// Continuity was lost (a silence longer than the gap threshold): a run that has
    /// not been raised starts over, because nobody saw what happened in between. A
    /// raised episode is left to the next fixes to end.
    pub fn break_run(&mut self) {
        if !self.raised {
            self.fixes = 0;
        }
    }

    /// Seconds from the start of the run to `ts_ms` (the measured value of the
    /// duration rules at raise time).
    pub fn duration_s(&self, ts_ms: i64) -> f64 {
        (ts_ms - self.started_ms) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(ts: i64, th: Threshold) -> Verdict {
        Verdict::Qualifies {
            began_ms: ts,
            value: ts as f64,
            threshold: th,
        }
    }

    #[test]
    fn raised_once_when_due_then_ended_at_last_qualifying_fix() {
        let mut e = Episode::default();
        let th = Threshold {
            min_ms: 20_000,
            min_fixes: 3,
        };
        assert_eq!(e.step(0, q(0, th), 600_000), Outcome::Nothing);
        assert_eq!(e.step(10_000, q(10_000, th), 600_000), Outcome::Nothing);
        assert_eq!(e.step(20_000, q(20_000, th), 600_000), Outcome::Raise);
        assert_eq!(e.started_ms, 0);
        assert_eq!(e.step(30_000, q(30_000, th), 600_000), Outcome::Nothing);
        assert_eq!(
            e.step(40_000, Verdict::Clear, 600_000),
            Outcome::Ended {
                started_ms: 0,
                ended_ms: 30_000
            }
        );
        assert_eq!(e.quiet_until_ms, Some(630_000));
    }

    #[test]
    fn quiet_period_delays_a_new_raise() {
        let mut e = Episode {
            quiet_until_ms: Some(100_000),
            ..Episode::default()
        };
        let th = Threshold::IMMEDIATE;
        assert_eq!(e.step(50_000, q(50_000, th), 1), Outcome::Nothing);
        assert_eq!(e.step(99_999, q(99_999, th), 1), Outcome::Nothing);
        assert_eq!(e.step(100_000, q(100_000, th), 1), Outcome::Raise);
        assert_eq!(e.started_ms, 50_000, "the run keeps its true start");
    }

    #[test]
    fn holds_only_extend_a_raised_episode() {
        let mut e = Episode::default();
        assert_eq!(e.step(0, q(0, Threshold::IMMEDIATE), 0), Outcome::Raise);
        assert_eq!(e.step(5, Verdict::Holds, 0), Outcome::Nothing);
        assert_eq!(e.step(6, Verdict::Unknown, 0), Outcome::Nothing);
        assert_eq!(e.step(7, Verdict::Holds, 0), Outcome::Nothing);
        assert_eq!(
            e.step(9, Verdict::Clear, 0),
            Outcome::Ended {
                started_ms: 0,
                ended_ms: 7
            }
        );
        let mut pending = Episode::default();
        pending.step(0, q(0, Threshold::fixes(3)), 0);
        assert_eq!(pending.step(1, Verdict::Holds, 0), Outcome::Nothing);
        assert!(
            !pending.in_run(),
            "a band fix ends a run that was never raised"
        );
    }
}
