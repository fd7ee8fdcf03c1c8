//! `muckwatch demo`: serve, with the sample city, a seeded fleet and the simulator
//! driving it through an accelerated night, then keep serving until stopped.
//!
//! The tokens are printed so that the API, the SSE alert stream and the cases can be
//! looked at while the night runs; at the end the detection is scored against the
//! simulator's ground truth, the way `muckwatch score` does.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;

use super::fleet::Fleet;
use super::publish::{publish, Jt808Drive, PublishOptions};
use super::scenario::SimConfig;
use super::score::{load_detected, score, table, TOLERANCE_MS};
use super::terminal::{sim_profile, SIM_PROFILE};
use super::{count_by_code, describe_counts, seed};
use crate::auth::{new_token, token_hash, Role};
use crate::configuration::{DatabaseSettings, Settings};
use crate::startup::Application;
use crate::store::Store;

/// The database the demo uses unless told otherwise: its own, started afresh.
pub const DEMO_DB: &str = "muckwatch-demo.db";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub trucks: usize,
    pub seed: u64,
    pub speedup: f64,
    pub hours: f64,
    pub sigma_m: f64,
    pub interval_s: u32,
    pub truth: PathBuf,
    /// Half the fleet (every second truck) reports over JT/T 808 through the
    /// gateway inside serve (`--jt808-listen`, loopback on a free port unless
    /// given), the rest over MQTT JSON.
    pub jt808_half: bool,
}

/// With the default database setting, use [`DEMO_DB`] instead, removed first so that
/// every demo starts from the same empty state (the night is a fixed date; a second
/// run into the same database would be all duplicates). Returns the file if so.
pub fn use_fresh_demo_database(settings: &mut Settings) -> anyhow::Result<Option<PathBuf>> {
    if settings.database.url != DatabaseSettings::default().url {
        return Ok(None);
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{DEMO_DB}{suffix}"));
        if file.exists() {
            std::fs::remove_file(&file)
                .with_context(|| format!("cannot remove the previous demo's {}", file.display()))?;
        }
    }
    settings.database.url = format!("sqlite://{DEMO_DB}");
    Ok(Some(PathBuf::from(DEMO_DB)))
}

async fn token(store: &Store, role: &str) -> anyhow::Result<String> {
    let token = new_token()?;
    let role = Role::parse(role).map_err(anyhow::Error::msg)?;
    store
        .create_token(
            &token_hash(&token),
            &role,
            chrono::Utc::now().timestamp_millis(),
        )
        .await?;
    Ok(token)
}

/// One permit application waiting for the bureau (不见面审批), so that the
/// console's review queue has one to decide: the demo's firm asks for its
/// first permit's vehicles, sites and routes again, from today for 90 days
/// (only submitted: the night's permits and so its detection are unchanged).
async fn demo_application(
    addr: &str,
    firm_token: &str,
    seed: &seed::SeedData,
    tz: chrono_tz::Tz,
) -> anyhow::Result<()> {
    let Some(p) = seed
        .permits
        .iter()
        .find(|p| p.firm_id.as_str() == DEMO_FIRM)
    else {
        return Ok(());
    };
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let mut body = p.to_json();
    if let Some(obj) = body.as_object_mut() {
        for field in ["id", "firm_id", "status"] {
            obj.remove(field);
        }
    }
    body["valid_from"] = serde_json::json!(today.to_string());
    body["valid_until"] = serde_json::json!((today + chrono::Duration::days(89)).to_string());
    let path = "/api/v1/permit-applications";
    match seed::post_json(addr, path, firm_token, &body).await? {
        (201, _) => Ok(()),
        (status, answer) => anyhow::bail!("POST {path} answered {status}: {answer}"),
    }
}

/// The firm whose token the demo prints, and whose application it files.
const DEMO_FIRM: &str = "sim-firm-1";

/// Runs the demo until `stop` completes (Ctrl-C).
pub async fn run(
    settings: Settings,
    opts: DemoOptions,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let tz = settings.city_timezone()?;
    let prefix = settings.mqtt.topic_prefix.clone();
    let config = SimConfig {
        seed: opts.seed,
        trucks: opts.trucks,
        hours: opts.hours,
        interval_s: opts.interval_s,
        sigma_m: opts.sigma_m,
        tz,
        rules: settings.rules.clone(),
        ..SimConfig::default()
    };
    // The fleet first: the gateway must know the JT/T 808 trucks' profile.
    let city = std::sync::Arc::new(
        crate::geofence::FenceSet::load_dir(&settings.geofences.dir)
            .with_context(|| format!("geofences in {}", settings.geofences.dir.display()))?,
    );
    let mut fleet = Fleet::plan(city, &config)
        .map_err(|e| anyhow::anyhow!("cannot cast the demo fleet: {e}"))?;
    let mut settings = settings;
    if opts.jt808_half {
        half_over_jt808(&mut settings, &fleet);
    }
    let app = Application::build(settings).await?;
    app.wait_subscribed(Duration::from_secs(30)).await?;
    let mqtt_login = app.mqtt_login.clone();
    let (http, mqtt, store, metrics) = (
        app.http_addr,
        app.mqtt.clone(),
        app.store.clone(),
        app.metrics.clone(),
    );
    let jt808 = app.jt808_addr;
    let fences = app.fences.load();
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());
    tokio::pin!(stop);

    let admin = token(&store, "admin").await?;
    let seeded = seed::through_api(&http.to_string(), &admin, &fleet.seed)
        .await
        .context("seeding through the API")?;
    let mut tokens = vec![("admin".to_string(), admin)];
    for role in [
        "dept:urban",
        "dept:police",
        "dept:housing",
        "dept:transport",
        "dept:ecology",
        &format!("firm:{DEMO_FIRM}"),
    ] {
        tokens.push((role.to_string(), token(&store, role).await?));
    }

    let firm_token = &tokens[tokens.len() - 1].1;
    if let Err(e) = demo_application(&http.to_string(), firm_token, &fleet.seed, tz).await {
        tracing::warn!(error = %e, "the demo's permit application was not submitted");
    }

    let base = format!("http://{http}");
    let start = config.start.format("%Y-%m-%d %H:%M");
    println!("\nmuckwatch demo: {} fences of the sample city, {} trucks of {} firms, the night from {start} ({} h) at {}x",
        fences.len(), fleet.len(), fleet.seed.firms.len(), opts.hours, opts.speedup);
    println!(
        "seeded through the API: {} firms, {} vehicles, {} permits ({} created, {} already there)",
        fleet.seed.firms.len(),
        fleet.seed.vehicles.len(),
        fleet.seed.permits.len(),
        seeded.created,
        seeded.existing
    );
    println!("\ntokens (Authorization: Bearer <token>):");
    for (role, t) in &tokens {
        println!("  {role:<16} {t}");
    }
    let police = &tokens[2].1;
    let plate = fleet
        .seed
        .vehicles
        .first()
        .map(|v| v.plate.clone())
        .unwrap_or_default();
    println!("\nwhere to look:");
    println!(
        "  violations   curl -s -H 'Authorization: Bearer {}' '{base}/api/v1/violations?limit=20'",
        tokens[0].1
    );
    println!("  cases        curl -s -H 'Authorization: Bearer {police}' '{base}/api/v1/cases?department=police'");
    println!(
        "  live alerts  curl -sN -H 'Authorization: Bearer {police}' {base}/api/v1/alerts/stream"
    );
    println!(
        "  stats        curl -s -H 'Authorization: Bearer {}' '{base}/api/v1/stats'",
        tokens[0].1
    );
    println!(
        "  a track      curl -s -H 'Authorization: Bearer {}' '{base}/api/v1/vehicles/{}/track'",
        tokens[0].1,
        encode(&plate)
    );
    println!(
        "  geofences    curl -s -H 'Authorization: Bearer {}' {base}/api/v1/geofences",
        tokens[0].1
    );
    println!("  firm credit  curl -s -H 'Authorization: Bearer {police}' '{base}/api/v1/credit'");
    println!("  一公开       curl -s '{base}/api/v1/inspections/public'  (no token)");
    println!(
        "  applications curl -s -H 'Authorization: Bearer {}' '{base}/api/v1/permit-applications?status=submitted'",
        tokens[1].1
    );
    println!("  metrics      curl -s {base}/metrics");
    println!(
        "  MQTT alerts  mosquitto_sub -h {} -p {} -t '{prefix}/alerts/#'",
        mqtt.host, mqtt.port
    );
    println!("  web console  {base}/  (sign in with one of the tokens above)\n");

    let options = PublishOptions {
        host: mqtt.host.clone(),
        port: mqtt.port,
        prefix,
        qos: rumqttc::QoS::AtLeastOnce,
        batch: 1,
        speedup: Some(opts.speedup),
        rate: None,
        max_wall: None,
        progress: true,
        client_id: format!("muckwatch-demo-sim-{}", std::process::id()),
        // The demo's fleet speaks for every truck: muckwatch's own login.
        login: mqtt_login,
        jt808: jt808.map(|addr| Jt808Drive {
            addr: addr.to_string(),
            half: true,
            coverage_gap: config.scenario == "mixed",
        }),
    };
    if let Some(addr) = jt808 {
        println!("  JT/T 808     every second truck reports to the gateway at {addr}\n");
    }
    let outcome = tokio::select! {
        r = publish(&mut fleet, &options) => Some(r),
        _ = &mut stop => None,
    };
    if let Some(summary) = outcome {
        let summary = summary?;
        let (header, offset) = (fleet.header.clone(), fleet.offset());
        let truth = fleet.finish();
        std::fs::write(&opts.truth, Fleet::truth_ndjson(&header, &truth, offset))
            .with_context(|| format!("cannot write {}", opts.truth.display()))?;
        println!(
            "the night is over: {} fixes in {:.0} s ({:.0} fixes/s); injected: {}",
            summary.fixes,
            summary.wall.as_secs_f64(),
            summary.rate(),
            describe_counts(&count_by_code(&truth))
        );
        // The broker has every fix; let muckwatch store them (and detection see them)
        // before scoring.
        let waited = std::time::Instant::now();
        while metrics.fixes_ingested.load(Ordering::Relaxed) < summary.fixes
            && waited.elapsed() < Duration::from_secs(300)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let detected = load_detected(&store, Some(&header), TOLERANCE_MS).await?;
        println!(
            "\ndetection against the ground truth ({}):\n{}",
            opts.truth.display(),
            table(&score(&truth, &detected, TOLERANCE_MS), offset)
        );
        println!("muckwatch keeps serving at {base}; Ctrl-C to stop.");
        stop.await;
    }
    tracing::info!("shutting down: finishing pending writes");
    shutdown.trigger();
    server.await.context("the server task failed")?
}

/// The gateway on (loopback, a free port, unless configured), with the
/// simulator's profile for every second truck, and room for a terminal that
/// reports many simulated seconds per second.
pub fn half_over_jt808(settings: &mut Settings, fleet: &Fleet) {
    let j = &mut settings.jt808;
    j.listen.get_or_insert_with(|| "127.0.0.1:0".into());
    j.max_frames_per_s = j.max_frames_per_s.max(100_000);
    let devices = (0..fleet.len())
        .filter(|&i| i % 2 == 1)
        .map(|i| fleet.device(i).to_string())
        .collect();
    j.profiles.insert(SIM_PROFILE.into(), sim_profile(devices));
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
