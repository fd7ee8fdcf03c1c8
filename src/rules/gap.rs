//! TRACK_GAP: a terminal silent for more than `gap_silence_s` after a moving fix, or
//! jumping (implied speed between consecutive fixes above `gap_jump_kmh`, after
//! allowing `gap_jump_tolerance_m` of GPS error).
//!
//! Silence is judged against the fleet watermark, never the wall clock
//! ([`check_silence`]): the episode starts at the vehicle's last fix and is raised while
//! the terminal is still silent; the next fix ends it (`ended_ms` = that fix). If the
//! watermark did not get there first (a replay with one vehicle, say), the next fix
//! finds the silence itself and raises an episode that is already over
//! (`ended_ms` set, no `Ended` follows).
//!
//! A jump is raised at the fix that lands, starting at the fix before; following
//! jumps extend it, the first plausible fix ends it.
//!
//! Measured: seconds without a fix (silence: up to the watermark at raise time, or to
//! the next fix), or seconds between the two fixes of a jump. Position: the last fix
//! before the silence or jump.

use crate::violation::ViolationCode;

use super::episode::{secs_to_ms, Threshold};
use super::observe::{local_time, Observation};
use super::{RuleEvent, Rules, VehicleContext, VehicleState, Violation};

const CODE: ViolationCode = ViolationCode::TrackGap;

/// The fix side: a silence that just ended, or a jump.
pub(crate) fn check(
    rules: &Rules,
    state: &mut VehicleState,
    obs: &Observation,
    out: &mut Vec<RuleEvent>,
) {
    let (Some(prev), Some(last)) = (obs.prev, state.last) else {
        return;
    };
    let gap_ms = obs.ts_ms() - prev.ts_ms;
    let silent = prev.moving && gap_ms > secs_to_ms(rules.config.gap_silence_s);
    let quiet_ms = rules.quiet_ms;
    let episode = state.episode(CODE);
    if !(silent || obs.jump) {
        if let super::Outcome::Ended {
            started_ms,
            ended_ms,
        } = episode.end(quiet_ms)
        {
            out.push(obs.ended(CODE, started_ms, ended_ms));
        }
        return;
    }
    let gap_s = gap_ms as f64 / 1000.0;
    let raised_now = episode.qualify(obs.ts_ms(), prev.ts_ms, gap_s, Threshold::IMMEDIATE);
    let violation = |ended_ms: Option<i64>| {
        let primary = obs
            .ctx
            .permits
            .iter()
            .find(|p| p.valid_on(local_time(rules.tz, prev.ts_ms).date()));
        Violation {
            code: CODE,
            plate: obs.ctx.plate.clone(),
            device_id: obs.ctx.device_id,
            firm_id: obs.ctx.firm_id.clone(),
            permit_id: primary.map(|p| p.id.clone()),
            started_ms: prev.ts_ms,
            ended_ms,
            lat: last.lat,
            lon: last.lon,
            measured: gap_s,
            fences: Vec::new(),
            uncertainty: None,
        }
    };
    if obs.jump {
        // where the truck really is stays in doubt until a plausible fix
        if raised_now {
            out.push(RuleEvent::Raised(violation(None)));
        }
        return;
    }
    // A silence without a jump: the terminal is back, so the gap is over at this fix.
    if raised_now {
        out.push(RuleEvent::Raised(violation(Some(obs.ts_ms()))));
        episode.end(quiet_ms);
    } else if let super::Outcome::Ended {
        started_ms,
        ended_ms,
    } = episode.end(quiet_ms)
    {
        out.push(obs.ended(CODE, started_ms, ended_ms));
    }
}

/// Whether a TRACK_GAP's span `[started_ms, ended_ms]` is covered by the fixes at
/// `times` (any order, duplicates allowed): no interval between consecutive fixes
/// over the span, counting its two ends, is longer than `max_gap_ms`
/// (`gap_silence_s`). So the terminal did record its track through the silence (its
/// 补报 backfill arrived later), and the gap is withdrawn. A span no longer than
/// `max_gap_ms` (a jump, not a silence) is never covered: fixes in between do not
/// explain a jump away.
pub fn span_covered(started_ms: i64, ended_ms: i64, times: &[i64], max_gap_ms: i64) -> bool {
    if ended_ms - started_ms <= max_gap_ms {
        return false;
    }
    let mut inside: Vec<i64> = times
        .iter()
        .copied()
        .filter(|t| (started_ms..=ended_ms).contains(t))
        .collect();
    inside.sort_unstable();
    let mut prev = started_ms;
    for t in inside.into_iter().chain([ended_ms]) {
        if t - prev > max_gap_ms {
            return false;
        }
        prev = t;
    }
    true
}

/// The watermark side: raise for a vehicle whose last fix was moving and that has
/// been silent for more than `gap_silence_s` of fleet time.
pub(crate) fn check_silence(
    rules: &Rules,
    state: &mut VehicleState,
    ctx: &VehicleContext,
    watermark_ms: i64,
    out: &mut Vec<RuleEvent>,
) {
    let Some(last) = state.last else { return };
    let silence_ms = watermark_ms.saturating_sub(last.ts_ms);
    if !last.moving || silence_ms <= secs_to_ms(rules.config.gap_silence_s) {
        return;
    }
    let episode = state.episode(CODE);
    if episode.raised || episode.quiet_until_ms.is_some_and(|q| watermark_ms < q) {
        return;
    }
    let measured = silence_ms as f64 / 1000.0;
    *episode = super::Episode {
        started_ms: last.ts_ms,
        last_ms: last.ts_ms,
        fixes: 1,
        raised: true,
        peak: measured,
        ..*episode
    };
    let date = local_time(rules.tz, last.ts_ms).date();
    out.push(RuleEvent::Raised(Violation {
        code: CODE,
        plate: ctx.plate.clone(),
        device_id: ctx.device_id,
        firm_id: ctx.firm_id.clone(),
        permit_id: ctx
            .permits
            .iter()
            .find(|p| p.valid_on(date))
            .map(|p| p.id.clone()),
        started_ms: last.ts_ms,
        ended_ms: None,
        lat: last.lat,
        lon: last.lon,
        measured,
        fences: Vec::new(),
        uncertainty: None,
    }));
}

#[cfg(test)]
mod tests {
    use super::span_covered;

    #[test]
    fn a_span_is_covered_only_without_a_long_interval() {
        let t = |s: i64| s * 1000;
        // 0..=1000 s, at most 300 s between fixes
        assert!(span_covered(0, t(1000), &[t(900), t(300), t(600)], t(300)));
        assert!(
            !span_covered(0, t(1000), &[t(300), t(600)], t(300)),
            "600..1000"
        );
        assert!(
            !span_covered(0, t(1000), &[t(301), t(600), t(900)], t(300)),
            "0..301"
        );
        assert!(!span_covered(0, t(1000), &[], t(300)));
        // fixes outside the span count for nothing
        assert!(!span_covered(
            0,
            t(1000),
            &[t(-10), t(300), t(600), t(1100)],
            t(300)
        ));
        // a short span is a jump: never covered
        assert!(!span_covered(0, t(200), &[t(100)], t(300)));
    }
}
