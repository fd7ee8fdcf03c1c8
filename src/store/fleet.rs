//! Firms, vehicles and API tokens.

use super::db::Sql;
use super::{classify, Store, StoreError, StoreResult};
use crate::auth::{Role, TokenRecord, TokenState, TOKEN_ID_LEN};
use crate::identity::{DeviceId, Firm, FirmId, Plate, Vehicle};

const TOKEN: &str = "SELECT hash, role, created_ms, expires_ms, revoked_ms FROM api_tokens";

#[derive(sqlx::FromRow)]
struct TokenRow {
    hash: String,
    role: String,
    created_ms: i64,
    expires_ms: Option<i64>,
    revoked_ms: Option<i64>,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;

    fn try_from(r: TokenRow) -> Result<TokenRecord, StoreError> {
        Ok(TokenRecord {
            id: r.hash.chars().take(TOKEN_ID_LEN).collect(),
            role: Role::parse(&r.role).map_err(StoreError::Corrupt)?,
            created_ms: r.created_ms,
            expires_ms: r.expires_ms,
            revoked_ms: r.revoked_ms,
        })
    }
}

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
        self.create_token_expiring(hash, role, now_ms, None).await
    }

    /// A token that stops working at `expires_ms` (never when `None`).
    pub async fn create_token_expiring(
        &self,
        hash: &str,
        role: &Role,
        now_ms: i64,
        expires_ms: Option<i64>,
    ) -> StoreResult<()> {
        let q = Sql::new(
            "INSERT INTO api_tokens (hash, role, created_ms, expires_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(hash)
        .bind(role.to_string())
        .bind(now_ms)
        .bind(expires_ms);
        self.db.execute(&q).await?;
        Ok(())
    }

    /// The role of the token with `hash` if it is active now (not expired,
    /// not revoked).
    pub async fn token_role(&self, hash: &str) -> StoreResult<Option<Role>> {
        let now = chrono::Utc::now().timestamp_millis();
        Ok(self
            .token(hash)
            .await?
            .filter(|t| t.state(now) == TokenState::Active)
            .map(|t| t.role))
    }

    /// The token with `hash`, whatever its state.
    pub async fn token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let q = Sql::new(format!("{TOKEN} WHERE hash = $1")).bind(hash);
        let row: Option<TokenRow> = self.db.fetch_optional(&q).await?;
        row.map(TokenRecord::try_from).transpose()
    }

    /// The revocation mark: how many tokens are revoked and the newest
    /// revocation time. It moves whenever any token is revoked (by this
    /// process or another), which is what the API's token cache watches.
    pub async fn token_revocations(&self) -> StoreResult<(i64, i64)> {
        let q = Sql::new(
            "SELECT COUNT(*), COALESCE(MAX(revoked_ms), 0) FROM api_tokens \
             WHERE revoked_ms IS NOT NULL",
        );
        let row: Option<(i64, i64)> = self.db.fetch_optional(&q).await?;
        Ok(row.unwrap_or_default())
    }

    /// Every token, oldest first.
    pub async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let q = Sql::new(format!("{TOKEN} ORDER BY created_ms, hash"));
        let rows: Vec<TokenRow> = self.db.fetch_all(&q).await?;
        rows.into_iter().map(TokenRecord::try_from).collect()
    }

    /// Revokes the one token whose hash starts with `id` (at least 8 hex
    /// digits, as `tokens` lists them). Returns the revoked token, or why not.
    pub async fn revoke_token(
        &self,
        id: &str,
        now_ms: i64,
    ) -> StoreResult<Result<TokenRecord, String>> {
        let id = id.trim().to_ascii_lowercase();
        if id.len() < 8 || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Err(format!(
                "`{id}` is not a token id (8 to 64 hex digits, as `token list` shows)"
            )));
        }
        let mut tx = self.db.begin().await?;
        let q = Sql::new(format!("{TOKEN} WHERE hash LIKE $1{}", tx.for_update()))
            .bind(format!("{id}%"));
        let rows: Vec<TokenRow> = tx.fetch_all(&q).await?;
        let row = match rows.len() {
            0 => return Ok(Err(format!("no token with id {id}"))),
            1 => rows.into_iter().next(),
            n => return Ok(Err(format!("{n} tokens start with {id}; give more digits"))),
        };
        let Some(row) = row else {
            return Ok(Err(format!("no token with id {id}")));
        };
        let q = Sql::new(
            "UPDATE api_tokens SET revoked_ms = $1 WHERE hash = $2 AND revoked_ms IS NULL",
        )
        .bind(now_ms)
        .bind(row.hash.as_str());
        tx.execute(&q).await?;
        tx.commit().await?;
        let mut token = TokenRecord::try_from(row)?;
        token.revoked_ms = token.revoked_ms.or(Some(now_ms));
        Ok(Ok(token))
    }
}
