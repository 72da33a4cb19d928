//! In-memory stand-in for S3, for tests that drive jobs without a server.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::s3_scope::{ListError, ListFuture, ListedObject, ObjectLister};

#[derive(Debug, Default)]
pub struct InMemoryObjectLister {
    /// (bucket, key) -> object.
    objects: Mutex<BTreeMap<(String, String), ListedObject>>,
    /// When set, every listing fails with this message (to test jobs that cannot read S3).
    failure: Mutex<Option<String>>,
}

impl InMemoryObjectLister {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates or replaces an object.
    pub fn put(&self, bucket: &str, key: &str, etag: &str, size_bytes: u64) {
        let object = ListedObject {
            key: key.to_string(),
            etag: etag.to_string(),
            size_bytes,
        };
        self.lock_objects()
            .insert((bucket.to_string(), key.to_string()), object);
    }

    pub fn delete(&self, bucket: &str, key: &str) {
        self.lock_objects()
            .remove(&(bucket.to_string(), key.to_string()));
    }

    pub fn fail_listings(&self, message: Option<&str>) {
        *self
            .failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = message.map(str::to_string);
    }

    fn lock_objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), ListedObject>> {
        self.objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ObjectLister for InMemoryObjectLister {
    fn list<'a>(&'a self, bucket: &'a str, prefix: &'a str) -> ListFuture<'a> {
        let result = match self
            .failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
        {
            Some(message) => Err(ListError(message)),
            None => Ok(self
                .lock_objects()
                .iter()
                .filter(|((object_bucket, key), _)| {
                    object_bucket == bucket && key.starts_with(prefix)
                })
                .map(|(_, object)| object.clone())
                .collect()),
        };
        Box::pin(async move { result })
    }
}
