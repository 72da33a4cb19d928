//! The emulator service: the state behind its mutex plus what the operations need from outside
//! (config, time scale, clock, S3 lister). HTTP handlers are thin wrappers around these methods.

mod catalog_reads;
mod control;
mod direct_ingestion;
mod document_identifiers;
mod document_reads;
mod ingestion;

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

pub use crate::document_detail::{DocumentDetail, DocumentIdentifier};
pub use control::ForeignJobRequest;
pub use direct_ingestion::{DeleteDocumentsRequest, IngestDocument, IngestDocumentsRequest};
pub use ingestion::{JobSortAttribute, ListJobsQuery, StartJobRequest};

use crate::catalog::DataSourceKey;
use crate::clock::{Clock, TimeScale};
use crate::config::{ConfigError, EmulatorConfig};
use crate::counters::Operation;
use crate::s3_scope::ObjectLister;
use crate::state::EmulatorState;

#[derive(Debug, Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The configuration as loaded; `reset` goes back to it.
    config: EmulatorConfig,
    time_scale: TimeScale,
    lister: Arc<dyn ObjectLister>,
    clock: Arc<dyn Clock>,
    state: Mutex<EmulatorState>,
}

impl Emulator {
    pub fn new(
        config: EmulatorConfig,
        time_scale: TimeScale,
        lister: Arc<dyn ObjectLister>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let state = EmulatorState::new(&config, time_scale, clock.now())?;
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                time_scale,
                lister,
                clock,
                state: Mutex::new(state),
            }),
        })
    }

    pub fn config(&self) -> &EmulatorConfig {
        &self.shared.config
    }

    pub fn time_scale(&self) -> TimeScale {
        self.shared.time_scale
    }

    /// Locks the state and brings it up to date. `now` is read after the lock is taken, so
    /// successive holders see non-decreasing times.
    fn lock(&self) -> (MutexGuard<'_, EmulatorState>, DateTime<Utc>) {
        // A panic while holding the lock cannot leave the state half-written in a way that matters
        // more than stopping the emulator would, so keep serving.
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = self.shared.clock.now();
        state.advance(now);
        (state, now)
    }

    /// Counts one API call (and its error type, if it failed) for the inspection endpoint.
    pub fn record_call(&self, operation: &str, error_type: Option<&str>) {
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.counters.record(operation, error_type);
    }

    /// Counts one document API call on a data source for the inspection endpoint: `outcome` is the
    /// number of documents answered, or the error type. Calls naming an unknown data source are
    /// only in the global counters.
    pub fn record_document_call(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        operation: Operation,
        outcome: Result<usize, &str>,
    ) {
        let (mut state, _) = self.lock();
        if state
            .catalog
            .data_source(knowledge_base_id, data_source_id)
            .is_err()
        {
            return;
        }
        let key = DataSourceKey::new(knowledge_base_id, data_source_id);
        state
            .document_call_counters(&key, operation)
            .record(outcome);
    }
}

/// Bedrock-style id: 10 upper-case alphanumerics.
fn new_resource_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(10)
        .map(|byte| ALPHABET[usize::from(*byte) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_look_like_bedrock_ids() {
        let id = new_resource_id();
        assert_eq!(id.len(), 10);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert_ne!(id, new_resource_id());
    }
}
