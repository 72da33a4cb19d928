//! The Bedrock Agent emulator's control and inspection endpoints (`/_emulator/...`).

use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Clone, Debug)]
pub struct Emulator {
    base: String,
    http: reqwest::Client,
}

/// A job as the emulator's inspection document shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct EmulatedJob {
    pub ingestion_job_id: String,
    pub knowledge_base_id: Option<String>,
    pub data_source_id: Option<String>,
    pub origin: String,
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    #[serde(default)]
    pub failure_reasons: Vec<String>,
    #[serde(default)]
    pub statistics: Value,
}

/// One indexed document of a data source.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct IndexedDocument {
    pub key: String,
    pub etag: String,
    pub status: String,
    pub status_reason: Option<String>,
}

impl Emulator {
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .request(method, format!("{}/_emulator/{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("emulator {path}: {e}"))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("emulator {path}: HTTP {status}: {value}"));
        }
        Ok(value)
    }

    /// Adds a knowledge base (a `knowledge_bases[]` entry of the emulator configuration).
    pub async fn add_knowledge_base(&self, config: Value) -> Result<(), String> {
        self.call(reqwest::Method::POST, "knowledge-bases", Some(config))
            .await
            .map(|_| ())
    }

    /// Adds a data source (a `data_sources[]` entry) to a knowledge base.
    pub async fn add_data_source(
        &self,
        knowledge_base_id: &str,
        config: Value,
    ) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            &format!("knowledge-bases/{knowledge_base_id}/data-sources"),
            Some(config),
        )
        .await
        .map(|_| ())
    }

    pub async fn state(&self) -> Result<Value, String> {
        self.call(reqwest::Method::GET, "state", None).await
    }

    pub async fn jobs(&self) -> Result<Vec<EmulatedJob>, String> {
        let state = self.state().await?;
        let mut jobs: Vec<EmulatedJob> = serde_json::from_value(state["jobs"].clone())
            .map_err(|e| format!("emulator jobs: {e}"))?;
        // Fill kb/ds from the state document's shape when the job entry does not carry them.
        for (job, raw) in jobs
            .iter_mut()
            .zip(state["jobs"].as_array().into_iter().flatten())
        {
            if job.knowledge_base_id.is_none() {
                job.knowledge_base_id = raw["knowledgeBaseId"].as_str().map(String::from);
            }
            if job.data_source_id.is_none() {
                job.data_source_id = raw["dataSourceId"].as_str().map(String::from);
            }
        }
        Ok(jobs)
    }

    /// Documents the data source has indexed (or failed), by key.
    pub async fn documents(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
    ) -> Result<Vec<IndexedDocument>, String> {
        let state = self.state().await?;
        for kb in state["knowledge_bases"].as_array().into_iter().flatten() {
            let kb_id = kb["id"]
                .as_str()
                .or(kb["knowledge_base_id"].as_str())
                .unwrap_or_default();
            if kb_id != knowledge_base_id {
                continue;
            }
            for ds in kb["data_sources"].as_array().into_iter().flatten() {
                let ds_id = ds["id"]
                    .as_str()
                    .or(ds["data_source_id"].as_str())
                    .unwrap_or_default();
                if ds_id == data_source_id {
                    return serde_json::from_value(ds["documents"].clone())
                        .map_err(|e| format!("emulator documents: {e}"));
                }
            }
        }
        Err(format!(
            "emulator has no data source {knowledge_base_id}/{data_source_id}"
        ))
    }

    pub async fn fail_next_jobs(&self, count: u32, reasons: &[&str]) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            "faults/fail-jobs",
            Some(json!({"count": count, "failure_reasons": reasons})),
        )
        .await
        .map(|_| ())
    }

    pub async fn fail_documents(&self, pattern: &str, reason: &str) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            "faults/fail-documents",
            Some(json!({"pattern": pattern, "reason": reason})),
        )
        .await
        .map(|_| ())
    }

    pub async fn throttle_next_starts(&self, count: u32) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            "faults/throttle-start-ingestion-job",
            Some(json!({"count": count})),
        )
        .await
        .map(|_| ())
    }

    /// The next `count` StartIngestionJob calls are denied (AccessDeniedException).
    pub async fn deny_next_starts(&self, count: u32) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            "faults/deny-start-ingestion-job",
            Some(json!({"count": count})),
        )
        .await
        .map(|_| ())
    }

    pub async fn slow_jobs(&self, duration_seconds: f64, count: u32) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            "faults/slow-jobs",
            Some(json!({"duration_seconds": duration_seconds, "count": count})),
        )
        .await
        .map(|_| ())
    }

    pub async fn start_foreign_job(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        duration_seconds: f64,
    ) -> Result<String, String> {
        let job = self
            .call(reqwest::Method::POST, "foreign-jobs", Some(json!({"knowledge_base_id": knowledge_base_id, "data_source_id": data_source_id, "duration_seconds": duration_seconds, "description": "started in the console"})))
            .await?;
        Ok(job["ingestionJob"]["ingestionJobId"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Errors the emulator returned, by error type.
    pub async fn errors(&self) -> Result<Value, String> {
        Ok(self.state().await?["errors"].clone())
    }
}
