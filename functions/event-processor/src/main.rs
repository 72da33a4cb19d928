//! event-processor: S3 change events (EventBridge via the change events queue, S3 notifications
//! direct or through SNS, or invoked directly) -> change records in the tracking table -> sync
//! requests on the sync queue.

mod handler;

use kb_autosync_aws::serve::serve;
use kb_autosync_aws::{
    clients::AwsClients, config, knowledge_base::KnowledgeBase, route_resolution,
};
use kb_autosync_aws::{
    objects::ObjectStore, sources_table::SourcesTable, sync_queue::SyncQueue,
    tracking_table::TrackingTable,
};
use kb_autosync_core::direct::IngestionMode;
use lambda_runtime::{Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    serve(
        "event-processor",
        build(),
        async |handler: &handler::EventProcessor, event: LambdaEvent<serde_json::Value>| {
            handler.handle(event.payload).await
        },
    )
    .await
}

async fn build() -> Result<handler::EventProcessor, Error> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let aws = AwsClients::from_config(&sdk);
    let routes = config::routes()?;
    let routes =
        route_resolution::resolve_routes(&routes, &KnowledgeBase::new(aws.bedrock.clone())).await?;
    tracing::info!(routes = %routes.summary(), "routes");
    let direct = config::direct_settings()?;
    Ok(handler::EventProcessor {
        routes: routes.clone(),
        tracking: TrackingTable::new(aws.dynamodb.clone(), config::tracking_table()?),
        sources: SourcesTable::new(aws.dynamodb.clone(), config::sources_table()?),
        objects: ObjectStore::from_config(&sdk),
        queue: SyncQueue::new(
            aws.sqs.clone(),
            config::sync_queue_url()?,
            config::sync_delay_seconds()?,
        )
        .with_direct_delay(
            config::direct_sync_delay_seconds()?,
            routes
                .sources()
                .into_iter()
                .filter(|source| routes.ingestion_mode(source, direct.mode) != IngestionMode::Job),
        ),
        retention_days: config::retention_days()?,
        metrics: config::metrics(),
    })
}
