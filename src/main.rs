//! The `muckwatch` command line: serve, demo, token, replay, fences, score.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use muckwatch::auth::{new_token, token_hash, Role};
use muckwatch::configuration::{Overrides, Settings};
use muckwatch::startup::Application;
use muckwatch::store::Store;

#[derive(Parser)]
#[command(
    name = "muckwatch",
    version,
    about = "Watches construction-waste trucks: GPS over MQTT, geofence rules, joint cases"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything: broker (embedded unless --mqtt-url), ingest, HTTP API.
    Serve(ServeArgs),
    /// Serve with the sample city, a seeded fleet and the simulator driving it through
    /// an accelerated night with scripted violations; prints tokens and where to look.
    Demo(DemoArgs),
    /// Compare the violations in the database with a simulator's ground truth file.
    Score {
        /// Ground truth NDJSON written by muckwatch-sim or demo.
        #[arg(long)]
        truth: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
        /// A detection matches a truth entry within this many seconds of its span.
        #[arg(long, default_value_t = 300)]
        tolerance_s: u32,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Run NDJSON fixes through detection (no MQTT) and print the violations raised.
    Replay {
        /// NDJSON file of telemetry fix objects.
        file: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
        /// Geofence directory.
        #[arg(long)]
        geofences: Option<PathBuf>,
    },
    /// Protocol gateways that run on their own, in front of a broker.
    Gateway {
        #[command(subcommand)]
        command: GatewayCommand,
    },
    /// Geofence tools.
    Fences {
        #[command(subcommand)]
        command: FencesCommand,
    },
    /// MQTT access for external brokers.
    Mqtt {
        #[command(subcommand)]
        command: MqttCommand,
    },
}

#[derive(Subcommand)]
enum MqttCommand {
    /// Write a Mosquitto password file and ACL file (DIR/passwd, DIR/acl) from the
    /// devices' credentials and muckwatch's own login (mqtt.username, mqtt.password);
    /// rerun after issuing credentials, then send Mosquitto SIGHUP.
    MosquittoFiles {
        /// Directory to write `passwd` and `acl` into.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Args, Clone, Default)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Use this MQTT broker instead of the embedded one (mqtt://host:port).
    #[arg(long)]
    mqtt_url: Option<String>,
    /// Where the embedded broker listens (port 0 picks a free one).
    #[arg(long)]
    mqtt_listen: Option<String>,
    /// Geofence directory.
    #[arg(long)]
    geofences: Option<PathBuf>,
    /// HTTP listen address.
    #[arg(long)]
    http: Option<String>,
    /// Buckets this instance consumes, e.g. 0-31.
    #[arg(long)]
    buckets: Option<String>,
    /// The embedded broker refuses clients without valid credentials (devices:
    /// their mqtt-credentials; officers: username `token`, an API token).
    /// Always on when --mqtt-listen is not a loopback address.
    #[arg(long)]
    mqtt_auth: bool,
    /// Accept JT/T 808 terminals on this address (off when not given).
    #[arg(long)]
    jt808_listen: Option<String>,
}

#[derive(Args, Clone)]
struct DemoArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Trucks in the fleet.
    #[arg(long, default_value_t = 30)]
    trucks: usize,
    /// Random seed of the fleet.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated seconds per second.
    #[arg(long, default_value_t = 60.0)]
    speedup: f64,
    /// Simulated hours from 21:00 (9: the whole night).
    #[arg(long, default_value_t = 9.0)]
    hours: f64,
    /// GPS noise, metres (standard deviation per axis).
    #[arg(long, default_value_t = 8.0)]
    sigma: f64,
    /// Seconds between two reports of a terminal.
    #[arg(long, default_value_t = 10)]
    interval: u32,
    /// Where to write the ground truth.
    #[arg(long, default_value = "muckwatch-demo-truth.ndjson")]
    truth: PathBuf,
    /// The whole fleet over MQTT JSON (by default every second truck
    /// reports over JT/T 808 through the gateway, `--jt808-listen` or a free
    /// loopback port).
    #[arg(long)]
    no_jt808: bool,
}

#[derive(Args, Clone, Default)]
struct CommonArgs {
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// sqlite://FILE or postgres://...
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token; it is printed as the last word of the output.
    Create {
        /// admin, dept:<urban|police|housing|transport|ecology> or firm:<firm_id>
        #[arg(long)]
        role: String,
        /// The token stops working after this long: 90m, 12h, 30d (never by default).
        #[arg(long)]
        expires_in: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List the tokens: id, role, created, expires, state (never the token itself).
    List {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Revoke a token by the id `token list` shows (8 or more of its hex digits).
    Revoke {
        id: String,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Subcommand)]
enum GatewayCommand {
    /// JT/T 808 terminals over TCP, published to the broker's telemetry topics.
    Jt808 {
        /// Where terminals connect.
        #[arg(long)]
        listen: Option<String>,
        /// The broker to publish to (mqtt://host:port).
        #[arg(long)]
        mqtt_url: Option<String>,
        /// Serve /metrics and /healthz on this address.
        #[arg(long)]
        http: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Subcommand)]
enum FencesCommand {
    /// Read NDJSON {"lat":..,"lon":..} on stdin; write which fences contain each point.
    Check {
        #[arg(long, default_value = "geofences")]
        geofences: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Demo(args) => demo(args).await,
        Command::Score {
            truth,
            common,
            tolerance_s,
        } => score(&truth, &common, tolerance_s).await,
        Command::Token { command } => token(command).await,
        Command::Mqtt {
            command: MqttCommand::MosquittoFiles { out, common },
        } => {
            let settings = settings(&common, Overrides::default())?;
            let login = settings.mqtt_login().ok_or_else(|| {
                anyhow::anyhow!(
                    "mqtt.password (or MUCKWATCH_MQTT_PASSWORD) must be set: it is the password \
                     muckwatch's own clients will log in to Mosquitto with"
                )
            })?;
            let store = Store::connect(&settings.database.url).await?;
            let devices = store.mqtt_credentials().await?;
            let (passwd, acl) = muckwatch::mqtt_access::mosquitto_files(
                &login,
                &devices,
                &settings.mqtt.topic_prefix,
            )?;
            muckwatch::mqtt_access::write_mosquitto_files(&out, &passwd, &acl)?;
            println!(
                "wrote {} and {} ({} devices and {}); reload Mosquitto with SIGHUP",
                out.join("passwd").display(),
                out.join("acl").display(),
                devices.len(),
                login.username
            );
            Ok(())
        }
        Command::Replay {
            file,
            common,
            geofences,
        } => {
            let flags = Overrides {
                geofences_dir: geofences,
                ..Default::default()
            };
            let settings = settings(&common, flags)?;
            let input = std::fs::File::open(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let summary = muckwatch::replay::run(
                &settings,
                std::io::BufReader::new(input),
                std::io::stdout(),
                std::io::stderr(),
            )
            .await?;
            eprintln!(
                "replayed {} fixes ({} refused): {} violations",
                summary.fixes, summary.refused, summary.violations
            );
            Ok(())
        }
        Command::Gateway {
            command:
                GatewayCommand::Jt808 {
                    listen,
                    mqtt_url,
                    http,
                    common,
                },
        } => gateway_jt808(listen, mqtt_url, http, &common).await,
        Command::Fences {
            command: FencesCommand::Check { geofences },
        } => {
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            muckwatch::geofence::check::run_check(&geofences, stdin.lock(), stdout.lock())
        }
    }
}

async fn token(command: TokenCommand) -> anyhow::Result<()> {
    use muckwatch::auth::{parse_expiry, TOKEN_ID_LEN};
    let now = chrono::Utc::now().timestamp_millis();
    let tz_of = |s: &Settings| s.city_timezone();
    match command {
        TokenCommand::Create {
            role,
            expires_in,
            common,
        } => {
            let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("--role: {e}"))?;
            let expires_ms = expires_in
                .as_deref()
                .map(parse_expiry)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?
                .map(|ms| now + ms);
            let settings = settings(&common, Overrides::default())?;
            let tz = tz_of(&settings)?;
            let store = Store::connect(&settings.database.url).await?;
            let token = new_token()?;
            let hash = token_hash(&token);
            store
                .create_token_expiring(&hash, &role, now, expires_ms)
                .await?;
            let expiry = expires_ms
                .map(|e| format!(", expires {}", muckwatch::time::format_ms(e, tz)))
                .unwrap_or_default();
            println!(
                "created token {} for role {role}{expiry}: {token}",
                &hash[..TOKEN_ID_LEN]
            );
            Ok(())
        }
        TokenCommand::List { common } => {
            let settings = settings(&common, Overrides::default())?;
            let tz = tz_of(&settings)?;
            let store = Store::connect(&settings.database.url).await?;
            let show = |t: Option<i64>| {
                t.map_or_else(|| "-".to_string(), |t| muckwatch::time::format_ms(t, tz))
            };
            println!(
                "{:<12}  {:<24}  {:<25}  {:<25}  STATE",
                "ID", "ROLE", "CREATED", "EXPIRES"
            );
            for t in store.tokens().await? {
                println!(
                    "{:<12}  {:<24}  {:<25}  {:<25}  {}",
                    t.id,
                    t.role.to_string(),
                    show(Some(t.created_ms)),
                    show(t.expires_ms),
                    t.state(now).as_str()
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id, common } => {
            let settings = settings(&common, Overrides::default())?;
            let store = Store::connect(&settings.database.url).await?;
            let t = store
                .revoke_token(&id, now)
                .await?
                .map_err(anyhow::Error::msg)?;
            println!("revoked token {} ({})", t.id, t.role);
            Ok(())
        }
    }
}

fn settings(common: &CommonArgs, mut flags: Overrides) -> anyhow::Result<Settings> {
    flags.database_url = common.database_url.clone();
    Settings::load(common.config.as_deref(), &flags)
}

fn serve_settings(args: ServeArgs) -> anyhow::Result<Settings> {
    let flags = Overrides {
        mqtt_url: args.mqtt_url,
        mqtt_listen: args.mqtt_listen,
        database_url: None,
        http_addr: args.http,
        geofences_dir: args.geofences,
        buckets: args.buckets,
        mqtt_auth: args.mqtt_auth,
        jt808_listen: args.jt808_listen,
    };
    settings(&args.common, flags)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = serve_settings(args)?;
    let app = Application::build(settings).await?;
    let shutdown = app.shutdown_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing pending writes");
        shutdown.trigger();
    });
    app.wait_subscribed(Duration::from_secs(30)).await?;
    app.run_until_stopped().await
}

async fn gateway_jt808(
    listen: Option<String>,
    mqtt_url: Option<String>,
    http: Option<String>,
    common: &CommonArgs,
) -> anyhow::Result<()> {
    let flags = Overrides {
        mqtt_url,
        jt808_listen: listen,
        ..Default::default()
    };
    let settings = settings(common, flags)?;
    let Some(listen) = settings.jt808.listen.clone() else {
        anyhow::bail!("gateway jt808 needs --listen ADDR (or [jt808] listen)");
    };
    let Some(url) = &settings.mqtt.url else {
        anyhow::bail!("gateway jt808 needs the broker to publish to: --mqtt-url mqtt://HOST:PORT");
    };
    let broker = muckwatch::configuration::MqttUrl::parse(url)?;
    let store = Store::connect(&settings.database.url).await?;
    let metrics = std::sync::Arc::new(muckwatch::metrics::Metrics::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(addr) = http {
        serve_gateway_metrics(&addr, metrics.clone()).await?;
    }
    let gateway =
        muckwatch::jt808::Gateway::start(&listen, &settings, broker, store, metrics, None, stop_rx)
            .await?;
    wait_for_signal().await;
    tracing::info!("shutting down the JT/T 808 gateway");
    stop_tx.send_replace(true);
    gateway.stopped().await;
    Ok(())
}

/// `/metrics` and `/healthz` of a gateway running on its own.
async fn serve_gateway_metrics(
    addr: &str,
    metrics: std::sync::Arc<muckwatch::metrics::Metrics>,
) -> anyhow::Result<()> {
    use axum::routing::get;
    let addr = muckwatch::configuration::parse_socket_addr(addr)
        .map_err(|e| anyhow::anyhow!("--http: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for HTTP on {addr}: {e}"))?;
    tracing::info!(addr = %listener.local_addr()?, "gateway metrics listening");
    let router = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { m.render() }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!(error = %e, "gateway metrics server stopped");
        }
    });
    Ok(())
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    use muckwatch::sim::demo;
    let mut settings = serve_settings(args.serve)?;
    if let Some(file) = demo::use_fresh_demo_database(&mut settings)? {
        eprintln!(
            "demo: using a fresh {} (--database-url to choose another)",
            file.display()
        );
    }
    let options = demo::DemoOptions {
        trucks: args.trucks,
        seed: args.seed,
        speedup: args.speedup,
        hours: args.hours,
        sigma_m: args.sigma,
        interval_s: args.interval,
        truth: args.truth,
        jt808_half: !args.no_jt808,
    };
    demo::run(settings, options, wait_for_signal()).await
}

async fn score(
    truth_file: &std::path::Path,
    common: &CommonArgs,
    tolerance_s: u32,
) -> anyhow::Result<()> {
    use muckwatch::sim::{score, truth};
    let text = std::fs::read_to_string(truth_file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", truth_file.display()))?;
    let (header, entries) =
        truth::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", truth_file.display()))?;
    let settings = settings(common, Overrides::default())?;
    let store = Store::connect(&settings.database.url).await?;
    let tolerance_ms = i64::from(tolerance_s) * 1000;
    let detected = score::load_detected(&store, header.as_ref(), tolerance_ms).await?;
    // Times are shown in the city's offset on the night scored.
    let tz = settings.city_timezone()?;
    let at_ms = header
        .as_ref()
        .map_or_else(|| chrono::Utc::now().timestamp_millis(), |h| h.start_ms);
    let offset = chrono::Offset::fix(
        chrono::DateTime::from_timestamp_millis(at_ms)
            .unwrap_or_default()
            .with_timezone(&tz)
            .offset(),
    );
    println!(
        "{}",
        score::table(&score::score(&entries, &detected, tolerance_ms), offset)
    );
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_tracing() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let default = "info,rumqttd=warn,sqlx=warn";
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| default.parse().unwrap_or_default());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(filter)
        .init();
}
