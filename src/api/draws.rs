//! The lists of random-inspection draws (双随机一公开):
//! `GET /api/v1/inspections/public` (no token: 一公开; what was drawn and
//! found, with the inspectors' departments, never who) and
//! `GET /api/v1/inspections/draws` (admin and departments: the same draws
//! with who inspects each object). Both are lists like every other:
//! `limit`/`offset`, `{"items", "total"}`, newest first, and an Excel
//! workbook (one row per draw, its objects in cells as a case's checks are).
//!
//! Each draw shows the request it answered (size, inspectors per object,
//! departments: only those fields, never anything else a client sent) beside
//! its seed and population hash, so anyone can re-run it.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::export::{col, list_response, Column, ListFormat};
use super::inspections::officials_only;
use super::time::format_ms;
use super::{ApiError, AppState, Caller, Paging};
use crate::auth::Department;
use crate::inspections::{result_label_zh, Population};
use crate::store::{DrawObjectRecord, DrawRecord};

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The fields of a draw's request that say how it drew.
const REQUEST_FIELDS: [&str; 5] = [
    "count",
    "proportion",
    "proportions",
    "inspectors_per_object",
    "departments",
];

/// The recorded request, reduced to [`REQUEST_FIELDS`].
fn request_json(raw: &str) -> Value {
    let Ok(Value::Object(all)) = serde_json::from_str::<Value>(raw) else {
        return Value::Null;
    };
    let kept: Map<String, Value> = all
        .into_iter()
        .filter(|(k, v)| REQUEST_FIELDS.contains(&k.as_str()) && !v.is_null())
        .collect();
    Value::Object(kept)
}

/// A JSON array stored as text (the objects' inspectors and departments).
fn json_list(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_default()
}

/// One draw as listed. `names` (inspector id -> name) only for officials:
/// then each object also says who inspects it.
fn draw_json(
    d: &DrawRecord,
    objects: &[DrawObjectRecord],
    tz: chrono_tz::Tz,
    names: Option<&HashMap<String, String>>,
) -> Value {
    let objects: Vec<Value> = objects
        .iter()
        .map(|o| {
            let departments = json_list(&o.departments);
            let mut out = json!({
                "id": o.object_id,
                "departments": departments,
                "result": o.result, "finding": o.finding,
                "result_at": o.result_ms.map(|t| format_ms(t, tz)),
            });
            if let Some(names) = names {
                let who: Vec<Value> = json_list(&o.inspectors)
                    .into_iter()
                    .zip(departments.iter().map(Some).chain(std::iter::repeat(None)))
                    .map(|(id, department)| {
                        json!({"id": id, "name": names.get(&id), "department": department})
                    })
                    .collect();
                out["inspectors"] = json!(who);
            }
            out
        })
        .collect();
    json!({
        "id": d.id, "item": d.item, "population": d.population, "seed": d.seed,
        "population_hash": d.population_hash, "drawn_at": format_ms(d.drawn_ms, tz),
        "request": request_json(&d.request),
        "objects": objects,
    })
}

/// The population in Chinese.
fn population_cell(d: &Value) -> Value {
    d["population"]
        .as_str()
        .and_then(Population::parse)
        .map(|p| json!(p.label_zh()))
        .unwrap_or_default()
}

/// The seed as text: a spreadsheet keeps 15 digits of a number, a seed has up to 16.
fn seed_cell(d: &Value) -> Value {
    json!(d["seed"].to_string())
}

/// One cell of per-object parts: `苏J00001: ...; 苏J00002: ...`.
fn per_object(d: &Value, part: impl Fn(&Value) -> String) -> Value {
    let text: Vec<String> = d["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| format!("{}: {}", o["id"].as_str().unwrap_or(""), part(o)))
        .collect();
    json!(text.join("; "))
}

/// A department's Chinese name (its id if unknown).
fn department_name(d: &str) -> String {
    Department::parse(d).map_or_else(|| d.to_string(), |d| d.label_zh().to_string())
}

fn department_names(o: &Value) -> String {
    let names: Vec<String> = o["departments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str())
        .map(department_name)
        .collect();
    names.join("、")
}

fn departments_cell(d: &Value) -> Value {
    per_object(d, department_names)
}

/// `合格`, `不合格 (finding)`, or `未录入` while no result is recorded.
fn results_cell(d: &Value) -> Value {
    per_object(d, |o| {
        let result = o["result"]
            .as_str()
            .map_or("未录入", |r| result_label_zh(r).unwrap_or(r));
        match o["finding"].as_str() {
            Some(f) => format!("{result} ({f})"),
            None => result.to_string(),
        }
    })
}

/// `name (id, department)` of each inspector of each object.
fn inspectors_cell(d: &Value) -> Value {
    per_object(d, |o| {
        let who: Vec<String> = o["inspectors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                let id = i["id"].as_str().unwrap_or("");
                let dept = i["department"]
                    .as_str()
                    .map(department_name)
                    .unwrap_or_default();
                format!("{} ({id}, {dept})", i["name"].as_str().unwrap_or("?"))
            })
            .collect();
        who.join("、")
    })
}

fn objects_cell(d: &Value) -> Value {
    let ids: Vec<&str> = d["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["id"].as_str())
        .collect();
    json!(ids.join(", "))
}

macro_rules! draw_columns {
    ($($extra:expr),* $(,)?) => {
        &[
            col!("抽查编号", "/id"),
            col!("检查事项", "/item"),
            Column { header: "抽查对象类别", value: population_cell },
            col!("抽取时间", "/drawn_at"),
            Column { header: "随机种子", value: seed_cell },
            col!("名录哈希", "/population_hash"),
            Column { header: "抽中对象", value: objects_cell },
            Column { header: "检查部门", value: departments_cell },
            $($extra,)*
            Column { header: "检查结果", value: results_cell },
        ]
    };
}

/// The public sheet: no inspector named.
const PUBLIC_SHEET: &[Column] = draw_columns!();

/// The officials' sheet: who inspects each object too.
const DRAWS_SHEET: &[Column] = draw_columns!(Column {
    header: "检查人员",
    value: inspectors_cell
});

/// The page of draws the query asks for.
async fn page(
    state: &AppState,
    format: ListFormat,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<(Vec<(DrawRecord, Vec<DrawObjectRecord>)>, i64, i64), ApiError> {
    let Query(q) = q?;
    let (limit, offset) = format.paging(Paging {
        limit: q.limit,
        offset: q.offset,
    })?;
    let (draws, total) = state.store.draws(limit, offset).await?;
    Ok((draws, total, offset))
}

/// 一公开: no token; what was drawn and found, with the inspectors'
/// departments only.
pub async fn public(
    State(state): State<AppState>,
    format: ListFormat,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (draws, total, offset) = page(&state, format, q).await?;
    let items = draws
        .iter()
        .map(|(d, o)| draw_json(d, o, state.tz, None))
        .collect();
    list_response(
        format,
        items,
        total,
        offset,
        "inspections-public",
        "双随机抽查结果公开",
        PUBLIC_SHEET,
    )
    .await
}

/// Most inspectors whose names a page of draws shows.
const NAMES_MAX: i64 = 100_000;

/// The draws with who inspects each object (admin and departments).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    format: ListFormat,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    officials_only(&caller)?;
    let (draws, total, offset) = page(&state, format, q).await?;
    let (pool, _) = state.store.inspectors(None, NAMES_MAX, 0).await?;
    let names: HashMap<String, String> = pool.into_iter().map(|i| (i.id, i.name)).collect();
    let items = draws
        .iter()
        .map(|(d, o)| draw_json(d, o, state.tz, Some(&names)))
        .collect();
    list_response(
        format,
        items,
        total,
        offset,
        "inspection-draws",
        "双随机抽查记录",
        DRAWS_SHEET,
    )
    .await
}
