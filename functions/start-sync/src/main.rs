//! start-sync: starts the round's ingestion job, exactly once per attempt.

mod handler;

use kb_autosync_aws::{
    clients::AwsClients, config, knowledge_base::KnowledgeBase, metadata_table::MetadataTable,
    metrics::Metrics, sources_table::SourcesTable, tracking_table::TrackingTable,
};
use kb_autosync_core::workflow::WorkflowState;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    kb_autosync_aws::logging::init();
    let handler = match build().await {
        Ok(handler) => handler,
        Err(err) => {
            tracing::error!(error = %err, "start-sync cannot start");
            return Err(err);
        }
    };
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WorkflowState>| async move { handler.handle(event.payload).await },
    ))
    .await
}

async fn build() -> Result<handler::StartSync, Error> {
    let aws = AwsClients::from_env().await;
    Ok(handler::StartSync {
        knowledge_base: KnowledgeBase::new(aws.bedrock.clone()),
        sources: SourcesTable::new(aws.dynamodb.clone(), config::sources_table()?),
        tracking: TrackingTable::new(aws.dynamodb.clone(), config::tracking_table()?),
        jobs: MetadataTable::new(
            aws.dynamodb.clone(),
            config::metadata_table()?,
            config::retention_days()?,
        ),
        quota: config::ingestion_quota()?,
        start_in_flight_ms: config::lease_claim_grace_ms()?,
        metrics: Metrics::new(config::metrics_namespace()),
    })
}
