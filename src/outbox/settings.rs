//! `[outbox]` settings: the webhooks events are delivered to, and how hard
//! delivery tries. Checked at start; a bad entry is refused naming its place.
//!
//! ```toml
//! [outbox]
//! max_backoff_s = 300        # retries back off 1 s, 2 s, 4 s, ... up to this
//!
//! [[outbox.webhooks]]
//! url = "http://10.0.0.7:8000/muckwatch"
//! events = ["violation.raised", "case.opened", "case.closed"]
//! secret = "a long shared secret"
//! ```

use anyhow::bail;
use serde::Deserialize;

use super::{EventSet, EventType};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSettings {
    pub webhooks: Vec<WebhookSettings>,
    /// How long one delivery may take (connect, send, answer), seconds.
    pub request_timeout_s: u64,
    /// The longest wait between two attempts at one event, seconds: the
    /// wait doubles from 1 s after each failure up to this.
    pub max_backoff_s: u64,
    /// How often the outbox is looked at for events due, milliseconds.
    pub poll_ms: u64,
    /// Delivered events are forgotten this many days after delivery (0:
    /// kept for ever). Undelivered ones are never pruned.
    pub keep_delivered_days: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            webhooks: Vec::new(),
            request_timeout_s: 10,
            max_backoff_s: 300,
            poll_ms: 500,
            keep_delivered_days: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub url: String,
    /// Event types it wants; absent: every type.
    pub events: Option<Vec<String>>,
    /// The HMAC key of the `X-Muckwatch-Signature` header.
    pub secret: String,
}

/// A checked webhook.
#[derive(Clone)]
pub struct Webhook {
    pub url: WebhookUrl,
    pub events: EventSet,
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url.text)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// What its delivery rows are stored under: the URL as configured.
    pub fn key(&self) -> &str {
        &self.url.text
    }
}

/// A plain `http://host[:port]/path` URL. HTTPS is left to a TLS-terminating
/// proxy next to muckwatch (or in front of the receiver): no TLS stack here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    pub text: String,
    pub host: String,
    pub port: u16,
    /// What the request line names: the path and query (`/` at least).
    pub path: String,
    /// The `Host` header.
    pub authority: String,
}

impl WebhookUrl {
    pub fn parse(s: &str) -> anyhow::Result<WebhookUrl> {
        let Some(rest) = s.strip_prefix("http://") else {
            if s.starts_with("https://") {
                bail!("`{s}`: https is not spoken here; point the webhook at a TLS-terminating proxy (http://...)");
            }
            bail!("`{s}` is not an http://host[:port]/path URL");
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if authority.contains('@') {
            bail!("`{s}`: no user or password in the URL; the secret signs each event");
        }
        if path.contains('#') || path.chars().any(|c| c.is_control() || c == ' ') {
            bail!("`{s}`: the path has a fragment, a space or a control character");
        }
        let port_of = |p: &str| -> anyhow::Result<u16> {
            match p.parse::<u16>() {
                Ok(port) if port > 0 => Ok(port),
                _ => bail!("`{s}`: port `{p}` is not 1-65535"),
            }
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((h, after)) = v6.split_once(']') else {
                bail!("`{s}`: no closing ] after the IPv6 address");
            };
            match after.strip_prefix(':') {
                Some(p) => (h, port_of(p)?),
                None if after.is_empty() => (h, 80),
                None => bail!("`{s}`: no valid host"),
            }
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, port_of(p)?),
                None => (authority, 80),
            }
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        {
            bail!("`{s}`: no valid host");
        }
        Ok(WebhookUrl {
            text: s.to_string(),
            host: host.to_string(),
            port,
            path,
            authority: authority.to_string(),
        })
    }
}

impl OutboxSettings {
    /// The webhooks, checked: each error names `outbox.webhooks[i]` and the field.
    pub fn webhooks(&self) -> anyhow::Result<Vec<Webhook>> {
        if self.request_timeout_s == 0 || self.max_backoff_s == 0 || self.poll_ms == 0 {
            bail!("outbox: request_timeout_s, max_backoff_s and poll_ms must be at least 1");
        }
        let mut out: Vec<Webhook> = Vec::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            let place = format!("outbox.webhooks[{i}]");
            let url = WebhookUrl::parse(&w.url).map_err(|e| anyhow::anyhow!("{place}.url: {e}"))?;
            if out.iter().any(|o| o.url.text == url.text) {
                bail!("{place}.url: `{}` is configured twice", url.text);
            }
            let events = match &w.events {
                None => EventSet::all(),
                Some(list) => {
                    if list.is_empty() {
                        bail!("{place}.events: empty (leave it out for every event type)");
                    }
                    let mut set = EventSet::default();
                    for (j, name) in list.iter().enumerate() {
                        let Some(t) = EventType::parse(name) else {
                            let known: Vec<&str> =
                                EventType::ALL.iter().map(|t| t.as_str()).collect();
                            bail!(
                                "{place}.events[{j}]: unknown event type `{name}` (known: {})",
                                known.join(", ")
                            );
                        };
                        set.insert(t);
                    }
                    set
                }
            };
            if w.secret.trim().is_empty() {
                bail!("{place}.secret: empty; receivers check each event's signature with it");
            }
            out.push(Webhook {
                url,
                events,
                secret: w.secret.clone(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> OutboxSettings {
        #[derive(Deserialize)]
        struct Wrap {
            outbox: OutboxSettings,
        }
        toml::from_str::<Wrap>(toml_text).unwrap().outbox
    }

    #[test]
    fn urls_parse_to_host_port_and_path() {
        let u = WebhookUrl::parse("http://10.0.0.7:8000/hook?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("10.0.0.7", 8000, "/hook?x=1")
        );
        let u = WebhookUrl::parse("http://receiver.local").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = WebhookUrl::parse("http://[::1]:9/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        for bad in [
            "https://x/",
            "ftp://x",
            "http://",
            "http://x:99999/",
            "http://a@b/",
            "http://x/a b",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_entries_are_refused_naming_their_place() {
        let s = settings(
            "[[outbox.webhooks]]\nurl = \"http://a/\"\nsecret = \"s\"\n\
             [[outbox.webhooks]]\nurl = \"http://b/\"\nsecret = \"s\"\n\
             events = [\"case.opened\", \"violation.rased\"]\n",
        );
        let e = s.webhooks().unwrap_err().to_string();
        assert!(
            e.starts_with("outbox.webhooks[1].events[1]: unknown event type `violation.rased`"),
            "{e}"
        );
        let s = settings("[[outbox.webhooks]]\nurl = \"https://a/\"\nsecret = \"s\"\n");
        let e = s.webhooks().unwrap_err().to_string();
        assert!(
            e.starts_with("outbox.webhooks[0].url:") && e.contains("proxy"),
            "{e}"
        );
        let s = settings("[[outbox.webhooks]]\nurl = \"http://a/\"\nsecret = \"\"\n");
        assert!(s.webhooks().unwrap_err().to_string().contains("[0].secret"));
        let s = settings("[[outbox.webhooks]]\nurl = \"http://a/\"\nsecret = \"k\"\nevents = [\"case.closed\"]\n");
        let w = s.webhooks().unwrap();
        assert!(w[0].events.contains(EventType::CaseClosed));
        assert!(!w[0].events.contains(EventType::CaseOpened));
    }
}

#[cfg(test)]
mod deployed {
    #[test]
    fn the_deployed_configuration_names_valid_webhooks() {
        let settings: crate::configuration::Settings =
            toml::from_str(include_str!("../../deploy/muckwatch.toml")).unwrap();
        assert_eq!(settings.outbox.webhooks().unwrap().len(), 2);
    }
}
