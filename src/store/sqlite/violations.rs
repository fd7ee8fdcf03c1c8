//! Violations: one row per episode, opened when raised, closed when it ends.

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::SqliteStore;
use crate::rules::Violation;
use crate::store::{StoreError, StoreResult, StoredViolation, ViolationFilter};

const COLUMNS: &str =
    "id, code, plate, device_id, firm_id, permit_id, started_ms, ended_ms, lat, lon, measured, fences, case_id";

impl SqliteStore {
    /// Stores a raised violation; the same episode (device, code, start)
    /// stored again returns the existing id.
    pub async fn insert_violation(&self, v: &Violation, now_ms: i64) -> StoreResult<i64> {
        let fences =
            serde_json::to_string(&v.fences).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO violations (code, plate, device_id, firm_id, permit_id, started_ms, ended_ms, lat, lon, \
             measured, fences, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (device_id, code, started_ms) DO NOTHING",
        )
        .bind(v.code.as_str())
        .bind(v.plate.as_str())
        .bind(v.device_id.as_str())
        .bind(v.firm_id.as_str())
        .bind(v.permit_id.as_deref())
        .bind(v.started_ms)
        .bind(v.ended_ms)
        .bind(v.lat)
        .bind(v.lon)
        .bind(v.measured)
        .bind(fences)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        let id: i64 = sqlx::query_scalar(
            "SELECT id FROM violations WHERE device_id = ? AND code = ? AND started_ms = ?",
        )
        .bind(v.device_id.as_str())
        .bind(v.code.as_str())
        .bind(v.started_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// The case a violation was filed into, if it was.
    pub async fn violation_case(&self, id: i64) -> StoreResult<Option<i64>> {
        let case: Option<Option<i64>> =
            sqlx::query_scalar("SELECT case_id FROM violations WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(case.flatten())
    }

    pub async fn end_violation(
        &self,
        device: &str,
        code: &str,
        started_ms: i64,
        ended_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE violations SET ended_ms = ? WHERE device_id = ? AND code = ? AND started_ms = ?")
            .bind(ended_ms)
            .bind(device)
            .bind(code)
            .bind(started_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn violations(
        &self,
        f: &ViolationFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<StoredViolation>, i64)> {
        let filtered = |q: &mut QueryBuilder<Sqlite>| {
            q.push(" WHERE 1=1");
            if let Some(plate) = &f.plate {
                q.push(" AND plate = ").push_bind(plate.clone());
            }
            if let Some(code) = &f.code {
                q.push(" AND code = ").push_bind(code.clone());
            }
            if let Some(since) = f.since_ms {
                q.push(" AND started_ms >= ").push_bind(since);
            }
            if let Some(firm) = &f.firm {
                q.push(" AND firm_id = ").push_bind(firm.clone());
            }
            if let Some(case_id) = f.case_id {
                q.push(" AND case_id = ").push_bind(case_id);
            }
            if let Some(ids) = &f.ids {
                q.push(" AND id IN (");
                let mut sep = q.separated(", ");
                for id in ids {
                    sep.push_bind(*id);
                }
                if ids.is_empty() {
                    sep.push("NULL");
                }
                q.push(")");
            }
        };
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM violations"));
        filtered(&mut q);
        q.push(" ORDER BY started_ms, id LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut c = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM violations");
        filtered(&mut c);
        let total: i64 = c.build().fetch_one(&self.pool).await?.try_get(0)?;
        let items = rows
            .iter()
            .map(violation_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((items, total))
    }
}

fn violation_from_row(r: &SqliteRow) -> StoreResult<StoredViolation> {
    let fences: String = r.try_get("fences")?;
    Ok(StoredViolation {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        plate: r.try_get("plate")?,
        device_id: r.try_get("device_id")?,
        firm_id: r.try_get("firm_id")?,
        permit_id: r.try_get("permit_id")?,
        started_ms: r.try_get("started_ms")?,
        ended_ms: r.try_get("ended_ms")?,
        lat: r.try_get("lat")?,
        lon: r.try_get("lon")?,
        measured: r.try_get("measured")?,
        fences: serde_json::from_str(&fences)
            .map_err(|e| StoreError::Corrupt(format!("violation fences: {e}")))?,
        case_id: r.try_get("case_id")?,
    })
}
