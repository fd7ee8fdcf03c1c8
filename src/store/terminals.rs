//! JT/T 808 terminals: the authentication code of each registered terminal
//! (hashed), replaced when it registers again, removed when it deregisters.

use super::db::Sql;
use super::{Store, StoreResult};
use crate::identity::{DeviceId, Plate, Vehicle};

/// What a terminal said about itself when it registered (kept for the
/// administrator; muckwatch trusts the vehicle table, not the terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalRegistration {
    pub device_id: DeviceId,
    pub auth_hash: String,
    pub plate: String,
    pub maker: String,
    pub model: String,
    pub terminal_id: String,
}

#[derive(sqlx::FromRow)]
struct VehicleRow {
    plate: Plate,
    device_id: DeviceId,
    firm_id: crate::identity::FirmId,
    rated_load_t: f64,
}

impl Store {
    /// The vehicle a device is registered to, if any.
    pub async fn vehicle_of_device(&self, device: &DeviceId) -> StoreResult<Option<Vehicle>> {
        let q = Sql::new(
            "SELECT plate, device_id, firm_id, rated_load_t FROM vehicles WHERE device_id = $1",
        )
        .bind(device);
        let row: Option<VehicleRow> = self.db.fetch_optional(&q).await?;
        Ok(row.map(|r| Vehicle {
            plate: r.plate,
            device_id: r.device_id,
            firm_id: r.firm_id,
            rated_load_t: r.rated_load_t,
        }))
    }

    /// Stores a terminal's new code (hash), replacing any earlier one.
    pub async fn register_terminal(
        &self,
        t: &TerminalRegistration,
        now_ms: i64,
    ) -> StoreResult<()> {
        let q = Sql::new(
            "INSERT INTO jt808_terminals \
             (device_id, auth_hash, plate, maker, model, terminal_id, registered_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (device_id) DO UPDATE SET auth_hash = excluded.auth_hash, \
             plate = excluded.plate, maker = excluded.maker, model = excluded.model, \
             terminal_id = excluded.terminal_id, registered_ms = excluded.registered_ms",
        )
        .bind(&t.device_id)
        .bind(t.auth_hash.as_str())
        .bind(t.plate.as_str())
        .bind(t.maker.as_str())
        .bind(t.model.as_str())
        .bind(t.terminal_id.as_str())
        .bind(now_ms);
        self.db.execute(&q).await?;
        Ok(())
    }

    /// The hash of a terminal's current code.
    pub async fn terminal_auth_hash(&self, device: &DeviceId) -> StoreResult<Option<String>> {
        let q = Sql::new("SELECT auth_hash FROM jt808_terminals WHERE device_id = $1").bind(device);
        let row: Option<(String,)> = self.db.fetch_optional(&q).await?;
        Ok(row.map(|(h,)| h))
    }

    /// Forgets a terminal's code (it deregistered); true if it had one.
    pub async fn deregister_terminal(&self, device: &DeviceId) -> StoreResult<bool> {
        let q = Sql::new("DELETE FROM jt808_terminals WHERE device_id = $1").bind(device);
        Ok(self.db.execute(&q).await? > 0)
    }
}
