//! Who is who: the terminal (device id, and the topic bucket it reports
//! in), the vehicle (plate), the transport firm, and the registration that
//! ties them together. Parsed once, at the
//! edge; every other module passes these values around and never re-checks.
//! This module sits at the bottom of the crate: it imports nothing of it.

use std::fmt;

use serde::Serialize;

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
    /// use muckwatch::identity::DeviceId;
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

impl Serialize for DeviceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Topic buckets (`00`..`63`) a device is assigned at provisioning, so that
/// instances can split the fleet by subscribing to disjoint sets.
pub const BUCKETS: u8 = 64;

/// The buckets an instance consumes; a 64-bit mask, one bit per bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSet(u64);

impl BucketSet {
    pub fn all() -> BucketSet {
        BucketSet(u64::MAX)
    }

    /// Parses `"0-63"`, `"7"`, `"0,5,7-9"`.
    ///
    /// ```
    /// use muckwatch::identity::BucketSet;
    /// let b = BucketSet::parse("0-1,7").unwrap();
    /// assert!(b.contains(0) && b.contains(1) && b.contains(7) && !b.contains(2));
    /// ```
    pub fn parse(s: &str) -> anyhow::Result<BucketSet> {
        let mut mask = 0u64;
        for part in s.split(',').map(str::trim) {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (parse_bucket(a)?, parse_bucket(b)?),
                None => {
                    let b = parse_bucket(part)?;
                    (b, b)
                }
            };
            if lo > hi {
                anyhow::bail!("bucket range `{part}` runs backwards");
            }
            for b in lo..=hi {
                mask |= 1 << b;
            }
        }
        Ok(BucketSet(mask))
    }

    pub fn contains(&self, bucket: u8) -> bool {
        bucket < BUCKETS && self.0 & (1 << bucket) != 0
    }

    /// Bit `b` set for each bucket `b` in the set.
    pub fn mask(&self) -> u64 {
        self.0
    }

    pub fn is_all(&self) -> bool {
        self.0 == u64::MAX
    }

    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0..BUCKETS).filter(|b| self.contains(*b))
    }

    /// Deals the set's buckets round-robin into at most `n` non-empty,
    /// disjoint sets (fewer when the set has fewer buckets): each bucket,
    /// and so each vehicle, goes to exactly one of them.
    ///
    /// ```
    /// use muckwatch::identity::BucketSet;
    /// let parts = BucketSet::parse("0-4").unwrap().split(2);
    /// assert_eq!(parts, vec![BucketSet::parse("0,2,4").unwrap(), BucketSet::parse("1,3").unwrap()]);
    /// ```
    pub fn split(&self, n: usize) -> Vec<BucketSet> {
        let n = n.clamp(1, self.iter().count().max(1));
        let mut parts = vec![BucketSet(0); n];
        for (i, b) in self.iter().enumerate() {
            parts[i % n].0 |= 1 << b;
        }
        parts
    }
}

fn parse_bucket(s: &str) -> anyhow::Result<u8> {
    match s.trim().parse::<u8>() {
        Ok(b) if b < BUCKETS => Ok(b),
        _ => anyhow::bail!("`{s}` is not a bucket 0-63"),
    }
}

/// A firm id: 1-64 characters of `[0-9A-Za-z_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct FirmId(String);

impl FirmId {
    pub fn parse(s: &str) -> Result<FirmId, String> {
        if s.is_empty() || s.len() > 64 {
            return Err(format!("firm id must be 1-64 characters, got {}", s.len()));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "firm id `{s}` has characters outside [0-9A-Za-z_-]"
            ));
        }
        Ok(FirmId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FirmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A licence plate such as `苏J12345`: 2-16 characters, no spaces, no `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Plate(String);

impl Plate {
    pub fn parse(s: &str) -> Result<Plate, String> {
        let n = s.chars().count();
        if !(2..=16).contains(&n) {
            return Err(format!("plate must be 2-16 characters, got {n}"));
        }
        if s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '?' || c == '#')
        {
            return Err(format!(
                "plate `{s}` contains a space, control character, / ? or #"
            ));
        }
        Ok(Plate(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Firm {
    pub id: FirmId,
    pub name: String,
}

/// A registered vehicle: its plate, the terminal it carries and its firm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vehicle {
    pub plate: Plate,
    pub device_id: DeviceId,
    pub firm_id: FirmId,
    pub rated_load_t: f64,
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

    #[test]
    fn plates_and_firms_parse() {
        assert!(Plate::parse("苏J12345").is_ok());
        assert!(Plate::parse("苏J 12345").is_err());
        assert!(Plate::parse("a/b").is_err());
        assert!(FirmId::parse("firm-1").is_ok());
        assert!(FirmId::parse("firm 1").is_err());
        assert!(FirmId::parse("").is_err());
    }
}
