//! The sync request queue. Requests are sent in batches of ten with the configured delay, which
//! lets a burst of uploads coalesce into one sync-processor batch. Data sources whose changes
//! may go direct get their own, shorter delay: a direct round is seconds long, and a burst
//! still coalesces into at most two jobs behind it.

use std::collections::HashSet;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use kb_autosync_core::sync_request::SyncRequest;

use crate::AwsError;

#[derive(Clone, Debug)]
pub struct SyncQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    delay_seconds: i32,
    /// (delay, `KB#DS` keys): the delay of requests for data sources that may go direct.
    direct_delay: Option<(i32, HashSet<String>)>,
}

impl SyncQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>, delay_seconds: i32) -> Self {
        Self {
            client,
            url: url.into(),
            delay_seconds,
            direct_delay: None,
        }
    }

    /// Requests for `sources` (data sources in `auto` or `direct` mode) wait `delay_seconds`.
    pub fn with_direct_delay(
        mut self,
        delay_seconds: i32,
        sources: impl IntoIterator<Item = kb_autosync_core::SourceId>,
    ) -> Self {
        let keys = sources.into_iter().map(|s| s.key()).collect();
        self.direct_delay = Some((delay_seconds, keys));
        self
    }

    pub fn delay_for(&self, request: &SyncRequest) -> i32 {
        match (&self.direct_delay, request) {
            (
                Some((delay, keys)),
                SyncRequest::Sync {
                    knowledge_base_id,
                    data_source_id,
                    ..
                },
            ) if keys.contains(&format!("{knowledge_base_id}#{data_source_id}")) => *delay,
            _ => self.delay_seconds,
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
                        .delay_seconds(self.delay_for(request))
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

#[cfg(test)]
mod tests {
    use kb_autosync_core::SourceId;

    use super::*;

    #[test]
    fn data_sources_that_may_go_direct_get_their_own_delay() {
        let client = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .build(),
        );
        let queue =
            SyncQueue::new(client, "q", 60).with_direct_delay(3, [SourceId::new("KB", "DIRECT")]);
        let direct = SyncRequest::for_change(&SourceId::new("KB", "DIRECT"), "c");
        let job = SyncRequest::for_change(&SourceId::new("KB", "JOB"), "c");
        assert_eq!(queue.delay_for(&direct), 3);
        assert_eq!(queue.delay_for(&job), 60);
        assert_eq!(queue.delay_for(&SyncRequest::Sweep), 60);
    }
}
