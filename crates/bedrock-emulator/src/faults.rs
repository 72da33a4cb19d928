//! Fault injection: failed jobs, failed documents, slow jobs, forced throttling.
//!
//! The same shapes are accepted in the config file (`faults`) and by the control endpoints, and the
//! inspection endpoint shows what is still pending. Foreign jobs are not a standing fault but an
//! action, see `Emulator::start_foreign_job`.

use serde::{Deserialize, Serialize};

use crate::key_pattern::KeyPattern;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultsConfig {
    /// Each entry fails the next `count` jobs it applies to.
    pub fail_jobs: Vec<FailJobsFault>,
    /// Standing rules: documents whose key matches fail until the rule is cleared.
    pub fail_documents: Vec<FailDocumentsFault>,
    /// Each entry overrides the duration of the next `count` jobs (all jobs when `count` is absent).
    pub slow_jobs: Vec<SlowJobsFault>,
    /// The next N StartIngestionJob calls return ThrottlingException whatever the token bucket says.
    pub throttle_start_ingestion_job: u32,
    /// The next N StartIngestionJob calls return AccessDeniedException, as when a role lost
    /// bedrock:StartIngestionJob: a failure no retry fixes.
    pub deny_start_ingestion_job: u32,
    /// The next N document API calls (Ingest, Delete, Get, List KnowledgeBaseDocuments) return
    /// ThrottlingException whatever their token buckets say.
    pub throttle_document_operations: u32,
}

/// A fault's optional restriction to one knowledge base and/or data source (absent = any).
fn applies_to(
    target_knowledge_base_id: &Option<String>,
    target_data_source_id: &Option<String>,
    knowledge_base_id: &str,
    data_source_id: &str,
) -> bool {
    target_knowledge_base_id
        .as_deref()
        .is_none_or(|id| id == knowledge_base_id)
        && target_data_source_id
            .as_deref()
            .is_none_or(|id| id == data_source_id)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailJobsFault {
    pub count: u32,
    #[serde(default = "default_job_failure_reasons")]
    pub failure_reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge_base_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailDocumentsFault {
    /// Glob (`*`, `?`) over the whole key, or a substring when it has no wildcard.
    pub pattern: KeyPattern,
    #[serde(default = "default_document_failure_reason")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge_base_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowJobsFault {
    /// Total job duration in Bedrock seconds (divided by the time scale), replacing the computed one.
    pub duration_seconds: f64,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge_base_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source_id: Option<String>,
}

fn default_job_failure_reasons() -> Vec<String> {
    vec!["Injected failure: the ingestion job failed.".to_string()]
}

fn default_document_failure_reason() -> String {
    "Injected failure: the document could not be processed.".to_string()
}

impl FaultsConfig {
    pub fn validate(&self) -> Result<(), String> {
        for fault in &self.fail_jobs {
            fault.validate()?;
        }
        for fault in &self.fail_documents {
            fault.validate()?;
        }
        for fault in &self.slow_jobs {
            fault.validate()?;
        }
        Ok(())
    }

    /// Failure reasons for a job about to start, consuming one use of the first matching fault.
    pub fn take_job_failure(
        &mut self,
        knowledge_base_id: &str,
        data_source_id: &str,
    ) -> Option<Vec<String>> {
        let index = self.fail_jobs.iter().position(|fault| {
            fault.count > 0
                && applies_to(
                    &fault.knowledge_base_id,
                    &fault.data_source_id,
                    knowledge_base_id,
                    data_source_id,
                )
        })?;
        let fault = &mut self.fail_jobs[index];
        fault.count -= 1;
        let reasons = fault.failure_reasons.clone();
        if fault.count == 0 {
            self.fail_jobs.remove(index);
        }
        Some(reasons)
    }

    /// Overridden duration for a job about to start, consuming one use of the first matching fault.
    pub fn take_slow_job_duration(
        &mut self,
        knowledge_base_id: &str,
        data_source_id: &str,
    ) -> Option<f64> {
        let index = self.slow_jobs.iter().position(|fault| {
            fault.count != Some(0)
                && applies_to(
                    &fault.knowledge_base_id,
                    &fault.data_source_id,
                    knowledge_base_id,
                    data_source_id,
                )
        })?;
        let fault = &mut self.slow_jobs[index];
        let duration = fault.duration_seconds;
        if let Some(count) = fault.count.as_mut() {
            *count -= 1;
            if *count == 0 {
                self.slow_jobs.remove(index);
            }
        }
        Some(duration)
    }

    /// The statusReason of a document that an injected rule makes fail, if any.
    pub fn document_failure(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        key: &str,
    ) -> Option<String> {
        self.fail_documents
            .iter()
            .find(|fault| {
                applies_to(
                    &fault.knowledge_base_id,
                    &fault.data_source_id,
                    knowledge_base_id,
                    data_source_id,
                ) && fault.pattern.matches(key)
            })
            .map(|fault| fault.reason.clone())
    }

    /// Whether this StartIngestionJob call is denied (consumes one).
    pub fn take_forced_denial(&mut self) -> bool {
        if self.deny_start_ingestion_job > 0 {
            self.deny_start_ingestion_job -= 1;
            true
        } else {
            false
        }
    }

    /// Whether this document API call is forced to be throttled (consumes one).
    pub fn take_forced_document_throttle(&mut self) -> bool {
        if self.throttle_document_operations > 0 {
            self.throttle_document_operations -= 1;
            true
        } else {
            false
        }
    }

    /// Whether this StartIngestionJob call is forced to be throttled (consumes one).
    pub fn take_forced_throttle(&mut self) -> bool {
        if self.throttle_start_ingestion_job > 0 {
            self.throttle_start_ingestion_job -= 1;
            true
        } else {
            false
        }
    }
}

impl FailJobsFault {
    pub fn validate(&self) -> Result<(), String> {
        if self.count == 0 {
            return Err("fail_jobs.count must be at least 1".to_string());
        }
        if self.failure_reasons.is_empty() {
            return Err("fail_jobs.failure_reasons must not be empty".to_string());
        }
        Ok(())
    }
}

impl FailDocumentsFault {
    pub fn validate(&self) -> Result<(), String> {
        if self.pattern.as_str().is_empty() {
            return Err("fail_documents.pattern must not be empty".to_string());
        }
        Ok(())
    }
}

impl SlowJobsFault {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.duration_seconds.is_finite() && self.duration_seconds >= 0.0) {
            return Err(format!(
                "slow_jobs.duration_seconds must be a finite number >= 0, got {}",
                self.duration_seconds
            ));
        }
        if self.count == Some(0) {
            return Err("slow_jobs.count must be at least 1 when given".to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_failures_are_consumed_per_matching_job() {
        let mut faults = FaultsConfig {
            fail_jobs: vec![FailJobsFault {
                count: 2,
                failure_reasons: vec!["boom".to_string()],
                knowledge_base_id: None,
                data_source_id: Some("DS1".to_string()),
            }],
            ..FaultsConfig::default()
        };
        assert_eq!(faults.take_job_failure("KB", "DS2"), None);
        assert_eq!(
            faults.take_job_failure("KB", "DS1"),
            Some(vec!["boom".to_string()])
        );
        assert_eq!(
            faults.take_job_failure("KB", "DS1"),
            Some(vec!["boom".to_string()])
        );
        assert_eq!(faults.take_job_failure("KB", "DS1"), None);
        assert!(faults.fail_jobs.is_empty());
    }

    #[test]
    fn slow_jobs_without_count_apply_until_cleared() {
        let mut faults = FaultsConfig {
            slow_jobs: vec![SlowJobsFault {
                duration_seconds: 600.0,
                count: None,
                knowledge_base_id: None,
                data_source_id: None,
            }],
            ..FaultsConfig::default()
        };
        for _ in 0..3 {
            assert_eq!(faults.take_slow_job_duration("KB", "DS"), Some(600.0));
        }
    }

    #[test]
    fn forced_throttles_run_out() {
        let mut faults = FaultsConfig {
            throttle_start_ingestion_job: 1,
            ..FaultsConfig::default()
        };
        assert!(faults.take_forced_throttle());
        assert!(!faults.take_forced_throttle());
    }

    #[test]
    fn fault_bodies_parse_and_reject_unknown_fields() {
        let fault: FailDocumentsFault =
            serde_json::from_str(r#"{"pattern":"*.pdf","data_source_id":"DS1"}"#).unwrap();
        assert_eq!(fault.data_source_id.as_deref(), Some("DS1"));
        assert!(fault.reason.contains("Injected"));
        assert!(serde_json::from_str::<FailDocumentsFault>(
            r#"{"pattern":"x","data_source":"DS1"}"#
        )
        .is_err());
    }
}
