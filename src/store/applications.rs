//! Permit applications and their audit trail. Each step (submission, checks
//! re-run, approval, rejection) changes the row and writes its audit lines
//! in one transaction. The permit an approval creates is written by
//! `create_permit` itself, between [`Store::claim_approval`] and
//! [`Store::finish_approval`]: the application is `approving` meanwhile, so
//! no rejection can slip in, and an approval cut short is finished by
//! approving again.

use super::db::{Sql, Tx};
use super::{Store, StoreError, StoreResult};
use crate::applications::checks::summary;
use crate::applications::{ApplicationStatus, CheckResult, PermitRequest};
use crate::cases::SYSTEM;
use crate::identity::FirmId;

/// An application as stored, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationRecord {
    pub id: i64,
    pub firm_id: FirmId,
    pub status: ApplicationStatus,
    pub request: PermitRequest,
    /// The latest run of the automatic checks.
    pub checks: Vec<CheckResult>,
    pub submitted_ms: i64,
    pub submitted_by: String,
    pub decided_ms: Option<i64>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    /// The permit an approval created (or is creating).
    pub permit_id: Option<String>,
}

impl ApplicationRecord {
    /// Whether every check of the latest run passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// One line of an application's audit trail.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApplicationAudit {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Which applications a list shows.
#[derive(Debug, Clone, Default)]
pub struct ApplicationFilter {
    pub firm: Option<FirmId>,
    pub status: Option<ApplicationStatus>,
}

/// Why a decision was not recorded.
#[derive(Debug)]
pub enum DecisionError {
    NoSuchApplication,
    /// Not waiting for a decision: its status now.
    NotSubmitted(ApplicationStatus),
    Store(StoreError),
}

impl From<StoreError> for DecisionError {
    fn from(e: StoreError) -> Self {
        DecisionError::Store(e)
    }
}

#[derive(sqlx::FromRow)]
struct ApplicationRow {
    id: i64,
    firm_id: FirmId,
    status: String,
    request: String,
    checks: String,
    submitted_ms: i64,
    submitted_by: String,
    decided_ms: Option<i64>,
    decided_by: Option<String>,
    reason: Option<String>,
    permit_id: Option<String>,
}

const COLUMNS: &str = "id, firm_id, status, request, checks, submitted_ms, submitted_by, \
                       decided_ms, decided_by, reason, permit_id";

impl ApplicationRow {
    fn parse(self) -> StoreResult<ApplicationRecord> {
        let corrupt = |what: &str, e: String| {
            StoreError::Corrupt(format!("permit application {}: {what}: {e}", self.id))
        };
        let status = ApplicationStatus::parse(&self.status)
            .ok_or_else(|| corrupt("status", self.status.clone()))?;
        let request: serde_json::Value =
            serde_json::from_str(&self.request).map_err(|e| corrupt("request", e.to_string()))?;
        let request =
            PermitRequest::from_json(&request, &self.firm_id).map_err(|e| corrupt("request", e))?;
        let checks: Vec<serde_json::Value> =
            serde_json::from_str(&self.checks).map_err(|e| corrupt("checks", e.to_string()))?;
        let checks = checks
            .iter()
            .map(CheckResult::from_json)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt("checks", e))?;
        Ok(ApplicationRecord {
            id: self.id,
            firm_id: self.firm_id,
            status,
            request,
            checks,
            submitted_ms: self.submitted_ms,
            submitted_by: self.submitted_by,
            decided_ms: self.decided_ms,
            decided_by: self.decided_by,
            reason: self.reason,
            permit_id: self.permit_id,
        })
    }
}

fn checks_text(checks: &[CheckResult]) -> String {
    serde_json::Value::Array(checks.iter().map(CheckResult::to_json).collect()).to_string()
}

/// `WHERE` of a list.
fn filtered(mut q: Sql, f: &ApplicationFilter) -> Sql {
    q.push(" WHERE TRUE")
        .and(" AND firm_id = {}", f.firm.as_ref().map(FirmId::as_str))
        .and(" AND status = {}", f.status.map(ApplicationStatus::as_str));
    q
}

/// Appends one audit line.
async fn audit(
    tx: &mut Tx,
    id: i64,
    at_ms: i64,
    actor: &str,
    field: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> StoreResult<()> {
    let q = Sql::new(
        "INSERT INTO permit_application_audit (application_id, at_ms, actor, field, before, \
         after) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(at_ms)
    .bind(actor)
    .bind(field)
    .bind(before)
    .bind(after);
    tx.execute(&q).await?;
    Ok(())
}

/// The application, locked until `tx` ends.
async fn locked(tx: &mut Tx, id: i64) -> StoreResult<Option<ApplicationRecord>> {
    let q = Sql::new(format!(
        "SELECT {COLUMNS} FROM permit_applications WHERE id = $1{}",
        tx.for_update()
    ))
    .bind(id);
    tx.fetch_optional::<ApplicationRow>(&q)
        .await?
        .map(ApplicationRow::parse)
        .transpose()
}

/// Moves a locked application from `from` to `to` and audits it.
async fn set_status(
    tx: &mut Tx,
    id: i64,
    from: ApplicationStatus,
    to: ApplicationStatus,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let q = Sql::new("UPDATE permit_applications SET status = $1, updated_ms = $2 WHERE id = $3")
        .bind(to.as_str())
        .bind(now_ms)
        .bind(id);
    tx.execute(&q).await?;
    audit(
        tx,
        id,
        now_ms,
        actor,
        "status",
        Some(from.as_str()),
        Some(to.as_str()),
    )
    .await
}

impl Store {
    /// Records a submitted application with its checks' results; returns its id.
    pub async fn submit_application(
        &self,
        firm: &FirmId,
        request: &PermitRequest,
        checks: &[CheckResult],
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<i64> {
        let mut tx = self.db.begin().await?;
        let q = Sql::new(
            "INSERT INTO permit_applications (firm_id, status, request, checks, submitted_ms, \
             submitted_by, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $5) RETURNING id",
        )
        .bind(firm)
        .bind(ApplicationStatus::Submitted.as_str())
        .bind(request.to_json().to_string())
        .bind(checks_text(checks))
        .bind(now_ms)
        .bind(actor);
        let id: i64 = tx.fetch_value(&q).await?;
        let submitted = ApplicationStatus::Submitted.as_str();
        audit(&mut tx, id, now_ms, actor, "status", None, Some(submitted)).await?;
        let ran = summary(checks);
        audit(&mut tx, id, now_ms, SYSTEM, "checks", None, Some(&ran)).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn application(&self, id: i64) -> StoreResult<Option<ApplicationRecord>> {
        let q = Sql::new(format!(
            "SELECT {COLUMNS} FROM permit_applications WHERE id = $1"
        ))
        .bind(id);
        self.db
            .fetch_optional::<ApplicationRow>(&q)
            .await?
            .map(ApplicationRow::parse)
            .transpose()
    }

    /// A page of applications, newest first, and how many match.
    pub async fn applications(
        &self,
        f: &ApplicationFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ApplicationRecord>, i64)> {
        let mut q = filtered(
            Sql::new(format!("SELECT {COLUMNS} FROM permit_applications")),
            f,
        );
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows: Vec<ApplicationRow> = self.db.fetch_all(&q).await?;
        let items = rows
            .into_iter()
            .map(ApplicationRow::parse)
            .collect::<StoreResult<Vec<_>>>()?;
        let total = self
            .db
            .fetch_value(&filtered(
                Sql::new("SELECT COUNT(*) FROM permit_applications"),
                f,
            ))
            .await?;
        Ok((items, total))
    }

    pub async fn application_audit(&self, id: i64) -> StoreResult<Vec<ApplicationAudit>> {
        let q = Sql::new(
            "SELECT id, at_ms, actor, field, before, after FROM permit_application_audit \
             WHERE application_id = $1 ORDER BY id",
        )
        .bind(id);
        self.db.fetch_all(&q).await
    }

    /// Stores a new run of the checks of an application still waiting for
    /// its decision (an audit line when the results changed); false when
    /// it is not waiting (any more), or unknown.
    pub async fn recheck_application(
        &self,
        id: i64,
        checks: &[CheckResult],
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.db.begin().await?;
        let Some(app) = locked(&mut tx, id).await? else {
            return Ok(false);
        };
        if app.status != ApplicationStatus::Submitted {
            return Ok(false);
        }
        if app.checks != checks {
            let q = Sql::new(
                "UPDATE permit_applications SET checks = $1, updated_ms = $2 WHERE id = $3",
            )
            .bind(checks_text(checks))
            .bind(now_ms)
            .bind(id);
            tx.execute(&q).await?;
            let (before, after) = (summary(&app.checks), summary(checks));
            audit(
                &mut tx,
                id,
                now_ms,
                SYSTEM,
                "checks",
                Some(&before),
                Some(&after),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The first half of an approval: a submitted application becomes
    /// `approving`, with who decided, when, why, and the permit id it is to
    /// create. An application already `approving` (an approval cut short)
    /// is returned as it is, for the caller to finish.
    pub async fn claim_approval(
        &self,
        id: i64,
        permit_id: &str,
        actor: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<ApplicationRecord, DecisionError> {
        let mut tx = self.db.begin().await?;
        let mut app = locked(&mut tx, id)
            .await?
            .ok_or(DecisionError::NoSuchApplication)?;
        match app.status {
            ApplicationStatus::Approving => return Ok(app),
            ApplicationStatus::Submitted => {}
            other => return Err(DecisionError::NotSubmitted(other)),
        }
        let q = Sql::new(
            "UPDATE permit_applications SET decided_ms = $1, decided_by = $2, reason = $3, \
             permit_id = $4 WHERE id = $5",
        )
        .bind(now_ms)
        .bind(actor)
        .bind(reason)
        .bind(permit_id)
        .bind(id);
        tx.execute(&q).await?;
        let (from, to) = (ApplicationStatus::Submitted, ApplicationStatus::Approving);
        set_status(&mut tx, id, from, to, actor, now_ms).await?;
        if let Some(r) = reason {
            audit(&mut tx, id, now_ms, actor, "reason", None, Some(r)).await?;
        }
        tx.commit().await?;
        app.status = to;
        app.decided_ms = Some(now_ms);
        app.decided_by = Some(actor.to_string());
        app.reason = reason.map(str::to_string);
        app.permit_id = Some(permit_id.to_string());
        Ok(app)
    }

    /// The second half: the permit exists, the application is `approved`.
    pub async fn finish_approval(
        &self,
        id: i64,
        now_ms: i64,
    ) -> Result<ApplicationRecord, DecisionError> {
        let mut tx = self.db.begin().await?;
        let app = locked(&mut tx, id)
            .await?
            .ok_or(DecisionError::NoSuchApplication)?;
        if app.status != ApplicationStatus::Approving {
            return Err(DecisionError::NotSubmitted(app.status));
        }
        let (from, to) = (ApplicationStatus::Approving, ApplicationStatus::Approved);
        audit(
            &mut tx,
            id,
            now_ms,
            SYSTEM,
            "permit",
            None,
            app.permit_id.as_deref(),
        )
        .await?;
        set_status(&mut tx, id, from, to, SYSTEM, now_ms).await?;
        tx.commit().await?;
        Ok(ApplicationRecord { status: to, ..app })
    }

    /// An approval whose permit could not be created: the application is
    /// `submitted` again, the decision undone, and `why` in its trail.
    pub async fn abort_approval(&self, id: i64, why: &str, now_ms: i64) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        let Some(app) = locked(&mut tx, id).await? else {
            return Ok(());
        };
        if app.status != ApplicationStatus::Approving {
            return Ok(());
        }
        let q = Sql::new(
            "UPDATE permit_applications SET decided_ms = NULL, decided_by = NULL, \
             reason = NULL, permit_id = NULL WHERE id = $1",
        )
        .bind(id);
        tx.execute(&q).await?;
        audit(
            &mut tx,
            id,
            now_ms,
            SYSTEM,
            "approval_failed",
            None,
            Some(why),
        )
        .await?;
        let (from, to) = (ApplicationStatus::Approving, ApplicationStatus::Submitted);
        set_status(&mut tx, id, from, to, SYSTEM, now_ms).await?;
        tx.commit().await
    }

    /// Rejects a submitted application with its reason.
    pub async fn reject_application(
        &self,
        id: i64,
        actor: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<ApplicationRecord, DecisionError> {
        let mut tx = self.db.begin().await?;
        let app = locked(&mut tx, id)
            .await?
            .ok_or(DecisionError::NoSuchApplication)?;
        if app.status != ApplicationStatus::Submitted {
            return Err(DecisionError::NotSubmitted(app.status));
        }
        let q = Sql::new(
            "UPDATE permit_applications SET decided_ms = $1, decided_by = $2, reason = $3 \
             WHERE id = $4",
        )
        .bind(now_ms)
        .bind(actor)
        .bind(reason)
        .bind(id);
        tx.execute(&q).await?;
        let (from, to) = (ApplicationStatus::Submitted, ApplicationStatus::Rejected);
        set_status(&mut tx, id, from, to, actor, now_ms).await?;
        audit(&mut tx, id, now_ms, actor, "reason", None, Some(reason)).await?;
        tx.commit().await?;
        Ok(ApplicationRecord {
            status: to,
            decided_ms: Some(now_ms),
            decided_by: Some(actor.to_string()),
            reason: Some(reason.to_string()),
            ..app
        })
    }
}
