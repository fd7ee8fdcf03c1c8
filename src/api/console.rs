//! The web console: static files embedded in the binary (served without a
//! token: they hold no data, every data call they make carries the token),
//! and the small endpoints the console needs that the API lacked:
//! `GET /api/v1/whoami` and `GET /api/v1/meta` (the live map, `GET
//! /api/v1/vehicles` and its stream, is in `fleet.rs`).

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::time::format_ms;
use super::{ApiError, ApiPath, AppState, Caller};
use crate::applications::ApplicationStatus;
use crate::auth::Department;
use crate::cases::{CaseStatus, CheckStatus};
use crate::inspections::{result_label_zh, Population};
use crate::permit::PermitStatus;
use crate::violation::ViolationCode;

/// `(name, content type, body)` of every file under `web/`.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../web/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    ),
    (
        "http.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/http.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/dom.js"),
    ),
    (
        "labels.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/labels.js"),
    ),
    (
        "map.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/map.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/pages.js"),
    ),
    (
        "cases.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/cases.js"),
    ),
    (
        "credit.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/credit.js"),
    ),
    (
        "fleet.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/fleet.js"),
    ),
    (
        "playback.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/playback.js"),
    ),
    (
        "applications.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/applications.js"),
    ),
];

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        // no-cache: a new binary must never run against an old cached script.
        Some((_, ty, body)) => {
            ([(CONTENT_TYPE, *ty), (CACHE_CONTROL, "no-cache")], *body).into_response()
        }
        None => ApiError::not_found(format!("no console file `{name}`")).into_response(),
    }
}

/// `GET /`: the console's page.
pub async fn index() -> Response {
    file("index.html")
}

/// `GET /console/{file}`: its scripts and style sheet.
pub async fn asset(ApiPath(name): ApiPath<String>) -> Response {
    file(&name)
}

/// `GET /api/v1/whoami`: the role of the caller's token, so that the console
/// shows what that role may use.
/// `utc_offset` is the city's offset now, for turning picked dates into times.
pub async fn whoami(State(state): State<AppState>, caller: Caller) -> Json<Value> {
    let now = format_ms(chrono::Utc::now().timestamp_millis(), state.tz);
    Json(json!({
        "utc_offset": now.get(now.len().saturating_sub(6)..).unwrap_or("+08:00"),
        "role": caller.0.to_string(),
        "department": match &caller.0 { crate::auth::Role::Dept(d) => Some(d.as_str()), _ => None },
        "firm_id": caller.0.firm().map(|f| f.to_string()),
    }))
}

/// `GET /api/v1/meta`: the vocabulary the console shows, from the types
/// that define it: violation codes, departments, statuses, inspection
/// populations and results with their Chinese names, and the status each check status may move to. The
/// console keeps no copy of any of it.
pub async fn meta(_caller: Caller) -> Json<Value> {
    let mut statuses = serde_json::Map::new();
    for (id, zh) in CheckStatus::ALL
        .map(|s| (s.as_str(), s.label_zh()))
        .into_iter()
        .chain(CaseStatus::ALL.map(|s| (s.as_str(), s.label_zh())))
        .chain(PermitStatus::ALL.map(|s| (s.as_str(), s.label_zh())))
        .chain(ApplicationStatus::ALL.map(|s| (s.as_str(), s.label_zh())))
    {
        statuses.insert(id.to_string(), json!(zh));
    }
    let check_next: serde_json::Map<String, Value> = CheckStatus::ALL
        .into_iter()
        .map(|s| {
            (
                s.as_str().to_string(),
                json!(s.next().map(|n| n.as_str()).into_iter().collect::<Vec<_>>()),
            )
        })
        .collect();
    let results = ["pass", "fail"].map(|r| json!({"id": r, "zh": result_label_zh(r)}));
    Json(json!({
        "codes": ViolationCode::ALL.map(|c| json!({"code": c.as_str(), "zh": c.label_zh()})),
        "departments": Department::ALL.map(|d| json!({"id": d.as_str(), "zh": d.label_zh()})),
        "case_statuses": CaseStatus::ALL.map(CaseStatus::as_str),
        "statuses": statuses,
        "check_next": check_next,
        "populations": Population::ALL.map(|p| json!({"id": p.as_str(), "zh": p.label_zh()})),
        "inspection_results": results,
    }))
}
