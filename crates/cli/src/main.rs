//! `autosync`: the operator CLI of kb-autosync.

use std::process::ExitCode;

use clap::Parser;

use kb_autosync_cli::cli::{Cli, Command};
use kb_autosync_cli::commands::{self, Invocation};
use kb_autosync_cli::context::Context;
use kb_autosync_cli::deployment::Deployment;
use kb_autosync_cli::doctor;
use kb_autosync_cli::error::CliError;
use kb_autosync_cli::output::{self, Style};

async fn run(cli: Cli) -> Result<i32, CliError> {
    let style = Style::detect(cli.no_color);
    let ctx = Context::new(&cli.target).await?;
    let deployment = {
        let _spinner =
            output::Spinner::start(style, &format!("finding stack {}", cli.target.stack_name));
        Deployment::find(&ctx, &cli.target.stack_name).await?
    };
    let inv = Invocation {
        ctx,
        deployment,
        style,
        json: cli.json,
    };
    match &cli.command {
        Command::Status(args) => commands::status::run(&inv, args).await,
        Command::Changes(args) => commands::changes::run(&inv, args).await,
        Command::Jobs(args) => commands::jobs::run(&inv, args).await,
        Command::Sync(args) => commands::sync::run(&inv, args).await,
        Command::Doctor => doctor::run(&inv).await,
        Command::Drift(args) => commands::drift::run(&inv, args).await,
        Command::Reconcile(args) => commands::reconcile::run(&inv, args).await,
        Command::Canary(args) => commands::canary::run(&inv, args).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
