//! Payload decoding: raw MQTT bytes become [`Fix`]es exactly once, here.
//!
//! A payload is one fix object or an array of at most [`MAX_BATCH`] of them.
//! Each bad element is rejected on its own with a [`RejectReason`], so one
//! broken fix in a batch costs only itself.

use std::borrow::Cow;

use chrono::DateTime;
use serde::Deserialize;
use serde_json::value::RawValue;

pub use crate::fix::RejectReason;
use crate::fix::{DeviceId, Fix};

pub const MAX_BATCH: usize = 1000;

/// The earliest fix time taken, 2000-01-01T00:00:00Z: GPS terminals that lost
/// their clock report 1970, 1980 (the GPS epoch) or year 0.
pub const EARLIEST_TS_MS: i64 = 946_684_800_000;

/// The heaviest load a road vehicle can carry, in tonnes; a reading above
/// it is a broken sensor, not an overload to fine.
pub const MAX_LOAD_T: f64 = 200.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    fn new(reason: RejectReason, detail: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// Field names borrowed from the payload; `null` reads as absent.
#[derive(Deserialize)]
struct RawFix<'a> {
    #[serde(borrow, default)]
    device_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ts: Option<Cow<'a, str>>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lon: Option<f64>,
    #[serde(default)]
    speed_kmh: Option<f64>,
    #[serde(default)]
    heading: Option<f64>,
    #[serde(default)]
    acc: Option<bool>,
    #[serde(default)]
    tipper_up: Option<bool>,
    #[serde(default)]
    cover_closed: Option<bool>,
    #[serde(default)]
    load_t: Option<f64>,
}

/// Decodes `payload` published on the topic of `device`, appending good
/// fixes to `fixes` and one [`Rejection`] per refused fix (or per refused
/// message) to `rejects`.
pub fn decode_payload(
    payload: &[u8],
    device: &DeviceId,
    max_bytes: usize,
    fixes: &mut Vec<Fix>,
    rejects: &mut Vec<Rejection>,
) {
    if payload.len() > max_bytes {
        rejects.push(Rejection::new(
            RejectReason::Oversized,
            format!("payload of {} bytes exceeds {max_bytes}", payload.len()),
        ));
        return;
    }
    if let Some(at) = payload.iter().position(|&b| b == 0) {
        rejects.push(Rejection::new(
            RejectReason::ControlCharacter,
            format!("payload byte {at} is NUL"),
        ));
        return;
    }
    let text = match std::str::from_utf8(payload) {
        Ok(t) => t,
        Err(e) => {
            rejects.push(Rejection::new(
                RejectReason::NotJson,
                format!("not UTF-8: {e}"),
            ));
            return;
        }
    };
    if text.trim_start().starts_with('[') {
        let items: Vec<&RawValue> = match serde_json::from_str(text) {
            Ok(items) => items,
            Err(e) => {
                rejects.push(classify_json_error(text, &e));
                return;
            }
        };
        if items.is_empty() {
            rejects.push(Rejection::new(
                RejectReason::EmptyBatch,
                "empty batch array",
            ));
        } else if items.len() > MAX_BATCH {
            rejects.push(Rejection::new(
                RejectReason::BatchTooLong,
                format!("batch of {} fixes exceeds {MAX_BATCH}", items.len()),
            ));
        } else {
            for (i, item) in items.iter().enumerate() {
                match decode_fix(item.get(), device) {
                    Ok(fix) => fixes.push(fix),
                    Err(mut r) => {
                        r.detail = format!("batch item {i}: {}", r.detail);
                        rejects.push(r);
                    }
                }
            }
        }
    } else {
        match decode_fix(text, device) {
            Ok(fix) => fixes.push(fix),
            Err(r) => rejects.push(r),
        }
    }
}

/// Refuses fixes stamped more than `max_future_ms` after `now_ms`.
pub fn refuse_future(
    fixes: &mut Vec<Fix>,
    now_ms: i64,
    max_future_ms: i64,
    rejects: &mut Vec<Rejection>,
) {
    fixes.retain(|f| {
        let ahead = f.ts_ms - now_ms;
        if ahead > max_future_ms {
            rejects.push(Rejection::new(
                RejectReason::BadTimestamp,
                format!(
                    "ts is {} s in the future (more than {} s ahead of the clock)",
                    ahead / 1000,
                    max_future_ms / 1000
                ),
            ));
            false
        } else {
            true
        }
    });
}

/// Decodes one fix object.
pub fn decode_fix(text: &str, device: &DeviceId) -> Result<Fix, Rejection> {
    let raw: RawFix = serde_json::from_str(text).map_err(|e| classify_json_error(text, &e))?;
    let device_id = plain_text(
        required(raw.device_id.as_deref(), "device_id")?,
        "device_id",
    )?;
    if device_id != device.as_str() {
        return Err(Rejection::new(
            RejectReason::DeviceMismatch,
            format!(
                "payload device_id `{}` differs from topic device `{device}`",
                clip(device_id)
            ),
        ));
    }
    let ts_text = plain_text(required(raw.ts.as_deref(), "ts")?, "ts")?;
    let ts = DateTime::parse_from_rfc3339(ts_text).map_err(|e| {
        Rejection::new(
            RejectReason::BadTimestamp,
            format!("ts `{}` is not RFC 3339 with offset: {e}", clip(ts_text)),
        )
    })?;
    let ts_ms = ts.timestamp_millis();
    if ts_ms < EARLIEST_TS_MS {
        return Err(Rejection::new(
            RejectReason::BadTimestamp,
            format!("ts `{}` is before 2000-01-01", clip(ts_text)),
        ));
    }
    let lat = in_range(required(raw.lat, "lat")?, "lat", -90.0, 90.0)?;
    let lon = in_range(required(raw.lon, "lon")?, "lon", -180.0, 180.0)?;
    let speed_kmh = in_range(
        required(raw.speed_kmh, "speed_kmh")?,
        "speed_kmh",
        0.0,
        250.0,
    )?;
    let heading = raw
        .heading
        .map(|h| in_range(h, "heading", 0.0, 360.0))
        .transpose()?;
    let load_t = raw
        .load_t
        .map(|l| in_range(l, "load_t", 0.0, MAX_LOAD_T))
        .transpose()?;
    Ok(Fix {
        device_id: *device,
        ts_ms,
        lat,
        lon,
        speed_kmh,
        heading,
        acc: raw.acc,
        tipper_up: raw.tipper_up,
        cover_closed: raw.cover_closed,
        load_t,
    })
}

/// Decodes one fix whose device is named only by its own `device_id`
/// (NDJSON replays, where there is no topic).
pub fn decode_fix_standalone(text: &str) -> Result<Fix, Rejection> {
    #[derive(Deserialize)]
    struct Device<'a> {
        #[serde(borrow, default)]
        device_id: Option<Cow<'a, str>>,
    }
    let d: Device = serde_json::from_str(text).map_err(|e| classify_json_error(text, &e))?;
    let id = required(d.device_id.as_deref(), "device_id")?;
    let device = DeviceId::parse(id).map_err(|e| Rejection::new(RejectReason::WrongType, e))?;
    decode_fix(text, &device)
}

/// A text field with no control character (NUL included): refused here, with
/// the field named, rather than in the database or a log line.
fn plain_text<'a>(v: &'a str, name: &str) -> Result<&'a str, Rejection> {
    match crate::text::first_control(v) {
        None => Ok(v),
        Some((at, c)) => Err(Rejection::new(
            RejectReason::ControlCharacter,
            format!(
                "`{name}` has control character U+{:04X} at character {at}",
                c as u32
            ),
        )),
    }
}

fn required<T>(v: Option<T>, name: &str) -> Result<T, Rejection> {
    v.ok_or_else(|| {
        Rejection::new(
            RejectReason::MissingField,
            format!("missing field `{name}`"),
        )
    })
}

fn in_range(v: f64, name: &str, lo: f64, hi: f64) -> Result<f64, Rejection> {
    if !v.is_finite() {
        return Err(Rejection::new(
            RejectReason::NonFinite,
            format!("`{name}` is not finite"),
        ));
    }
    if v < lo || v > hi {
        return Err(Rejection::new(
            RejectReason::OutOfRange,
            format!("`{name}` = {v} is outside {lo}..{hi}"),
        ));
    }
    Ok(v)
}

/// JSON has no NaN or Infinity, but terminals send them anyway, and numbers
/// beyond f64 overflow: both are reported as `non_finite`, not as garbage.
fn classify_json_error(text: &str, e: &serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    let msg = e.to_string();
    let non_finite_token = ["NaN", "Infinity", "inf"].iter().any(|t| text.contains(t));
    match e.classify() {
        _ if msg.contains("number out of range") => Rejection::new(RejectReason::NonFinite, msg),
        Category::Syntax if non_finite_token => Rejection::new(RejectReason::NonFinite, msg),
        Category::Data => Rejection::new(RejectReason::WrongType, msg),
        _ => Rejection::new(RejectReason::NotJson, msg),
    }
}

/// A piece of outside text for a refusal's detail: short, on one line.
fn clip(s: &str) -> std::borrow::Cow<'_, str> {
    crate::text::escaped(s, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> DeviceId {
        DeviceId::parse("013800000001").unwrap()
    }

    const GOOD: &str = r#"{"device_id":"013800000001","ts":"2021-06-01T22:15:03+08:00","lat":33.3801,"lon":120.1602,"speed_kmh":42.5,"heading":87,"acc":true,"tipper_up":false,"cover_closed":true,"load_t":23.5}"#;

    fn run(payload: &str) -> (Vec<Fix>, Vec<Rejection>) {
        let (mut f, mut r) = (Vec::new(), Vec::new());
        decode_payload(payload.as_bytes(), &dev(), 512 * 1024, &mut f, &mut r);
        (f, r)
    }

    fn reason(payload: &str) -> RejectReason {
        let (f, r) = run(payload);
        assert!(f.is_empty(), "{payload} decoded");
        assert_eq!(r.len(), 1, "{r:?}");
        r[0].reason
    }

    #[test]
    fn contract_example_decodes() {
        let (f, r) = run(GOOD);
        assert!(r.is_empty(), "{r:?}");
        let fix = f[0];
        assert_eq!(fix.ts_ms, 1622556903000);
        assert_eq!(fix.lat, 33.3801);
        assert_eq!(fix.load_t, Some(23.5));
        assert_eq!(fix.tipper_up, Some(false));
    }

    #[test]
    fn every_reason_is_detected() {
        assert_eq!(reason("{not json"), RejectReason::NotJson);
        assert_eq!(
            reason(
                r#"{"device_id":"013800000001","ts":"2021-06-01T22:15:03+08:00","lat":33.3,"lon":120.1}"#
            ),
            RejectReason::MissingField
        );
        assert_eq!(
            reason(&GOOD.replace("33.3801", "93.1")),
            RejectReason::OutOfRange
        );
        assert_eq!(
            reason(&GOOD.replace("42.5", "251")),
            RejectReason::OutOfRange
        );
        assert_eq!(
            reason(&GOOD.replace("33.3801", "NaN")),
            RejectReason::NonFinite
        );
        assert_eq!(
            reason(&GOOD.replace("33.3801", "1e999")),
            RejectReason::NonFinite
        );
        assert_eq!(
            reason(&GOOD.replace("\"013800000001\"", "\"013800000002\"")),
            RejectReason::DeviceMismatch
        );
        assert_eq!(
            reason(&GOOD.replace("2021-06-01T22:15:03+08:00", "2021-06-01 22:15")),
            RejectReason::BadTimestamp
        );
        assert_eq!(
            reason(&GOOD.replace("33.3801", "\"33.3\"")),
            RejectReason::WrongType
        );
        assert_eq!(reason("[]"), RejectReason::EmptyBatch);
        let long = format!("[{}]", vec![GOOD; 1001].join(","));
        assert_eq!(reason(&long), RejectReason::BatchTooLong);
        let (mut f, mut r) = (Vec::new(), Vec::new());
        decode_payload(GOOD.as_bytes(), &dev(), 10, &mut f, &mut r);
        assert_eq!(r[0].reason, RejectReason::Oversized);
    }

    #[test]
    fn implausible_values_and_control_characters_are_refused() {
        assert_eq!(
            reason(&GOOD.replace("2021-06-01T22:15:03+08:00", "0000-01-01T00:00:00Z")),
            RejectReason::BadTimestamp
        );
        assert_eq!(
            reason(&GOOD.replace("2021-06-01T22:15:03+08:00", "1999-12-31T23:59:59Z")),
            RejectReason::BadTimestamp
        );
        assert_eq!(
            reason(&GOOD.replace("23.5", "1e308")),
            RejectReason::OutOfRange
        );
        assert_eq!(
            reason(&GOOD.replace("23.5", "201")),
            RejectReason::OutOfRange
        );
        let (f, r) = run(&GOOD.replace("23.5", "200"));
        assert_eq!((f.len(), r.len()), (1, 0));
        // NUL raw, and escaped in a text field
        assert_eq!(
            reason(&GOOD.replace("true,\"tipper", "true,\0\"tipper")),
            RejectReason::ControlCharacter
        );
        let nul = GOOD.replace("\"013800000001\"", "\"0138\\u0000\"");
        let (f, r) = run(&nul);
        assert!(f.is_empty());
        assert_eq!(r[0].reason, RejectReason::ControlCharacter);
        assert!(r[0].detail.contains("`device_id`"), "{}", r[0].detail);
        assert!(!r[0].detail.contains('\0'));
        let forged = GOOD.replace("\"013800000001\"", "\"013800000001\\nINFO forged\"");
        let (_, r) = run(&forged);
        assert_eq!(r[0].reason, RejectReason::ControlCharacter);
        assert!(!r[0].detail.contains('\n'), "{}", r[0].detail);
        let ts = GOOD.replace("+08:00\"", "+08:00\\u0000\"");
        let (_, r) = run(&ts);
        assert_eq!(r[0].reason, RejectReason::ControlCharacter);
        assert!(r[0].detail.contains("`ts`"), "{}", r[0].detail);
    }

    #[test]
    fn a_bad_item_costs_only_itself() {
        let bad = GOOD.replace("33.3801", "-91");
        let (f, r) = run(&format!("[{GOOD},{bad},{GOOD}]"));
        assert_eq!(f.len(), 2);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, RejectReason::OutOfRange);
        assert!(r[0].detail.contains("batch item 1"), "{}", r[0].detail);
    }

    #[test]
    fn optional_fields_may_be_absent_or_null() {
        let (f, r) = run(
            r#"{"device_id":"013800000001","ts":"2021-06-01T14:15:03Z","lat":33.3,"lon":120.1,"speed_kmh":0,"load_t":null}"#,
        );
        assert!(r.is_empty(), "{r:?}");
        assert_eq!(f[0].load_t, None);
        assert_eq!(f[0].heading, None);
    }

    #[test]
    fn fixes_from_the_future_are_refused() {
        let (mut f, _) = run(GOOD);
        let mut r = Vec::new();
        let ts = f[0].ts_ms;
        refuse_future(&mut f, ts - 301_000, 300_000, &mut r);
        assert!(f.is_empty());
        assert_eq!(r[0].reason, RejectReason::BadTimestamp);
        let (mut f, _) = run(GOOD);
        refuse_future(&mut f, ts - 299_000, 300_000, &mut r);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn labels_are_unique() {
        let mut labels: Vec<_> = RejectReason::ALL.iter().map(|r| r.label()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), RejectReason::ALL.len());
        for (i, r) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
