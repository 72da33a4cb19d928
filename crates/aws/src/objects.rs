//! The watched buckets' objects: does an object exist now, and how large is it? event-processor
//! asks for deletes that name a version (a non-current version deleted, a delete marker removed
//! may leave the object in place, and only S3 can say so); direct ingestion asks before it
//! indexes or removes a document.

use aws_sdk_s3::operation::head_object::HeadObjectError;

use crate::AwsError;

#[derive(Clone, Debug)]
pub struct ObjectStore {
    pub(crate) client: aws_sdk_s3::Client,
}

impl ObjectStore {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }

    /// A client for `config`, with path-style addressing when an endpoint is configured
    /// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`: a local or private endpoint, whose host cannot
    /// take bucket names).
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        let custom_endpoint =
            config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(custom_endpoint)
            .build();
        Self::new(aws_sdk_s3::Client::from_conf(s3))
    }

    /// Whether `bucket/key` has a current version: HeadObject on the key, no version. A key whose
    /// current version is a delete marker does not exist. S3 answers a missing key with 404 only
    /// to a role that may list the bucket (s3:ListBucket), else with 403, which is an error here
    /// rather than a guess.
    pub async fn exists(&self, bucket: &str, key: &str) -> Result<bool, AwsError> {
        Ok(self.size(bucket, key).await?.is_some())
    }

    /// The size in bytes of `bucket/key`'s current version, `None` when it has none (see
    /// [`ObjectStore::exists`]).
    pub async fn size(&self, bucket: &str, key: &str) -> Result<Option<i64>, AwsError> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(head.content_length.unwrap_or_default())),
            Err(err) => {
                if matches!(err.as_service_error(), Some(HeadObjectError::NotFound(_))) {
                    return Ok(None);
                }
                let status = err.raw_response().map(|r| r.status().as_u16());
                let mut err = AwsError::from_sdk("HeadObject", err);
                if err.is("NotFound") || err.is("NoSuchKey") || status == Some(404) {
                    return Ok(None);
                }
                if status == Some(403) {
                    err.message = format!(
                        "{} (s3://{bucket}/{key}: the role needs s3:GetObject on the object and s3:ListBucket on the bucket; without ListBucket S3 answers 403 for a missing object)",
                        err.message
                    );
                }
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::head_object::HeadObjectOutput;
    use aws_sdk_s3::types::error::NotFound;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;

    fn store(rule: &aws_smithy_mocks::Rule) -> ObjectStore {
        ObjectStore::new(mock_client!(aws_sdk_s3, RuleMode::MatchAny, [rule]))
    }

    #[tokio::test]
    async fn an_object_with_a_current_version_exists() {
        let head = mock!(aws_sdk_s3::Client::head_object)
            .match_requests(|r| {
                r.bucket() == Some("docs")
                    && r.key() == Some("kb/a b.txt")
                    && r.version_id().is_none()
            })
            .then_output(|| HeadObjectOutput::builder().content_length(3).build());
        assert!(store(&head).exists("docs", "kb/a b.txt").await.unwrap());
        assert_eq!(
            store(&head).size("docs", "kb/a b.txt").await.unwrap(),
            Some(3)
        );
        assert_eq!(head.num_calls(), 2);
    }

    #[tokio::test]
    async fn a_404_means_absent() {
        // S3 answers HEAD of a missing key (or one whose current version is a delete marker) with
        // a bare 404: no body, so no error code to read.
        let bare = mock!(aws_sdk_s3::Client::head_object)
            .sequence()
            .http_status(404, None)
            .build();
        assert!(!store(&bare).exists("docs", "kb/a.txt").await.unwrap());
        let modelled = mock!(aws_sdk_s3::Client::head_object)
            .then_error(|| HeadObjectError::NotFound(NotFound::builder().build()));
        assert!(!store(&modelled).exists("docs", "kb/a.txt").await.unwrap());
    }

    #[tokio::test]
    async fn a_403_is_an_error_naming_the_permissions() {
        let denied = mock!(aws_sdk_s3::Client::head_object)
            .sequence()
            .http_status(403, None)
            .build();
        let err = store(&denied).exists("docs", "kb/a.txt").await.unwrap_err();
        assert!(
            err.message.contains("s3:ListBucket") && err.message.contains("s3://docs/kb/a.txt"),
            "{err}"
        );
    }
}
