//! `kb-autosync-local demo` runs the demo; `kb-autosync-local up` keeps a local stack up.

use clap::{Parser, Subcommand};
use kb_autosync_local::demo;
use kb_autosync_local::stack::{project_root, LocalStack};

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
    Up,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo::run().await,
        Command::Up => up().await,
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn up() -> Result<(), String> {
    let stack = LocalStack::start(demo::demo_options(project_root().join(".local/up")))
        .await
        .map_err(|e| e.to_string())?;
    let i = &stack.info;
    println!("kb-autosync local stack is up (Ctrl-C stops it).");
    println!("  AWS endpoint (moto):      {}", i.moto_endpoint);
    println!(
        "  Bedrock Agent emulator:   {}",
        i.emulator_endpoint.clone().unwrap_or_default()
    );
    println!(
        "  bucket:                   s3://{}/{}",
        i.bucket,
        demo::PREFIX
    );
    println!("  tracking table:           {}", i.tracking_table);
    println!("  notifications queue:      {}", i.notifications_queue_url);
    println!("  function logs:            {}", i.logs_dir.display());
    println!("Try (credentials: AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION={}):", i.region);
    println!(
        "  aws --endpoint-url {} s3 cp README.md s3://{}/{}readme.md",
        i.moto_endpoint,
        i.bucket,
        demo::PREFIX
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
        demo::KNOWLEDGE_BASE_ID
    );
    println!(
        "  curl {}/_emulator/state",
        i.emulator_endpoint.clone().unwrap_or_default()
    );
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    drop(stack);
    Ok(())
}
