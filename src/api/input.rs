//! Every request's outside text, checked once before any handler: a control
//! character in the path or the query (`%00`, `%0A`, ...) or a NUL in a JSON
//! body (`"\u0000"`) is a 400 naming where it was. PostgreSQL refuses NUL in
//! text, so without this a `?plate=a%00b` reached the database and came back
//! as a 503; no path, plate, id or filter has a use for control characters.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::ApiError;

/// The largest JSON body read (axum's own default limit for `Json`).
const MAX_BODY: usize = 2 << 20;

pub async fn refuse_control_characters(req: Request, next: Next) -> Response {
    let uri = req.uri();
    if let Some(detail) = control_in_path(uri.path()) {
        return ApiError::bad_request(detail).into_response();
    }
    if let Some(detail) = uri.query().and_then(control_in_query) {
        return ApiError::bad_request(detail).into_response();
    }
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !is_json {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "bad_body",
                format!("the body is larger than {MAX_BODY} bytes or was cut off"),
            )
            .into_response()
        }
    };
    // A body that is not JSON is the handler's to refuse, with its own words.
    if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
        if let Some(at) = nul_in_json(&value, String::new()) {
            return ApiError::bad_request(format!(
                "the JSON body has a NUL character (\\u0000) in {at}"
            ))
            .into_response();
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// `%XX` decoded; other bytes as they are.
fn percent_decoded(s: &str) -> impl Iterator<Item = u8> + '_ {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let c = *b.get(i)?;
        let hex = |x: u8| (x as char).to_digit(16);
        if c == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                i += 3;
                return Some((h * 16 + l) as u8);
            }
        }
        i += 1;
        Some(c)
    })
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

fn control_in_path(path: &str) -> Option<String> {
    let b = percent_decoded(path).find(|b| is_control(*b))?;
    Some(format!(
        "the path has control character U+{b:04X}; no id or plate contains one"
    ))
}

fn control_in_query(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let b = percent_decoded(value)
            .chain(percent_decoded(name))
            .find(|b| is_control(*b))?;
        let name: Vec<u8> = percent_decoded(name).filter(|b| !is_control(*b)).collect();
        Some(format!(
            "query parameter `{}` has control character U+{b:04X}",
            crate::text::escaped(&String::from_utf8_lossy(&name), 64)
        ))
    })
}

/// Where the first NUL of a JSON value is: `field name`, `items[2]`, ...
fn nul_in_json(v: &Value, at: String) -> Option<String> {
    let here = || {
        if at.is_empty() {
            "the body".to_string()
        } else {
            format!("`{at}`")
        }
    };
    match v {
        Value::String(s) => s.contains('\0').then(here),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_in_json(x, format!("{at}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(k, x)| {
            if k.contains('\0') {
                return Some(format!("a field name of {}", here()));
            }
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            nul_in_json(x, path)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_where_they_are() {
        assert!(control_in_path("/api/v1/permits/a%00b").is_some());
        assert!(control_in_path("/api/v1/permits/%E8%8B%8FJ0001").is_none());
        let q = control_in_query("limit=5&plate=a%00b").expect("found");
        assert!(q.contains("`plate`"), "{q}");
        assert!(control_in_query("plate=%E8%8B%8FJ&code=SPEEDING").is_none());
        assert!(control_in_query("plate=a%0Ab").is_some());
        let body: Value =
            serde_json::from_str(r#"{"id":"f","name":"a\u0000b","x":[1,{"y":"ok"}]}"#).unwrap();
        assert_eq!(nul_in_json(&body, String::new()).as_deref(), Some("`name`"));
        let body: Value = serde_json::from_str(r#"{"plates":["a","b\u0000"]}"#).unwrap();
        assert_eq!(
            nul_in_json(&body, String::new()).as_deref(),
            Some("`plates[1]`")
        );
        let ok: Value = serde_json::from_str(r#"{"finding":"line one\nline two"}"#).unwrap();
        assert_eq!(nul_in_json(&ok, String::new()), None);
    }
}
