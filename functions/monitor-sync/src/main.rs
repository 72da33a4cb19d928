//! monitor-sync: follows the ingestion job; at its end marks the covered changes, records the
//! job, frees the job slot and notifies. Also handles a round that failed without a job result.

#[cfg(test)]
mod fake_aws;
mod handler;

use kb_autosync_aws::{
    clients::AwsClients, config, knowledge_base::KnowledgeBase, metadata_table::MetadataTable,
    metrics::Metrics,
};
use kb_autosync_aws::{
    notifier::Notifier, sources_table::SourcesTable, tracking_table::TrackingTable,
};
use kb_autosync_core::workflow::MonitorRequest;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    kb_autosync_aws::logging::init();
    let handler = match build().await {
        Ok(handler) => handler,
        Err(err) => {
            tracing::error!(error = %err, "monitor-sync cannot start");
            return Err(err);
        }
    };
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<MonitorRequest>| async move { handler.handle(event.payload).await })).await
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
        metrics: Metrics::new(config::metrics_namespace()),
    })
}
