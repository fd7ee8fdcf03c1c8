//! How the store lays out what it keeps: `fixes` partitioned by day on
//! PostgreSQL (a new day's fixes land in that day's partition, retention
//! drops whole days and keeps the evidence of violations), and databases
//! made by an earlier muckwatch (its own migration runner, `fixes` one
//! table) opening with every row. The PostgreSQL tests are ignored by
//! default and run by `.ci/run` with `--ignored`.

use crate::common::db::{postgres_db, postgres_empty, sqlite_empty, EmptyDb};
use muckwatch::fix::{DeviceId, Fix};
use muckwatch::identity::{Firm, FirmId, Plate, Vehicle};
use muckwatch::store::{Store, ViolationFilter};
use muckwatch::violation::{Violation, ViolationCode};
use sqlx::{Connection, PgConnection, SqliteConnection};

const DAY: i64 = 86_400_000;
const MINUTE: i64 = 60_000;

fn fix(device: &str, ts_ms: i64) -> Fix {
    Fix {
        device_id: DeviceId::parse(device).expect("device"),
        ts_ms,
        lat: 33.38,
        lon: 120.16,
        speed_kmh: 30.0,
        heading: Some(90.0),
        acc: Some(true),
        tipper_up: None,
        cover_closed: Some(true),
        load_t: None,
    }
}

/// The UTC day after today, in days since the epoch: the first day that
/// a fresh database partitions (today belongs to `fixes_past`).
fn tomorrow() -> i64 {
    chrono::Utc::now().timestamp_millis().div_euclid(DAY) + 1
}

fn partition(day: i64) -> String {
    let date = chrono::DateTime::from_timestamp_millis(day * DAY).expect("date");
    format!("fixes_{}", date.format("%Y%m%d"))
}

/// Which partition holds each fix of `device`, oldest first.
async fn partitions_of(url: &str, device: &str) -> Vec<(i64, String)> {
    let mut c = PgConnection::connect(url).await.expect("connect");
    sqlx::query_as(
        "SELECT ts_ms, tableoid::regclass::text FROM fixes WHERE device_id = $1 ORDER BY ts_ms",
    )
    .bind(device)
    .fetch_all(&mut c)
    .await
    .expect("partitions")
}

async fn seed_vehicle(store: &Store, plate: &str, device: &str) {
    let firm = Firm {
        id: FirmId::parse("firm-p").expect("firm"),
        name: "firm p".into(),
    };
    let _ = store.create_firm(&firm, 0).await;
    let v = Vehicle {
        plate: Plate::parse(plate).expect("plate"),
        device_id: DeviceId::parse(device).expect("device"),
        firm_id: firm.id,
        rated_load_t: 31.0,
    };
    store.create_vehicle(&v, 0).await.expect("vehicle");
}

fn speeding(plate: &str, device: &str, started_ms: i64, ended_ms: i64) -> Violation {
    Violation {
        code: ViolationCode::Speeding,
        plate: Plate::parse(plate).expect("plate"),
        device_id: DeviceId::parse(device).expect("device"),
        firm_id: FirmId::parse("firm-p").expect("firm"),
        permit_id: None,
        started_ms,
        ended_ms: Some(ended_ms),
        lat: 33.38,
        lon: 120.16,
        measured: 62.0,
        fences: vec![],
        uncertainty: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL; run by .ci/run"]
async fn a_fix_stamped_on_a_new_day_lands_in_that_days_partition() {
    let db = postgres_db().await;
    let day = tomorrow();
    let now = chrono::Utc::now().timestamp_millis();
    let made = db.store.prepare_fix_partitions(now, 3).await.unwrap();
    assert!(
        made.contains(&partition(day)) && made.contains(&partition(day + 1)),
        "{made:?}"
    );
    assert!(
        db.store
            .prepare_fix_partitions(now, 3)
            .await
            .unwrap()
            .is_empty(),
        "made once"
    );

    let stamps = [
        day * DAY - 1,
        day * DAY,
        (day + 1) * DAY - 1,
        (day + 1) * DAY,
    ];
    let fixes: Vec<Fix> = stamps.iter().map(|&t| fix("dev-p", t)).collect();
    assert_eq!(db.store.insert_fixes(&fixes, now).await.unwrap(), 4);
    assert_eq!(
        db.store.insert_fixes(&fixes, now).await.unwrap(),
        0,
        "a duplicate is refused by the partition that holds its time"
    );
    let expected: Vec<(i64, String)> = stamps
        .iter()
        .zip([
            "fixes_past".to_string(),
            partition(day),
            partition(day),
            partition(day + 1),
        ])
        .map(|(t, p)| (*t, p))
        .collect();
    assert_eq!(partitions_of(&db.url, "dev-p").await, expected);

    // A terminal stamping a month ahead: the default partition takes it,
    // and it moves into its day's partition when that is made.
    let ahead = (day + 30) * DAY + 5;
    db.store
        .insert_fixes(&[fix("dev-q", ahead)], now)
        .await
        .unwrap();
    assert_eq!(
        partitions_of(&db.url, "dev-q").await,
        [(ahead, "fixes_default".to_string())]
    );
    let made = db
        .store
        .prepare_fix_partitions((day + 30) * DAY, 0)
        .await
        .unwrap();
    assert_eq!(made, [partition(day + 30)]);
    assert_eq!(
        partitions_of(&db.url, "dev-q").await,
        [(ahead, partition(day + 30))]
    );
    assert_eq!(db.store.fix_count().await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL; run by .ci/run"]
async fn retention_drops_whole_days_and_keeps_the_evidence_of_violations() {
    let db = postgres_db().await;
    let store = &db.store;
    let day = tomorrow();
    let d0 = day * DAY;
    store
        .prepare_fix_partitions(chrono::Utc::now().timestamp_millis(), 3)
        .await
        .unwrap();
    seed_vehicle(store, "苏J00501", "dev-r").await;
    // Two hours of the first day and one of the next, a fix a minute; a
    // violation from 00:30 to 00:35 of the first day.
    let fixes: Vec<Fix> = (0..120)
        .map(|m| fix("dev-r", d0 + m * MINUTE))
        .chain((0..60).map(|m| fix("dev-r", d0 + DAY + m * MINUTE)))
        .collect();
    store.insert_fixes(&fixes, d0).await.unwrap();
    let v = speeding("苏J00501", "dev-r", d0 + 30 * MINUTE, d0 + 35 * MINUTE);
    store.insert_violation(&v, d0).await.unwrap();

    // The cutoff is half an hour into the second day: the first day goes
    // whole; the second stays whole until its own day is past.
    let gone = store
        .prune_fixes(d0 + DAY + 30 * MINUTE, 5 * MINUTE)
        .await
        .unwrap();
    // Kept: 00:25 to 00:40 of the first day (16 fixes), and all 60 of the second.
    assert_eq!(gone, 120 - 16);
    assert_eq!(store.fix_count().await.unwrap(), 16 + 60);
    let mut c = PgConnection::connect(&db.url).await.unwrap();
    let (table,): (Option<String>,) = sqlx::query_as("SELECT to_regclass($1)::text")
        .bind(partition(day))
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(table, None, "the first day's partition is dropped");
    let evidence = store
        .track("dev-r", d0 + 20 * MINUTE, d0 + 45 * MINUTE, 100)
        .await
        .unwrap();
    assert_eq!(
        evidence.iter().map(|f| f.ts_ms).collect::<Vec<_>>(),
        (25..=40).map(|m| d0 + m * MINUTE).collect::<Vec<_>>(),
        "the violation's evidence is still there to read"
    );
    assert_eq!(evidence[0], fix("dev-r", d0 + 25 * MINUTE), "every field");

    // A late copy of an evidence fix goes to the default partition; it is
    // read once, not twice.
    store
        .insert_fixes(&[fix("dev-r", d0 + 30 * MINUTE)], d0)
        .await
        .unwrap();
    assert_eq!(store.fix_count().await.unwrap(), 16 + 60);
    // Nothing more to drop until the second day is past too.
    assert_eq!(
        store
            .prune_fixes(d0 + DAY + 30 * MINUTE, 5 * MINUTE)
            .await
            .unwrap(),
        0
    );
}

/// What main's own migration runner left: its `schema_migrations` table and
/// migrations 0001-0004, as it applied them.
async fn legacy_schema(url: &str) {
    let files: [(i64, &str, &str, &str); 4] = [
        (
            1,
            "init",
            include_str!("../../migrations/sqlite/0001_init.sql"),
            include_str!("../../migrations/postgres/0001_init.sql"),
        ),
        (
            2,
            "permits_violations",
            include_str!("../../migrations/sqlite/0002_permits_violations.sql"),
            include_str!("../../migrations/postgres/0002_permits_violations.sql"),
        ),
        (
            3,
            "cases",
            include_str!("../../migrations/sqlite/0003_cases.sql"),
            include_str!("../../migrations/postgres/0003_cases.sql"),
        ),
        (
            4,
            "fixes_by_time",
            include_str!("../../migrations/sqlite/0004_fixes_by_time.sql"),
            include_str!("../../migrations/postgres/0004_fixes_by_time.sql"),
        ),
    ];
    let sqlite = url.starts_with("sqlite:");
    let mut script = String::from(
        "CREATE TABLE schema_migrations \
         (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL);\n",
    );
    for (version, name, lite, pg) in files {
        script.push_str(if sqlite { lite } else { pg });
        script.push_str(&format!(
            ";\nINSERT INTO schema_migrations VALUES ({version}, '{name}', 0);\n"
        ));
    }
    execute(url, &script).await;
}

async fn execute(url: &str, sql: &str) {
    if url.starts_with("sqlite:") {
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("url");
        let mut c = SqliteConnection::connect_with(&opts.create_if_missing(true))
            .await
            .expect("connect");
        sqlx::raw_sql(sql).execute(&mut c).await.expect(sql);
    } else {
        let mut c = PgConnection::connect(url).await.expect("connect");
        sqlx::raw_sql(sql).execute(&mut c).await.expect(sql);
    }
}

const LEGACY_FIXES: i64 = 3 * 24 * 60;
/// 2021-05-30T00:00:00Z.
const LEGACY_T0: i64 = 1_622_332_800_000;

/// A database in use: three days of fixes a minute (and one stamped two
/// days ahead of now), a vehicle, a violation filed into a case, a check
/// under way and its audit, a token, a dead letter.
async fn populate_legacy(url: &str) -> i64 {
    let ahead = chrono::Utc::now().timestamp_millis() + 2 * DAY;
    let mut sql = String::from(
        "INSERT INTO firms VALUES ('firm-l', 'legacy firm', 0);
         INSERT INTO vehicles VALUES ('苏J00701', 'dev-l', 'firm-l', 31.0, 0);
         INSERT INTO api_tokens VALUES ('hash-l', 'dept:police', 0);
         INSERT INTO dead_letters (received_ms, topic, reason, detail, payload)
             VALUES (0, 'muckwatch/v1/pos/00/dev-l', 'not_json', 'bad', '{');
         INSERT INTO cases (plate, device_id, firm_id, status, opened_ms)
             VALUES ('苏J00701', 'dev-l', 'firm-l', 'open', 1622400000000);
         INSERT INTO violations (code, plate, device_id, firm_id, permit_id, started_ms, ended_ms,
             lat, lon, measured, fences, case_id, created_ms)
             VALUES ('SPEEDING', '苏J00701', 'dev-l', 'firm-l', NULL, 1622400000000, 1622400300000,
             33.38, 120.16, 62.0, '[\"zone-1\"]', 1, 0);
         INSERT INTO case_checks VALUES (1, 'police', 'investigating', NULL, NULL, NULL, 0);
         INSERT INTO case_audit (case_id, at_ms, actor, department, field, before, after)
             VALUES (1, 0, 'dept:police', 'police', 'status', 'pending', 'investigating');
         INSERT INTO fixes (device_id, ts_ms, lat, lon, speed_kmh, heading, acc, tipper_up,
             cover_closed, load_t, received_ms) VALUES ",
    );
    let rows: Vec<String> = (0..LEGACY_FIXES)
        .map(|m| LEGACY_T0 + m * MINUTE)
        .chain([ahead])
        .map(|t| format!("('dev-l', {t}, 33.38, 120.16, 30.0, 90.0, TRUE, FALSE, TRUE, NULL, 0)"))
        .collect();
    sql.push_str(&rows.join(", "));
    sql.push(';');
    execute(url, &sql).await;
    ahead
}

/// Opens a database made by main's runner and checks that every row is
/// there to read, through the store, and that it migrates only once.
async fn legacy_database_opens_with_every_row(db: EmptyDb) -> (Store, String, i64, EmptyDb) {
    legacy_schema(&db.url).await;
    let ahead = populate_legacy(&db.url).await;
    let url = db.url.clone();
    let store = Store::connect(&url).await.expect("an old database opens");

    assert_eq!(store.fix_count().await.unwrap(), LEGACY_FIXES + 1);
    let track = store
        .track("dev-l", LEGACY_T0, ahead, 10_000)
        .await
        .unwrap();
    assert_eq!(track.len() as i64, LEGACY_FIXES + 1);
    let mut first = fix("dev-l", LEGACY_T0);
    first.tipper_up = Some(false);
    assert_eq!(track[0], first, "every field");
    assert_eq!(store.latest_fix_ms().await.unwrap(), Some(ahead));
    assert_eq!(
        store
            .insert_fixes(&[fix("dev-l", LEGACY_T0 + MINUTE)], 0)
            .await
            .unwrap(),
        0,
        "an old fix is still a duplicate"
    );
    let (violations, total) = store
        .violations(&ViolationFilter::default(), 10, 0)
        .await
        .unwrap();
    assert_eq!((total, violations[0].case_id), (1, Some(1)));
    assert_eq!(violations[0].fences, ["zone-1"]);
    let case = store.case(1).await.unwrap().expect("the case");
    assert_eq!(case.codes, [ViolationCode::Speeding]);
    assert_eq!(store.case_audit(1).await.unwrap().len(), 1);
    assert_eq!(store.dead_letters(10, 0).await.unwrap().1, 1);
    assert!(store.token_role("hash-l").await.unwrap().is_some());
    assert_eq!(
        store
            .vehicle(&Plate::parse("苏J00701").unwrap())
            .await
            .unwrap()
            .map(|v| v.device_id.to_string()),
        Some("dev-l".to_string())
    );
    drop(store);
    let again = Store::connect(&url).await.expect("opens again");
    assert_eq!(again.fix_count().await.unwrap(), LEGACY_FIXES + 1);
    (again, url, ahead, db)
}

async fn versions(url: &str) -> (Vec<i64>, bool) {
    let q = "SELECT version FROM _sqlx_migrations ORDER BY version";
    let legacy =
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'";
    if url.starts_with("sqlite:") {
        let mut c = SqliteConnection::connect(url).await.unwrap();
        let v: Vec<(i64,)> = sqlx::query_as(q).fetch_all(&mut c).await.unwrap();
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_migrations'")
                .fetch_one(&mut c)
                .await
                .unwrap();
        (v.into_iter().map(|(v,)| v).collect(), n > 0)
    } else {
        let mut c = PgConnection::connect(url).await.unwrap();
        let v: Vec<(i64,)> = sqlx::query_as(q).fetch_all(&mut c).await.unwrap();
        let (n,): (i64,) = sqlx::query_as(legacy).fetch_one(&mut c).await.unwrap();
        (v.into_iter().map(|(v,)| v).collect(), n > 0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_sqlite_database_opens_with_every_row() {
    let (_store, url, _, _db) = legacy_database_opens_with_every_row(sqlite_empty().await).await;
    let (applied, legacy_left) = versions(&url).await;
    assert_eq!(&applied[..5], [1, 2, 3, 4, 5]);
    assert!(!legacy_left, "schema_migrations is adopted and dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL; run by .ci/run"]
async fn an_old_postgres_database_is_partitioned_in_place_with_every_row() {
    let (store, url, ahead, _db) =
        legacy_database_opens_with_every_row(postgres_empty().await).await;
    let (applied, legacy_left) = versions(&url).await;
    assert_eq!(&applied[..5], [1, 2, 3, 4, 5]);
    assert!(!legacy_left, "schema_migrations is adopted and dropped");
    let places = partitions_of(&url, "dev-l").await;
    assert!(
        places[..places.len() - 1]
            .iter()
            .all(|(_, p)| p == "fixes_past"),
        "the old table is the partition of the past, rows in place"
    );
    assert_eq!(
        places.last().cloned(),
        Some((ahead, "fixes_default".to_string())),
        "a fix stamped past the cut moved to the default partition"
    );
    // Retention still prunes the old rows one by one, keeping the 16 fixes
    // around the violation (18:40-18:45 of the first day, 5 min margin).
    let gone = store
        .prune_fixes(LEGACY_T0 + DAY, 5 * MINUTE)
        .await
        .unwrap();
    assert_eq!(gone, 24 * 60 - 16);
    assert_eq!(
        store.fix_count().await.unwrap(),
        LEGACY_FIXES + 1 - (24 * 60 - 16)
    );
}
