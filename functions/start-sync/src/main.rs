//! start-sync: starts the round's ingestion job, exactly once per attempt.

mod direct;
mod handler;
mod pacer;

use kb_autosync_aws::serve::serve;
use kb_autosync_aws::{
    clients::AwsClients, config, knowledge_base::KnowledgeBase, metadata_table::MetadataTable,
    sources_table::SourcesTable, tracking_table::TrackingTable,
};
use kb_autosync_aws::{notifier::Notifier, objects::ObjectStore};
use kb_autosync_core::workflow::WorkflowState;
use lambda_runtime::{Error, LambdaEvent};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Error> {
    serve(
        "start-sync",
        build(),
        async |handler: &handler::StartSync, event: LambdaEvent<WorkflowState>| {
            let deadline = direct_deadline(event.context.deadline);
            handler.handle(event.payload, deadline).await
        },
    )
    .await
}

/// Time kept back from the invocation's deadline for marking, recording and notifying after a
/// direct batch stops waiting.
const AFTER_WAIT_MARGIN: Duration = Duration::from_secs(10);

/// When a direct batch must stop waiting: the invocation's deadline (ms since the epoch) less
/// the margin.
fn direct_deadline(deadline_ms: u64) -> Instant {
    let remaining = (deadline_ms as i64 - kb_autosync_aws::now_ms()).max(0) as u64;
    Instant::now() + Duration::from_millis(remaining).saturating_sub(AFTER_WAIT_MARGIN)
}

async fn build() -> Result<handler::StartSync, Error> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let aws = AwsClients::from_config(&sdk);
    let sources = SourcesTable::new(aws.dynamodb.clone(), config::sources_table()?);
    let knowledge_base = KnowledgeBase::new(aws.bedrock.clone());
    let jobs = MetadataTable::new(
        aws.dynamodb.clone(),
        config::metadata_table()?,
        config::retention_days()?,
    );
    let tracking = TrackingTable::new(aws.dynamodb.clone(), config::tracking_table()?);
    let metrics = config::metrics();
    let direct = direct::DirectIngestion {
        knowledge_base: knowledge_base.clone(),
        objects: ObjectStore::from_config(&sdk),
        tracking: tracking.clone(),
        jobs: jobs.clone(),
        notifier: Notifier::new(aws.sns.clone(), config::topic_arn()?),
        metrics: metrics.clone(),
        routes: config::routes()?,
        settings: config::direct_settings()?,
    };
    Ok(handler::StartSync {
        direct,
        knowledge_base,
        sources,
        tracking,
        jobs,
        quota: config::ingestion_quota()?,
        start_in_flight_ms: config::lease_claim_grace_ms()?,
        metrics,
    })
}
