//! Excel exports as an officer hands them on: every list endpoint answers
//! `?format=xlsx` or the Accept header with a workbook of the same rows as
//! its JSON (same filters, same scoping), Chinese column headers. Read
//! back from the file itself (zip + sheet XML).

use serde_json::{json, Value};

use crate::common::xlsx::sheet;
use crate::common::*;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

pub async fn workbook(app: &TestApp, path: &str, token: &str, accept: bool) -> Vec<Vec<String>> {
    let r = if accept {
        http_with(
            app.http,
            "GET",
            path,
            Some(token),
            &[("accept", XLSX)],
            None,
        )
        .await
    } else {
        let sep = if path.contains('?') { '&' } else { '?' };
        app.get(&format!("{path}{sep}format=xlsx"), Some(token))
            .await
    };
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    assert_eq!(r.header("content-type"), XLSX, "{path}");
    assert!(
        r.header("content-disposition").contains(".xlsx"),
        "{path}: {:?}",
        r.headers
    );
    sheet(&r.bytes, 1)
}

/// The column of `header` in a sheet's header row.
pub fn col(rows: &[Vec<String>], header: &str) -> usize {
    rows[0]
        .iter()
        .position(|h| h == header)
        .unwrap_or_else(|| panic!("no column {header} in {:?}", rows[0]))
}

#[tokio::test]
async fn every_list_exports_the_rows_of_its_json() {
    let app = spawn_app().await;
    app.register("firm-x", "苏J90001", "dev-x1").await;
    app.register("firm-x", "苏J90002", "dev-x2").await;
    app.register("firm-y", "苏J90003", "dev-y1").await;
    let permit = json!({"id": "PX-1", "firm_id": "firm-x", "plates": ["苏J90001", "苏J90002"], "source_site": "s01",
        "disposal_site": "d01", "routes": ["route-s01-d01"], "windows": [{"start": "21:00", "end": "06:00"}],
        "valid_from": "2021-06-01", "valid_until": "2021-12-31"});
    assert_eq!(
        app.post("/api/v1/permits", Some(&app.admin), &permit)
            .await
            .status,
        201
    );
    for (code, plate, device, firm, at) in [
        (
            "SPEEDING",
            "苏J90001",
            "dev-x1",
            "firm-x",
            "2021-06-01T22:00:00+08:00",
        ),
        (
            "COVER_OPEN",
            "苏J90001",
            "dev-x1",
            "firm-x",
            "2021-06-01T22:30:00+08:00",
        ),
        (
            "SPEEDING",
            "苏J90002",
            "dev-x2",
            "firm-x",
            "2021-06-02T22:00:00+08:00",
        ),
        (
            "OVERLOAD",
            "苏J90003",
            "dev-y1",
            "firm-y",
            "2021-06-03T22:00:00+08:00",
        ),
    ] {
        seed_violation(&app.store, code, plate, device, firm, at).await;
    }

    // Violations, by query parameter and by Accept, with and without a filter.
    for accept in [false, true] {
        for path in [
            "/api/v1/violations",
            "/api/v1/violations?code=SPEEDING&since=2021-06-01",
        ] {
            let json = app.get(path, Some(&app.admin)).await.json();
            let rows = workbook(&app, path, &app.admin, accept).await;
            let items = json["items"].as_array().unwrap();
            assert_eq!(rows.len() - 1, items.len(), "{path}: {rows:?}");
            assert_eq!(&rows[0][..4], ["编号", "违规代码", "违规类型", "车牌"]);
            for (row, item) in rows[1..].iter().zip(items) {
                assert_eq!(row[col(&rows, "编号")], item["id"].to_string());
                assert_eq!(row[col(&rows, "车牌")], item["plate"].as_str().unwrap());
                assert_eq!(
                    row[col(&rows, "开始时间")],
                    item["started_at"].as_str().unwrap()
                );
            }
        }
    }
    let speeding = workbook(&app, "/api/v1/violations?code=SPEEDING", &app.admin, false).await;
    assert_eq!(speeding.len() - 1, 2);
    assert!(speeding[1..]
        .iter()
        .all(|r| r[col(&speeding, "违规类型")] == "超速"));

    // A firm's export holds its own rows only, as its JSON does.
    let firm = app.token("firm:firm-y").await;
    let rows = workbook(&app, "/api/v1/violations", &firm, true).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][col(&rows, "车牌")], "苏J90003");

    // Cases: checks with their deadlines, and the 逾期 mark (seeded cases
    // were filed in 2021: long overdue).
    let json = app
        .get("/api/v1/cases?order=overdue", Some(&app.admin))
        .await
        .json();
    let rows = workbook(&app, "/api/v1/cases?order=overdue", &app.admin, false).await;
    let items = json["items"].as_array().unwrap();
    assert_eq!(
        (rows.len() - 1, json["total"].as_i64()),
        (items.len(), Some(3))
    );
    for (row, item) in rows[1..].iter().zip(items) {
        assert_eq!(row[col(&rows, "案件编号")], item["id"].to_string());
        assert_eq!(row[col(&rows, "逾期")], "是");
        assert!(row[col(&rows, "各部门核查")].contains("期限"), "{row:?}");
    }
    let overload = rows
        .iter()
        .find(|r| r[col(&rows, "车牌")] == "苏J90003")
        .unwrap();
    assert!(
        overload[col(&rows, "当事方")].contains("transport_firm: firm-y"),
        "{overload:?}"
    );

    // Permits, vehicles, dead letters.
    let rows = workbook(&app, "/api/v1/permits", &app.admin, false).await;
    assert_eq!(rows[0][0], "准运证编号");
    assert_eq!(rows[1][col(&rows, "车辆")], "苏J90001, 苏J90002");
    assert_eq!(rows[1][col(&rows, "运输时段")], "21:00–06:00");
    let fleet: Value = app.get("/api/v1/vehicles", Some(&app.admin)).await.json();
    let rows = workbook(&app, "/api/v1/vehicles", &app.admin, true).await;
    assert_eq!(rows.len() - 1, fleet["items"].as_array().unwrap().len());
    assert_eq!(rows[0][..3], ["车牌", "终端号", "运输企业"]);
    assert_eq!(rows[1][col(&rows, "核定载重(吨)")], "31");
    let rows = workbook(&app, "/api/v1/dead-letters", &app.admin, false).await;
    assert_eq!(
        rows,
        vec![vec!["编号", "接收时间", "主题", "原因", "详情", "报文"]]
    );

    // The cap, and what is refused.
    let notes = {
        let r = app
            .get("/api/v1/violations?format=xlsx", Some(&app.admin))
            .await;
        sheet(&r.bytes, 2)
    };
    assert!(
        notes
            .iter()
            .any(|r| r[0].contains("matched") && r[1] == "4"),
        "{notes:?}"
    );
    assert_eq!(
        app.get(
            "/api/v1/violations?format=xlsx&limit=10001",
            Some(&app.admin)
        )
        .await
        .status,
        400
    );
    assert_eq!(
        app.get("/api/v1/violations?format=pdf", Some(&app.admin))
            .await
            .status,
        400
    );
    assert_eq!(
        app.get("/api/v1/violations?limit=1001", Some(&app.admin))
            .await
            .status,
        400
    );
    let dept = app.token("dept:urban").await;
    assert_eq!(
        app.get("/api/v1/dead-letters?format=xlsx", Some(&dept))
            .await
            .status,
        403
    );
    app.stop().await;
}
