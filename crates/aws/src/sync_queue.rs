//! The sync request queue. Requests are sent in batches of ten with the configured delay, which
//! lets a burst of uploads coalesce into one sync-processor batch.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use kb_autosync_core::sync_request::SyncRequest;

use crate::AwsError;

#[derive(Clone, Debug)]
pub struct SyncQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    delay_seconds: i32,
}

impl SyncQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>, delay_seconds: i32) -> Self {
        Self {
            client,
            url: url.into(),
            delay_seconds,
        }
    }

    /// Sends every request; an entry SQS refuses is an error naming it.
    pub async fn send_all(&self, requests: &[SyncRequest]) -> Result<(), AwsError> {
        for chunk in requests.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, request)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("r{i}"))
                        .message_body(request.to_body())
                        .delay_seconds(self.delay_seconds)
                        .build()
                        .map_err(|e| {
                            AwsError::new("SendMessageBatch", "InvalidEntry", e.to_string())
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("SendMessageBatch", e))?;
            if let Some(failed) = out.failed.first() {
                return Err(AwsError::new(
                    "SendMessageBatch",
                    failed.code.clone(),
                    format!(
                        "{} of {} sync requests refused: {}",
                        out.failed.len(),
                        chunk.len(),
                        failed.message.clone().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }
}
