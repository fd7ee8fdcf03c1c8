//! Excel (.xlsx) answers of the list endpoints: asked for with
//! `?format=xlsx` or `Accept: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`.
//! The workbook's rows are the JSON answer's `items`, built by the same
//! handler from the same query, so filters and rows cannot drift apart;
//! each endpoint only names its columns (Chinese headers) and where in an
//! item each one's value is.
//!
//! Memory is bounded by a row cap: a workbook holds at most
//! [`EXPORT_MAX_ROWS`] rows (the default `limit` of an export; larger
//! limits are refused, `offset` pages on), built in memory on a blocking
//! thread. A second sheet (说明) says how many rows matched and how many
//! the file holds.

use axum::extract::FromRequestParts;
use axum::http::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde_json::{json, Value};

use super::{ApiError, Paging};

pub const XLSX_MIME: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Most rows one workbook holds.
pub const EXPORT_MAX_ROWS: i64 = 10_000;

/// What the caller asked a list for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    Json,
    Xlsx,
}

impl<S: Send + Sync> FromRequestParts<S> for ListFormat {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let format = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "format")
                .map(|(_, v)| v.to_string())
        });
        match format.as_deref() {
            Some("xlsx") => return Ok(ListFormat::Xlsx),
            Some("json") => return Ok(ListFormat::Json),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "format `{other}` is not json or xlsx"
                )))
            }
            None => {}
        }
        let accepts_xlsx = parts
            .headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|m| m.trim().starts_with(XLSX_MIME)));
        Ok(if accepts_xlsx {
            ListFormat::Xlsx
        } else {
            ListFormat::Json
        })
    }
}

impl ListFormat {
    /// `limit` and `offset` for this format: the contract's for JSON
    /// (default 100, max 1000); up to [`EXPORT_MAX_ROWS`], and all of them
    /// by default, for a workbook.
    pub fn paging(self, p: Paging) -> Result<(i64, i64), ApiError> {
        match self {
            ListFormat::Json => p.resolve(),
            ListFormat::Xlsx => {
                let limit = p.limit.unwrap_or(EXPORT_MAX_ROWS);
                if !(1..=EXPORT_MAX_ROWS).contains(&limit) {
                    return Err(ApiError::bad_request(format!(
                        "an export holds 1..{EXPORT_MAX_ROWS} rows (limit), got {limit}; \
                         page with offset"
                    )));
                }
                Paging {
                    limit: Some(1),
                    offset: p.offset,
                }
                .resolve()
                .map(|(_, offset)| (limit, offset))
            }
        }
    }
}

/// One column of a sheet: its header, and its value in an item.
pub struct Column {
    pub header: &'static str,
    pub value: fn(&Value) -> Value,
}

/// A column showing the item's field at a JSON pointer (`/last_fix/ts`).
macro_rules! col {
    ($header:expr, $pointer:expr) => {
        $crate::api::export::Column {
            header: $header,
            value: |item| item.pointer($pointer).cloned().unwrap_or_default(),
        }
    };
}
pub(crate) use col;

/// A list as the caller asked for it: `{"items", "total"}` JSON, or a
/// workbook named `{name}.xlsx` with a sheet `sheet` of `columns`.
pub async fn list_response(
    format: ListFormat,
    items: Vec<Value>,
    total: i64,
    offset: i64,
    name: &'static str,
    sheet: &'static str,
    columns: &'static [Column],
) -> Result<Response, ApiError> {
    if format == ListFormat::Json {
        return Ok(Json(json!({"items": items, "total": total})).into_response());
    }
    let bytes =
        tokio::task::spawn_blocking(move || workbook(&items, total, offset, sheet, columns))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "export task failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "export_failed",
                    "the workbook could not be made",
                )
            })?
            .map_err(|e| {
                tracing::error!(error = %e, "cannot write a workbook");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "export_failed",
                    "the workbook could not be made",
                )
            })?;
    let disposition = format!("attachment; filename=\"{name}.xlsx\"");
    let mut r = ([(CONTENT_TYPE, HeaderValue::from_static(XLSX_MIME))], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        r.headers_mut().insert("x-total-count", v);
    }
    Ok(r)
}

/// Excel's own limit on the characters of a cell.
const CELL_MAX_CHARS: usize = 32_767;

fn workbook(
    items: &[Value],
    total: i64,
    offset: i64,
    sheet: &str,
    columns: &[Column],
) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let ws = book.add_worksheet();
    ws.set_name(sheet)?;
    for (c, col) in columns.iter().enumerate() {
        let c = c as u16;
        ws.write_string_with_format(0, c, col.header, &bold)?;
        ws.set_column_width(c, 16)?;
    }
    ws.set_freeze_panes(1, 0)?;
    for (r, item) in items.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, col) in columns.iter().enumerate() {
            let c = c as u16;
            match (col.value)(item) {
                Value::Null => {}
                Value::Number(n) => {
                    ws.write_number(r, c, n.as_f64().unwrap_or_default())?;
                }
                Value::Bool(b) => {
                    ws.write_string(r, c, if b { "是" } else { "否" })?;
                }
                Value::String(s) => {
                    ws.write_string(r, c, cut(&s))?;
                }
                Value::Array(list) => {
                    let text: Vec<String> = list.iter().map(plain).collect();
                    ws.write_string(r, c, cut(&text.join(", ")))?;
                }
                other => {
                    ws.write_string(r, c, cut(&other.to_string()))?;
                }
            }
        }
    }
    let notes = book.add_worksheet();
    notes.set_name("说明")?;
    let first = if items.is_empty() { 0 } else { offset + 1 };
    let lines: [(&str, String); 4] = [
        ("符合条件 matched", total.to_string()),
        ("本文件 rows in this file", items.len().to_string()),
        (
            "行 rows",
            format!("{first}–{}", offset + items.len() as i64),
        ),
        (
            "上限 cap",
            format!("{EXPORT_MAX_ROWS} rows per file; use offset for the next"),
        ),
    ];
    for (r, (k, v)) in lines.iter().enumerate() {
        notes.write_string_with_format(r as u32, 0, *k, &bold)?;
        notes.write_string(r as u32, 1, v)?;
    }
    notes.set_column_width(0, 24)?;
    book.save_to_buffer()
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn cut(s: &str) -> &str {
    match s.char_indices().nth(CELL_MAX_CHARS) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}
