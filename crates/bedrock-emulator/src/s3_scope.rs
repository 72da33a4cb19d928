//! The part of S3 a data source covers, and the listing seam between jobs and S3.
//!
//! Jobs only need "which objects exist under these prefixes, with ETag and size", so that is all the
//! trait asks for: the real implementation calls S3 (`s3_lister`), tests use `memory_lister`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

/// One object as a listing reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedObject {
    pub key: String,
    /// ETag without the surrounding quotes S3 puts on the wire.
    pub etag: String,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ListError(pub String);

pub type ListFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<ListedObject>, ListError>> + Send + 'a>>;

/// Lists every object of `bucket` whose key starts with `prefix` (all pages).
pub trait ObjectLister: Send + Sync + std::fmt::Debug {
    fn list<'a>(&'a self, bucket: &'a str, prefix: &'a str) -> ListFuture<'a>;
}

/// A data source's scope: a bucket and its inclusion prefixes (none = the whole bucket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataSourceScope {
    pub bucket: String,
    pub inclusion_prefixes: Vec<String>,
}

impl DataSourceScope {
    pub fn contains(&self, bucket: &str, key: &str) -> bool {
        bucket == self.bucket
            && (self.inclusion_prefixes.is_empty()
                || self
                    .inclusion_prefixes
                    .iter()
                    .any(|prefix| key.starts_with(prefix.as_str())))
    }

    /// The snapshot a job works from, keyed by object key. Overlapping prefixes list an object once;
    /// "folder" placeholder keys ending in `/` are not documents and are left out.
    pub async fn snapshot(
        &self,
        lister: &dyn ObjectLister,
    ) -> Result<BTreeMap<String, ListedObject>, ListError> {
        let whole_bucket = [String::new()];
        let prefixes: &[String] = if self.inclusion_prefixes.is_empty() {
            &whole_bucket
        } else {
            &self.inclusion_prefixes
        };
        let mut objects = BTreeMap::new();
        for prefix in prefixes {
            for object in lister.list(&self.bucket, prefix).await? {
                if !object.key.ends_with('/') {
                    objects.insert(object.key.clone(), object);
                }
            }
        }
        Ok(objects)
    }

    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }
}

/// Bounds an S3 read by `timeout`: a hung S3 becomes a ListError the caller reports (a FAILED job,
/// an InternalServerException), instead of a call that never returns.
pub async fn within<T>(
    timeout: std::time::Duration,
    read: impl Future<Output = Result<T, ListError>>,
) -> Result<T, ListError> {
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(ListError(format!(
            "S3 did not answer within {:.3} s (timed out)",
            timeout.as_secs_f64()
        ))),
    }
}

/// `s3://bucket/key` -> (bucket, key).
pub fn parse_s3_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    if bucket.is_empty() || key.is_empty() {
        return None;
    }
    Some((bucket, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_lister::InMemoryObjectLister;

    #[test]
    fn s3_uris_split_into_bucket_and_key() {
        assert_eq!(parse_s3_uri("s3://b/docs/a.txt"), Some(("b", "docs/a.txt")));
        assert_eq!(parse_s3_uri("s3://b/"), None);
        assert_eq!(parse_s3_uri("https://b/a"), None);
    }

    #[tokio::test]
    async fn a_read_slower_than_the_timeout_is_a_list_error() {
        let slow = async {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            Ok::<_, ListError>(())
        };
        let error = within(std::time::Duration::from_millis(10), slow)
            .await
            .unwrap_err();
        assert!(error.0.contains("timed out"), "{error}");
    }

    #[tokio::test]
    async fn snapshot_merges_overlapping_prefixes_and_skips_folders() {
        let lister = InMemoryObjectLister::new();
        lister.put("b", "docs/a.txt", "e1", 1);
        lister.put("b", "docs/sub/", "e0", 0);
        lister.put("b", "other/x.txt", "e2", 1);
        lister.put("c", "docs/z.txt", "e3", 1);
        let scope = DataSourceScope {
            bucket: "b".to_string(),
            inclusion_prefixes: vec!["docs/".to_string(), "docs/a".to_string()],
        };
        let snapshot = scope.snapshot(&lister).await.unwrap();
        assert_eq!(snapshot.keys().collect::<Vec<_>>(), vec!["docs/a.txt"]);
        assert!(scope.contains("b", "docs/q"));
        assert!(!scope.contains("b", "other/x.txt"));
    }
}
