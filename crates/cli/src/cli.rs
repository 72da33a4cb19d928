//! Command line: global options that find the deployment, and one subcommand per question an
//! operator asks.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "autosync",
    version,
    about = "Operate a kb-autosync deployment: is the knowledge base in sync, what is pending, which job covered a file, is the setup right",
    after_help = "The deployment is found by its CloudFormation stack name. Credentials and region follow the standard AWS resolution (AWS_PROFILE, AWS_REGION, ~/.aws/config, SSO).\nAgainst the local stack: autosync --endpoint-url http://127.0.0.1:PORT --bedrock-endpoint-url http://127.0.0.1:PORT2 status"
)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,
    /// Print JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    /// Never colour the output (colour is used only on a terminal anyway; NO_COLOR also works).
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Target {
    /// CloudFormation stack name of the deployment.
    #[arg(
        long,
        global = true,
        env = "AUTOSYNC_STACK_NAME",
        default_value = "kb-autosync"
    )]
    pub stack_name: String,
    /// AWS profile (default: AWS_PROFILE, then the default profile).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// AWS region (default: AWS_REGION, then the profile's region).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Endpoint for every AWS service (the local stack's moto server).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Endpoint for Amazon Bedrock Agent (the local stack's Bedrock emulator).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL_BEDROCK_AGENT")]
    pub bedrock_endpoint_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// A row per data source: state, pending changes, last job, lease holder.
    Status(StatusArgs),
    /// Tracked changes, newest first, with the job that covered each.
    Changes(ChangesArgs),
    /// Ingestion job history, newest first, with statistics and failure reasons.
    Jobs(JobsArgs),
    /// Request a sync of a data source through the sync queue (the lease protocol applies).
    Sync(SyncArgs),
    /// Check the deployment's setup; exits non-zero when a check fails.
    Doctor,
    /// Compare each data source's S3 scope with its knowledge base documents: missing, stale,
    /// orphaned and failed documents; exits 1 when they disagree.
    Drift(DriftArgs),
    /// Record what `drift` finds (missing, stale, orphaned) as changes and sync them; running it
    /// twice records nothing new.
    Reconcile(ReconcileArgs),
    /// Send a canary object through every stage and back out; exits non-zero naming the first
    /// stage that did not happen, with its likely cause and fix.
    Canary(CanaryArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Count the changes of `autosync canary` too (left out of the pending and failed counts).
    #[arg(long)]
    pub include_canary: bool,
}

#[derive(Debug, Args)]
pub struct CanaryArgs {
    /// Only the routes of this knowledge base.
    #[arg(long)]
    pub kb: Option<String>,
    /// Only the routes of this data source.
    #[arg(long)]
    pub ds: Option<String>,
    /// Seconds the upload may take to reach the index, and again the delete to leave it.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Seconds between two looks at the tables, the execution and the index.
    #[arg(long, default_value_t = 1.0)]
    pub poll_seconds: f64,
}

#[derive(Debug, Args)]
pub struct ChangesArgs {
    /// Only changes waiting for a job.
    #[arg(long, conflicts_with = "failed")]
    pub pending: bool,
    /// Only changes whose job or document failed.
    #[arg(long)]
    pub failed: bool,
    /// Only keys starting with this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Show the changes of `autosync canary` too (left out by default).
    #[arg(long)]
    pub include_canary: bool,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only jobs of this knowledge base.
    #[arg(long)]
    pub kb: Option<String>,
    /// Only jobs of this data source.
    #[arg(long)]
    pub ds: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Knowledge base id.
    #[arg(long)]
    pub kb: String,
    /// Data source id (default: the one the deployment's routes sync for this knowledge base).
    #[arg(long)]
    pub ds: Option<String>,
    /// Seconds to wait for the sync request to be taken up.
    #[arg(long, default_value_t = 60)]
    pub wait_seconds: u64,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Only data sources of this knowledge base.
    #[arg(long)]
    pub kb: Option<String>,
    /// Only this data source.
    #[arg(long)]
    pub ds: Option<String>,
    /// Keys listed per category and data source (the counts are always complete).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Only data sources of this knowledge base.
    #[arg(long)]
    pub kb: Option<String>,
    /// Only this data source.
    #[arg(long)]
    pub ds: Option<String>,
}
