//! Decoding frames from public test suites (SmallChi/JT808's
//! JT808.Protocol.Test, and a 2019 batch from the xtream-codec JT/T 808
//! debug data), every field asserted; and the codec's properties: round
//! trips, escapes anywhere, random bytes never panic.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

use super::*;
use crate::identity::DeviceId;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn decode_all(bytes: &[u8]) -> Vec<Inbound> {
    let mut codec = Jt808Codec::default();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(item) = codec.decode(&mut buf).unwrap() {
        out.push(item);
    }
    out
}

fn one_packet(bytes: &[u8]) -> Packet {
    match decode_all(bytes).as_slice() {
        [Inbound::Packet(p)] => p.clone(),
        other => panic!("expected one packet, got {other:?}"),
    }
}

fn message(p: &Packet) -> Message {
    Message::decode(p.header.msg_id, p.header.edition, &p.body)
        .unwrap()
        .unwrap()
}

#[test]
fn smallchi_0200_with_escapes_in_serial_body_and_extras() {
    // JT808_0x0200Test.Demo2: serial 0x007E and oil 0x007D are escaped.
    let p = one_packet(&hex(
        "7E 02 00 00 26 12 34 56 78 90 12 00 7D 02 00 00 00 01 00 00 00 02 00 BA 7F 0E 07 E4 F1 1C \
         00 28 00 3C 00 00 18 10 15 10 10 10 01 04 00 00 00 64 02 02 00 7D 01 13 7E",
    ));
    assert_eq!(p.header.msg_id, 0x0200);
    assert_eq!(p.header.attrs.len, 38);
    assert!(!p.header.attrs.subpackaged);
    assert_eq!(p.header.attrs.encryption, 0);
    assert_eq!(p.header.edition, Edition::V2013);
    assert_eq!(p.header.serial, 126);
    assert_eq!(p.header.device.as_str(), "123456789012");
    assert_eq!(p.header.part, None);
    let Message::Location(l) = message(&p) else {
        panic!("not a location")
    };
    assert_eq!(l.alarm, 1);
    assert_eq!(l.status, 2);
    assert_eq!(l.lat_e6, 12_222_222);
    assert_eq!(l.lon_e6, 132_444_444);
    assert_eq!(l.altitude_m, 40);
    assert_eq!(l.speed_dkmh, 60);
    assert_eq!(l.direction, 0);
    assert_eq!(l.time.parts(), Some((2018, 10, 15, 10, 10, 10)));
    assert_eq!(l.extra(0x01), Some(&[0, 0, 0, 100][..]), "mileage 100");
    assert_eq!(l.extra(0x02), Some(&[0, 125][..]), "oil 125");
    assert_eq!(l.extras.len(), 2);
    // And muckwatch writes the same bytes back.
    let out = Outbound {
        header: p.header,
        message: Message::Location(l),
    };
    assert_eq!(
        out.to_frame(),
        hex("7E02000026123456789012007D02000000010000000200BA7F0E07E4F11C0028003C00001810151010100104000000640202007D01137E")
    );
}

#[test]
fn smallchi_0100_2013_with_a_gbk_plate() {
    let p = one_packet(&hex(
        "7E 01 00 00 2D 00 01 23 45 67 89 00 0A 00 28 00 32 31 32 33 34 30 73 6D 61 6C 6C 63 68 69 \
         31 32 33 30 30 30 30 30 30 30 30 30 43 48 49 31 32 33 30 01 D4 C1 41 31 32 33 34 35 BA 7E",
    ));
    assert_eq!(p.header.msg_id, 0x0100);
    assert_eq!(p.header.serial, 10);
    assert_eq!(p.header.device.as_str(), "000123456789");
    let Message::Register(r) = message(&p) else {
        panic!("not a registration")
    };
    assert_eq!(r.province, 40);
    assert_eq!(r.city, 50);
    assert_eq!(r.maker, "12340");
    assert_eq!(r.model, "smallchi123000000000");
    assert_eq!(r.terminal_id, "CHI1230");
    assert_eq!(r.plate_color, 1);
    assert_eq!(r.plate, "粤A12345");
}

#[test]
fn smallchi_0100_2019_keeps_the_device_id() {
    let p = one_packet(&hex(
        "7E010040540100000000000123456789000A00280032303030303030303132333430303030303030303030303030\
         303030303030736D616C6C63686931323330303030303030303030303030303030303030303030303043484931\
         323301D4C1413132333435B27E",
    ));
    assert_eq!(p.header.edition, Edition::V2019 { version: 1 });
    assert!(p.header.attrs.version_flag);
    assert_eq!(p.header.serial, 10);
    // The same terminal as the 2013 frame above.
    assert_eq!(p.header.device.as_str(), "000123456789");
    let Message::Register(r) = message(&p) else {
        panic!("not a registration")
    };
    assert_eq!((r.province, r.city, r.plate_color), (40, 50, 1));
    assert_eq!(r.maker, "00000001234");
    assert_eq!(r.model, format!("{:0>30}", "smallchi123"));
    assert_eq!(r.terminal_id, format!("{:0>30}", "CHI123"));
    assert_eq!(r.plate, "粤A12345");
}

#[test]
fn smallchi_0102_2013() {
    let p = one_packet(&hex(
        "7E 01 02 00 09 01 23 45 67 89 00 30 39 34 35 36 31 32 31 31 31 31 BE 7E",
    ));
    assert_eq!(p.header.msg_id, 0x0102);
    assert_eq!(p.header.serial, 12345);
    assert_eq!(p.header.device.as_str(), "012345678900");
    assert_eq!(
        message(&p),
        Message::Authenticate(Authenticate {
            code: "456121111".into(),
            imei: None,
            software: None
        })
    );
}

#[test]
fn authenticate_2019_round_trips() {
    let header = Header {
        msg_id: 0x0102,
        attrs: BodyAttrs::from_word(0),
        edition: Edition::V2019 { version: 1 },
        device: DeviceId::parse("013912345678").unwrap(),
        serial: 7,
        part: None,
    };
    let auth = Authenticate {
        code: "a1b2c3".into(),
        imei: Some("860000000000001".into()),
        software: Some("V1.0".into()),
    };
    let frame = Outbound {
        header,
        message: Message::Authenticate(auth.clone()),
    }
    .to_frame();
    let p = one_packet(&frame);
    assert_eq!(p.body.len(), 1 + 6 + 15 + 20);
    assert_eq!(message(&p), Message::Authenticate(auth));
}

#[test]
fn smallchi_0704_normal_batch() {
    let p = one_packet(&hex(
        "7E 07 04 00 53 11 22 33 44 55 66 22 B8 00 02 00 00 26 00 00 00 01 00 00 00 02 00 BA 7F 0E \
         07 E4 F1 1C 00 28 00 3C 00 00 18 07 15 10 10 10 01 04 00 00 00 64 02 02 00 37 00 26 00 00 \
         00 02 00 00 00 01 00 CB 73 55 07 E6 A3 23 00 29 00 36 00 78 18 07 15 10 10 30 01 04 00 00 \
         00 60 02 02 00 42 D4 7E",
    ));
    assert_eq!(p.header.msg_id, 0x0704);
    assert_eq!(p.header.serial, 8888);
    assert_eq!(p.header.device.as_str(), "112233445566");
    let Message::Batch(b) = message(&p) else {
        panic!("not a batch")
    };
    assert_eq!(b.kind, BatchKind::Normal);
    assert_eq!(b.locations.len(), 2);
    let (a, c) = (&b.locations[0], &b.locations[1]);
    assert_eq!((a.alarm, a.status), (1, 2));
    assert_eq!((a.lat_e6, a.lon_e6), (12_222_222, 132_444_444));
    assert_eq!((a.altitude_m, a.speed_dkmh, a.direction), (40, 60, 0));
    assert_eq!(a.time.parts(), Some((2018, 7, 15, 10, 10, 10)));
    assert_eq!(a.extra(0x01), Some(&[0, 0, 0, 100][..]));
    assert_eq!(a.extra(0x02), Some(&[0, 55][..]));
    assert_eq!((c.alarm, c.status), (2, 1));
    assert_eq!((c.lat_e6, c.lon_e6), (13_333_333, 132_555_555));
    assert_eq!((c.altitude_m, c.speed_dkmh, c.direction), (41, 54, 120));
    assert_eq!(c.time.parts(), Some((2018, 7, 15, 10, 10, 30)));
    assert_eq!(c.extra(0x01), Some(&[0, 0, 0, 96][..]));
    assert_eq!(c.extra(0x02), Some(&[0, 66][..]));
}

#[test]
fn xtream_0704_2019_batch() {
    let p = one_packet(&hex(
        "7e0704403f01000000000139123443290000000200001c000000010000000101d907f2073d336c029a00210059\
         241029213903001c000000010000000101d907f3073d336d03090043005a241029213903f87e",
    ));
    assert_eq!(p.header.edition, Edition::V2019 { version: 1 });
    assert_eq!(p.header.device.as_str(), "013912344329");
    let Message::Batch(b) = message(&p) else {
        panic!("not a batch")
    };
    assert_eq!(b.kind, BatchKind::Normal);
    assert_eq!(b.locations.len(), 2);
    let l = &b.locations[0];
    assert_eq!((l.alarm, l.status), (1, 1));
    assert_eq!((l.lat_e6, l.lon_e6), (31_000_562, 121_451_372));
    assert_eq!((l.altitude_m, l.speed_dkmh, l.direction), (666, 33, 89));
    assert_eq!(l.time.parts(), Some((2024, 10, 29, 21, 39, 3)));
    assert_eq!(b.locations[1].altitude_m, 777);
}

#[test]
fn a_bad_checksum_keeps_its_header_and_the_next_frame_reads() {
    let mut bytes = hex("7E 01 02 00 09 01 23 45 67 89 00 30 39 34 35 36 31 32 31 31 31 31 BF 7E");
    bytes.extend_from_slice(b"noise");
    bytes.extend(hex(
        "7E 01 02 00 09 01 23 45 67 89 00 30 39 34 35 36 31 32 31 31 31 31 BE 7E",
    ));
    let items = decode_all(&bytes);
    assert!(matches!(
        &items[0],
        Inbound::Rejected { reason: FrameReject::BadChecksum, header: Some(h), .. } if h.serial == 12345
    ));
    // After a bad frame its closing flag may open the next one, so the
    // noise is read (and refused) as a frame of its own.
    assert!(matches!(&items[1], Inbound::Rejected { header: None, .. }));
    assert!(matches!(&items[2], Inbound::Packet(p) if p.header.msg_id == 0x0102));
    assert_eq!(items.len(), 3);
}

#[test]
fn a_length_that_disagrees_is_refused_with_its_header() {
    // Length 8 announced, 9 carried (checksum recomputed so only length is wrong).
    let mut content = hex("01 02 00 08 01 23 45 67 89 00 30 39 34 35 36 31 32 31 31 31 31");
    let wire = frame::wrap(&content);
    let items = decode_all(&wire);
    assert!(matches!(
        &items[..],
        [Inbound::Rejected {
            reason: FrameReject::BadLength,
            header: Some(_),
            ..
        }]
    ));
    content.truncate(3);
    let wire = frame::wrap(&content);
    assert!(matches!(
        &decode_all(&wire)[..],
        [Inbound::Rejected {
            reason: FrameReject::BadHeader,
            header: None,
            ..
        }]
    ));
}

#[test]
fn an_oversized_frame_is_reported_and_dropped() {
    let mut bytes = vec![0x7E];
    bytes.extend(std::iter::repeat_n(0x11, MAX_FRAME + 10));
    bytes.push(0x7E);
    let items = decode_all(&bytes);
    assert!(matches!(
        items.first(),
        Some(Inbound::Rejected {
            reason: FrameReject::Oversized,
            ..
        })
    ));
}

fn location(seed: u32, extras: Vec<Extra>) -> Location {
    Location {
        alarm: seed,
        status: seed.rotate_left(7),
        lat_e6: seed % 90_000_000,
        lon_e6: seed % 180_000_000,
        altitude_m: seed as u16,
        speed_dkmh: (seed >> 3) as u16,
        direction: (seed % 360) as u16,
        time: BcdTime::from_parts(2021, 6, 1 + seed % 28, seed % 24, seed % 60, seed % 60),
        extras,
    }
}

fn arb_message() -> impl Strategy<Value = Message> {
    let extras = proptest::collection::vec(
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..12))
            .prop_map(|(id, value)| Extra { id, value }),
        0..5,
    );
    prop_oneof![
        Just(Message::Heartbeat),
        Just(Message::Deregister),
        (any::<u32>(), extras.clone()).prop_map(|(s, e)| Message::Location(location(s, e))),
        (any::<bool>(), proptest::collection::vec(any::<u32>(), 0..8)).prop_map(|(b, s)| {
            Message::Batch(Batch {
                kind: if b {
                    BatchKind::Backfill
                } else {
                    BatchKind::Normal
                },
                locations: s.into_iter().map(|s| location(s, Vec::new())).collect(),
            })
        }),
        (any::<u16>(), any::<u16>(), any::<u8>())
            .prop_map(|(serial, id, result)| Message::PlatformResponse { serial, id, result }),
        (any::<u16>(), "[0-9a-f]{1,20}").prop_map(|(serial, code)| Message::RegisterResponse {
            serial,
            result: 0,
            code: Some(code)
        }),
        (
            "[A-Z0-9]{0,5}",
            "[a-z0-9]{0,20}",
            "[A-Z0-9]{0,7}",
            "粤[A-Z][0-9]{5}"
        )
            .prop_map(
                |(maker, model, terminal_id, plate)| Message::Register(Register {
                    province: 44,
                    city: 300,
                    maker,
                    model,
                    terminal_id,
                    plate_color: 1,
                    plate
                })
            ),
    ]
}

fn arb_header() -> impl Strategy<Value = Header> {
    (any::<bool>(), any::<u8>(), "[0-9]{12}", any::<u16>()).prop_map(|(v19, version, d, serial)| {
        Header {
            msg_id: 0,
            attrs: BodyAttrs::from_word(0),
            edition: if v19 {
                Edition::V2019 { version }
            } else {
                Edition::V2013
            },
            device: DeviceId::parse(&d).unwrap(),
            serial,
            part: None,
        }
    })
}

proptest! {
    #[test]
    fn messages_round_trip_through_the_codec(header in arb_header(), message in arb_message()) {
        let frame = Outbound { header, message: message.clone() }.to_frame();
        let p = one_packet(&frame);
        prop_assert_eq!(p.header.serial, header.serial);
        prop_assert_eq!(p.header.device, header.device);
        prop_assert_eq!(p.header.edition, header.edition);
        prop_assert_eq!(Message::decode(p.header.msg_id, p.header.edition, &p.body).unwrap(), Some(message));
    }

    /// Frames split anywhere, glued to each other, with noise between.
    #[test]
    fn frames_survive_any_split_and_noise(
        msgs in proptest::collection::vec((arb_header(), arb_message()), 1..5),
        cut in any::<prop::sample::Index>(),
        noise in proptest::collection::vec(0u8..0x7D, 0..6),
    ) {
        let mut wire = Vec::new();
        for (h, m) in &msgs {
            wire.extend_from_slice(&noise);
            wire.extend(Outbound { header: *h, message: m.clone() }.to_frame());
        }
        let at = cut.index(wire.len());
        let mut codec = Jt808Codec::default();
        let mut buf = BytesMut::from(&wire[..at]);
        let mut packets = Vec::new();
        let mut take = |codec: &mut Jt808Codec, buf: &mut BytesMut| {
            while let Some(item) = codec.decode(buf).unwrap() {
                if let Inbound::Packet(p) = item {
                    packets.push(p);
                }
            }
        };
        take(&mut codec, &mut buf);
        buf.extend_from_slice(&wire[at..]);
        take(&mut codec, &mut buf);
        prop_assert_eq!(packets.len(), msgs.len());
        for (p, (h, m)) in packets.iter().zip(&msgs) {
            prop_assert_eq!(p.header.serial, h.serial);
            prop_assert_eq!(&Message::decode(p.header.msg_id, p.header.edition, &p.body).unwrap().unwrap(), m);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000), flags in proptest::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        let mut bytes = bytes;
        for f in &flags {
            if !bytes.is_empty() {
                let i = f.index(bytes.len());
                bytes[i] = 0x7E;
            }
        }
        for item in decode_all(&bytes) {
            if let Inbound::Packet(p) = item {
                let _ = Message::decode(p.header.msg_id, p.header.edition, &p.body);
                let _ = Reassembler::new(4096).push(p);
            }
        }
    }

    #[test]
    fn sub_packages_reassemble_in_any_order(
        body in proptest::collection::vec(any::<u8>(), 1..3000),
        parts in 1u16..8, shuffle_seed in any::<u64>(), first_serial in any::<u16>(),
    ) {
        let size = body.len().div_ceil(usize::from(parts));
        let chunks: Vec<&[u8]> = body.chunks(size).collect();
        let total = chunks.len() as u16;
        let mut order: Vec<usize> = (0..chunks.len()).collect();
        let mut s = shuffle_seed;
        for i in (1..order.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut r = Reassembler::new(64 * 1024);
        let mut whole = None;
        for &i in &order {
            let header = Header {
                msg_id: 0x0704,
                attrs: BodyAttrs::from_word(chunks[i].len() as u16),
                edition: Edition::V2013,
                device: DeviceId::parse("013912345678").unwrap(),
                serial: first_serial.wrapping_add(i as u16),
                part: Some(Part { total, index: i as u16 + 1 }),
            };
            match r.push(Packet { header, body: chunks[i].to_vec() }) {
                Reassembled::Whole(p) => whole = Some(p),
                Reassembled::Partial => {}
                Reassembled::Refused(e) => prop_assert!(false, "{}", e),
            }
        }
        let p = whole.expect("all parts given");
        prop_assert_eq!(p.body, body);
        prop_assert_eq!(p.header.serial, first_serial);
        prop_assert_eq!(r.held(), 0);
    }
}

#[test]
fn reassembly_is_bounded() {
    let mut r = Reassembler::new(1000);
    let part = |index: u16| Packet {
        header: Header {
            msg_id: 0x0704,
            attrs: BodyAttrs::from_word(600),
            edition: Edition::V2013,
            device: DeviceId::parse("013912345678").unwrap(),
            serial: index,
            part: Some(Part { total: 3, index }),
        },
        body: vec![0; 600],
    };
    assert_eq!(r.push(part(1)), Reassembled::Partial);
    assert!(matches!(r.push(part(2)), Reassembled::Refused(_)));
    assert_eq!(r.held(), 0);
    let mut huge = part(1);
    huge.header.part = Some(Part {
        total: 60_000,
        index: 1,
    });
    assert!(matches!(r.push(huge), Reassembled::Refused(_)));
}
