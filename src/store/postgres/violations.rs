//! Violations: one row per episode, opened when raised, closed when it ends.

use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder};

use super::{col, PgStore};
use crate::rules::Violation;
use crate::store::{StoreError, StoreResult, StoredViolation, ViolationFilter};

const COLUMNS: &str =
    "id, code, plate, device_id, firm_id, permit_id, started_ms, ended_ms, lat, lon, measured, fences, case_id";

impl PgStore {
    /// Stores a raised violation; the same episode (device, code, start)
    /// stored again returns the existing id.
    pub async fn insert_violation(&self, v: &Violation, now_ms: i64) -> StoreResult<i64> {
        let fences =
            serde_json::to_string(&v.fences).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let new_id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO violations (code, plate, device_id, firm_id, permit_id, started_ms, ended_ms, lat, lon, \
             measured, fences, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (device_id, code, started_ms) DO NOTHING RETURNING id",
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
        .fetch_optional(&self.pool)
        .await?;
        if let Some(id) = new_id {
            return Ok(id);
        }
        let id: i64 = sqlx::query_scalar(
            "SELECT id FROM violations WHERE device_id = $1 AND code = $2 AND started_ms = $3",
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
            sqlx::query_scalar("SELECT case_id FROM violations WHERE id = $1")
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
        sqlx::query("UPDATE violations SET ended_ms = $1 WHERE device_id = $2 AND code = $3 AND started_ms = $4")
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
        let filtered = |q: &mut QueryBuilder<Postgres>| {
            q.push(" WHERE TRUE");
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
                // One array parameter, however many ids; an empty list matches nothing.
                q.push(" AND id = ANY(").push_bind(ids.clone()).push(")");
            }
        };
        let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM violations"));
        filtered(&mut q);
        q.push(" ORDER BY started_ms, id LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut c = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM violations");
        filtered(&mut c);
        let total: i64 = c.build_query_scalar().fetch_one(&self.pool).await?;
        let items = rows
            .iter()
            .map(violation_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((items, total))
    }
}

fn violation_from_row(r: &PgRow) -> StoreResult<StoredViolation> {
    let fences: String = col(r, "fences")?;
    Ok(StoredViolation {
        id: col(r, "id")?,
        code: col(r, "code")?,
        plate: col(r, "plate")?,
        device_id: col(r, "device_id")?,
        firm_id: col(r, "firm_id")?,
        permit_id: col(r, "permit_id")?,
        started_ms: col(r, "started_ms")?,
        ended_ms: col(r, "ended_ms")?,
        lat: col(r, "lat")?,
        lon: col(r, "lon")?,
        measured: col(r, "measured")?,
        fences: serde_json::from_str(&fences)
            .map_err(|e| StoreError::Corrupt(format!("violation fences: {e}")))?,
        case_id: col(r, "case_id")?,
    })
}
