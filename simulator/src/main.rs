//! `muckwatch-sim`: publishes a fleet of muck trucks to any MQTT broker.
//!
//! Each truck reports on the contract's topic
//! `{prefix}/pos/{crc32(device_id) % 64}/{device_id}`. Simulated time runs
//! from `--start` and advances `--interval` seconds per report, however fast
//! the fixes are actually sent, so rules see plausible event times.
//!
//! The `honest` scenario drives trucks that break no rule; the ground truth
//! file (NDJSON of injected violations) is written either way so detection
//! can be scored.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, FixedOffset};
use clap::Parser;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

mod fleet;

use fleet::Fleet;

#[derive(Parser, Debug)]
#[command(name = "muckwatch-sim", version, about = "Publishes a simulated muck-truck fleet over MQTT")]
struct Args {
    /// Broker to publish to.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    broker: String,
    /// Number of trucks.
    #[arg(long, default_value_t = 100)]
    trucks: u32,
    /// Fixes per second across the fleet, or `max`.
    #[arg(long, default_value = "100")]
    rate: String,
    /// Wall-clock seconds to run.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Random seed; the same seed gives the same fleet and fixes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Scenario: `honest` (no violations).
    #[arg(long, default_value = "honest")]
    scenario: String,
    /// Simulated start time (RFC 3339).
    #[arg(long, default_value = "2021-06-01T21:00:00+08:00")]
    start: String,
    /// Simulated seconds between two reports of one truck.
    #[arg(long, default_value_t = 10)]
    interval: u32,
    /// Fixes per MQTT message (1 = a single object, more = a JSON array).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// MQTT QoS for publishes (0 or 1).
    #[arg(long, default_value_t = 0)]
    qos: u8,
    /// Topic root.
    #[arg(long, default_value = "muckwatch/v1")]
    prefix: String,
    /// Where to write the ground truth (NDJSON).
    #[arg(long, default_value = "sim-truth.ndjson")]
    truth: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.scenario != "honest" {
        bail!("--scenario `{}` is not known (available: honest)", args.scenario);
    }
    if args.batch == 0 || args.batch > 1000 {
        bail!("--batch must be 1..1000");
    }
    let qos = match args.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        q => bail!("--qos {q}: only 0 and 1"),
    };
    let rate: Option<f64> = match args.rate.as_str() {
        "max" => None,
        r => Some(r.parse::<f64>().ok().filter(|r| *r > 0.0).context("--rate must be a positive number or `max`")?),
    };
    let start: DateTime<FixedOffset> =
        DateTime::parse_from_rfc3339(&args.start).context("--start must be RFC 3339")?;
    let (host, port) = parse_broker(&args.broker)?;

    let mut opts = MqttOptions::new(format!("muckwatch-sim-{}", std::process::id()), host, port);
    opts.set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_inflight(1000)
        .set_request_channel_capacity(10_000);
    let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
    let poller = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => eprintln!("connected"),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("broker connection: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });

    std::fs::File::create(&args.truth).with_context(|| format!("cannot write {}", args.truth))?;
    let mut fleet = Fleet::new(args.trucks, args.seed, start, args.interval);
    let started = Instant::now();
    let limit = Duration::from_secs_f64(args.duration);
    let mut sent: u64 = 0;
    let mut last_report = Instant::now();
    while started.elapsed() < limit {
        let (topic, payload, n) = fleet.next_message(&args.prefix, args.batch);
        client.publish(topic, qos, false, payload).await.context("publish")?;
        sent += n as u64;
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(sent as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            eprint!("\rsent {sent} fixes in {secs:.0} s ({:.0}/s), sim time {}   ", sent as f64 / secs, fleet.sim_time());
            let _ = std::io::stderr().flush();
        }
    }
    // Let the last publishes leave before disconnecting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = client.disconnect().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    poller.abort();
    let secs = started.elapsed().as_secs_f64();
    eprintln!();
    println!(
        "sent {sent} fixes from {} trucks in {secs:.1} s: {:.0} fixes/s; simulated until {}; ground truth: {} (0 violations injected)",
        args.trucks,
        sent as f64 / secs,
        fleet.sim_time(),
        args.truth
    );
    Ok(())
}

fn parse_broker(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url.strip_prefix("mqtt://").context("--broker must look like mqtt://host:port")?;
    match rest.trim_end_matches('/').rsplit_once(':') {
        Some((h, p)) => Ok((h.to_string(), p.parse().context("bad port in --broker")?)),
        None => Ok((rest.to_string(), 1883)),
    }
}
