//! drift-check: the scheduled drift check (`DriftCheckSchedule`). For every routed data source,
//! compares its S3 scope with its documents in the knowledge base, records the changes that
//! repair the drift (as `autosync reconcile` does), emits `DriftedDocuments`, and sends one
//! notification when it repaired something.

mod handler;

use kb_autosync_aws::reconciler::Reconciler;
use kb_autosync_aws::serve::serve;
use kb_autosync_aws::{
    clients::AwsClients, config, knowledge_base::KnowledgeBase, notifier::Notifier,
    objects::ObjectStore, route_resolution, sources_table::SourcesTable, sync_queue::SyncQueue,
    tracking_table::TrackingTable,
};
use lambda_runtime::{Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    serve(
        "drift-check",
        build(),
        async |handler: &handler::DriftCheck, _: LambdaEvent<serde_json::Value>| {
            handler.handle().await.map_err(Error::from)
        },
    )
    .await
}

async fn build() -> Result<handler::DriftCheck, Error> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let aws = AwsClients::from_config(&sdk);
    let knowledge_base = KnowledgeBase::new(aws.bedrock.clone());
    let routes = route_resolution::resolve_routes(&config::routes()?, &knowledge_base).await?;
    Ok(handler::DriftCheck {
        sources: routes.sources(),
        knowledge_base,
        objects: ObjectStore::from_config(&sdk),
        reconciler: Reconciler {
            tracking: TrackingTable::new(aws.dynamodb.clone(), config::tracking_table()?),
            sources: SourcesTable::new(aws.dynamodb.clone(), config::sources_table()?),
            // No delay: the changes are already late.
            queue: SyncQueue::new(aws.sqs.clone(), config::sync_queue_url()?, 0),
            retention_days: config::retention_days()?,
        },
        notifier: Notifier::new(aws.sns.clone(), config::topic_arn()?),
        metrics: config::metrics(),
    })
}
