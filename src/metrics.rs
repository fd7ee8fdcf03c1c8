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
    pub alerts_published: AtomicU64,
    pub alerts_dropped: AtomicU64,
    pub write_errors: AtomicU64,
    pub dead_letters_dropped: AtomicU64,
    pub mqtt_reconnects: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    violations: [AtomicU64; ViolationCode::ALL.len()],
    pub batch_write_seconds: Histogram,
    /// JT/T 808: open TCP connections, authenticated terminals among them.
    pub jt808_connections: AtomicU64,
    pub jt808_terminals: AtomicU64,
    pub jt808_connections_refused: AtomicU64,
    pub jt808_fixes_published: AtomicU64,
    jt808_rejected: [AtomicU64; FrameReject::ALL.len()],
}

impl Metrics {
    pub fn reject(&self, reason: RejectReason) {
        self.rejected[reason.index()].fetch_add(1, Relaxed);
    }

    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.index()].load(Relaxed)
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
            "Batch writes that failed and were retried",
            &self.write_errors,
        );
        counter(
            &mut out,
            "muckwatch_dead_letters_dropped_total",
            "Rejected messages not kept because the dead-letter queue was full",
            &self.dead_letters_dropped,
        );
        counter(
            &mut out,
            "muckwatch_mqtt_reconnects_total",
            "Connection losses to the MQTT broker",
            &self.mqtt_reconnects,
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
        out
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
