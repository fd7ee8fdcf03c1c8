//! `[jt808]` settings: where the gateway listens, its limits, the
//! terminals' time zone, how it logs in to the broker, and the terminal
//! profiles that say where a model of terminal reports cover, tipper and load.
//!
//! ```toml
//! [jt808]
//! listen = "0.0.0.0:7611"
//! time_zone = "+08:00"          # or an IANA name
//! mqtt_username = "jt808-gateway"
//! mqtt_password = "..."         # or MUCKWATCH_JT808_MQTT_PASSWORD
//!
//! [jt808.profiles.hx-2000]
//! devices = ["013912345678", "013912345679"]
//! cover_closed = { status_bit = 20 }
//! tipper_up = { extra = 0xE1, bit = 0 }
//! load_t = { analog = 0, scale = 0.01 }
//! ```

use std::collections::BTreeMap;

use anyhow::bail;
use serde::Deserialize;

use crate::identity::DeviceId;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Jt808Settings {
    /// Where terminals connect; `None` (the default) leaves the gateway off
    /// in `serve`.
    pub listen: Option<String>,
    /// The zone of the terminals' BCD times (UTC+8 by the standard).
    pub time_zone: String,
    /// A terminal silent this long is disconnected.
    pub idle_timeout_s: u64,
    /// Connections beyond this many are closed at once.
    pub max_connections: usize,
    /// Frames per second one connection may send (burst: twice that);
    /// frames beyond are dropped unanswered and counted.
    pub max_frames_per_s: u32,
    /// Frames larger than this (bytes on the wire) close the connection.
    pub max_frame_bytes: usize,
    /// Bytes one connection may hold for a sub-packaged message.
    pub max_reassembly_bytes: usize,
    /// How long a location waits for the broker's acknowledgement before
    /// the terminal is left unanswered (it will send it again).
    pub publish_timeout_s: u64,
    /// The gateway's MQTT login, for a broker that refuses anonymous clients.
    pub mqtt_username: Option<String>,
    pub mqtt_password: Option<String>,
    /// Client id at the broker; unique per gateway (default: derived from
    /// `mqtt.client_id`, the process id and a random suffix).
    pub mqtt_client_id: Option<String>,
    /// Terminal profiles by name.
    pub profiles: BTreeMap<String, ProfileSettings>,
}

impl Default for Jt808Settings {
    fn default() -> Self {
        Jt808Settings {
            listen: None,
            time_zone: "+08:00".into(),
            idle_timeout_s: 300,
            max_connections: 20_000,
            max_frames_per_s: 50,
            max_frame_bytes: crate::jt808::MAX_FRAME,
            max_reassembly_bytes: 64 * 1024,
            publish_timeout_s: 10,
            mqtt_username: None,
            mqtt_password: None,
            mqtt_client_id: None,
            profiles: BTreeMap::new(),
        }
    }
}

/// Where one non-standard signal is found in a location report.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileSettings {
    /// The terminals (device ids) that use this profile.
    pub devices: Vec<String>,
    pub cover_closed: Option<FlagSource>,
    pub tipper_up: Option<FlagSource>,
    pub load_t: Option<NumberSource>,
}

/// A yes/no signal: a bit of the status word, or a bit of an extra item
/// (its value read as a big-endian integer); `invert` when the terminal
/// reports the opposite (e.g. "cover open").
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlagSource {
    pub status_bit: Option<u8>,
    pub extra: Option<u8>,
    pub bit: Option<u8>,
    pub invert: bool,
}

/// A number: an extra item's value (big-endian unsigned, up to 8 bytes), or
/// an analog channel of the standard analog item 0x2B (channel 0 in bits
/// 0-15, channel 1 in bits 16-31); times `scale`, plus `offset`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NumberSource {
    pub extra: Option<u8>,
    pub analog: Option<u8>,
    pub scale: f64,
    pub offset: f64,
}

impl Default for NumberSource {
    fn default() -> Self {
        NumberSource {
            extra: None,
            analog: None,
            scale: 1.0,
            offset: 0.0,
        }
    }
}

impl Jt808Settings {
    /// Refuses what would only fail later, naming the setting.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(l) = &self.listen {
            crate::configuration::parse_socket_addr(l)
                .map_err(|e| anyhow::anyhow!("jt808.listen: {e}"))?;
        }
        super::profile::TerminalZone::parse(&self.time_zone)
            .map_err(|e| anyhow::anyhow!("jt808.time_zone: {e}"))?;
        if self.idle_timeout_s == 0
            || self.max_connections == 0
            || self.max_frames_per_s == 0
            || self.publish_timeout_s == 0
        {
            bail!("jt808: idle_timeout_s, max_connections, max_frames_per_s and publish_timeout_s must be at least 1");
        }
        if !(64..=crate::jt808::MAX_FRAME).contains(&self.max_frame_bytes) {
            bail!(
                "jt808.max_frame_bytes must be 64..={} (the contract's limit)",
                crate::jt808::MAX_FRAME
            );
        }
        let mut seen: BTreeMap<DeviceId, &str> = BTreeMap::new();
        for (name, p) in &self.profiles {
            p.check()
                .map_err(|e| anyhow::anyhow!("jt808.profiles.{name}: {e}"))?;
            for d in &p.devices {
                let id = DeviceId::parse(d)
                    .map_err(|e| anyhow::anyhow!("jt808.profiles.{name}.devices: {e}"))?;
                if let Some(other) = seen.insert(id, name) {
                    bail!("jt808: device {d} is in two profiles, {other} and {name}");
                }
            }
        }
        Ok(())
    }
}

impl ProfileSettings {
    fn check(&self) -> anyhow::Result<()> {
        for (what, f) in [
            ("cover_closed", &self.cover_closed),
            ("tipper_up", &self.tipper_up),
        ] {
            let Some(f) = f else { continue };
            match (f.status_bit, f.extra, f.bit) {
                (Some(b), None, None) if b < 32 => {}
                (None, Some(_), Some(b)) if b < 64 => {}
                _ => bail!(
                    "{what}: give either status_bit (0-31), or extra (an item id) and bit (0-63)"
                ),
            }
        }
        if let Some(n) = &self.load_t {
            match (n.extra, n.analog) {
                (Some(_), None) | (None, Some(0 | 1)) => {}
                _ => bail!("load_t: give either extra (an item id) or analog (channel 0 or 1)"),
            }
            if !n.scale.is_finite() || !n.offset.is_finite() {
                bail!("load_t: scale and offset must be finite numbers");
            }
        }
        Ok(())
    }
}
