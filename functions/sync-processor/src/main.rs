//! sync-processor: sync requests (SQS) -> per data source, count them, claim or heal the lease,
//! start one state machine execution per round. The state machine also calls it when a round
//! must go again (go on in the same execution, or hand the lease over to the next round's).

mod handler;
mod round;
mod sweep;

use kb_autosync_aws::serve::serve;
use kb_autosync_aws::{clients::AwsClients, config, executions::Executions};
use kb_autosync_aws::{sources_table::SourcesTable, tracking_table::TrackingTable};
use lambda_runtime::{Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    serve(
        "sync-processor",
        build(),
        async |handler: &handler::SyncProcessor, event: LambdaEvent<serde_json::Value>| {
            handler.dispatch(event.payload).await
        },
    )
    .await
}

async fn build() -> Result<handler::SyncProcessor, Error> {
    let aws = AwsClients::from_env().await;
    let sources = SourcesTable::new(aws.dynamodb.clone(), config::sources_table()?);
    let executions = Executions::new(aws.sfn.clone(), config::state_machine_arn()?);
    Ok(handler::SyncProcessor {
        sources: sources.clone(),
        executions: executions.clone(),
        rounds: round::Rounds {
            sources,
            executions,
            settings: config::workflow_settings()?,
            claim_grace_ms: config::lease_claim_grace_ms()?,
            hand_over: config::hand_over_policy()?,
        },
        tracking: TrackingTable::new(aws.dynamodb.clone(), config::tracking_table()?),
        metrics: config::metrics(),
    })
}
