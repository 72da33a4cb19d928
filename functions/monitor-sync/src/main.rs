//! monitor-sync: follows the ingestion job; at its end marks the covered changes, records the
//! job, frees the job slot and notifies. Also handles a round that failed without a job result.

mod handler;

use kb_autosync_aws::serve::serve;
use kb_autosync_aws::{
    clients::AwsClients, config, knowledge_base::KnowledgeBase, metadata_table::MetadataTable,
};
use kb_autosync_aws::{
    notifier::Notifier, sources_table::SourcesTable, tracking_table::TrackingTable,
};
use kb_autosync_core::workflow::MonitorRequest;
use lambda_runtime::{Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    serve(
        "monitor-sync",
        build(),
        async |handler: &handler::MonitorSync, event: LambdaEvent<MonitorRequest>| {
            handler.handle(event.payload).await
        },
    )
    .await
}

async fn build() -> Result<handler::MonitorSync, Error> {
    let aws = AwsClients::from_env().await;
    Ok(handler::MonitorSync {
        knowledge_base: KnowledgeBase::new(aws.bedrock.clone()),
        tracking: TrackingTable::new(aws.dynamodb.clone(), config::tracking_table()?),
        jobs: MetadataTable::new(
            aws.dynamodb.clone(),
            config::metadata_table()?,
            config::retention_days()?,
        ),
        sources: SourcesTable::new(aws.dynamodb.clone(), config::sources_table()?),
        notifier: Notifier::new(aws.sns.clone(), config::topic_arn()?),
        metrics: config::metrics(),
    })
}
