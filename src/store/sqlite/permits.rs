//! Permits: the JSON document plus the plate links that queries filter on.

use sqlx::{QueryBuilder, Row, Sqlite};

use super::{classify, SqliteStore};
use crate::permit::{Permit, PermitStatus};
use crate::store::{PermitFilter, StoreError, StoreResult};

impl SqliteStore {
    pub async fn create_permit(&self, p: &Permit, now_ms: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO permits (id, firm_id, status, body, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&p.id)
            .bind(p.firm_id.as_str())
            .bind(p.status.as_str())
            .bind(p.to_json().to_string())
            .bind(now_ms)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(e, || format!("permit `{}` exists already", p.id), || format!("firm `{}` does not exist", p.firm_id)))?;
        for plate in &p.plates {
            sqlx::query("INSERT INTO permit_plates (permit_id, plate) VALUES (?, ?)")
                .bind(&p.id)
                .bind(plate.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    classify(
                        e,
                        || format!("plate `{plate}` is listed twice"),
                        || format!("vehicle `{plate}` does not exist"),
                    )
                })?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn permit(&self, id: &str) -> StoreResult<Option<Permit>> {
        let body: Option<String> = sqlx::query_scalar("SELECT body FROM permits WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        body.map(|b| parse_permit(&b)).transpose()
    }

    pub async fn permits(
        &self,
        f: &PermitFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Permit>, i64)> {
        let filtered = |q: &mut QueryBuilder<Sqlite>| {
            q.push(" WHERE 1=1");
            if let Some(plate) = &f.plate {
                q.push(" AND id IN (SELECT permit_id FROM permit_plates WHERE plate = ")
                    .push_bind(plate.clone())
                    .push(")");
            }
            if let Some(status) = f.status {
                q.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(firm) = &f.firm {
                q.push(" AND firm_id = ").push_bind(firm.clone());
            }
        };
        let mut q = QueryBuilder::<Sqlite>::new("SELECT body FROM permits");
        filtered(&mut q);
        q.push(" ORDER BY id LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut c = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM permits");
        filtered(&mut c);
        let total: i64 = c.build().fetch_one(&self.pool).await?.try_get(0)?;
        let items = rows
            .iter()
            .map(|r| parse_permit(&r.try_get::<String, _>("body")?))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((items, total))
    }

    pub async fn all_permits(&self) -> StoreResult<Vec<Permit>> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT body FROM permits")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|b| parse_permit(b)).collect()
    }

    /// Sets the status; returns the updated permit, or None if unknown.
    pub async fn set_permit_status(
        &self,
        id: &str,
        status: PermitStatus,
        now_ms: i64,
    ) -> StoreResult<Option<Permit>> {
        let Some(mut p) = self.permit(id).await? else {
            return Ok(None);
        };
        p.status = status;
        sqlx::query("UPDATE permits SET status = ?, body = ?, updated_ms = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(p.to_json().to_string())
            .bind(now_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(Some(p))
    }
}

fn parse_permit(body: &str) -> StoreResult<Permit> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("permit body: {e}")))?;
    Permit::from_json(&v).map_err(StoreError::Corrupt)
}
