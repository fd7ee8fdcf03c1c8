//! Permits: the JSON document plus the plate links that queries filter on.

use sqlx::{Postgres, QueryBuilder};

use super::{classify, col, PgStore};
use crate::permit::{Permit, PermitStatus};
use crate::store::{PermitFilter, StoreError, StoreResult};

impl PgStore {
    pub async fn create_permit(&self, p: &Permit, now_ms: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO permits (id, firm_id, status, body, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
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
            sqlx::query("INSERT INTO permit_plates (permit_id, plate) VALUES ($1, $2)")
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
        let row = sqlx::query("SELECT body FROM permits WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| parse_permit(&col::<String>(&r, "body")?))
            .transpose()
    }

    pub async fn permits(
        &self,
        f: &PermitFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Permit>, i64)> {
        let filtered = |q: &mut QueryBuilder<Postgres>| {
            q.push(" WHERE TRUE");
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
        let mut q = QueryBuilder::<Postgres>::new("SELECT body FROM permits");
        filtered(&mut q);
        q.push(" ORDER BY id LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut c = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM permits");
        filtered(&mut c);
        let total: i64 = c.build_query_scalar().fetch_one(&self.pool).await?;
        let items = rows
            .iter()
            .map(|r| parse_permit(&col::<String>(r, "body")?))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((items, total))
    }

    pub async fn all_permits(&self) -> StoreResult<Vec<Permit>> {
        let rows = sqlx::query("SELECT body FROM permits")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| parse_permit(&col::<String>(r, "body")?))
            .collect()
    }

    /// Sets the status; returns the updated permit, or None if unknown. The
    /// row is locked while its document is rewritten, so two status changes
    /// at once leave the column and the document agreeing.
    pub async fn set_permit_status(
        &self,
        id: &str,
        status: PermitStatus,
        now_ms: i64,
    ) -> StoreResult<Option<Permit>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT body FROM permits WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut p = parse_permit(&col::<String>(&row, "body")?)?;
        p.status = status;
        sqlx::query("UPDATE permits SET status = $1, body = $2, updated_ms = $3 WHERE id = $4")
            .bind(status.as_str())
            .bind(p.to_json().to_string())
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(p))
    }
}

fn parse_permit(body: &str) -> StoreResult<Permit> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("permit body: {e}")))?;
    Permit::from_json(&v).map_err(StoreError::Corrupt)
}
