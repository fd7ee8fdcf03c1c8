//! Firms, vehicles and API tokens.

use super::db::Sql;
use super::{classify, Store, StoreError, StoreResult};
use crate::auth::Role;
use crate::identity::{DeviceId, Firm, FirmId, Plate, Vehicle};

#[derive(sqlx::FromRow)]
struct FirmRow {
    id: FirmId,
    name: String,
}

#[derive(sqlx::FromRow)]
struct VehicleRow {
    plate: Plate,
    device_id: DeviceId,
    firm_id: FirmId,
    rated_load_t: f64,
}

impl From<VehicleRow> for Vehicle {
    fn from(r: VehicleRow) -> Vehicle {
        Vehicle {
            plate: r.plate,
            device_id: r.device_id,
            firm_id: r.firm_id,
            rated_load_t: r.rated_load_t,
        }
    }
}

const VEHICLE: &str = "SELECT plate, device_id, firm_id, rated_load_t FROM vehicles";

impl Store {
    pub async fn create_firm(&self, firm: &Firm, now_ms: i64) -> StoreResult<()> {
        let q = Sql::new("INSERT INTO firms (id, name, created_ms) VALUES ($1, $2, $3)")
            .bind(&firm.id)
            .bind(firm.name.as_str())
            .bind(now_ms);
        self.db.execute(&q).await.map_err(|e| {
            classify(
                e,
                || format!("firm `{}` exists already", firm.id),
                String::new,
            )
        })?;
        Ok(())
    }

    pub async fn firm(&self, id: &FirmId) -> StoreResult<Option<Firm>> {
        let row: Option<FirmRow> = self
            .db
            .fetch_optional(&Sql::new("SELECT id, name FROM firms WHERE id = $1").bind(id))
            .await?;
        Ok(row.map(|r| Firm {
            id: r.id,
            name: r.name,
        }))
    }

    pub async fn create_vehicle(&self, v: &Vehicle, now_ms: i64) -> StoreResult<()> {
        let q = Sql::new(
            "INSERT INTO vehicles (plate, device_id, firm_id, rated_load_t, created_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&v.plate)
        .bind(&v.device_id)
        .bind(&v.firm_id)
        .bind(v.rated_load_t)
        .bind(now_ms);
        self.db.execute(&q).await.map_err(|e| {
            classify(
                e,
                || {
                    format!(
                        "vehicle `{}` or device `{}` is registered already",
                        v.plate, v.device_id
                    )
                },
                || format!("firm `{}` does not exist", v.firm_id),
            )
        })?;
        Ok(())
    }

    pub async fn vehicle(&self, plate: &Plate) -> StoreResult<Option<Vehicle>> {
        let q = Sql::new(format!("{VEHICLE} WHERE plate = $1")).bind(plate);
        let row: Option<VehicleRow> = self.db.fetch_optional(&q).await?;
        Ok(row.map(Vehicle::from))
    }

    pub async fn vehicles(&self) -> StoreResult<Vec<Vehicle>> {
        let q = Sql::new(format!("{VEHICLE} ORDER BY plate"));
        let rows: Vec<VehicleRow> = self.db.fetch_all(&q).await?;
        Ok(rows.into_iter().map(Vehicle::from).collect())
    }

    pub async fn create_token(&self, hash: &str, role: &Role, now_ms: i64) -> StoreResult<()> {
        let q = Sql::new("INSERT INTO api_tokens (hash, role, created_ms) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(role.to_string())
            .bind(now_ms);
        self.db.execute(&q).await?;
        Ok(())
    }

    pub async fn token_role(&self, hash: &str) -> StoreResult<Option<Role>> {
        let q = Sql::new("SELECT role FROM api_tokens WHERE hash = $1").bind(hash);
        let role: Option<(String,)> = self.db.fetch_optional(&q).await?;
        role.map(|(r,)| Role::parse(&r).map_err(StoreError::Corrupt))
            .transpose()
    }
}
