//! Times in requests and responses: RFC 3339 in, RFC 3339 in city time out.

use chrono::{DateTime, SecondsFormat};

use super::ApiError;

/// Parses an optional RFC 3339 query parameter into UTC milliseconds.
pub fn parse_param(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|e| {
                    ApiError::bad_request(format!("`{name}` = `{v}` is not an RFC 3339 time: {e}"))
                })
        })
        .transpose()
}

/// Formats UTC milliseconds as RFC 3339 in the city's time zone.
pub fn format_ms(ms: i64, tz: chrono_tz::Tz) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_city_time() {
        assert_eq!(
            format_ms(1622556903000, chrono_tz::Asia::Shanghai),
            "2021-06-01T22:15:03+08:00"
        );
        assert_eq!(
            format_ms(1622556903250, chrono_tz::Asia::Shanghai),
            "2021-06-01T22:15:03.250+08:00"
        );
    }

    #[test]
    fn refuses_bad_times_by_name() {
        let e = parse_param("from", Some("yesterday")).unwrap_err();
        assert!(e.detail.contains("from"));
        assert_eq!(parse_param("to", None).unwrap(), None);
    }
}
