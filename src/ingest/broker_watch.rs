//! Follows an external Mosquitto's drop counter: messages it threw away
//! because a subscriber's queue (`max_queued_messages`) was full, which with
//! ack-after-commit happens as soon as the in-flight window
//! (`max_inflight_messages`) is too small for the fleet's rate. Exported as
//! `muckwatch_broker_messages_dropped`; a rise is logged (at most once a
//! minute) naming the settings to raise (docs/deploy.md).

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// Mosquitto's counter of dropped publishes (since the broker started).
pub const DROPPED_TOPIC: &str = "$SYS/broker/publish/messages/dropped";

const WARN_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct DropWatch {
    /// The counter when first seen: drops from before muckwatch connected
    /// are the broker's history, not a warning.
    first: Option<u64>,
    last_warned: Option<(Instant, u64)>,
}

impl DropWatch {
    /// Takes one `$SYS` message. The payload is the broker's text: anything
    /// but a plain decimal count is ignored.
    pub fn observe(&mut self, topic: &str, payload: &[u8], metrics: &Metrics) {
        if topic != DROPPED_TOPIC {
            return;
        }
        let Some(n) = std::str::from_utf8(payload)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        else {
            return;
        };
        metrics.broker_messages_dropped.store(n, Relaxed);
        metrics.broker_drops_seen.store(true, Relaxed);
        let first = *self.first.get_or_insert(n);
        let since = self.last_warned.map_or(first, |(_, at)| at);
        if n <= since {
            return;
        }
        if self
            .last_warned
            .is_some_and(|(at, _)| at.elapsed() < WARN_EVERY)
        {
            return;
        }
        self.last_warned = Some((Instant::now(), n));
        tracing::warn!(
            dropped = n - since,
            total = n,
            "the MQTT broker is dropping messages: raise max_queued_messages and max_inflight_messages in mosquitto.conf (docs/deploy.md), or add [mqtt] connections"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_is_exported_and_garbage_ignored() {
        let m = Metrics::default();
        let mut w = DropWatch::default();
        w.observe(DROPPED_TOPIC, b"12", &m);
        assert_eq!(m.broker_messages_dropped.load(Relaxed), 12);
        w.observe(DROPPED_TOPIC, b"not a number", &m);
        w.observe("$SYS/broker/uptime", b"99", &m);
        assert_eq!(m.broker_messages_dropped.load(Relaxed), 12);
        w.observe(DROPPED_TOPIC, b"40\n", &m);
        assert_eq!(m.broker_messages_dropped.load(Relaxed), 40);
        assert_eq!(w.last_warned.map(|(_, n)| n), Some(40));
    }
}
