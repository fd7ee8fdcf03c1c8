//! Telemetry topics `{prefix}/pos/{bucket}/{device_id}` and the bucket sets
//! that let several instances split a fleet.

use crate::fix::DeviceId;
pub use crate::identity::{BucketSet, BUCKETS};

/// Subscription filters for a prefix and bucket set.
pub fn subscriptions(prefix: &str, buckets: BucketSet) -> Vec<String> {
    if buckets.is_all() {
        vec![format!("{prefix}/pos/+/+")]
    } else {
        buckets
            .iter()
            .map(|b| format!("{prefix}/pos/{b:02}/+"))
            .collect()
    }
}

/// The topic a device publishes to.
pub fn position_topic(prefix: &str, device: &DeviceId) -> String {
    format!("{prefix}/pos/{:02}/{}", device.default_bucket(), device)
}

/// Splits a telemetry topic into bucket and device id.
pub fn parse_position_topic(prefix: &str, topic: &str) -> Result<(u8, DeviceId), String> {
    let rest = topic
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix("/pos/"))
        .ok_or_else(|| format!("topic `{topic}` is not under {prefix}/pos/"))?;
    let (bucket, device) = rest
        .split_once('/')
        .ok_or_else(|| format!("topic `{topic}` has no device_id level"))?;
    let bucket = match bucket.as_bytes() {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => (a - b'0') * 10 + (b - b'0'),
        _ => return Err(format!("bucket `{bucket}` in topic is not two digits")),
    };
    if bucket >= BUCKETS {
        return Err(format!("bucket {bucket} in topic is above 63"));
    }
    let device = DeviceId::parse(device).map_err(|e| format!("topic: {e}"))?;
    Ok((bucket, device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_parse_and_refuse() {
        assert!(BucketSet::parse("0-63").unwrap().is_all());
        assert_eq!(BucketSet::parse("0-31").unwrap().iter().count(), 32);
        assert!(BucketSet::parse("64").is_err());
        assert!(BucketSet::parse("9-3").is_err());
        assert!(BucketSet::parse("x").is_err());
    }

    #[test]
    fn subscriptions_cover_the_set() {
        assert_eq!(
            subscriptions("muckwatch/v1", BucketSet::all()),
            vec!["muckwatch/v1/pos/+/+"]
        );
        assert_eq!(
            subscriptions("muckwatch/v1", BucketSet::parse("7,9").unwrap()),
            vec!["muckwatch/v1/pos/07/+", "muckwatch/v1/pos/09/+"]
        );
    }

    #[test]
    fn topics_round_trip() {
        let d = DeviceId::parse("013800000001").unwrap();
        let t = position_topic("muckwatch/v1", &d);
        let (b, d2) = parse_position_topic("muckwatch/v1", &t).unwrap();
        assert_eq!((b, d2), (d.default_bucket(), d));
        assert!(parse_position_topic("muckwatch/v1", "muckwatch/v1/pos/7/x").is_err());
        assert!(parse_position_topic("muckwatch/v1", "muckwatch/v1/pos/70/x").is_err());
        assert!(parse_position_topic("muckwatch/v1", "other/pos/07/x").is_err());
    }
}
