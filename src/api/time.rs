//! Times in requests and responses: RFC 3339 in, RFC 3339 in city time out.

use chrono::DateTime;

use super::ApiError;
pub use crate::time::format_ms;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_times_by_name() {
        let e = parse_param("from", Some("yesterday")).unwrap_err();
        assert!(e.detail.contains("from"));
        assert_eq!(parse_param("to", None).unwrap(), None);
    }
}
