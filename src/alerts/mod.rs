//! Live alerts for enforcement officers: one per raised violation, sent to
//! every department the violation is routed to, over MQTT
//! (`{prefix}/alerts/{department}`, QoS 1) and to SSE listeners.

mod publisher;

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

pub use publisher::spawn_mqtt_publisher;

use crate::violation::ViolationCode;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    pub violation_id: i64,
    pub case_id: i64,
    pub code: &'static str,
    pub plate: String,
    pub device_id: String,
    pub firm_id: String,
    pub departments: Vec<&'static str>,
    /// RFC 3339, city time: when the episode began.
    pub at: String,
    pub lat: f64,
    pub lon: f64,
    /// Names of the fences involved, or the coordinates.
    pub place: String,
    pub measured: f64,
    /// The violation's status: `raised` when it is raised, `withdrawn` when a
    /// raised one is withdrawn (the messages say why).
    pub status: &'static str,
    pub message_zh: String,
    pub message_en: String,
}

/// A withdrawal, in Chinese and English: `code` of `plate` no longer stands.
pub fn withdrawal_messages(code: ViolationCode, plate: &str, id: i64) -> (String, String) {
    match code {
        ViolationCode::TrackGap => (
            format!("{plate} 轨迹异常 #{id} 已撤销：终端补报的轨迹覆盖了中断时段"),
            format!("{plate} TRACK_GAP #{id} withdrawn: the terminal's backfilled track covers the silence"),
        ),
        other => (
            format!("{plate} {} #{id} 已撤销", other.label_zh()),
            format!("{plate} {other} #{id} withdrawn"),
        ),
    }
}

/// What happened, in Chinese and English, for an officer's screen.
pub fn messages(code: ViolationCode, plate: &str, place: &str, measured: f64) -> (String, String) {
    use ViolationCode::*;
    match code {
        NoPermit => (
            format!("{plate} 无有效准运证运输（{place}）"),
            format!("{plate} is carrying waste without a valid permit ({place})"),
        ),
        OutOfHours => (
            format!("{plate} 在准运时段外行驶（{place}）"),
            format!("{plate} is driving outside its permitted hours ({place})"),
        ),
        RouteDeviation => (
            format!("{plate} 偏离核准路线 {measured:.0} 米（{place}）"),
            format!("{plate} left its approved route by {measured:.0} m ({place})"),
        ),
        RestrictedZone => (
            format!("{plate} 驶入禁区：{place}"),
            format!("{plate} entered restricted zone {place}"),
        ),
        Speeding => (
            format!("{plate} 超速 {measured:.0} km/h（{place}）"),
            format!("{plate} is speeding at {measured:.0} km/h ({place})"),
        ),
        IllegalDumping => (
            format!("{plate} 疑似偷倒乱倒（{place}）"),
            format!("{plate} appears to be dumping illegally ({place})"),
        ),
        WrongDisposalSite => (
            format!("{plate} 在非指定消纳场卸土：{place}"),
            format!("{plate} unloaded at a disposal site not on its permit: {place}"),
        ),
        CoverOpen => (
            format!("{plate} 未密闭行驶（{place}）"),
            format!("{plate} is driving with its cover open ({place})"),
        ),
        Overload => (
            format!("{plate} 超载，实载 {measured:.1} 吨（{place}）"),
            format!("{plate} is overloaded: {measured:.1} t ({place})"),
        ),
        TrackGap => (
            format!("{plate} 轨迹异常/中断 {measured:.0}（{place}）"),
            format!("{plate} track lost or jumping: {measured:.0} ({place})"),
        ),
    }
}

/// Fans alerts out to SSE listeners; a listener that falls behind skips
/// what it missed rather than slowing detection down.
#[derive(Clone)]
pub struct AlertHub {
    tx: broadcast::Sender<Arc<Alert>>,
}

impl Default for AlertHub {
    fn default() -> Self {
        AlertHub {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl AlertHub {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Alert>> {
        self.tx.subscribe()
    }

    pub fn publish(&self, alert: Arc<Alert>) {
        // No listener is not an error.
        let _ = self.tx.send(alert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_both_languages() {
        for code in ViolationCode::ALL {
            let (zh, en) = messages(code, "苏J00001", "rz-01", 12.0);
            assert!(zh.contains("苏J00001") && en.contains("苏J00001"), "{code}");
            assert_ne!(zh, en);
        }
    }
}
