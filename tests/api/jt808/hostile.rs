//! Hostile input: bad frames answered or skipped, oversized frames, the
//! connection cap and silent terminals.

use super::*;

#[tokio::test]
async fn bad_frames_are_answered_or_skipped_and_the_gateway_goes_on() {
    let app = spawn_gateway().await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80803", "013900000003").await;
    let mut t = Terminal::connect(addr, "013900000003", Edition::V2013).await;
    t.login("苏J80803").await;

    // Bytes outside framing: skipped, nothing answered; the next frame is.
    t.send_raw(b"\x00\x01garbage\xff").await;
    assert_eq!(t.call(Message::Heartbeat).await, result::OK);

    // A wrong checksum with a readable header: result 2, its serial and id.
    let mut content = Vec::new();
    let mut h = t.header();
    h.msg_id = 0x0002;
    h.encode_into(&mut content);
    let mut wire = frame::wrap(&content);
    let at = wire.len() - 2;
    wire[at] ^= 0x55;
    if wire[at] == 0x7E || wire[at] == 0x7D {
        wire[at] ^= 0x01;
    }
    t.send_raw(&wire).await;
    assert_eq!(
        t.general_response(h.serial, 0x0002).await,
        result::BAD_MESSAGE
    );

    // A length that disagrees with the body: result 2.
    let mut h = t.header();
    h.msg_id = 0x0002;
    h.attrs.len = 5;
    let mut content = Vec::new();
    h.encode_into(&mut content);
    t.send_raw(&frame::wrap(&content)).await;
    assert_eq!(
        t.general_response(h.serial, 0x0002).await,
        result::BAD_MESSAGE
    );

    // An id muckwatch does not handle (0x0900 transparent data): result 3.
    let mut h = t.header();
    h.msg_id = 0x0900;
    h.attrs.len = 3;
    let mut content = Vec::new();
    h.encode_into(&mut content);
    content.extend_from_slice(&[0xF0, 1, 2]);
    t.send_raw(&frame::wrap(&content)).await;
    assert_eq!(
        t.general_response(h.serial, 0x0900).await,
        result::UNSUPPORTED
    );

    // A location without a fix: received, counted, not stored.
    let mut nofix = speeding_fix(3);
    nofix.status = STATUS_ACC;
    assert_eq!(t.call(Message::Location(nofix)).await, result::OK);
    assert_eq!(t.call(Message::Location(speeding_fix(4))).await, result::OK);
    wait_ingested(&app, 1.0).await;
    assert_eq!(ingested(&app).await, 1.0);

    // An oversized frame closes the connection, and only it.
    let mut huge = vec![0x7E];
    huge.extend(std::iter::repeat_n(0x30, 5000));
    huge.push(0x7E);
    t.send_raw(&huge).await;
    assert!(t.reply().await.is_none(), "connection closed");
    let mut again = Terminal::connect(addr, "013900000003", Edition::V2013).await;
    again.login("苏J80803").await;
    assert_eq!(again.call(Message::Heartbeat).await, result::OK);

    for (reason, at_least) in [
        ("outside_frame", 1.0),
        ("bad_checksum", 1.0),
        ("bad_length", 1.0),
        ("unsupported", 1.0),
        ("jt808_no_fix", 1.0),
        ("oversized", 1.0),
    ] {
        let n = app
            .metric(&format!(
                "muckwatch_jt808_frames_rejected_total{{reason=\"{reason}\"}}"
            ))
            .await;
        assert!(n >= at_least, "{reason}: {n}");
    }
    app.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_and_silent_terminals_are_closed() {
    let mut s = test_settings(&temp_db());
    s.jt808.listen = Some("127.0.0.1:0".into());
    s.jt808.max_connections = 1;
    s.jt808.idle_timeout_s = 1;
    let app = spawn_with(s).await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80805", "013900000005").await;
    let mut t = Terminal::connect(addr, "013900000005", Edition::V2013).await;
    t.login("苏J80805").await;
    let mut second = Terminal::connect(addr, "013900000006", Edition::V2013).await;
    let _ = second.send(Message::Heartbeat).await;
    assert!(second.reply().await.is_none(), "over the cap: closed");
    assert!(
        app.metric("muckwatch_jt808_connections_refused_total")
            .await
            >= 1.0
    );
    // The first one, silent past the idle timeout, is closed too.
    assert!(t.reply().await.is_none(), "idle: closed");
    let closed = eventually(LIMIT, || async {
        (app.metric("muckwatch_jt808_connections").await == 0.0).then_some(())
    })
    .await;
    assert!(closed.is_some());
    assert_eq!(app.metric("muckwatch_jt808_terminals_connected").await, 0.0);
    app.stop().await;
}

#[tokio::test]
async fn a_terminal_flooding_frames_is_rate_limited() {
    let app = spawn_gateway().await;
    let addr = app.jt808.expect("gateway on");
    app.register("firm-j", "苏J80810", "013900000010").await;
    let mut t = Terminal::connect(addr, "013900000010", Edition::V2013).await;
    t.login("苏J80810").await;
    // Far over 50 frames/s (burst 100), in one write.
    let mut flood = Vec::new();
    for _ in 0..400 {
        let mut h = t.header();
        h.msg_id = 0x0002;
        let mut content = Vec::new();
        h.encode_into(&mut content);
        flood.extend(frame::wrap(&content));
    }
    t.send_raw(&flood).await;
    let limited = eventually(LIMIT, || async {
        let n = app
            .metric("muckwatch_jt808_frames_rejected_total{reason=\"rate_limited\"}")
            .await;
        (n >= 100.0).then_some(n)
    })
    .await;
    assert!(limited.is_some(), "the flood was not limited");
    app.stop().await;
}
