//! `muckwatch-sim`: drives a simulated fleet over a city's geofences and publishes it
//! to any MQTT broker on the contract's topics, writing the ground truth of the
//! violations it injected so that detection can be scored (`muckwatch score`).
//!
//! The fleet model is `muckwatch::sim` (shared with `muckwatch demo`); this is its
//! command line. Every truck has a permit, loads at its source site, follows its
//! route corridor at plausible speeds, unloads at its disposal site and returns; the
//! `mixed` scenario scripts violations of every code (`--inject` changes the counts),
//! `honest` none. Simulated time starts at `--start` and runs `--speedup` times faster
//! than the clock (60 by default), or at `--rate N` fixes per second, or (`--rate max`)
//! as fast as the broker takes the fixes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::DateTime;
use clap::Parser;
use muckwatch::geofence::FenceSet;
use muckwatch::sim::{
    count_by_code, describe_counts, publish, seed, Fleet, Jt808Drive, PublishOptions, Role,
    SimConfig,
};
use rumqttc::QoS;

#[derive(Parser, Debug)]
#[command(
    name = "muckwatch-sim",
    version,
    about = "Publishes a simulated muck-truck fleet over MQTT, with ground truth"
)]
struct Args {
    /// Broker to publish to.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    broker: String,
    /// Trucks in the fleet (at least what the injections need).
    #[arg(long, default_value_t = 30)]
    trucks: usize,
    /// Fixes per second at most, or `max`: as fast as the broker takes them (no pacing).
    #[arg(long)]
    rate: Option<String>,
    /// Simulated seconds per second of the clock; default 60 when --rate is not given.
    #[arg(long)]
    speedup: Option<f64>,
    /// Stop after this many seconds of the clock, wherever the night is.
    #[arg(long)]
    duration: Option<f64>,
    /// Simulated hours from --start.
    #[arg(long, default_value_t = 9.0)]
    hours: f64,
    /// Random seed: the same seed gives the same fleet, fixes and truth.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `mixed` (every violation code injected) or `honest` (none).
    #[arg(long, default_value = "mixed")]
    scenario: String,
    /// Injection counts, e.g. `SPEEDING=6,COVER_OPEN=0` (NO_PERMIT and OUT_OF_HOURS
    /// count trucks, TRACK_GAP silences, the others trips).
    #[arg(long)]
    inject: Option<String>,
    /// Simulated start (RFC 3339).
    #[arg(long, default_value = "2021-06-01T21:00:00+08:00")]
    start: String,
    /// Simulated seconds between two reports of one terminal.
    #[arg(long, default_value_t = 10)]
    interval: u32,
    /// GPS noise in metres (standard deviation per axis).
    #[arg(long, default_value_t = 8.0)]
    sigma: f64,
    /// Fixes per MQTT message (1 = a single object, more = an array of one terminal's).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// MQTT QoS for publishes (0 or 1).
    #[arg(long, default_value_t = 1)]
    qos: u8,
    /// Topic root.
    #[arg(long, default_value = "muckwatch/v1")]
    prefix: String,
    /// Where to write the ground truth (NDJSON).
    #[arg(long, default_value = "sim-truth.ndjson")]
    truth: PathBuf,
    /// Geofence directory (the city driven).
    #[arg(long, default_value = "geofences")]
    geofences: PathBuf,
    /// The city's time zone (permit windows, zone schedules).
    #[arg(long, default_value = "Asia/Shanghai")]
    timezone: String,
    /// Register firms, vehicles and permits first, through this muckwatch API
    /// (e.g. http://127.0.0.1:8080), with --token (an admin token).
    #[arg(long, requires = "token")]
    api: Option<String>,
    #[arg(long)]
    token: Option<String>,
    /// Only compute the fleet and its truth; publish nothing.
    #[arg(long)]
    dry_run: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// MQTT username, for a broker that requires one (the whole fleet is
    /// published by one client: muckwatch's service login, `mqtt.username`).
    #[arg(long, requires = "password")]
    username: Option<String>,
    /// MQTT password.
    #[arg(long)]
    password: Option<String>,
    /// `mqtt` (JSON on the contract's topics) or `jt808`: each truck its own
    /// TCP connection to the JT/T 808 gateway at --jt808 (register,
    /// authenticate, 0x0200 locations; 2013 firmware, 2019 on every fourth
    /// truck; in the `mixed` scenario one honest truck drives through a
    /// coverage gap and sends it as 补报). The gateway needs the simulator's
    /// profile for cover, tipper and load (see `muckwatch::sim::terminal`).
    #[arg(long, default_value = "mqtt")]
    protocol: String,
    /// The JT/T 808 gateway, HOST:PORT (with --protocol jt808).
    #[arg(long)]
    jt808: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let qos = match args.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        q => bail!("--qos {q}: only 0 and 1"),
    };
    let rate = match args.rate.as_deref() {
        None | Some("max") => None,
        Some(r) => Some(
            r.parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0)
                .context("--rate must be a positive number or `max`")?,
        ),
    };
    let unpaced = args.rate.as_deref() == Some("max");
    let speedup = match (args.speedup, &args.rate) {
        (Some(x), _) if x.is_nan() || x <= 0.0 => bail!("--speedup must be above 0"),
        (_, _) if unpaced => None,
        (Some(x), _) => Some(x),
        (None, None) => Some(60.0),
        (None, Some(_)) => None,
    };
    let (host, port) = parse_broker(&args.broker)?;
    let jt808 = match (args.protocol.as_str(), &args.jt808) {
        ("mqtt", None) => None,
        ("jt808", Some(addr)) => Some(Jt808Drive {
            addr: addr.clone(),
            half: false,
            coverage_gap: args.scenario == "mixed",
        }),
        ("jt808", None) => bail!("--protocol jt808 needs --jt808 HOST:PORT (the gateway)"),
        ("mqtt", Some(_)) => bail!("--jt808 is for --protocol jt808"),
        (other, _) => bail!("--protocol {other}: `mqtt` or `jt808`"),
    };
    let mut config = SimConfig::default()
        .with_scenario(&args.scenario)
        .map_err(anyhow::Error::msg)?;
    if let Some(spec) = &args.inject {
        config
            .injections
            .apply(spec)
            .map_err(|e| anyhow::anyhow!("--inject: {e}"))?;
    }
    config.seed = args.seed;
    config.trucks = args.trucks;
    config.hours = args.hours;
    config.interval_s = args.interval;
    config.sigma_m = args.sigma;
    config.start = DateTime::parse_from_rfc3339(&args.start)
        .context("--start must be RFC 3339, e.g. 2021-06-01T21:00:00+08:00")?;
    config.tz = args
        .timezone
        .parse()
        .map_err(|e| anyhow::anyhow!("--timezone: {e}"))?;
    if u64::from(args.interval) * args.batch as u64 >= config.rules.gap_silence_s {
        eprintln!(
            "warning: a batch spans {} s of a terminal's fixes, which muckwatch sees as that much silence of the others (TRACK_GAP after {} s)",
            u64::from(args.interval) * args.batch as u64,
            config.rules.gap_silence_s
        );
    }

    let fences =
        FenceSet::load_dir(&args.geofences).map_err(|e| anyhow::anyhow!("geofences: {e}"))?;
    let mut fleet = Fleet::plan(Arc::new(fences), &config).map_err(anyhow::Error::msg)?;
    let cheats = fleet.roles.iter().filter(|r| **r != Role::Honest).count();
    eprintln!(
        "fleet: {} trucks ({} scripted, {} honest), {} h from {}, seed {}",
        fleet.len(),
        cheats,
        fleet.len() - cheats,
        args.hours,
        args.start,
        args.seed
    );

    if let (Some(api), Some(token)) = (&args.api, &args.token) {
        let r = seed::through_api(api, token, &fleet.seed).await?;
        eprintln!(
            "seeded {api}: {} created, {} already there",
            r.created, r.existing
        );
    }
    let (fixes, messages, secs) = if args.dry_run {
        let started = std::time::Instant::now();
        (fleet.run_dry(), 0, started.elapsed().as_secs_f64())
    } else {
        let options =
            PublishOptions {
                host,
                port,
                prefix: args.prefix.clone(),
                qos,
                batch: args.batch,
                speedup,
                rate,
                max_wall: args.duration.map(Duration::from_secs_f64),
                progress: !args.quiet,
                client_id: format!("muckwatch-sim-{}-{}", args.seed, std::process::id()),
                login: args.username.clone().zip(args.password.clone()).map(
                    |(username, password)| muckwatch::configuration::MqttLogin {
                        username,
                        password,
                    },
                ),
                jt808,
            };
        let s = publish(&mut fleet, &options).await?;
        (s.fixes, s.messages, s.wall.as_secs_f64())
    };
    let (header, offset) = (fleet.header.clone(), fleet.offset());
    let reached = chrono::DateTime::from_timestamp_millis(fleet.sim_time_ms().min(header.end_ms))
        .map(|t| t.with_timezone(&offset).to_rfc3339())
        .unwrap_or_default();
    let truth = fleet.finish();
    std::fs::write(&args.truth, Fleet::truth_ndjson(&header, &truth, offset))
        .with_context(|| format!("cannot write {}", args.truth.display()))?;
    println!(
        "sent {fixes} fixes in {messages} messages in {secs:.1} s: {:.0} fixes/s; simulated until {reached}\ninjected: {}\nground truth: {}",
        fixes as f64 / secs.max(1e-9),
        describe_counts(&count_by_code(&truth)),
        args.truth.display()
    );
    Ok(())
}

fn parse_broker(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url
        .strip_prefix("mqtt://")
        .context("--broker must look like mqtt://host:port")?;
    match rest.trim_end_matches('/').rsplit_once(':') {
        Some((h, p)) => Ok((h.to_string(), p.parse().context("bad port in --broker")?)),
        None => Ok((rest.to_string(), 1883)),
    }
}
