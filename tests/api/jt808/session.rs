//! A terminal's life over TCP: register, authenticate, report; what an
//! unknown terminal or a wrong code gets; profiles and sub-packaged 补报.

use super::*;

#[tokio::test]
async fn a_terminal_registers_authenticates_and_its_locations_raise_speeding_like_json() {
    let app = spawn_gateway().await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80801", "013900000001").await;

    let mut t = Terminal::connect(addr, "013900000001", Edition::V2013).await;
    let code = t.login("苏J80801").await;
    assert_eq!(t.call(Message::Heartbeat).await, result::OK);
    // Half the night one by one, the rest as a batch.
    for i in 0..18 {
        assert_eq!(t.call(Message::Location(speeding_fix(i))).await, result::OK);
    }
    let batch = Message::Batch(muckwatch::jt808::Batch {
        kind: BatchKind::Normal,
        locations: (18..36).map(speeding_fix).collect(),
    });
    assert_eq!(t.call(batch).await, result::OK);
    wait_ingested(&app, 36.0).await;

    let police = app.token("dept:police").await;
    let v = eventually(LIMIT, || async {
        let r = app
            .get("/api/v1/violations?code=SPEEDING", Some(&police))
            .await;
        (r.json()["total"] == 1).then(|| r.json()["items"][0].clone())
    })
    .await
    .expect("SPEEDING raised on JT/T 808 fixes");
    // Exactly what the same track over MQTT JSON raises (tests/api/violations.rs).
    assert_eq!(v["plate"], "苏J80801");
    assert_eq!(v["device_id"], "013900000001");
    assert_eq!(v["started_at"], "2021-06-01T22:00:00+08:00");
    assert_eq!(v["measured"], 70.0);
    // A truck with no permit, moving: NO_PERMIT, as over MQTT JSON.
    let no_permit = eventually(LIMIT, || async {
        let r = app
            .get("/api/v1/violations?code=NO_PERMIT", Some(&police))
            .await;
        (r.json()["total"] == 1).then(|| r.json()["items"][0].clone())
    })
    .await
    .expect("NO_PERMIT raised on JT/T 808 fixes");
    assert_eq!(no_permit["plate"], "苏J80801");

    let fixes = app.track("苏J80801", &app.admin).await.json();
    let first: &Value = &fixes["properties"]["fixes"][0];
    assert_eq!(first["speed_kmh"], 70.0);
    assert_eq!(first["heading"], 90.0);
    assert_eq!(first["acc"], true);
    assert_eq!(first["lat"], 33.335);
    assert!(
        first.get("cover_closed").is_none_or(Value::is_null),
        "default profile maps nothing: {first}"
    );
    assert_eq!(app.metric("muckwatch_jt808_terminals_connected").await, 1.0);

    // The same terminal after a firmware update to 2019: same device id,
    // the kept code still good.
    drop(t);
    let mut t19 = Terminal::connect(addr, "013900000001", Edition::V2019 { version: 1 }).await;
    assert_eq!(t19.authenticate(&code).await, result::OK);
    let mut late = speeding_fix(40);
    late.speed_dkmh = 100;
    assert_eq!(t19.call(Message::Location(late)).await, result::OK);
    wait_ingested(&app, 37.0).await;
    let fixes = app.track("苏J80801", &app.admin).await.json();
    assert_eq!(
        fixes["properties"]["fixes"].as_array().map(Vec::len),
        Some(37)
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_terminals_and_wrong_codes_get_nothing_stored() {
    let app = spawn_gateway().await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80802", "013900000002").await;

    // A device no vehicle has: no code.
    let mut stranger = Terminal::connect(addr, "013999999999", Edition::V2013).await;
    assert_eq!(
        stranger.register("苏J00000").await,
        (register_result::NO_SUCH_TERMINAL, None)
    );
    assert_eq!(stranger.authenticate("guess").await, result::FAILED);
    // Anything else before authentication: refused, connection closed.
    let serial = stranger.send(Message::Location(speeding_fix(0))).await;
    assert_eq!(
        stranger.general_response(serial, 0x0200).await,
        result::FAILED
    );
    assert!(stranger.reply().await.is_none(), "connection closed");

    // A registered device with a wrong code, then an old one.
    let mut t = Terminal::connect(addr, "013900000002", Edition::V2013).await;
    let (r, first) = t.register("苏J80802").await;
    assert_eq!(r, register_result::OK);
    let (_, second) = t.register("苏J80802").await;
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_ne!(first, second, "codes are random");
    assert_eq!(t.authenticate("0123456789abcdef").await, result::FAILED);
    assert_eq!(
        t.authenticate(&first).await,
        result::FAILED,
        "replaced on re-registration"
    );
    // Locations are still refused: the terminal is not authenticated.
    let serial = t.send(Message::Location(speeding_fix(1))).await;
    assert_eq!(t.general_response(serial, 0x0200).await, result::FAILED);
    assert!(t.reply().await.is_none());

    // The current code works; its one location is the only fix stored.
    let mut t = Terminal::connect(addr, "013900000002", Edition::V2013).await;
    assert_eq!(t.authenticate(&second).await, result::OK);
    assert_eq!(t.call(Message::Location(speeding_fix(2))).await, result::OK);
    wait_ingested(&app, 1.0).await;
    assert_eq!(ingested(&app).await, 1.0);
    assert!(
        app.metric("muckwatch_jt808_frames_rejected_total{reason=\"not_authenticated\"}")
            .await
            >= 4.0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_profile_maps_cover_tipper_and_load_and_a_subpackaged_backfill_is_stored() {
    let mut s = test_settings(&temp_db());
    s.jt808.listen = Some("127.0.0.1:0".into());
    s.jt808.profiles = toml::from_str(
        r#"
        [hx]
        devices = ["013900000004"]
        cover_closed = { status_bit = 20 }
        tipper_up = { extra = 0xE1, bit = 0 }
        load_t = { analog = 0, scale = 0.01 }
        "#,
    )
    .unwrap();
    let app = spawn_with(s).await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80804", "013900000004").await;
    let mut t = Terminal::connect(addr, "013900000004", Edition::V2019 { version: 1 }).await;
    t.login("苏J80804").await;

    // A 补报 batch the terminal recorded while out of coverage, sent in two parts.
    let locations: Vec<Location> = (0..3)
        .map(|i| {
            let mut l = speeding_fix(i);
            l.speed_dkmh = 0;
            l.status |= 1 << 20;
            l.extras = vec![
                muckwatch::jt808::Extra {
                    id: 0xE1,
                    value: vec![1],
                },
                muckwatch::jt808::Extra {
                    id: 0x2B,
                    value: vec![0, 0, 0x09, 0x2E],
                },
            ];
            l
        })
        .collect();
    let mut body = Vec::new();
    Message::Batch(muckwatch::jt808::Batch {
        kind: BatchKind::Backfill,
        locations,
    })
    .encode_into(t.edition, &mut body);
    let (a, b) = body.split_at(body.len() / 2);
    let mut first_serial = 0;
    for (i, part) in [a, b].iter().enumerate() {
        let mut h = t.header();
        if i == 0 {
            first_serial = h.serial;
        }
        h.msg_id = 0x0704;
        h.attrs.len = part.len() as u16;
        h.part = Some(muckwatch::jt808::Part {
            total: 2,
            index: i as u16 + 1,
        });
        let mut content = Vec::new();
        h.encode_into(&mut content);
        content.extend_from_slice(part);
        t.send_raw(&frame::wrap(&content)).await;
    }
    assert_eq!(t.general_response(first_serial, 0x0704).await, result::OK);
    wait_ingested(&app, 3.0).await;
    let track = app.track("苏J80804", &app.admin).await.json();
    let fixes = track["properties"]["fixes"].as_array().unwrap().clone();
    assert_eq!(fixes.len(), 3);
    for f in &fixes {
        assert_eq!(f["cover_closed"], true, "{f}");
        assert_eq!(f["tipper_up"], true, "{f}");
        assert_eq!(f["load_t"], 23.5, "{f}");
    }
    app.stop().await;
}

#[tokio::test]
async fn under_mqtt_auth_the_gateway_logs_in_as_muckwatch_and_its_fixes_are_stored() {
    let mut s = test_settings(&temp_db());
    s.jt808.listen = Some("127.0.0.1:0".into());
    s.mqtt.auth = true;
    let app = spawn_with(s).await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80802", "013900000002").await;

    let mut t = Terminal::connect(addr, "013900000002", Edition::V2013).await;
    t.login("苏J80802").await;
    for i in 0..3 {
        assert_eq!(t.call(Message::Location(speeding_fix(i))).await, result::OK);
    }
    wait_ingested(&app, 3.0).await;
    assert_eq!(
        app.metric("muckwatch_mqtt_refused_total{reason=\"bad_credentials\"}")
            .await,
        0.0
    );
    app.stop().await;
}
