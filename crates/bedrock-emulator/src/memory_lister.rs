//! In-memory stand-in for S3, for tests that drive jobs without a server.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::s3_scope::{ListError, ListFuture, ListedObject, ObjectLister};

#[derive(Debug, Default)]
pub struct InMemoryObjectLister {
    /// (bucket, key) -> object.
    objects: Mutex<BTreeMap<(String, String), ListedObject>>,
    /// When set, every listing fails with this message (to test jobs that cannot read S3).
    failure: Mutex<Option<String>>,
    /// When set, every listing answers only after this long (a slow or hung S3).
    delay: Mutex<Option<Duration>>,
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

    /// Makes every listing take `delay` before it answers (None: answer at once).
    pub fn set_listing_delay(&self, delay: Option<Duration>) {
        *self
            .delay
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = delay;
    }

    fn lock_objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), ListedObject>> {
        self.objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl InMemoryObjectLister {
    fn answer(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, ListError> {
        match self
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
        }
    }
}

impl ObjectLister for InMemoryObjectLister {
    fn list<'a>(&'a self, bucket: &'a str, prefix: &'a str) -> ListFuture<'a> {
        let delay = *self
            .delay
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Box::pin(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            // Read after the delay: a slow listing reports S3 as it is when it answers.
            self.answer(bucket, prefix)
        })
    }
}
