//! `kb-autosync-local demo` runs the demo; `kb-autosync-local up [--config FILE]` keeps a local
//! stack up.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use kb_autosync_local::demo;
use kb_autosync_local::stack::{project_root, LocalStack};
use kb_autosync_local::up_config::UpConfig;

#[derive(Parser)]
#[command(about = "kb-autosync on the local stack (no AWS account needed)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Upload, overwrite, delete and burst files; show notifications, the tracking table, a summary.
    Demo,
    /// Start the local stack with the demo's timings and keep it up until Ctrl-C.
    Up {
        /// JSON file with the routes, the emulator's knowledge bases and job durations, the time
        /// scale and template parameters (see local/examples/many-routes.json). Default: one
        /// knowledge base with one data source on s3://kb-autosync-demo/docs/.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo::run().await,
        Command::Up { config } => up(config).await,
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn up(config: Option<PathBuf>) -> Result<(), String> {
    let state_dir = project_root().join(".local/up");
    let options = match &config {
        Some(path) => UpConfig::load(path)?.options(state_dir),
        None => demo::demo_options(state_dir),
    };
    let stack = LocalStack::start(options)
        .await
        .map_err(|e| e.to_string())?;
    let i = &stack.info;
    println!("kb-autosync local stack is up (Ctrl-C stops it).");
    println!("  AWS endpoint (moto):      {}", i.moto_endpoint);
    println!(
        "  Bedrock Agent emulator:   {}",
        i.emulator_endpoint.clone().unwrap_or_default()
    );
    for route in &i.routes {
        println!(
            "  route:                    s3://{}/{} -> {}/{}",
            route["bucket"].as_str().unwrap_or_default(),
            route["prefix"].as_str().unwrap_or_default(),
            route["knowledge_base_id"].as_str().unwrap_or_default(),
            route["data_source_id"]
                .as_str()
                .filter(|ds| !ds.is_empty())
                .unwrap_or("(resolved at cold start)")
        );
    }
    println!("  tracking table:           {}", i.tracking_table);
    println!("  notifications queue:      {}", i.notifications_queue_url);
    println!("  function logs:            {}", i.logs_dir.display());
    let first_prefix = i
        .routes
        .first()
        .and_then(|r| r["prefix"].as_str())
        .unwrap_or_default();
    let first_kb = i
        .routes
        .first()
        .and_then(|r| r["knowledge_base_id"].as_str())
        .unwrap_or(demo::KNOWLEDGE_BASE_ID);
    println!("Try (credentials: AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION={}):", i.region);
    println!(
        "  aws --endpoint-url {} s3 cp README.md s3://{}/{}readme.md",
        i.moto_endpoint, i.bucket, first_prefix
    );
    println!(
        "  aws --endpoint-url {} dynamodb scan --table-name {}",
        i.moto_endpoint, i.tracking_table
    );
    println!(
        "  aws --endpoint-url {} sqs receive-message --queue-url {}",
        i.moto_endpoint, i.notifications_queue_url
    );
    println!(
        "  target/debug/autosync --endpoint-url {} --bedrock-endpoint-url {} status   (also: changes, jobs, sync --kb {}, doctor)",
        i.moto_endpoint,
        i.emulator_endpoint.clone().unwrap_or_default(),
        first_kb
    );
    println!(
        "  curl {}/_emulator/state",
        i.emulator_endpoint.clone().unwrap_or_default()
    );
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    drop(stack);
    Ok(())
}
