//! Outbound events for the city's platforms (数字城管, 城市驾驶舱): what
//! happened (a violation raised or withdrawn, a case opened or closed, a
//! check changed, a permit changed), written to a durable outbox in the
//! same transaction as the change it reports, then POSTed to the configured
//! webhooks (`crate::webhooks`) until each answers 2xx.
//!
//! This module is the vocabulary both sides share: the event types, the
//! `[outbox]` settings parsed at the edge, the envelope `{id, type, at,
//! data}` (serialised once, when the event is written, so every retry sends
//! the same bytes under the same `id`) and its signature.

mod settings;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub use settings::{OutboxSettings, Webhook, WebhookSettings, WebhookUrl};

/// The contract's event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    ViolationRaised,
    ViolationWithdrawn,
    CaseOpened,
    CheckChanged,
    CaseClosed,
    PermitChanged,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::ViolationRaised,
        EventType::ViolationWithdrawn,
        EventType::CaseOpened,
        EventType::CheckChanged,
        EventType::CaseClosed,
        EventType::PermitChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ViolationRaised => "violation.raised",
            EventType::ViolationWithdrawn => "violation.withdrawn",
            EventType::CaseOpened => "case.opened",
            EventType::CheckChanged => "check.changed",
            EventType::CaseClosed => "case.closed",
            EventType::PermitChanged => "permit.changed",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of event types (a webhook's subscription).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventSet(u8);

impl EventSet {
    pub fn all() -> EventSet {
        EventSet(EventType::ALL.iter().fold(0, |m, t| m | t.bit()))
    }

    pub fn insert(&mut self, t: EventType) {
        self.0 |= t.bit();
    }

    pub fn contains(self, t: EventType) -> bool {
        self.0 & t.bit() != 0
    }
}

/// What the store needs to write events: the webhooks (by their key, the
/// URL) and what each wants, and the city's zone for the times in `data`.
/// With no webhook configured the store writes no event at all, so the hot
/// path pays nothing for a feature that is off.
#[derive(Debug, Clone)]
pub struct Routes {
    pub tz: chrono_tz::Tz,
    pub webhooks: Vec<(String, EventSet)>,
}

impl Routes {
    pub fn new(tz: chrono_tz::Tz, webhooks: &[Webhook]) -> Routes {
        Routes {
            tz,
            webhooks: webhooks
                .iter()
                .map(|w| (w.key().to_string(), w.events))
                .collect(),
        }
    }

    /// The webhooks that want events of type `t`.
    pub fn subscribers(&self, t: EventType) -> impl Iterator<Item = &str> {
        self.webhooks
            .iter()
            .filter(move |(_, e)| e.contains(t))
            .map(|(k, _)| k.as_str())
    }

    pub fn wants(&self, t: EventType) -> bool {
        self.subscribers(t).next().is_some()
    }
}

/// A fresh event id: 128 random bits in the UUID v4 layout. Random rather
/// than the outbox's sequence number, so that two deployments (or a
/// database restored from a backup) never hand a receiver the same id for
/// different events.
pub fn new_event_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No randomness: time and a process counter are still unique here.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        b[..8].copy_from_slice(&t.to_be_bytes());
        b[8..].copy_from_slice(&n.to_be_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The body POSTed: `{"id","type","at","data"}`, serialised once.
pub fn envelope(id: &str, t: EventType, at: &str, data: Value) -> String {
    json!({"id": id, "type": t.as_str(), "at": at, "data": data}).to_string()
}

/// The `X-Muckwatch-Signature` header's value: `sha256=` and the lowercase
/// hex HMAC-SHA256 of the exact body bytes under the webhook's secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // An HMAC takes a key of any length; the error case cannot happen.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// The header that carries [`signature`].
pub const SIGNATURE_HEADER: &str = "x-muckwatch-signature";

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("violation.rased"), None);
    }

    #[test]
    fn the_signature_is_rfc_4231s_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn ids_are_uuid_shaped_and_differ() {
        let (a, b) = (new_event_id(), new_event_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
