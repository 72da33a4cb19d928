//! The JSON configuration file: knowledge bases, data sources, job timing, quotas, document rules,
//! the S3 client's timeouts and faults active from the start. Field names are snake_case; unknown fields are rejected so a typo in a
//! launcher's config fails loudly instead of silently using a default.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::faults::FaultsConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorConfig {
    /// Region used in ARNs and for the S3 client.
    #[serde(default = "default_region")]
    pub region: String,
    /// Account id used in ARNs.
    #[serde(default = "default_account_id")]
    pub account_id: String,
    #[serde(default)]
    pub knowledge_bases: Vec<KnowledgeBaseConfig>,
    #[serde(default)]
    pub jobs: JobTimingConfig,
    #[serde(default)]
    pub quotas: QuotaConfig,
    #[serde(default)]
    pub documents: DocumentRulesConfig,
    #[serde(default)]
    pub s3: S3ClientConfig,
    /// Faults active from start-up (the same shapes as the control endpoint bodies).
    #[serde(default)]
    pub faults: FaultsConfig,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            region: default_region(),
            account_id: default_account_id(),
            knowledge_bases: Vec::new(),
            jobs: JobTimingConfig::default(),
            quotas: QuotaConfig::default(),
            documents: DocumentRulesConfig::default(),
            s3: S3ClientConfig::default(),
            faults: FaultsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeBaseConfig {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub data_sources: Vec<DataSourceConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSourceConfig {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `arn:aws:s3:::bucket`, as in the data source's s3Configuration.
    pub bucket_arn: String,
    /// The data source scope; empty means the whole bucket.
    #[serde(default)]
    pub inclusion_prefixes: Vec<String>,
}

/// How long jobs take, in Bedrock seconds (divided by the time scale at run time).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobTimingConfig {
    /// Time spent in STARTING before IN_PROGRESS (capped by the job's total duration).
    pub starting_seconds: f64,
    /// Fixed part of a job's total duration (STARTING included).
    pub base_duration_seconds: f64,
    /// Added per document the job has work for (new, modified, failed, deleted, metadata modified).
    pub per_document_seconds: f64,
    /// Time spent in STOPPING after StopIngestionJob before STOPPED.
    pub stopping_seconds: f64,
}

impl Default for JobTimingConfig {
    fn default() -> Self {
        Self {
            starting_seconds: 5.0,
            base_duration_seconds: 60.0,
            per_document_seconds: 0.5,
            stopping_seconds: 5.0,
        }
    }
}

/// Bedrock's quotas; the defaults are the real service's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    pub max_concurrent_jobs_per_data_source: u32,
    pub max_concurrent_jobs_per_knowledge_base: u32,
    pub max_concurrent_jobs_per_account: u32,
    /// StartIngestionJob token bucket refill rate, in requests per Bedrock second.
    pub start_ingestion_job_rate_per_second: f64,
    pub start_ingestion_job_burst: u32,
    /// Refill rate of the token bucket each Get/List operation has, in requests per Bedrock second.
    pub read_rate_per_second: f64,
    pub read_burst: u32,
    pub read_rate_limit_enabled: bool,
    /// Refill rate of the token bucket IngestKnowledgeBaseDocuments and DeleteKnowledgeBaseDocuments
    /// each have, in requests per Bedrock second. Bedrock publishes no figure: a setting.
    pub document_write_rate_per_second: f64,
    pub document_write_burst: u32,
    /// Refill rate of the token bucket GetKnowledgeBaseDocuments and ListKnowledgeBaseDocuments each
    /// have, in requests per Bedrock second (they do not share the catalog and job read buckets).
    pub document_read_rate_per_second: f64,
    pub document_read_burst: u32,
    pub document_rate_limit_enabled: bool,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            max_concurrent_jobs_per_data_source: 1,
            max_concurrent_jobs_per_knowledge_base: 1,
            max_concurrent_jobs_per_account: 5,
            start_ingestion_job_rate_per_second: 0.1,
            start_ingestion_job_burst: 1,
            read_rate_per_second: 10.0,
            read_burst: 10,
            read_rate_limit_enabled: true,
            document_write_rate_per_second: 5.0,
            document_write_burst: 5,
            document_read_rate_per_second: 10.0,
            document_read_burst: 10,
            document_rate_limit_enabled: true,
        }
    }
}

/// Which S3 objects can be indexed, and how long a directly ingested or deleted document takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentRulesConfig {
    /// Larger objects fail as documents (Bedrock: 50 MB).
    pub max_document_bytes: u64,
    /// Lower-case extensions with the dot; anything else fails as an unsupported file type.
    pub supported_extensions: Vec<String>,
    /// Whole lifecycle of a document given to IngestKnowledgeBaseDocuments, from the call to its
    /// final status (Bedrock seconds; every document of a call runs it in parallel).
    pub direct_ingest_seconds: f64,
    /// The first part of that lifecycle, spent STARTING before IN_PROGRESS (capped at the whole).
    pub direct_ingest_starting_seconds: f64,
    /// Whole lifecycle of a document given to DeleteKnowledgeBaseDocuments, until it is gone.
    pub direct_delete_seconds: f64,
    /// The first part of that lifecycle, spent DELETING before DELETE_IN_PROGRESS (capped).
    pub direct_delete_deleting_seconds: f64,
    /// AWS: a data source takes direct calls only after an ingestion job COMPLETED on it
    /// (ValidationException before). Off only for tests of the document lifecycle itself.
    pub require_completed_job: bool,
}

impl Default for DocumentRulesConfig {
    fn default() -> Self {
        Self {
            max_document_bytes: 50 * 1024 * 1024,
            supported_extensions: [
                ".txt", ".md", ".html", ".htm", ".doc", ".docx", ".csv", ".xls", ".xlsx", ".pdf",
                ".json",
            ]
            .iter()
            .map(|extension| extension.to_string())
            .collect(),
            direct_ingest_seconds: 10.0,
            direct_ingest_starting_seconds: 2.0,
            direct_delete_seconds: 5.0,
            direct_delete_deleting_seconds: 1.0,
            require_completed_job: true,
        }
    }
}

/// The S3 client jobs and direct ingestion read the data source through. Real seconds (S3 is not
/// time-scaled): a hung S3 must turn into an error a job or a call reports, not a request that
/// never returns while the job holds its concurrency slots.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3ClientConfig {
    /// Time to establish a connection to the S3 endpoint.
    pub connect_timeout_seconds: f64,
    /// One S3 request (one ListObjectsV2 page), retries included.
    pub operation_timeout_seconds: f64,
    /// One whole S3 read of the emulator, whatever the lister: a job's snapshot (every page of every
    /// inclusion prefix), or the lookup of one object by a direct ingestion. The backstop for
    /// listers with no timeouts of their own, and for a listing that keeps paging slowly.
    pub listing_timeout_seconds: f64,
}

impl Default for S3ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout_seconds: 3.0,
            operation_timeout_seconds: 10.0,
            listing_timeout_seconds: 120.0,
        }
    }
}

impl S3ClientConfig {
    pub fn connect_timeout(&self) -> std::time::Duration {
        seconds(self.connect_timeout_seconds)
    }

    pub fn operation_timeout(&self) -> std::time::Duration {
        seconds(self.operation_timeout_seconds)
    }

    pub fn listing_timeout(&self) -> std::time::Duration {
        seconds(self.listing_timeout_seconds)
    }
}

/// Absurdly large values mean "practically never" rather than a panic.
fn seconds(value: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(value).unwrap_or(std::time::Duration::MAX)
}

fn default_region() -> String {
    "us-east-1".to_string()
}

fn default_account_id() -> String {
    "123456789012".to_string()
}

impl EmulatorConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: display.clone(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
            path: display,
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks everything the emulator would otherwise have to reject (or divide by) at run time.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        for (name, seconds) in [
            ("jobs.starting_seconds", self.jobs.starting_seconds),
            (
                "jobs.base_duration_seconds",
                self.jobs.base_duration_seconds,
            ),
            ("jobs.per_document_seconds", self.jobs.per_document_seconds),
            ("jobs.stopping_seconds", self.jobs.stopping_seconds),
            (
                "documents.direct_ingest_seconds",
                self.documents.direct_ingest_seconds,
            ),
            (
                "documents.direct_ingest_starting_seconds",
                self.documents.direct_ingest_starting_seconds,
            ),
            (
                "documents.direct_delete_seconds",
                self.documents.direct_delete_seconds,
            ),
            (
                "documents.direct_delete_deleting_seconds",
                self.documents.direct_delete_deleting_seconds,
            ),
        ] {
            if !(seconds.is_finite() && seconds >= 0.0) {
                return invalid(format!(
                    "{name} must be a finite number >= 0, got {seconds}"
                ));
            }
        }
        let quotas = &self.quotas;
        for (name, limit) in [
            (
                "quotas.max_concurrent_jobs_per_data_source",
                quotas.max_concurrent_jobs_per_data_source,
            ),
            (
                "quotas.max_concurrent_jobs_per_knowledge_base",
                quotas.max_concurrent_jobs_per_knowledge_base,
            ),
            (
                "quotas.max_concurrent_jobs_per_account",
                quotas.max_concurrent_jobs_per_account,
            ),
            (
                "quotas.start_ingestion_job_burst",
                quotas.start_ingestion_job_burst,
            ),
            ("quotas.read_burst", quotas.read_burst),
            ("quotas.document_write_burst", quotas.document_write_burst),
            ("quotas.document_read_burst", quotas.document_read_burst),
        ] {
            if limit == 0 {
                return invalid(format!("{name} must be at least 1"));
            }
        }
        for (name, rate) in [
            (
                "quotas.start_ingestion_job_rate_per_second",
                quotas.start_ingestion_job_rate_per_second,
            ),
            ("quotas.read_rate_per_second", quotas.read_rate_per_second),
            (
                "quotas.document_write_rate_per_second",
                quotas.document_write_rate_per_second,
            ),
            (
                "quotas.document_read_rate_per_second",
                quotas.document_read_rate_per_second,
            ),
        ] {
            if !(rate.is_finite() && rate > 0.0) {
                return invalid(format!("{name} must be a finite number > 0, got {rate}"));
            }
        }
        // Zero would make every S3 call time out at once; there is no "no timeout" value.
        for (name, seconds) in [
            (
                "s3.connect_timeout_seconds",
                self.s3.connect_timeout_seconds,
            ),
            (
                "s3.operation_timeout_seconds",
                self.s3.operation_timeout_seconds,
            ),
            (
                "s3.listing_timeout_seconds",
                self.s3.listing_timeout_seconds,
            ),
        ] {
            if !(seconds.is_finite() && seconds > 0.0) {
                return invalid(format!("{name} must be a finite number > 0, got {seconds}"));
            }
        }
        let mut knowledge_base_ids = HashSet::new();
        for knowledge_base in &self.knowledge_bases {
            knowledge_base.validate()?;
            if !knowledge_base_ids.insert(knowledge_base.id.as_str()) {
                return invalid(format!("duplicate knowledge base id {}", knowledge_base.id));
            }
        }
        self.faults.validate().map_err(ConfigError::Invalid)
    }
}

impl KnowledgeBaseConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_id("knowledge base", &self.id)?;
        let mut data_source_ids = HashSet::new();
        for data_source in &self.data_sources {
            data_source.validate()?;
            if !data_source_ids.insert(data_source.id.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "duplicate data source id {} in knowledge base {}",
                    data_source.id, self.id
                )));
            }
        }
        Ok(())
    }
}

impl DataSourceConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_id("data source", &self.id)?;
        bucket_from_arn(&self.bucket_arn).map(|_| ())
    }
}

/// Ids end up in URL paths; anything but a non-empty path-safe token would make the resource
/// unreachable through the SDK. Real ids are 10 upper-case alphanumerics, but tests may choose others.
fn validate_id(kind: &str, id: &str) -> Result<(), ConfigError> {
    let path_safe = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if id.is_empty() || !path_safe {
        return Err(ConfigError::Invalid(format!(
            "{kind} id {id:?} must be non-empty and contain only letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

/// `arn:<partition>:s3:::<bucket>` -> `<bucket>`.
pub fn bucket_from_arn(bucket_arn: &str) -> Result<String, ConfigError> {
    let parts: Vec<&str> = bucket_arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "s3", "", "", bucket]
            if !partition.is_empty() && !bucket.is_empty() && !bucket.contains('/') =>
        {
            Ok(bucket.to_string())
        }
        _ => Err(ConfigError::Invalid(format!(
            "bucket_arn {bucket_arn:?} is not an S3 bucket ARN like arn:aws:s3:::my-bucket"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_is_taken_from_the_arn() {
        assert_eq!(
            bucket_from_arn("arn:aws:s3:::my-bucket").unwrap(),
            "my-bucket"
        );
        assert!(bucket_from_arn("my-bucket").is_err());
        assert!(bucket_from_arn("arn:aws:s3:::").is_err());
        assert!(bucket_from_arn("arn:aws:s3:::bucket/key").is_err());
    }

    #[test]
    fn minimal_config_gets_bedrock_defaults() {
        let config: EmulatorConfig = serde_json::from_str(
            r#"{"knowledge_bases":[{"id":"KB00000001","name":"kb","data_sources":[
                {"id":"DS00000001","name":"ds","bucket_arn":"arn:aws:s3:::docs"}]}]}"#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.quotas.max_concurrent_jobs_per_account, 5);
        assert_eq!(config.quotas.start_ingestion_job_burst, 1);
        assert_eq!(config.documents.max_document_bytes, 50 * 1024 * 1024);
    }

    #[test]
    fn unknown_fields_and_duplicates_are_rejected() {
        assert!(serde_json::from_str::<EmulatorConfig>(r#"{"knowledge_base":[]}"#).is_err());
        let config: EmulatorConfig = serde_json::from_str(
            r#"{"knowledge_bases":[{"id":"KB1","name":"a"},{"id":"KB1","name":"b"}]}"#,
        )
        .unwrap();
        assert!(config.validate().is_err());
    }

    #[test]
    fn direct_document_timings_and_s3_timeouts_are_checked() {
        let mut config = EmulatorConfig::default();
        config.documents.direct_ingest_seconds = -1.0;
        assert!(config.validate().is_err());
        let mut config = EmulatorConfig::default();
        config.s3.operation_timeout_seconds = 0.0;
        assert!(config.validate().is_err());
        let config: EmulatorConfig = serde_json::from_str(
            r#"{"documents":{"direct_ingest_seconds":30},"s3":{"connect_timeout_seconds":1}}"#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.documents.direct_ingest_starting_seconds, 2.0);
        assert_eq!(config.s3.operation_timeout_seconds, 10.0);
    }

    #[test]
    fn zero_quota_is_rejected() {
        let mut config = EmulatorConfig::default();
        config.quotas.max_concurrent_jobs_per_account = 0;
        assert!(config.validate().is_err());
    }
}
