//! SNS notifications.

use crate::AwsError;

#[derive(Clone, Debug)]
pub struct Notifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl Notifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    pub async fn publish(&self, subject: &str, body: &serde_json::Value) -> Result<(), AwsError> {
        // SNS subjects: at most 100 printable ASCII characters.
        let subject: String = subject
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(100)
            .collect();
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(serde_json::to_string_pretty(body).unwrap_or_else(|_| body.to_string()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("Publish", e))?;
        Ok(())
    }
}
