//! From a JT/T 808 location to the contract's telemetry object: the
//! standard fields for every terminal, and cover, tipper and load where the
//! terminal's profile says they are (the default profile maps nothing
//! non-standard: an unknown extra is never guessed at).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{FixedOffset, NaiveDate, SecondsFormat, TimeZone};

use super::codec::FrameReject;
use super::location::{Location, STATUS_ACC, STATUS_POSITIONED};
use super::settings::{FlagSource, Jt808Settings, NumberSource, ProfileSettings};
use crate::identity::DeviceId;

/// The standard analog item: AD0 in bits 0-15, AD1 in bits 16-31.
const ANALOG_ITEM: u8 = 0x2B;

/// The zone terminals stamp their BCD times in.
#[derive(Debug, Clone, Copy)]
pub enum TerminalZone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl TerminalZone {
    /// `+08:00` or an IANA name such as `Asia/Shanghai`.
    pub fn parse(s: &str) -> Result<TerminalZone, String> {
        if let Ok(o) = s.parse::<FixedOffset>() {
            return Ok(TerminalZone::Fixed(o));
        }
        s.parse::<chrono_tz::Tz>()
            .map(TerminalZone::Named)
            .map_err(|_| format!("`{s}` is neither an offset like +08:00 nor a zone name"))
    }

    /// The instant of a local calendar time, as RFC 3339 with the zone's offset.
    fn rfc3339(&self, local: chrono::NaiveDateTime) -> Option<String> {
        match self {
            TerminalZone::Fixed(o) => o
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, false)),
            TerminalZone::Named(z) => z
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.fixed_offset().to_rfc3339_opts(SecondsFormat::Secs, false)),
        }
    }
}

/// A compiled profile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub name: String,
    cover_closed: Option<FlagSource>,
    tipper_up: Option<FlagSource>,
    load_t: Option<NumberSource>,
}

impl Profile {
    fn from_settings(name: &str, p: &ProfileSettings) -> Profile {
        Profile {
            name: name.to_string(),
            cover_closed: p.cover_closed,
            tipper_up: p.tipper_up,
            load_t: p.load_t,
        }
    }
}

/// Which profile each device uses; devices not listed use the default.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    by_device: HashMap<DeviceId, Arc<Profile>>,
    default: Arc<Profile>,
}

impl Profiles {
    /// From checked settings ([`Jt808Settings::check`]); devices that do not
    /// parse were refused there.
    pub fn from_settings(s: &Jt808Settings) -> Profiles {
        let mut by_device = HashMap::new();
        for (name, p) in &s.profiles {
            let profile = Arc::new(Profile::from_settings(name, p));
            for d in &p.devices {
                if let Ok(id) = DeviceId::parse(d) {
                    by_device.insert(id, profile.clone());
                }
            }
        }
        Profiles {
            by_device,
            default: Arc::new(Profile {
                name: "default".into(),
                ..Default::default()
            }),
        }
    }

    pub fn of(&self, device: &DeviceId) -> &Profile {
        self.by_device.get(device).unwrap_or(&self.default)
    }
}

fn flag(src: &FlagSource, loc: &Location) -> Option<bool> {
    let raw = match (src.status_bit, src.extra, src.bit) {
        (Some(b), _, _) => loc.status.checked_shr(u32::from(b))? & 1 == 1,
        (None, Some(id), Some(b)) => {
            big_endian(loc.extra(id)?)?.checked_shr(u32::from(b))? & 1 == 1
        }
        _ => return None,
    };
    Some(raw != src.invert)
}

fn number(src: &NumberSource, loc: &Location) -> Option<f64> {
    let raw = match (src.extra, src.analog) {
        (Some(id), _) => big_endian(loc.extra(id)?)?,
        (None, Some(ch)) => {
            let v = big_endian(loc.extra(ANALOG_ITEM)?)?;
            (v >> (16 * u32::from(ch))) & 0xFFFF
        }
        _ => return None,
    };
    let v = raw as f64 * src.scale + src.offset;
    v.is_finite().then_some(v)
}

fn big_endian(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)))
}

/// The telemetry object of one location, or why it is refused.
pub fn telemetry(
    device: &DeviceId,
    loc: &Location,
    zone: TerminalZone,
    profile: &Profile,
) -> Result<serde_json::Value, (FrameReject, String)> {
    if loc.status & STATUS_POSITIONED == 0 {
        return Err((
            FrameReject::NoFix,
            "status bit 1 (positioned) is 0: no fix".into(),
        ));
    }
    let bad_time = || {
        (
            FrameReject::BadTime,
            format!("time {:02X?} is not a valid YYMMDDhhmmss", loc.time.0),
        )
    };
    let (y, mo, d, h, mi, s) = loc.time.parts().ok_or_else(bad_time)?;
    let local = NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|date| date.and_hms_opt(h, mi, s))
        .ok_or_else(bad_time)?;
    let ts = zone.rfc3339(local).ok_or_else(bad_time)?;
    let mut fix = serde_json::json!({
        "device_id": device.as_str(),
        "ts": ts,
        "lat": loc.lat(),
        "lon": loc.lon(),
        "speed_kmh": f64::from(loc.speed_dkmh) / 10.0,
        "heading": f64::from(loc.direction),
        "acc": loc.status & STATUS_ACC != 0,
    });
    let obj = fix.as_object_mut().ok_or_else(bad_time)?;
    if let Some(v) = profile.cover_closed.as_ref().and_then(|f| flag(f, loc)) {
        obj.insert("cover_closed".into(), v.into());
    }
    if let Some(v) = profile.tipper_up.as_ref().and_then(|f| flag(f, loc)) {
        obj.insert("tipper_up".into(), v.into());
    }
    if let Some(v) = profile.load_t.as_ref().and_then(|n| number(n, loc)) {
        obj.insert("load_t".into(), v.into());
    }
    Ok(fix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jt808::location::{BcdTime, Extra, STATUS_SOUTH, STATUS_WEST};

    fn loc(status: u32, extras: Vec<Extra>) -> Location {
        Location {
            alarm: 0,
            status,
            lat_e6: 33_380_100,
            lon_e6: 120_160_200,
            altitude_m: 5,
            speed_dkmh: 425,
            direction: 87,
            time: BcdTime::from_parts(2021, 6, 1, 22, 15, 3),
            extras,
        }
    }

    fn device() -> DeviceId {
        DeviceId::parse("013800000001").unwrap()
    }

    #[test]
    fn standard_fields_map_as_the_contract_says() {
        let zone = TerminalZone::parse("+08:00").unwrap();
        let l = loc(STATUS_ACC | STATUS_POSITIONED, vec![]);
        let v = telemetry(&device(), &l, zone, &Profile::default()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"device_id":"013800000001","ts":"2021-06-01T22:15:03+08:00",
                "lat":33.3801,"lon":120.1602,"speed_kmh":42.5,"heading":87.0,"acc":true})
        );
        let sw = loc(STATUS_POSITIONED | STATUS_SOUTH | STATUS_WEST, vec![]);
        let v = telemetry(&device(), &sw, zone, &Profile::default()).unwrap();
        assert_eq!(
            (v["lat"].as_f64(), v["lon"].as_f64()),
            (Some(-33.3801), Some(-120.1602))
        );
        assert_eq!(v["acc"], false);
        let utc = TerminalZone::parse("UTC").unwrap();
        let v = telemetry(&device(), &l, utc, &Profile::default()).unwrap();
        assert_eq!(v["ts"], "2021-06-01T22:15:03+00:00");
    }

    #[test]
    fn no_fix_and_bad_times_are_refused() {
        let zone = TerminalZone::parse("+08:00").unwrap();
        let err = telemetry(
            &device(),
            &loc(STATUS_ACC, vec![]),
            zone,
            &Profile::default(),
        )
        .unwrap_err();
        assert_eq!(err.0, FrameReject::NoFix);
        assert_eq!(err.0.label(), "jt808_no_fix");
        let mut l = loc(STATUS_POSITIONED, vec![]);
        l.time = BcdTime([0x21, 0x13, 0x01, 0, 0, 0]);
        assert_eq!(
            telemetry(&device(), &l, zone, &Profile::default())
                .unwrap_err()
                .0,
            FrameReject::BadTime
        );
    }

    #[test]
    fn a_profile_maps_status_bits_extras_and_analog_channels() {
        let settings: Jt808Settings = toml::from_str(
            r#"
            [profiles.hx]
            devices = ["013800000001"]
            cover_closed = { status_bit = 20, invert = true }
            tipper_up = { extra = 0xE1, bit = 1 }
            load_t = { analog = 1, scale = 0.01 }
            "#,
        )
        .unwrap();
        settings.check().unwrap();
        let profiles = Profiles::from_settings(&settings);
        let zone = TerminalZone::parse("+08:00").unwrap();
        let l = loc(
            STATUS_POSITIONED | 1 << 20,
            vec![
                Extra {
                    id: 0xE1,
                    value: vec![0b10],
                },
                Extra {
                    id: 0x2B,
                    value: vec![0x09, 0x2E, 0x00, 0x07],
                },
            ],
        );
        let v = telemetry(&device(), &l, zone, profiles.of(&device())).unwrap();
        assert_eq!(v["cover_closed"], false, "bit 20 set means open here");
        assert_eq!(v["tipper_up"], true);
        assert_eq!(v["load_t"].as_f64(), Some(23.5), "0x092E = 2350 x 0.01");
        // Another device gets the default profile: nothing non-standard.
        let other = DeviceId::parse("013800000002").unwrap();
        let v = telemetry(&other, &l, zone, profiles.of(&other)).unwrap();
        assert!(
            v.get("cover_closed").is_none()
                && v.get("tipper_up").is_none()
                && v.get("load_t").is_none()
        );
    }

    #[test]
    fn bad_profiles_are_named() {
        let s: Jt808Settings =
            toml::from_str("[profiles.x]\ntipper_up = { status_bit = 40 }\n").unwrap();
        let err = s.check().unwrap_err().to_string();
        assert!(
            err.contains("jt808.profiles.x") && err.contains("tipper_up"),
            "{err}"
        );
        let s: Jt808Settings =
            toml::from_str("[profiles.a]\ndevices=[\"1\"]\n[profiles.b]\ndevices=[\"1\"]\n")
                .unwrap();
        assert!(s.check().unwrap_err().to_string().contains("two profiles"));
    }
}
