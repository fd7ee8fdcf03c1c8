//! Random inspections (双随机一公开): the inspector pool, draws and their
//! results. The draw itself is decided in `crate::inspections`; this file
//! stores what it drew, in one transaction.

use std::collections::HashMap;

use super::db::Sql;
use super::{classify, Store, StoreResult};
use crate::auth::Department;
use crate::inspections::{DrawnObject, PoolInspector};

#[derive(sqlx::FromRow)]
struct PoolRow {
    id: String,
    department: Department,
}

/// An inspector of the pool, as the officials' list shows them.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct InspectorRecord {
    pub id: String,
    pub name: String,
    pub department: Department,
    /// `YYYY-MM-DD`, the last local day the certificate is valid.
    pub cert_valid_until: String,
}

/// A recorded draw, as the lists show it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DrawRecord {
    pub id: i64,
    pub item: String,
    pub population: String,
    /// The request body as it was received (JSON text).
    pub request: String,
    pub seed: i64,
    pub population_hash: String,
    pub drawn_ms: i64,
}

/// A drawn object: its inspectors' ids and departments (JSON arrays).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DrawObjectRecord {
    pub draw_id: i64,
    pub object_id: String,
    pub inspectors: String,
    pub departments: String,
    pub result: Option<String>,
    pub finding: Option<String>,
    pub result_ms: Option<i64>,
}

/// What a draw records.
pub struct NewDraw<'a> {
    pub item: &'a str,
    pub population: &'a str,
    pub request: &'a str,
    pub seed: i64,
    pub population_hash: &'a str,
    pub objects: &'a [DrawnObject],
}

impl Store {
    pub async fn create_inspector(
        &self,
        id: &str,
        name: &str,
        department: Department,
        cert_valid_until: chrono::NaiveDate,
        now_ms: i64,
    ) -> StoreResult<()> {
        let q = Sql::new(
            "INSERT INTO inspectors (id, name, department, cert_valid_until, created_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(name)
        .bind(department)
        .bind(cert_valid_until.to_string())
        .bind(now_ms);
        self.db.execute(&q).await.map_err(|e| {
            classify(
                e,
                || format!("inspector `{id}` exists already"),
                String::new,
            )
        })?;
        Ok(())
    }

    /// Changes what is given of inspector `id` (a renewed certificate, a
    /// move to another department, a corrected name); `None` when there is
    /// no such inspector.
    pub async fn update_inspector(
        &self,
        id: &str,
        name: Option<&str>,
        department: Option<Department>,
        cert_valid_until: Option<chrono::NaiveDate>,
    ) -> StoreResult<Option<InspectorRecord>> {
        let mut tx = self.db.begin().await?;
        let q = Sql::new(
            "UPDATE inspectors SET name = COALESCE($1, name), \
             department = COALESCE($2, department), \
             cert_valid_until = COALESCE($3, cert_valid_until) WHERE id = $4",
        )
        .bind(name)
        .bind(department.map(Department::as_str))
        .bind(cert_valid_until.map(|d| d.to_string()))
        .bind(id);
        if tx.execute(&q).await? == 0 {
            return Ok(None);
        }
        let q =
            Sql::new("SELECT id, name, department, cert_valid_until FROM inspectors WHERE id = $1")
                .bind(id);
        let row = tx.fetch_optional(&q).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Inspectors of `departments` whose certificate is valid on `day`.
    pub async fn inspector_pool(
        &self,
        day: chrono::NaiveDate,
        departments: &[Department],
    ) -> StoreResult<Vec<PoolInspector>> {
        let q = Sql::new(
            "SELECT id, department FROM inspectors WHERE cert_valid_until >= $1 ORDER BY id",
        )
        .bind(day.to_string());
        let rows: Vec<PoolRow> = self.db.fetch_all(&q).await?;
        Ok(rows
            .into_iter()
            .filter(|r| departments.contains(&r.department))
            .map(|r| PoolInspector {
                id: r.id,
                department: r.department,
            })
            .collect())
    }

    /// Records a draw and its objects; returns its id.
    pub async fn record_draw(&self, d: &NewDraw<'_>, now_ms: i64) -> StoreResult<i64> {
        let mut tx = self.db.begin().await?;
        let q = Sql::new(
            "INSERT INTO inspection_draws (item, population, request, seed, population_hash, \
             drawn_ms) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(d.item)
        .bind(d.population)
        .bind(d.request)
        .bind(d.seed)
        .bind(d.population_hash)
        .bind(now_ms);
        let id: i64 = tx.fetch_value(&q).await?;
        for o in d.objects {
            let ids: Vec<&str> = o.inspectors.iter().map(|i| i.id.as_str()).collect();
            let depts: Vec<&str> = o.inspectors.iter().map(|i| i.department.as_str()).collect();
            let q = Sql::new(
                "INSERT INTO inspection_objects (draw_id, object_id, inspectors, departments) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(o.id.as_str())
            .bind(serde_json::to_string(&ids).unwrap_or_default())
            .bind(serde_json::to_string(&depts).unwrap_or_default());
            tx.execute(&q).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Records an object's result; false when the draw has no such object.
    pub async fn record_inspection_result(
        &self,
        draw_id: i64,
        object_id: &str,
        result: &str,
        finding: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let q = Sql::new(
            "UPDATE inspection_objects SET result = $1, finding = $2, result_ms = $3 \
             WHERE draw_id = $4 AND object_id = $5",
        )
        .bind(result)
        .bind(finding)
        .bind(now_ms)
        .bind(draw_id)
        .bind(object_id);
        Ok(self.db.execute(&q).await? == 1)
    }

    /// The inspectors (of `department` only, when given), by id, and how many
    /// there are.
    pub async fn inspectors(
        &self,
        department: Option<Department>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<InspectorRecord>, i64)> {
        let filter = |q: &mut Sql| {
            q.push(" WHERE TRUE")
                .and(" AND department = {}", department);
        };
        let mut q = Sql::new("SELECT id, name, department, cert_valid_until FROM inspectors");
        filter(&mut q);
        q.push(" ORDER BY id LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows = self.db.fetch_all(&q).await?;
        let mut count = Sql::new("SELECT COUNT(*) FROM inspectors");
        filter(&mut count);
        Ok((rows, self.db.fetch_value(&count).await?))
    }

    /// The draws, newest first, `limit` from `offset`, with their objects;
    /// and how many draws there are.
    pub async fn draws(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<(DrawRecord, Vec<DrawObjectRecord>)>, i64)> {
        let q = Sql::new(
            "SELECT id, item, population, request, seed, population_hash, drawn_ms \
             FROM inspection_draws \
             ORDER BY id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset);
        let draws: Vec<DrawRecord> = self.db.fetch_all(&q).await?;
        let total = self
            .db
            .fetch_value(&Sql::new("SELECT COUNT(*) FROM inspection_draws"))
            .await?;
        let ids: Vec<i64> = draws.iter().map(|d| d.id).collect();
        let mut q = Sql::new(
            "SELECT draw_id, object_id, inspectors, departments, result, finding, result_ms \
             FROM inspection_objects WHERE draw_id",
        );
        self.db.push_in_ids(&mut q, &ids);
        q.push(" ORDER BY draw_id, object_id");
        let objects: Vec<DrawObjectRecord> = self.db.fetch_all(&q).await?;
        let mut by_draw: HashMap<i64, Vec<DrawObjectRecord>> = HashMap::new();
        for o in objects {
            by_draw.entry(o.draw_id).or_default().push(o);
        }
        let out = draws
            .into_iter()
            .map(|d| {
                let objects = by_draw.remove(&d.id).unwrap_or_default();
                (d, objects)
            })
            .collect();
        Ok((out, total))
    }
}
