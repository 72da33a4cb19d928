//! Listing through a real S3 endpoint (moto, LocalStack, MinIO or AWS) with aws-sdk-s3.

use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::config::S3ClientConfig;
use crate::s3_scope::{ListError, ListFuture, ListedObject, ObjectLister};

#[derive(Debug, Clone)]
pub struct S3ObjectLister {
    client: aws_sdk_s3::Client,
}

impl S3ObjectLister {
    /// Path-style addressing and static test credentials: local S3 servers neither resolve
    /// virtual-host bucket names nor check signatures. The SDK has no timeouts by default, so a
    /// hung S3 would hang every job start; `timeouts` bounds the connection and each request.
    pub fn new(endpoint_url: &str, region: &str, timeouts: &S3ClientConfig) -> Self {
        let credentials = Credentials::new("test", "test", None, None, "bedrock-emulator");
        let timeout_config = TimeoutConfig::builder()
            .connect_timeout(timeouts.connect_timeout())
            .operation_timeout(timeouts.operation_timeout())
            .build();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .credentials_provider(credentials)
            .endpoint_url(endpoint_url)
            .force_path_style(true)
            .timeout_config(timeout_config)
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
        }
    }
}

impl ObjectLister for S3ObjectLister {
    fn list<'a>(&'a self, bucket: &'a str, prefix: &'a str) -> ListFuture<'a> {
        Box::pin(async move {
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .into_paginator()
                .send();
            let mut objects = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|error| ListError(describe(bucket, prefix, error)))?;
                for object in page.contents() {
                    let Some(key) = object.key() else { continue };
                    objects.push(ListedObject {
                        key: key.to_string(),
                        etag: object
                            .e_tag()
                            .unwrap_or_default()
                            .trim_matches('"')
                            .to_string(),
                        size_bytes: object.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
            Ok(objects)
        })
    }
}

/// A one-line reason for a job's failureReasons: S3's error code and message when S3 answered,
/// the whole error chain (connection refused, timeout...) when it did not.
fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    bucket: &str,
    prefix: &str,
    error: SdkError<E, R>,
) -> String {
    let detail = match &error {
        SdkError::ServiceError(service_error) => format!(
            "{} {}",
            service_error.err().code().unwrap_or("UnknownError"),
            service_error.err().message().unwrap_or_default()
        ),
        _ => DisplayErrorContext(&error).to_string(),
    };
    format!(
        "ListObjectsV2 on s3://{bucket}/{prefix} failed: {}",
        detail.trim()
    )
}
