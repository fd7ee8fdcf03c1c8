//! Time as muckwatch keeps it (UTC milliseconds since the epoch) and as
//! people read it (RFC 3339 in the city's time zone).

use chrono::{DateTime, SecondsFormat};

/// Formats UTC milliseconds as RFC 3339 in the city's time zone.
///
/// ```
/// use muckwatch::time::format_ms;
/// assert_eq!(format_ms(1622556903000, chrono_tz::Asia::Shanghai), "2021-06-01T22:15:03+08:00");
/// assert_eq!(format_ms(1622556903250, chrono_tz::Asia::Shanghai), "2021-06-01T22:15:03.250+08:00");
/// ```
pub fn format_ms(ms: i64, tz: chrono_tz::Tz) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}
