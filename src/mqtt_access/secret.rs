//! Device passwords: random secrets shown once, stored as Mosquitto stores
//! passwords (`$7$` PBKDF2-HMAC-SHA512 with a per-credential salt), so that
//! the stored hashes can be written straight into a Mosquitto password
//! file. The secrets are 256 random bits, so the iteration count only has
//! to match Mosquitto's, not to slow down guessing.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha512;

/// Mosquitto's default (`mosquitto_passwd` writes 101).
const ITERATIONS: u32 = 101;
const SALT_LEN: usize = 12;

/// A new device password: 43 URL-safe characters (256 bits).
pub fn new_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a secret: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// `$7$101$<salt>$<hash>`, base64, as in a Mosquitto password file.
pub fn hash_secret(secret: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness for a salt: {e}"))?;
    let hash = pbkdf2_sha512(secret.as_bytes(), &salt, ITERATIONS);
    Ok(format!(
        "$7${ITERATIONS}${}${}",
        B64.encode(salt),
        B64.encode(hash)
    ))
}

/// Whether `secret` is the one `stored` was made from. A stored value this
/// code cannot read verifies nothing.
pub fn verify_secret(secret: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(""), Some("7"), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iter), Ok(salt), Ok(hash)) = (iter.parse::<u32>(), B64.decode(salt), B64.decode(hash))
    else {
        return false;
    };
    // A hostile row must not make one login cost minutes.
    if !(1..=100_000).contains(&iter) {
        return false;
    }
    constant_time_eq(&pbkdf2_sha512(secret.as_bytes(), &salt, iter), &hash)
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// PBKDF2 (RFC 8018) with HMAC-SHA512, one 64-byte block.
fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 64] {
    let Ok(mac) = Hmac::<Sha512>::new_from_slice(password) else {
        // HMAC takes keys of any length; unreachable in practice.
        return [0; 64];
    };
    let mut u = {
        let mut m = mac.clone();
        m.update(salt);
        m.update(&1u32.to_be_bytes());
        m.finalize().into_bytes()
    };
    let mut out = [0u8; 64];
    out.copy_from_slice(&u);
    for _ in 1..iterations {
        let mut m = mac.clone();
        m.update(&u);
        u = m.finalize().into_bytes();
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_the_rfc_test_vector() {
        // RFC 6070-style vector for PBKDF2-HMAC-SHA512 (password, salt, 1).
        let out = pbkdf2_sha512(b"password", b"salt", 1);
        let hex: String = out[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "867f70cf1ade02cf");
    }

    #[test]
    fn secrets_verify_and_are_salted() {
        let s = new_secret().unwrap();
        assert_eq!(s.len(), 43);
        let a = hash_secret(&s).unwrap();
        let b = hash_secret(&s).unwrap();
        assert_ne!(a, b, "per-credential salt");
        assert!(a.starts_with("$7$101$"));
        assert!(verify_secret(&s, &a) && verify_secret(&s, &b));
        assert!(!verify_secret("wrong", &a));
        assert!(!verify_secret(&s, "garbage"));
        assert!(!verify_secret(&s, "$7$999999999$AA==$AA=="));
    }
}
