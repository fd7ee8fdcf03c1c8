//! The `muckwatch` command line: serve, token, replay, fences.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use muckwatch::auth::{new_token, token_hash, Role};
use muckwatch::configuration::{Overrides, Settings};
use muckwatch::startup::Application;
use muckwatch::store::Store;

#[derive(Parser)]
#[command(name = "muckwatch", version, about = "Watches construction-waste trucks: GPS over MQTT, geofence rules, joint cases")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything: broker (embedded unless --mqtt-url), ingest, HTTP API.
    Serve(ServeArgs),
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
    /// Geofence tools.
    Fences {
        #[command(subcommand)]
        command: FencesCommand,
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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
        Command::Token { command: TokenCommand::Create { role, common } } => {
            let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("--role: {e}"))?;
            let settings = settings(&common, Overrides::default())?;
            let store = Store::connect(&settings.database.url).await?;
            let token = new_token()?;
            store.create_token(&token_hash(&token), &role, chrono::Utc::now().timestamp_millis()).await?;
            println!("created token for role {role}: {token}");
            Ok(())
        }
        Command::Replay { file, common, geofences } => {
            let flags = Overrides { geofences_dir: geofences, ..Default::default() };
            let settings = settings(&common, flags)?;
            let input = std::fs::File::open(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let summary = muckwatch::replay::run(&settings, std::io::BufReader::new(input), std::io::stdout(), std::io::stderr()).await?;
            eprintln!("replayed {} fixes ({} refused): {} violations", summary.fixes, summary.refused, summary.violations);
            Ok(())
        }
        Command::Fences { command: FencesCommand::Check { geofences } } => {
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            muckwatch::geofence::check::run_check(&geofences, stdin.lock(), stdout.lock())
        }
    }
}

fn settings(common: &CommonArgs, mut flags: Overrides) -> anyhow::Result<Settings> {
    flags.database_url = common.database_url.clone();
    Settings::load(common.config.as_deref(), &flags)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let flags = Overrides {
        mqtt_url: args.mqtt_url,
        mqtt_listen: args.mqtt_listen,
        database_url: None,
        http_addr: args.http,
        geofences_dir: args.geofences,
        buckets: args.buckets,
    };
    let settings = settings(&args.common, flags)?;
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
