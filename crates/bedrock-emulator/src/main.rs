//! `bedrock-emulator`: serves the Bedrock Agent ingestion API on loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use bedrock_emulator::ready::{ready_line, write_ready_file};
use bedrock_emulator::{Emulator, EmulatorConfig, S3ObjectLister, SystemClock, TimeScale};
use clap::{Parser, ValueEnum};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(name = "bedrock-emulator", version, about)]
struct Args {
    /// JSON config file (knowledge bases, data sources, timing, quotas, faults). Without it the
    /// emulator starts empty; knowledge bases can then be added through /_emulator/knowledge-bases.
    #[arg(long, env = "BEDROCK_EMULATOR_CONFIG")]
    config: Option<PathBuf>,

    /// Port to listen on; 0 picks a free one (announced on stdout and in --ready-file).
    #[arg(long, env = "BEDROCK_EMULATOR_PORT", default_value_t = 0)]
    port: u16,

    /// Address to listen on. Loopback by default: the emulator has no authentication.
    #[arg(long, env = "BEDROCK_EMULATOR_HOST", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,

    /// S3 endpoint jobs list data sources through, e.g. a moto server at http://127.0.0.1:5000.
    #[arg(long, env = "BEDROCK_EMULATOR_S3_ENDPOINT")]
    s3_endpoint: String,

    /// Run N times faster than Bedrock: job durations are divided by N and the token buckets refill
    /// N times faster.
    #[arg(long, env = "BEDROCK_EMULATOR_TIME_SCALE", default_value_t = 1.0)]
    time_scale: f64,

    /// Also write the readiness line `{"endpoint":"http://127.0.0.1:PORT"}` to this file.
    #[arg(long, env = "BEDROCK_EMULATOR_READY_FILE")]
    ready_file: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(long, env = "BEDROCK_EMULATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("bedrock-emulator: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let config = match &args.config {
        Some(path) => EmulatorConfig::load(path).map_err(|error| error.to_string())?,
        None => EmulatorConfig::default(),
    };
    let time_scale = TimeScale::new(args.time_scale)?;
    let lister = Arc::new(S3ObjectLister::new(
        &args.s3_endpoint,
        &config.region,
        &config.s3,
    ));
    let emulator = Emulator::new(config, time_scale, lister, Arc::new(SystemClock::new()))
        .map_err(|error| error.to_string())?;

    let listener = TcpListener::bind(SocketAddr::new(args.host, args.port))
        .await
        .map_err(|error| format!("cannot listen on {}:{}: {error}", args.host, args.port))?;
    let local_addr = listener.local_addr().map_err(|error| error.to_string())?;
    // Only announce once the socket is bound: connections from here on are queued, not refused.
    // The file goes first, so whoever saw the stdout line can also rely on the file.
    let line = ready_line(local_addr);
    if let Some(path) = &args.ready_file {
        write_ready_file(path, &line)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    }
    println!("{line}");
    tracing::info!(endpoint = %format!("http://{local_addr}"), time_scale = time_scale.factor(), s3_endpoint = %args.s3_endpoint, "bedrock emulator listening");

    bedrock_emulator::server::serve_until(emulator, listener, shutdown_signal())
        .await
        .map_err(|error| format!("server error: {error}"))?;
    tracing::info!("bedrock emulator stopped");
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Ctrl-C or SIGTERM (what a launcher sends).
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
