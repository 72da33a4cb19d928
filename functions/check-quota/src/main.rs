//! check-quota: decides whether the round may start its job now, or how long to wait.

mod handler;

use kb_autosync_aws::serve::serve;
use kb_autosync_aws::tracking_table::TrackingTable;
use kb_autosync_aws::{
    clients::AwsClients, config, executions::Executions, knowledge_base::KnowledgeBase,
    sources_table::SourcesTable,
};
use kb_autosync_core::workflow::WorkflowState;
use lambda_runtime::{Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    serve(
        "check-quota",
        build(),
        async |handler: &handler::CheckQuota, event: LambdaEvent<WorkflowState>| {
            handler.handle(event.payload).await
        },
    )
    .await
}

async fn build() -> Result<handler::CheckQuota, Error> {
    let aws = AwsClients::from_env().await;
    Ok(handler::CheckQuota {
        knowledge_base: KnowledgeBase::new(aws.bedrock.clone()),
        sources: SourcesTable::new(aws.dynamodb.clone(), config::sources_table()?),
        executions: Executions::new(aws.sfn.clone(), config::state_machine_arn()?),
        quota: config::ingestion_quota()?,
        tracking: TrackingTable::new(aws.dynamodb.clone(), config::tracking_table()?),
        routes: config::routes()?,
        direct: config::direct_settings()?,
    })
}
