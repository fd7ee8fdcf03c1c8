//! The outbox: events written inside the transaction of the change they
//! report (so a change and its event are committed together or not at all),
//! one delivery row per webhook that wants the event, and the queries the
//! delivery task (`crate::webhooks`) and the admin list run.
//!
//! Order: events share an `order_key` (`case:17`, `permit:P-1`,
//! `violation:9` for one with no case); a delivery is due only when no
//! earlier event of its key is undelivered to that webhook. Events of one
//! key are written under that object's lock (the case row, the filing lock,
//! the permit row), so their sequence numbers are in commit order.

use serde_json::Value;

use super::db::{Sql, Tx};
use super::{Store, StoreResult};
use crate::outbox::{envelope, new_event_id, EventType, Routes};
use crate::time::format_ms;

/// Writes event `t` about `order_key` into the outbox, with a delivery row
/// for each webhook that wants it; nothing when none does.
pub(super) async fn write_event(
    tx: &mut Tx,
    routes: &Routes,
    t: EventType,
    order_key: &str,
    at_ms: i64,
    data: Value,
) -> StoreResult<()> {
    let hooks: Vec<&str> = routes.subscribers(t).collect();
    if hooks.is_empty() {
        return Ok(());
    }
    let id = new_event_id();
    let body = envelope(&id, t, &format_ms(at_ms, routes.tz), data);
    let q = Sql::new(
        "INSERT INTO outbox_events (id, type, order_key, at_ms, body) \
         VALUES ($1, $2, $3, $4, $5) RETURNING seq",
    )
    .bind(id.as_str())
    .bind(t.as_str())
    .bind(order_key)
    .bind(at_ms)
    .bind(body);
    let seq: i64 = tx.fetch_value(&q).await?;
    for hook in hooks {
        let q = Sql::new(
            "INSERT INTO outbox_deliveries (webhook, event_seq, order_key, next_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(hook)
        .bind(seq)
        .bind(order_key)
        .bind(at_ms);
        tx.execute(&q).await?;
    }
    Ok(())
}

/// The order key of a case's events.
pub(super) fn case_key(case_id: i64) -> String {
    format!("case:{case_id}")
}

/// An event due for delivery to one webhook.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueEvent {
    pub seq: i64,
    pub id: String,
    pub body: String,
    pub attempts: i64,
    pub next_ms: i64,
}

/// An undelivered event, as the admin list shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingDelivery {
    pub webhook: String,
    pub seq: i64,
    pub id: String,
    pub event_type: String,
    pub order_key: String,
    pub at_ms: i64,
    pub attempts: i64,
    pub next_ms: i64,
    pub last_error: Option<String>,
    pub body: String,
}

impl Store {
    /// Makes the store write events for these webhooks (none: no events).
    pub fn with_outbox(mut self, routes: Routes) -> Store {
        self.outbox = (!routes.webhooks.is_empty()).then(|| std::sync::Arc::new(routes));
        self
    }

    /// The routes when some webhook wants events of type `t`.
    pub(super) fn routes_for(&self, t: EventType) -> Option<&Routes> {
        self.outbox.as_deref().filter(|r| r.wants(t))
    }

    /// Up to `limit` events due for `webhook` at `now_ms`, oldest first:
    /// each the first undelivered event of its order key (an earlier one
    /// waiting holds the later ones back), its retry time come.
    pub async fn outbox_due(
        &self,
        webhook: &str,
        now_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<DueEvent>> {
        let q = Sql::new(
            "SELECT d.event_seq AS seq, e.id, e.body, d.attempts, d.next_ms \
             FROM outbox_deliveries d JOIN outbox_events e ON e.seq = d.event_seq \
             WHERE d.webhook = $1 AND d.delivered_ms IS NULL AND d.next_ms <= $2 \
             AND d.event_seq = (SELECT MIN(f.event_seq) FROM outbox_deliveries f \
                 WHERE f.webhook = d.webhook AND f.order_key = d.order_key \
                 AND f.delivered_ms IS NULL) \
             ORDER BY d.event_seq LIMIT $3",
        )
        .bind(webhook)
        .bind(now_ms)
        .bind(limit);
        self.db.fetch_all(&q).await
    }

    /// Takes event `seq` for delivery to `webhook` until `lease_ms`, if its
    /// retry time is still `seen_next_ms` (no other instance took it
    /// meanwhile). A process killed while delivering leaves the lease: the
    /// event is tried again when it runs out.
    pub async fn outbox_claim(
        &self,
        webhook: &str,
        seq: i64,
        seen_next_ms: i64,
        lease_ms: i64,
    ) -> StoreResult<bool> {
        let q = Sql::new(
            "UPDATE outbox_deliveries SET next_ms = $1 WHERE webhook = $2 AND event_seq = $3 \
             AND next_ms = $4 AND delivered_ms IS NULL",
        )
        .bind(lease_ms)
        .bind(webhook)
        .bind(seq)
        .bind(seen_next_ms);
        Ok(self.db.execute(&q).await? == 1)
    }

    /// The webhook answered 2xx.
    pub async fn outbox_delivered(&self, webhook: &str, seq: i64, now_ms: i64) -> StoreResult<()> {
        let q = Sql::new(
            "UPDATE outbox_deliveries SET delivered_ms = $1, attempts = attempts + 1, \
             last_error = NULL WHERE webhook = $2 AND event_seq = $3",
        )
        .bind(now_ms)
        .bind(webhook)
        .bind(seq);
        self.db.execute(&q).await?;
        Ok(())
    }

    /// An attempt failed: counted, the error kept, retried at `next_ms`.
    pub async fn outbox_failed(
        &self,
        webhook: &str,
        seq: i64,
        next_ms: i64,
        error: &str,
    ) -> StoreResult<()> {
        let q = Sql::new(
            "UPDATE outbox_deliveries SET attempts = attempts + 1, next_ms = $1, last_error = $2 \
             WHERE webhook = $3 AND event_seq = $4 AND delivered_ms IS NULL",
        )
        .bind(next_ms)
        .bind(error)
        .bind(webhook)
        .bind(seq);
        self.db.execute(&q).await?;
        Ok(())
    }

    /// Deliveries not yet made, to any webhook.
    pub async fn outbox_pending(&self) -> StoreResult<i64> {
        self.db
            .fetch_value(&Sql::new(
                "SELECT COUNT(*) FROM outbox_deliveries WHERE delivered_ms IS NULL",
            ))
            .await
    }

    /// Undelivered events (of `webhook`, when given), oldest first.
    pub async fn outbox_undelivered(
        &self,
        webhook: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<PendingDelivery>, i64)> {
        let filtered = |head: &str| {
            let mut q = Sql::new(head);
            q.push(" WHERE d.delivered_ms IS NULL")
                .and(" AND d.webhook = {}", webhook);
            q
        };
        let mut q = filtered(
            "SELECT d.webhook, d.event_seq AS seq, e.id, e.type AS event_type, e.order_key, \
             e.at_ms, d.attempts, d.next_ms, d.last_error, e.body \
             FROM outbox_deliveries d JOIN outbox_events e ON e.seq = d.event_seq",
        );
        q.push(" ORDER BY d.event_seq, d.webhook LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let items = self.db.fetch_all(&q).await?;
        let total = self
            .db
            .fetch_value(&filtered("SELECT COUNT(*) FROM outbox_deliveries d"))
            .await?;
        Ok((items, total))
    }

    /// Forgets deliveries made before `cutoff_ms`, then the events of before
    /// it that no delivery row names any more (every webhook took them).
    /// Undelivered events are never pruned. Returns (deliveries, events).
    pub async fn outbox_prune(&self, cutoff_ms: i64) -> StoreResult<(u64, u64)> {
        let deliveries = self
            .db
            .execute(
                &Sql::new(
                    "DELETE FROM outbox_deliveries \
                     WHERE delivered_ms IS NOT NULL AND delivered_ms < $1",
                )
                .bind(cutoff_ms),
            )
            .await?;
        let events = self
            .db
            .execute(
                &Sql::new(
                    "DELETE FROM outbox_events WHERE at_ms < $1 AND NOT EXISTS \
                     (SELECT 1 FROM outbox_deliveries d WHERE d.event_seq = outbox_events.seq)",
                )
                .bind(cutoff_ms),
            )
            .await?;
        Ok((deliveries, events))
    }
}
