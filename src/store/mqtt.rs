//! Devices' MQTT credentials (hashed; see `crate::mqtt_access`).

use super::db::Sql;
use super::{Store, StoreResult};
use crate::identity::{DeviceId, Plate};

impl Store {
    /// Stores (or replaces) the hashed MQTT password of `device`.
    pub async fn set_mqtt_credential(
        &self,
        device: &DeviceId,
        plate: &Plate,
        hash: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let q = Sql::new(
            "INSERT INTO mqtt_credentials (device_id, plate, hash, created_ms) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (device_id) DO UPDATE SET plate = excluded.plate, \
             hash = excluded.hash, created_ms = excluded.created_ms",
        )
        .bind(device)
        .bind(plate)
        .bind(hash)
        .bind(now_ms);
        self.db.execute(&q).await?;
        Ok(())
    }

    /// The stored hash of `device`'s MQTT password, if it has one.
    pub async fn mqtt_credential(&self, device: &DeviceId) -> StoreResult<Option<String>> {
        let q = Sql::new("SELECT hash FROM mqtt_credentials WHERE device_id = $1").bind(device);
        let row: Option<(String,)> = self.db.fetch_optional(&q).await?;
        Ok(row.map(|(h,)| h))
    }

    /// Every device's stored hash, by device id (for a broker's password file).
    pub async fn mqtt_credentials(&self) -> StoreResult<Vec<(DeviceId, String)>> {
        let q = Sql::new("SELECT device_id, hash FROM mqtt_credentials ORDER BY device_id");
        let rows: Vec<(DeviceId, String)> = self.db.fetch_all(&q).await?;
        Ok(rows)
    }
}
