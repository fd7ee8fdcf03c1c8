//! The GPS fix, the unit of everything muckwatch watches, and the device id
//! that names its terminal. Both are plain values that cost no allocation,
//! because millions of them pass through the hot path.

use std::fmt;

use chrono::{DateTime, Utc};

/// A terminal id: 1-32 characters of `[0-9A-Za-z_-]`, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId {
    len: u8,
    bytes: [u8; DeviceId::MAX_LEN],
}

impl DeviceId {
    pub const MAX_LEN: usize = 32;

    /// Accepts exactly the contract's alphabet and length.
    ///
    /// ```
    /// use muckwatch::fix::DeviceId;
    /// assert_eq!(DeviceId::parse("013800000001").unwrap().as_str(), "013800000001");
    /// assert!(DeviceId::parse("bad/id").is_err());
    /// assert!(DeviceId::parse("").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<DeviceId, String> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > Self::MAX_LEN {
            return Err(format!(
                "device_id must be 1-32 characters, got {}",
                b.len()
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(format!(
                "device_id has a character outside [0-9A-Za-z_-]: {c:?}"
            ));
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..b.len()].copy_from_slice(b);
        Ok(DeviceId {
            len: b.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever admitted by `parse`.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }

    /// The default bucket of the contract: `crc32(device_id) % 64`.
    pub fn default_bucket(&self) -> u8 {
        (crc32fast::hash(self.as_str().as_bytes()) % 64) as u8
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.as_str())
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated position report. Time is kept as UTC milliseconds: rules
/// compare and subtract fix times constantly, and the offset the terminal
/// used carries no meaning once the instant is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    pub device_id: DeviceId,
    pub ts_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: f64,
    pub heading: Option<f64>,
    pub acc: Option<bool>,
    pub tipper_up: Option<bool>,
    pub cover_closed: Option<bool>,
    pub load_t: Option<f64>,
}

impl Fix {
    pub fn time(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.ts_ms).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_limits() {
        assert!(DeviceId::parse(&"a".repeat(32)).is_ok());
        assert!(DeviceId::parse(&"a".repeat(33)).is_err());
        assert!(DeviceId::parse("truck 1").is_err());
        assert!(DeviceId::parse("车1").is_err());
        assert!(DeviceId::parse("A-b_9").is_ok());
    }

    #[test]
    fn bucket_is_crc32_mod_64() {
        let d = DeviceId::parse("013800000001").unwrap();
        assert_eq!(
            d.default_bucket() as u32,
            crc32fast::hash(b"013800000001") % 64
        );
    }
}
