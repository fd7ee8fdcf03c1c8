//! Permits: the JSON document plus the plate links that queries filter on.

use serde_json::json;

use super::db::Sql;
use super::outbox::write_event;
use super::{classify, PermitFilter, Store, StoreError, StoreResult};
use crate::outbox::EventType;
use crate::permit::{Permit, PermitStatus};

/// The order key of a permit's events: its changes arrive in order.
fn permit_key(p: &Permit) -> String {
    format!("permit:{}", p.id.as_str())
}

/// A permit's stored document, parsed once when read.
#[derive(sqlx::FromRow)]
struct PermitRow {
    body: String,
}

impl PermitRow {
    fn parse(&self) -> StoreResult<Permit> {
        let v: serde_json::Value = serde_json::from_str(&self.body)
            .map_err(|e| StoreError::Corrupt(format!("permit body: {e}")))?;
        Permit::from_json(&v).map_err(StoreError::Corrupt)
    }
}

fn parse_all(rows: Vec<PermitRow>) -> StoreResult<Vec<Permit>> {
    rows.iter().map(PermitRow::parse).collect()
}

/// `WHERE` of a permit list.
fn filtered(mut q: Sql, f: &PermitFilter) -> Sql {
    q.push(" WHERE TRUE")
        .and(
            " AND id IN (SELECT permit_id FROM permit_plates WHERE plate = {})",
            f.plate.as_deref(),
        )
        .and(" AND status = {}", f.status)
        .and(" AND firm_id = {}", f.firm.as_deref());
    q
}

impl Store {
    pub async fn create_permit(&self, p: &Permit, now_ms: i64) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        let q = Sql::new(
            "INSERT INTO permits (id, firm_id, status, body, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(p.id.as_str())
        .bind(&p.firm_id)
        .bind(p.status)
        .bind(p.to_json().to_string())
        .bind(now_ms);
        tx.execute(&q).await.map_err(|e| {
            classify(
                e,
                || format!("permit `{}` exists already", p.id),
                || format!("firm `{}` does not exist", p.firm_id),
            )
        })?;
        for plate in &p.plates {
            let q = Sql::new("INSERT INTO permit_plates (permit_id, plate) VALUES ($1, $2)")
                .bind(p.id.as_str())
                .bind(plate);
            tx.execute(&q).await.map_err(|e| {
                classify(
                    e,
                    || format!("plate `{plate}` is listed twice"),
                    || format!("vehicle `{plate}` does not exist"),
                )
            })?;
        }
        if let Some(routes) = self.routes_for(EventType::PermitChanged) {
            let data = json!({"change": "created", "previous_status": null, "permit": p.to_json()});
            write_event(
                &mut tx,
                routes,
                EventType::PermitChanged,
                &permit_key(p),
                now_ms,
                data,
            )
            .await?;
        }
        tx.commit().await
    }

    pub async fn permit(&self, id: &str) -> StoreResult<Option<Permit>> {
        let q = Sql::new("SELECT body FROM permits WHERE id = $1").bind(id);
        let row: Option<PermitRow> = self.db.fetch_optional(&q).await?;
        row.as_ref().map(PermitRow::parse).transpose()
    }

    pub async fn permits(
        &self,
        f: &PermitFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Permit>, i64)> {
        let mut q = filtered(Sql::new("SELECT body FROM permits"), f);
        q.push(" ORDER BY id LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let items = parse_all(self.db.fetch_all(&q).await?)?;
        let total = self
            .db
            .fetch_value(&filtered(Sql::new("SELECT COUNT(*) FROM permits"), f))
            .await?;
        Ok((items, total))
    }

    pub async fn all_permits(&self) -> StoreResult<Vec<Permit>> {
        parse_all(
            self.db
                .fetch_all(&Sql::new("SELECT body FROM permits"))
                .await?,
        )
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
        let mut tx = self.db.begin().await?;
        let q = Sql::new(format!(
            "SELECT body FROM permits WHERE id = $1{}",
            tx.for_update()
        ))
        .bind(id);
        let Some(row) = tx.fetch_optional::<PermitRow>(&q).await? else {
            return Ok(None);
        };
        let mut p = row.parse()?;
        let before = p.status;
        p.status = status;
        let q =
            Sql::new("UPDATE permits SET status = $1, body = $2, updated_ms = $3 WHERE id = $4")
                .bind(status)
                .bind(p.to_json().to_string())
                .bind(now_ms)
                .bind(id);
        tx.execute(&q).await?;
        if let Some(routes) = self.routes_for(EventType::PermitChanged) {
            let data = json!({"change": "status", "previous_status": before.as_str(), "permit": p.to_json()});
            write_event(
                &mut tx,
                routes,
                EventType::PermitChanged,
                &permit_key(&p),
                now_ms,
                data,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Some(p))
    }
}
