//! `muckwatch demo` and `muckwatch score` as a user runs them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn muckwatch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_muckwatch"));
    c.env_remove("RUST_LOG");
    c
}

/// The demo seeds, drives a whole night (unpaced here), prints tokens, where to look and
/// the score, keeps serving until SIGTERM, and `score` then reads the same result back.
#[test]
fn demo_prints_where_to_look_and_its_score_and_score_agrees() {
    let _night = crate::ONE_NIGHT_AT_A_TIME.blocking_lock();
    let db = temp_db();
    let url = format!("sqlite://{}", db.display());
    let truth = db.with_extension("truth.ndjson");
    let mut child = muckwatch()
        .args([
            "demo",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--database-url",
            &url,
        ])
        .args([
            "--speedup",
            "10000000",
            "--truth",
            truth.to_str().expect("path"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let mut out = String::new();
    while !out.contains("keeps serving") {
        let left = Duration::from_secs(120)
            .checked_sub(started.elapsed())
            .expect("the demo's night ends within 2 minutes");
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("the demo stopped early:\n{out}"));
        out.push_str(&line);
        out.push('\n');
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let status = child.wait().expect("demo exits");
    assert!(status.success(), "exit status {status}\n{out}");

    for expected in [
        "dept:police",
        "firm:sim-firm-1",
        "/api/v1/alerts/stream",
        "/api/v1/violations",
        "/api/v1/credit",
        "/api/v1/inspections/public",
        "/api/v1/permit-applications",
        "/metrics",
        "the night is over",
    ] {
        assert!(out.contains(expected), "`{expected}` missing from\n{out}");
    }
    let all_line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("all "))
            .map(str::to_string)
    };
    let demo_all = all_line(&out).unwrap_or_else(|| panic!("no score table in\n{out}"));
    assert!(demo_all.contains("1.000   1.000"), "{demo_all}\n{out}");

    // The demo's firm has one permit application waiting for the bureau.
    let waiting = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let store = muckwatch::store::Store::connect(&url)
                .await
                .expect("demo db");
            let filter = muckwatch::store::ApplicationFilter {
                status: Some(muckwatch::applications::ApplicationStatus::Submitted),
                ..Default::default()
            };
            store
                .applications(&filter, 10, 0)
                .await
                .expect("applications")
        });
    assert_eq!(waiting.1, 1, "{:?}", waiting.0);
    assert!(waiting.0[0].passed(), "{:?}", waiting.0[0].checks);

    let scored = muckwatch()
        .args([
            "score",
            "--truth",
            truth.to_str().expect("path"),
            "--database-url",
            &url,
        ])
        .output()
        .expect("score runs");
    assert!(
        scored.status.success(),
        "{}",
        String::from_utf8_lossy(&scored.stderr)
    );
    let table = String::from_utf8_lossy(&scored.stdout);
    assert_eq!(
        all_line(&table).as_deref(),
        Some(demo_all.as_str()),
        "{table}"
    );
    for code in muckwatch::violation::ViolationCode::ALL {
        assert!(table.contains(code.as_str()), "{table}");
    }

    let missing = muckwatch()
        .args([
            "score",
            "--truth",
            "/nonexistent/truth.ndjson",
            "--database-url",
            &url,
        ])
        .output()
        .expect("runs");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}
