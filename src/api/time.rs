//! Times in requests and responses: an RFC 3339 time or a local date in,
//! RFC 3339 in city time out.

use chrono::{DateTime, Days, NaiveDate, TimeZone};

use super::ApiError;
pub use crate::time::format_ms;

/// Which end of a day a plain date stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayEnd {
    /// `from`, `since`: the first instant of the date.
    Start,
    /// `to`: the last millisecond of the date (inclusive).
    End,
}

/// Parses an optional time query parameter into UTC milliseconds: an RFC
/// 3339 time, or a local date `YYYY-MM-DD` of the city (`tz`) standing for
/// the start or the end of that day, as the contract says.
pub fn parse_param(
    name: &str,
    value: Option<&str>,
    tz: chrono_tz::Tz,
    end: DayEnd,
) -> Result<Option<i64>, ApiError> {
    let Some(v) = value else { return Ok(None) };
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.timestamp_millis()));
    }
    let date = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(format!(
            "`{name}` = `{v}` is neither an RFC 3339 time (2021-06-01T22:00:00+08:00) \
             nor a date (2021-06-01)"
        ))
    })?;
    let out_of_range = || ApiError::bad_request(format!("`{name}` = `{v}` is out of range"));
    let day_start = |d: NaiveDate| {
        // A day starts at its first existing local time (midnight may be
        // skipped by a daylight-saving change in some zones).
        let midnight = d.and_hms_opt(0, 0, 0)?;
        tz.from_local_datetime(&midnight)
            .earliest()
            .or_else(|| {
                tz.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.timestamp_millis())
    };
    let ms = match end {
        DayEnd::Start => day_start(date),
        DayEnd::End => date
            .checked_add_days(Days::new(1))
            .and_then(day_start)
            .map(|next| next - 1),
    };
    ms.map(Some).ok_or_else(out_of_range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Asia::Shanghai;

    #[test]
    fn refuses_bad_times_by_name() {
        let e = parse_param("from", Some("yesterday"), Shanghai, DayEnd::Start).unwrap_err();
        assert!(e.detail.contains("from"));
        assert!(parse_param("to", Some("2021-02-30"), Shanghai, DayEnd::End).is_err());
        assert_eq!(
            parse_param("to", None, Shanghai, DayEnd::End).unwrap(),
            None
        );
    }

    #[test]
    fn dates_are_whole_local_days() {
        let from = parse_param("from", Some("2021-06-01"), Shanghai, DayEnd::Start)
            .unwrap()
            .unwrap();
        let to = parse_param("to", Some("2021-06-30"), Shanghai, DayEnd::End)
            .unwrap()
            .unwrap();
        assert_eq!(format_ms(from, Shanghai), "2021-06-01T00:00:00+08:00");
        assert_eq!(format_ms(to, Shanghai), "2021-06-30T23:59:59.999+08:00");
        let t = parse_param(
            "since",
            Some("2021-06-01T22:00:00Z"),
            Shanghai,
            DayEnd::Start,
        )
        .unwrap()
        .unwrap();
        assert_eq!(format_ms(t, Shanghai), "2021-06-02T06:00:00+08:00");
    }
}
