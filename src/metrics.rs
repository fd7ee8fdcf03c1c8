//! Process metrics in the Prometheus text format, served at `/metrics`.
//!
//! Plain atomics rather than a metrics framework: the set is small and
//! fixed, every increment on the hot path is one relaxed add, and nothing
//! global has to be installed.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::fix::RejectReason;
use crate::jt808::FrameReject;
use crate::violation::ViolationCode;

#[derive(Default)]
pub struct Metrics {
    pub messages_received: AtomicU64,
    pub fixes_ingested: AtomicU64,
    pub fixes_duplicate: AtomicU64,
    pub fixes_unregistered: AtomicU64,
    pub fixes_clock_skew: AtomicU64,
    pub alerts_published: AtomicU64,
    pub alerts_dropped: AtomicU64,
    pub write_errors: AtomicU64,
    pub fixes_quarantined: AtomicU64,
    pub dead_letters_dropped: AtomicU64,
    pub mqtt_reconnects: AtomicU64,
    /// An external Mosquitto's `$SYS/broker/publish/messages/dropped`, as last seen.
    pub broker_messages_dropped: AtomicU64,
    /// Whether the broker has published that counter at all (exported only then).
    pub broker_drops_seen: std::sync::atomic::AtomicBool,
    /// Clients connected to the embedded broker now (a gauge).
    pub mqtt_connections: AtomicU64,
    /// Deliveries the embedded broker did not make: QoS 0 to a full queue,
    /// or anything queued for a subscriber it disconnected.
    pub mqtt_deliveries_dropped: AtomicU64,
    mqtt_refused: [AtomicU64; MqttRefusal::ALL.len()],
    rejected: [AtomicU64; RejectReason::ALL.len()],
    violations: [AtomicU64; ViolationCode::ALL.len()],
    /// Raised and later withdrawn (a TRACK_GAP covered by backfill).
    violations_withdrawn: [AtomicU64; ViolationCode::ALL.len()],
    pub batch_write_seconds: Histogram,
    /// JT/T 808: open TCP connections, authenticated terminals among them.
    pub jt808_connections: AtomicU64,
    pub jt808_terminals: AtomicU64,
    pub jt808_connections_refused: AtomicU64,
    pub jt808_fixes_published: AtomicU64,
    jt808_rejected: [AtomicU64; FrameReject::ALL.len()],
    /// Outbound events not yet delivered, over every webhook (a gauge,
    /// counted in the outbox by the delivery task).
    pub outbox_pending: AtomicU64,
    pub outbox_delivered: AtomicU64,
    pub outbox_failures: AtomicU64,
}

impl Metrics {
    pub fn reject(&self, reason: RejectReason) {
        self.rejected[reason.index()].fetch_add(1, Relaxed);
    }

    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.index()].load(Relaxed)
    }

    pub fn mqtt_refused(&self, reason: MqttRefusal) {
        self.mqtt_refused[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn mqtt_refusals(&self, reason: MqttRefusal) -> u64 {
        self.mqtt_refused[reason as usize].load(Relaxed)
    }

    pub fn jt808_reject(&self, reason: FrameReject) {
        self.jt808_rejected[reason.index()].fetch_add(1, Relaxed);
    }

    pub fn jt808_rejected(&self, reason: FrameReject) -> u64 {
        self.jt808_rejected[reason.index()].load(Relaxed)
    }

    pub fn violation(&self, code: ViolationCode) {
        self.violations[code.index()].fetch_add(1, Relaxed);
    }

    pub fn violation_withdrawn(&self, code: ViolationCode) {
        self.violations_withdrawn[code.index()].fetch_add(1, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        counter(
            &mut out,
            "muckwatch_mqtt_messages_total",
            "MQTT telemetry messages received",
            &self.messages_received,
        );
        counter(
            &mut out,
            "muckwatch_fixes_ingested_total",
            "Fixes stored",
            &self.fixes_ingested,
        );
        counter(
            &mut out,
            "muckwatch_fixes_duplicate_total",
            "Fixes ignored as duplicates (same device_id and ts)",
            &self.fixes_duplicate,
        );
        counter(
            &mut out,
            "muckwatch_fixes_unregistered_total",
            "Fixes from devices registered to no vehicle",
            &self.fixes_unregistered,
        );
        counter(
            &mut out,
            "muckwatch_fixes_clock_skew_total",
            "Fixes stamped far ahead of the fleet clock or the wall clock: stored, not evaluated",
            &self.fixes_clock_skew,
        );
        header(
            &mut out,
            "muckwatch_messages_rejected_total",
            "Messages or batch items refused, by reason",
            "counter",
        );
        for r in RejectReason::ALL {
            let _ = writeln!(
                out,
                "muckwatch_messages_rejected_total{{reason=\"{}\"}} {}",
                r.label(),
                self.rejected(r)
            );
        }
        header(
            &mut out,
            "muckwatch_violations_total",
            "Violations raised, by code",
            "counter",
        );
        for c in ViolationCode::ALL {
            let _ = writeln!(
                out,
                "muckwatch_violations_total{{code=\"{}\"}} {}",
                c.as_str(),
                self.violations[c.index()].load(Relaxed)
            );
        }
        header(
            &mut out,
            "muckwatch_violations_withdrawn_total",
            "Violations withdrawn after the raise (a TRACK_GAP covered by backfill), by code",
            "counter",
        );
        for c in ViolationCode::ALL {
            let _ = writeln!(
                out,
                "muckwatch_violations_withdrawn_total{{code=\"{}\"}} {}",
                c.as_str(),
                self.violations_withdrawn[c.index()].load(Relaxed)
            );
        }
        counter(
            &mut out,
            "muckwatch_alerts_published_total",
            "Alerts published",
            &self.alerts_published,
        );
        counter(
            &mut out,
            "muckwatch_alerts_dropped_total",
            "Alerts not sent to the broker because its queue was full",
            &self.alerts_dropped,
        );
        counter(
            &mut out,
            "muckwatch_store_write_errors_total",
            "Batch writes that failed (retried when the error may pass, split when it is the data)",
            &self.write_errors,
        );
        counter(
            &mut out,
            "muckwatch_fixes_quarantined_total",
            "Fixes the database refused (a data error): kept as dead letters, the rest of their batch committed",
            &self.fixes_quarantined,
        );
        counter(
            &mut out,
            "muckwatch_dead_letters_dropped_total",
            "Rejected messages not kept (the dead-letter queue was full, or the database refused them)",
            &self.dead_letters_dropped,
        );
        counter(
            &mut out,
            "muckwatch_mqtt_reconnects_total",
            "Connection losses to the MQTT broker",
            &self.mqtt_reconnects,
        );
        if self.broker_drops_seen.load(Relaxed) {
            gauge(
            &mut out,
            "muckwatch_broker_messages_dropped",
            "Messages the external broker dropped (Mosquitto's $SYS/broker/publish/messages/dropped, since the broker started): raise its max_queued_messages / max_inflight_messages (docs/deploy.md)",
            &self.broker_messages_dropped,
        );
        }
        header(
            &mut out,
            "muckwatch_mqtt_connections",
            "Clients connected to the embedded MQTT broker",
            "gauge",
        );
        let _ = writeln!(
            out,
            "muckwatch_mqtt_connections {}",
            self.mqtt_connections.load(Relaxed)
        );
        header(
            &mut out,
            "muckwatch_mqtt_refused_total",
            "MQTT connections, packets, publishes and subscriptions refused, and clients \
             disconnected, by reason (embedded broker and the auth/acl endpoints)",
            "counter",
        );
        for r in MqttRefusal::ALL {
            let _ = writeln!(
                out,
                "muckwatch_mqtt_refused_total{{reason=\"{}\"}} {}",
                r.label(),
                self.mqtt_refusals(r)
            );
        }
        counter(
            &mut out,
            "muckwatch_mqtt_deliveries_dropped_total",
            "Deliveries the embedded broker dropped (QoS 0 to a full queue, or queued for a \
             subscriber it disconnected)",
            &self.mqtt_deliveries_dropped,
        );
        gauge(
            &mut out,
            "muckwatch_jt808_connections",
            "Open JT/T 808 TCP connections",
            &self.jt808_connections,
        );
        gauge(
            &mut out,
            "muckwatch_jt808_terminals_connected",
            "JT/T 808 terminals connected and authenticated",
            &self.jt808_terminals,
        );
        counter(
            &mut out,
            "muckwatch_jt808_connections_refused_total",
            "JT/T 808 connections closed at once: over the connection limit",
            &self.jt808_connections_refused,
        );
        counter(
            &mut out,
            "muckwatch_jt808_fixes_published_total",
            "Fixes from JT/T 808 terminals published and acknowledged by the broker",
            &self.jt808_fixes_published,
        );
        header(
            &mut out,
            "muckwatch_jt808_frames_rejected_total",
            "JT/T 808 frames or fixes refused, by reason",
            "counter",
        );
        for r in FrameReject::ALL {
            let _ = writeln!(
                out,
                "muckwatch_jt808_frames_rejected_total{{reason=\"{}\"}} {}",
                r.label(),
                self.jt808_rejected(r)
            );
        }
        self.batch_write_seconds.render(
            &mut out,
            "muckwatch_batch_write_seconds",
            "Latency of one batched fix write",
        );
        gauge(
            &mut out,
            "muckwatch_outbox_pending",
            "Outbound events not yet delivered (one per event and webhook)",
            &self.outbox_pending,
        );
        counter(
            &mut out,
            "muckwatch_outbox_delivered_total",
            "Outbound events delivered (answered 2xx) by this process",
            &self.outbox_delivered,
        );
        counter(
            &mut out,
            "muckwatch_outbox_failures_total",
            "Outbound event deliveries that failed and will be retried",
            &self.outbox_failures,
        );
        out
    }
}

/// Why the MQTT side refused something or cut a client off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttRefusal {
    /// The broker's connection cap was reached.
    MaxConnections,
    /// One address's connection cap was reached.
    MaxConnectionsPerAddress,
    /// No complete CONNECT within the connect deadline.
    ConnectTimeout,
    /// No username and password while authentication is required.
    Anonymous,
    /// Unknown user or wrong password.
    BadCredentials,
    /// The credentials could not be checked (database unavailable).
    AuthUnavailable,
    /// Another client's id (a different identity) was asked for.
    ClientIdTaken,
    /// A packet announced more than the packet size limit.
    PacketTooLarge,
    /// A started packet did not complete within the packet deadline.
    PacketTimeout,
    /// Silent past 1.5 keep-alive periods (capped by the maximum keep-alive).
    KeepAlive,
    /// Not an MQTT 3.1.1 packet this broker accepts.
    Protocol,
    /// More subscription filters than a client may hold.
    TooManyFilters,
    /// A publish to a topic the client may not publish to.
    PublishDenied,
    /// A subscription to a filter the client may not read.
    SubscribeDenied,
    /// A subscriber whose queue stayed full past the deadline.
    SlowSubscriber,
    /// A client that does not read its acknowledgements.
    ControlQueueFull,
}

impl MqttRefusal {
    pub const ALL: [MqttRefusal; 16] = [
        MqttRefusal::MaxConnections,
        MqttRefusal::MaxConnectionsPerAddress,
        MqttRefusal::ConnectTimeout,
        MqttRefusal::Anonymous,
        MqttRefusal::BadCredentials,
        MqttRefusal::AuthUnavailable,
        MqttRefusal::ClientIdTaken,
        MqttRefusal::PacketTooLarge,
        MqttRefusal::PacketTimeout,
        MqttRefusal::KeepAlive,
        MqttRefusal::Protocol,
        MqttRefusal::TooManyFilters,
        MqttRefusal::PublishDenied,
        MqttRefusal::SubscribeDenied,
        MqttRefusal::SlowSubscriber,
        MqttRefusal::ControlQueueFull,
    ];

    pub fn label(self) -> &'static str {
        match self {
            MqttRefusal::MaxConnections => "max_connections",
            MqttRefusal::MaxConnectionsPerAddress => "max_connections_per_address",
            MqttRefusal::ConnectTimeout => "connect_timeout",
            MqttRefusal::Anonymous => "anonymous",
            MqttRefusal::BadCredentials => "bad_credentials",
            MqttRefusal::AuthUnavailable => "auth_unavailable",
            MqttRefusal::ClientIdTaken => "client_id_taken",
            MqttRefusal::PacketTooLarge => "packet_too_large",
            MqttRefusal::PacketTimeout => "packet_timeout",
            MqttRefusal::KeepAlive => "keep_alive",
            MqttRefusal::Protocol => "protocol",
            MqttRefusal::TooManyFilters => "too_many_filters",
            MqttRefusal::PublishDenied => "publish_denied",
            MqttRefusal::SubscribeDenied => "subscribe_denied",
            MqttRefusal::SlowSubscriber => "slow_subscriber",
            MqttRefusal::ControlQueueFull => "control_queue_full",
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, v: &AtomicU64) {
    header(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {}", v.load(Relaxed));
}

fn counter(out: &mut String, name: &str, help: &str, v: &AtomicU64) {
    header(out, name, help, "counter");
    let _ = writeln!(out, "{name} {}", v.load(Relaxed));
}

/// A fixed-bucket latency histogram.
pub struct Histogram {
    counts: [AtomicU64; Histogram::BOUNDS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Default::default(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    const BOUNDS: [f64; 12] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ];

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in Self::BOUNDS.iter().enumerate() {
            if s <= *b {
                self.counts[i].fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        for (i, b) in Self::BOUNDS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                self.counts[i].load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_reason_and_code() {
        let m = Metrics::default();
        m.reject(RejectReason::NotJson);
        m.violation(ViolationCode::Speeding);
        m.batch_write_seconds.observe(Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("muckwatch_messages_rejected_total{reason=\"not_json\"} 1"));
        assert!(text.contains("muckwatch_messages_rejected_total{reason=\"oversized\"} 0"));
        assert!(text.contains("muckwatch_violations_total{code=\"SPEEDING\"} 1"));
        assert!(text.contains("muckwatch_batch_write_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("muckwatch_batch_write_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("muckwatch_batch_write_seconds_count 1"));
    }
}
