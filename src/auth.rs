//! Roles and API tokens. A token is shown once, when created; only its
//! SHA-256 is stored, so a leaked database does not leak working tokens.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::identity::FirmId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Department {
    Urban,
    Police,
    Housing,
    Transport,
    Ecology,
}

impl Department {
    pub const ALL: [Department; 5] = [
        Department::Urban,
        Department::Police,
        Department::Housing,
        Department::Transport,
        Department::Ecology,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Department::Urban => "urban",
            Department::Police => "police",
            Department::Housing => "housing",
            Department::Transport => "transport",
            Department::Ecology => "ecology",
        }
    }

    pub fn parse(s: &str) -> Option<Department> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The department's name in Chinese (the console shows it beside the id).
    pub fn label_zh(self) -> &'static str {
        match self {
            Department::Urban => "城管",
            Department::Police => "公安交警",
            Department::Housing => "住建",
            Department::Transport => "交通运输",
            Department::Ecology => "生态环境",
        }
    }
}

impl fmt::Display for Department {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a caller is: `admin`, `dept:<department>` or `firm:<firm_id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Admin,
    Dept(Department),
    Firm(FirmId),
}

impl Role {
    /// ```
    /// use muckwatch::auth::{Role, Department};
    /// assert_eq!(Role::parse("dept:police").unwrap(), Role::Dept(Department::Police));
    /// assert!(Role::parse("dept:army").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Role, String> {
        if s == "admin" {
            return Ok(Role::Admin);
        }
        if let Some(d) = s.strip_prefix("dept:") {
            return Department::parse(d).map(Role::Dept).ok_or_else(|| {
                format!("unknown department `{d}` (urban, police, housing, transport, ecology)")
            });
        }
        if let Some(f) = s.strip_prefix("firm:") {
            return FirmId::parse(f).map(Role::Firm);
        }
        Err(format!(
            "role `{s}` is not admin, dept:<department> or firm:<firm_id>"
        ))
    }

    /// The firm a caller is confined to, if any.
    pub fn firm(&self) -> Option<&FirmId> {
        match self {
            Role::Firm(f) => Some(f),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Admin => f.write_str("admin"),
            Role::Dept(d) => write!(f, "dept:{d}"),
            Role::Firm(id) => write!(f, "firm:{id}"),
        }
    }
}

/// A stored token as `muckwatch token list` shows it; never the token
/// itself, which is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The first [`TOKEN_ID_LEN`] hex digits of its hash: enough to name
    /// it (`token revoke ID`), useless to sign in with.
    pub id: String,
    pub role: Role,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

pub const TOKEN_ID_LEN: usize = 12;

/// Whether a token lets its holder in at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
        }
    }
}

impl TokenRecord {
    pub fn state(&self, now_ms: i64) -> TokenState {
        if self.revoked_ms.is_some_and(|r| r <= now_ms) {
            TokenState::Revoked
        } else if self.expires_ms.is_some_and(|e| e <= now_ms) {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }
}

/// `--expires-in`: a whole number and a unit, `90m`, `12h`, `30d`.
///
/// ```
/// use muckwatch::auth::parse_expiry;
/// assert_eq!(parse_expiry("12h"), Ok(12 * 3_600_000));
/// assert_eq!(parse_expiry("30d"), Ok(30 * 86_400_000));
/// assert!(parse_expiry("0d").is_err());
/// assert!(parse_expiry("soon").is_err());
/// ```
pub fn parse_expiry(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || format!("`{s}` is not a duration like 90m, 12h or 30d");
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(unit_at);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    match n.checked_mul(unit_ms) {
        Some(ms) if n > 0 && ms <= 10 * 366 * 86_400_000 => Ok(ms),
        _ => Err(format!(
            "`{s}`: an expiry must be above zero and at most ten years"
        )),
    }
}

/// A new random token: `mw_` and 64 hex digits (256 bits).
pub fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))?;
    Ok(format!("mw_{}", hex(&bytes)))
}

pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for s in ["admin", "dept:urban", "dept:ecology", "firm:f-01"] {
            assert_eq!(Role::parse(s).unwrap().to_string(), s);
        }
        assert!(Role::parse("firm:").is_err());
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 67);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
