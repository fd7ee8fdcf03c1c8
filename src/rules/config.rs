//! The thresholds of the violation rules: the contract's "default rule" column, every
//! one configurable (TOML `[rules]` table, say). Unknown keys are refused so that a typo
//! in a threshold does not silently leave the default in force.

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// A fix at or above this speed is "moving" (NO_PERMIT, OUT_OF_HOURS, COVER_OPEN,
    /// and the "after a moving fix" of TRACK_GAP).
    pub moving_kmh: f64,
    /// NO_PERMIT: moving outside its own sites without a valid permit for this long.
    pub no_permit_s: u64,
    /// OUT_OF_HOURS: moving outside every window (and its sites) for this long.
    pub out_of_hours_s: u64,
    /// ROUTE_DEVIATION: off every corridor for this long...
    pub route_deviation_s: u64,
    /// ...and on at least this many fixes.
    pub route_deviation_fixes: u32,
    /// ROUTE_DEVIATION ends only below half-width minus this many metres.
    pub route_hysteresis_m: f64,
    /// RESTRICTED_ZONE: consecutive fixes inside an active zone.
    pub restricted_fixes: u32,
    /// SPEEDING: the limit outside every speed zone.
    pub speed_default_kmh: f64,
    /// SPEEDING: above the limit for this long.
    pub speeding_s: u64,
    /// ILLEGAL_DUMPING / WRONG_DISPOSAL_SITE: consecutive fixes with the tipper up.
    pub dumping_tipper_fixes: u32,
    /// ILLEGAL_DUMPING / WRONG_DISPOSAL_SITE: a load drop of at least this fraction
    /// between two consecutive load readings.
    pub dumping_load_drop: f64,
    /// A load drop only counts from a load of at least this many tonnes: an empty
    /// truck's sensor wandering from 0.4 t to 0.1 t is noise, not dumping.
    /// (An addition to the contract's column.)
    pub dumping_min_load_t: f64,
    /// COVER_OPEN: cover open while moving for this long.
    pub cover_open_s: u64,
    /// OVERLOAD: consecutive load readings above the rated load.
    pub overload_fixes: u32,
    /// TRACK_GAP: silence after a moving fix longer than this.
    pub gap_silence_s: u64,
    /// TRACK_GAP: implied speed between consecutive fixes above this.
    pub gap_jump_kmh: f64,
    /// TRACK_GAP: metres of GPS error allowed before the implied speed is computed
    /// (`(distance - tolerance) / dt`), so that 1 Hz fixes jittering ±20 m are not a
    /// "jump". (An addition to the contract's column.)
    pub gap_jump_tolerance_m: f64,
    /// The same code is not raised again for the same vehicle within this long after
    /// an episode ends.
    pub quiet_period_s: u64,
    /// Terminal clocks are not trusted: a fix stamped more than this ahead of the
    /// fleet clock and of its own vehicle's last fix (or of the wall clock) is held
    /// back from the rules until its vehicle's next fix confirms it, and dropped
    /// from them (still stored, counted as clock skew) if that fix is behind it.
    /// The fleet clock never runs past the wall clock plus this. (An addition to
    /// the contract's column.)
    pub clock_skew_s: u64,
    /// GPS noise (see `noise.rs`; additions to the contract's column): the σ per axis,
    /// metres, assumed for a terminal until its own track says otherwise...
    pub gps_sigma_prior_m: f64,
    /// ...weighing as much as this many residuals of its track...
    pub noise_prior_weight: f64,
    /// ...and never below this (a clean track still has some).
    pub gps_sigma_min_m: f64,
    /// The estimate follows about this many recent residuals.
    pub noise_window: u32,
    /// One-sided z of the test of a route deviation against the noise: the mean
    /// distance past the corridor's edge over the run's fixes must exceed
    /// `z·σ/√fixes`. 4 (99.997 %) because the run is made of the fixes that are
    /// outside, which noise alone makes look further out; 0 = the contract's raw rule.
    pub noise_z_route: f64,
    /// One-sided z for a single fix inside a zone: a speed zone's lower limit applies
    /// only `z·σ` inside it. 3 ≈ 99.87 %; 0 = the contract's raw rule.
    pub noise_z_zone: f64,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            moving_kmh: 5.0,
            no_permit_s: 120,
            out_of_hours_s: 120,
            route_deviation_s: 60,
            route_deviation_fixes: 3,
            route_hysteresis_m: 10.0,
            restricted_fixes: 2,
            speed_default_kmh: 40.0,
            speeding_s: 30,
            dumping_tipper_fixes: 2,
            dumping_load_drop: 0.5,
            dumping_min_load_t: 1.0,
            cover_open_s: 60,
            overload_fixes: 3,
            gap_silence_s: 300,
            gap_jump_kmh: 150.0,
            gap_jump_tolerance_m: 30.0,
            quiet_period_s: 600,
            clock_skew_s: 60,
            gps_sigma_prior_m: 10.0,
            noise_prior_weight: 3.0,
            gps_sigma_min_m: 2.0,
            noise_window: 30,
            noise_z_route: 4.0,
            noise_z_zone: 3.0,
        }
    }
}

impl RulesConfig {
    /// Refuses values that would make a rule meaningless (call it where settings are
    /// read, so that a bad file is a startup error and not silent misdetection).
    ///
    /// ```
    /// use muckwatch::rules::RulesConfig;
    /// assert!(RulesConfig::default().validate().is_ok());
    /// let bad = RulesConfig { dumping_load_drop: 1.5, ..RulesConfig::default() };
    /// assert!(bad.validate().unwrap_err().contains("dumping_load_drop"));
    /// ```
    pub fn validate(&self) -> Result<(), String> {
        let non_negative = [
            ("moving_kmh", self.moving_kmh),
            ("route_hysteresis_m", self.route_hysteresis_m),
            ("dumping_min_load_t", self.dumping_min_load_t),
            ("gap_jump_tolerance_m", self.gap_jump_tolerance_m),
            ("gps_sigma_prior_m", self.gps_sigma_prior_m),
            ("noise_prior_weight", self.noise_prior_weight),
            ("gps_sigma_min_m", self.gps_sigma_min_m),
            ("noise_z_route", self.noise_z_route),
            ("noise_z_zone", self.noise_z_zone),
        ];
        for (name, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!(
                    "rules.{name} must be a finite number >= 0, got {v}"
                ));
            }
        }
        for (name, v) in [
            ("speed_default_kmh", self.speed_default_kmh),
            ("gap_jump_kmh", self.gap_jump_kmh),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("rules.{name} must be a finite number > 0, got {v}"));
            }
        }
        if !(self.dumping_load_drop > 0.0 && self.dumping_load_drop <= 1.0) {
            return Err(format!(
                "rules.dumping_load_drop is a fraction of the load, in (0, 1], got {}",
                self.dumping_load_drop
            ));
        }
        let counts = [
            ("route_deviation_fixes", self.route_deviation_fixes),
            ("restricted_fixes", self.restricted_fixes),
            ("dumping_tipper_fixes", self.dumping_tipper_fixes),
            ("overload_fixes", self.overload_fixes),
            ("noise_window", self.noise_window),
        ];
        for (name, v) in counts {
            if v == 0 {
                return Err(format!("rules.{name} must be at least 1"));
            }
        }
        if self.gap_silence_s == 0 {
            return Err("rules.gap_silence_s must be at least 1".into());
        }
        if self.clock_skew_s == 0 {
            return Err("rules.clock_skew_s must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_toml_keeps_the_other_defaults() {
        let c: RulesConfig = toml::from_str("speeding_s = 45\nmoving_kmh = 3").expect("parses");
        assert_eq!(c.speeding_s, 45);
        assert_eq!(c.moving_kmh, 3.0);
        assert_eq!(c.quiet_period_s, 600);
        assert!(
            toml::from_str::<RulesConfig>("speeding = 45").is_err(),
            "typo refused"
        );
    }

    #[test]
    fn validation() {
        assert!(RulesConfig {
            overload_fixes: 0,
            ..RulesConfig::default()
        }
        .validate()
        .is_err());
        assert!(RulesConfig {
            moving_kmh: f64::NAN,
            ..RulesConfig::default()
        }
        .validate()
        .is_err());
        assert!(RulesConfig {
            gap_jump_kmh: 0.0,
            ..RulesConfig::default()
        }
        .validate()
        .is_err());
    }
}
