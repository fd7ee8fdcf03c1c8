//! Decoding one location: a JT/T 808 0x0200 frame off the wire (framing,
//! escapes, checksum, header, body, extras) beside the contract's JSON fix
//! through ingest's decoder, in the same run; and the gateway's whole
//! per-fix work before publishing (decode plus the mapping to the
//! telemetry object and its JSON text).
//!
//! `cargo bench --bench jt808`. `BENCH_ITERS` (default 200000) decodes per
//! round; five rounds each, alternating, the best of each side compared.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use muckwatch::fix::DeviceId;
use muckwatch::ingest::decode::decode_fix;
use muckwatch::jt808::location::{STATUS_ACC, STATUS_POSITIONED};
use muckwatch::jt808::profile::{telemetry, Profiles, TerminalZone};
use muckwatch::jt808::{
    BcdTime, BodyAttrs, Edition, Extra, Header, Inbound, Jt808Codec, Location, Message, Outbound,
};
use tokio_util::codec::Decoder;

const JSON: &str = r#"{"device_id":"013800000001","ts":"2021-06-01T22:15:03+08:00","lat":33.3801,"lon":120.1602,"speed_kmh":42.5,"heading":87,"acc":true,"tipper_up":false,"cover_closed":true,"load_t":23.5}"#;

fn frame() -> Vec<u8> {
    let header = Header {
        msg_id: 0x0200,
        attrs: BodyAttrs::from_word(0),
        edition: Edition::V2013,
        device: DeviceId::parse("013800000001").expect("device"),
        serial: 0x7E, // escaped on the wire, as real serials often are
        part: None,
    };
    let loc = Location {
        alarm: 0,
        status: STATUS_ACC | STATUS_POSITIONED,
        lat_e6: 33_380_100,
        lon_e6: 120_160_200,
        altitude_m: 12,
        speed_dkmh: 425,
        direction: 87,
        time: BcdTime::from_parts(2021, 6, 1, 22, 15, 3),
        extras: vec![
            Extra {
                id: 0x01,
                value: vec![0, 0, 0x7D, 0x64],
            },
            Extra {
                id: 0x2B,
                value: vec![0, 0, 0x09, 0x2E],
            },
        ],
    };
    Outbound {
        header,
        message: Message::Location(loc),
    }
    .to_frame()
}

fn run_json(iters: usize, device: &DeviceId) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        let fix = decode_fix(black_box(JSON), device).expect("good fix");
        black_box(fix);
    }
    t.elapsed()
}

fn decode_location(codec: &mut Jt808Codec, wire: &[u8]) -> Option<(Header, Location)> {
    let mut buf = BytesMut::from(wire);
    match codec.decode(&mut buf).ok()?? {
        Inbound::Packet(p) => match Message::decode(p.header.msg_id, p.header.edition, &p.body) {
            Ok(Some(Message::Location(l))) => Some((p.header, l)),
            _ => None,
        },
        _ => None,
    }
}

fn run_jt808(iters: usize, wire: &[u8]) -> Duration {
    let mut codec = Jt808Codec::default();
    let t = Instant::now();
    for _ in 0..iters {
        black_box(decode_location(&mut codec, black_box(wire)).expect("good frame"));
    }
    t.elapsed()
}

fn run_gateway(iters: usize, wire: &[u8], profiles: &Profiles, zone: TerminalZone) -> Duration {
    let mut codec = Jt808Codec::default();
    let t = Instant::now();
    for _ in 0..iters {
        let (h, l) = decode_location(&mut codec, black_box(wire)).expect("good frame");
        let v = telemetry(&h.device, &l, zone, profiles.of(&h.device)).expect("fix");
        black_box(serde_json::to_vec(&v).expect("json"));
    }
    t.elapsed()
}

fn main() {
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let device = DeviceId::parse("013800000001").expect("device");
    let wire = frame();
    let zone = TerminalZone::parse("+08:00").expect("zone");
    let settings: muckwatch::jt808::Jt808Settings = toml::from_str(
        "[profiles.p]\ndevices=[\"013800000001\"]\nload_t = { analog = 0, scale = 0.01 }\n",
    )
    .expect("profile");
    let profiles = Profiles::from_settings(&settings);
    let (mut json, mut jt, mut gw) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for round in 0..5 {
        if round % 2 == 0 {
            json = json.min(run_json(iters, &device));
            jt = jt.min(run_jt808(iters, &wire));
        } else {
            jt = jt.min(run_jt808(iters, &wire));
            json = json.min(run_json(iters, &device));
        }
        gw = gw.min(run_gateway(iters, &wire, &profiles, zone));
    }
    let per = |d: Duration| d.as_nanos() as f64 / iters as f64;
    println!("decode one location, best of 5 rounds of {iters}:");
    println!(
        "  JSON fix (ingest decode_fix)        {:>8.0} ns/fix",
        per(json)
    );
    println!(
        "  JT/T 808 0x0200 frame ({} bytes)    {:>8.0} ns/fix  ratio {:.2} of JSON",
        wire.len(),
        per(jt),
        per(jt) / per(json)
    );
    println!(
        "  JT/T 808 frame to telemetry JSON    {:>8.0} ns/fix  ratio {:.2} of JSON",
        per(gw),
        per(gw) / per(json)
    );
}
