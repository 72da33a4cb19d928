//! Test harness: an in-process emulator, its in-memory S3, an SDK client pointed at it, and
//! helpers to poll jobs and call control endpoints.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_bedrockagent::config::retry::RetryConfig;
use aws_sdk_bedrockagent::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_bedrockagent::types::{IngestionJob, IngestionJobStatus};
use aws_sdk_bedrockagent::Client;
use bedrock_emulator::config::{DataSourceConfig, KnowledgeBaseConfig};
use bedrock_emulator::{
    Clock, Emulator, EmulatorConfig, InMemoryObjectLister, ManualClock, RunningEmulator,
    SystemClock, TimeScale,
};
use serde_json::Value;

pub const KB: &str = "KBAAAAAAA1";
pub const KB2: &str = "KBAAAAAAA2";
pub const KB3: &str = "KBAAAAAAA3";
pub const DS: &str = "DSAAAAAAA1";
pub const DS2: &str = "DSAAAAAAA2";
pub const BUCKET: &str = "docs-bucket";
pub const PREFIX: &str = "docs/";

pub struct Harness {
    pub server: RunningEmulator,
    pub s3: Arc<InMemoryObjectLister>,
    pub client: Client,
    pub http: reqwest::Client,
}

pub fn data_source(id: &str, prefix: Option<&str>) -> DataSourceConfig {
    DataSourceConfig {
        id: id.to_string(),
        name: format!("{id}-name"),
        description: None,
        bucket_arn: format!("arn:aws:s3:::{BUCKET}"),
        inclusion_prefixes: prefix
            .map(|prefix| vec![prefix.to_string()])
            .unwrap_or_default(),
    }
}

pub fn knowledge_base(id: &str, data_sources: Vec<DataSourceConfig>) -> KnowledgeBaseConfig {
    KnowledgeBaseConfig {
        id: id.to_string(),
        name: format!("{id}-name"),
        description: Some("test knowledge base".to_string()),
        data_sources,
    }
}

/// One knowledge base KB with data source DS over s3://docs-bucket/docs/, and a start-job
/// bucket large enough that only the quota tests meet throttling.
pub fn base_config() -> EmulatorConfig {
    let mut config = EmulatorConfig {
        knowledge_bases: vec![knowledge_base(KB, vec![data_source(DS, Some(PREFIX))])],
        ..EmulatorConfig::default()
    };
    config.quotas.start_ingestion_job_burst = 100;
    // Document tests start from an unsynced data source; `first_sync` tests the requirement.
    config.documents.require_completed_job = false;
    config
}

impl Harness {
    pub async fn start(config: EmulatorConfig, time_scale: f64) -> Self {
        Self::start_with_clock(config, time_scale, Arc::new(SystemClock::new())).await
    }

    /// An emulator whose time only moves when the test advances `clock`: statuses between two
    /// transitions can be read without racing the wall clock.
    pub async fn start_with_clock(
        config: EmulatorConfig,
        time_scale: f64,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let s3 = Arc::new(InMemoryObjectLister::new());
        let emulator = Emulator::new(
            config,
            TimeScale::new(time_scale).expect("valid time scale"),
            s3.clone(),
            clock,
        )
        .expect("valid config");
        let server = RunningEmulator::start(emulator, "127.0.0.1:0".parse().expect("address"))
            .await
            .expect("emulator binds");
        let client = sdk_client(&server.endpoint());
        Self {
            server,
            s3,
            client,
            http: reqwest::Client::new(),
        }
    }

    pub fn put(&self, key: &str, etag: &str, size_bytes: u64) {
        self.s3.put(BUCKET, key, etag, size_bytes);
    }

    pub fn delete(&self, key: &str) {
        self.s3.delete(BUCKET, key);
    }

    pub async fn start_job(&self, knowledge_base_id: &str, data_source_id: &str) -> IngestionJob {
        self.client
            .start_ingestion_job()
            .knowledge_base_id(knowledge_base_id)
            .data_source_id(data_source_id)
            .send()
            .await
            .expect("StartIngestionJob succeeds")
            .ingestion_job
            .expect("response has the job")
    }

    pub async fn get_job(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        job_id: &str,
    ) -> IngestionJob {
        self.client
            .get_ingestion_job()
            .knowledge_base_id(knowledge_base_id)
            .data_source_id(data_source_id)
            .ingestion_job_id(job_id)
            .send()
            .await
            .expect("GetIngestionJob succeeds")
            .ingestion_job
            .expect("response has the job")
    }

    /// Polls GetIngestionJob until the job reaches a terminal status, failing the test if the
    /// status ever goes backwards or the job takes longer than `timeout`.
    pub async fn wait_until_done(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        job_id: &str,
        timeout: Duration,
    ) -> IngestionJob {
        let deadline = Instant::now() + timeout;
        let mut highest_rank = 0;
        loop {
            let job = self
                .get_job(knowledge_base_id, data_source_id, job_id)
                .await;
            let rank = status_rank(job.status());
            assert!(
                rank >= highest_rank,
                "job {job_id} went backwards to {:?}",
                job.status()
            );
            highest_rank = rank;
            if rank == TERMINAL_RANK {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {job_id} still {:?} after {timeout:?}",
                job.status()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn control_url(&self, path: &str) -> String {
        format!("{}/_emulator/{path}", self.server.endpoint())
    }

    /// POSTs a control body; returns (HTTP status, JSON body).
    pub async fn control_post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.control_url(path))
            .json(&body)
            .send()
            .await
            .expect("control endpoint answers");
        let status = response.status().as_u16();
        (
            status,
            response
                .json()
                .await
                .expect("control endpoint returns JSON"),
        )
    }

    pub async fn inspect(&self) -> Value {
        self.http
            .get(self.control_url("state"))
            .send()
            .await
            .expect("inspection answers")
            .json()
            .await
            .expect("inspection is JSON")
    }
}

const TERMINAL_RANK: u8 = 3;

fn status_rank(status: &IngestionJobStatus) -> u8 {
    match status {
        IngestionJobStatus::Starting => 0,
        IngestionJobStatus::InProgress => 1,
        IngestionJobStatus::Stopping => 2,
        IngestionJobStatus::Complete | IngestionJobStatus::Failed | IngestionJobStatus::Stopped => {
            TERMINAL_RANK
        }
        other => panic!("unexpected status {other:?}"),
    }
}

/// SDK client as the service under test would build it, minus retries: the tests want to see each
/// error the emulator returns, not the SDK's retry of it.
pub fn sdk_client(endpoint: &str) -> Client {
    let config = aws_sdk_bedrockagent::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

/// Statistics as a comparable tuple: (scanned, metadata scanned, new, modified, metadata modified,
/// deleted, failed).
pub fn statistics(job: &IngestionJob) -> (i64, i64, i64, i64, i64, i64, i64) {
    let statistics = job.statistics().expect("job has statistics");
    (
        statistics.number_of_documents_scanned(),
        statistics.number_of_metadata_documents_scanned(),
        statistics.number_of_new_documents_indexed(),
        statistics.number_of_modified_documents_indexed(),
        statistics.number_of_metadata_documents_modified(),
        statistics.number_of_documents_deleted(),
        statistics.number_of_documents_failed(),
    )
}

/// A manual clock starting now, on a whole millisecond (what the API's timestamps show), so
/// expected `updatedAt` values can be computed exactly.
pub fn manual_clock() -> Arc<ManualClock> {
    let millis = chrono::Utc::now().timestamp_millis();
    let start = chrono::DateTime::from_timestamp_millis(millis).expect("valid time");
    Arc::new(ManualClock::new(start))
}

pub const JOB_TIMEOUT: Duration = Duration::from_secs(10);
/// Default job timing (5 s starting, 60 s base, 0.5 s per document) at this scale takes ~60 ms.
pub const FAST: f64 = 1000.0;
