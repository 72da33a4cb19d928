//! The Bedrock Agent emulator's control and inspection endpoints (`/_emulator/...`).

use std::collections::BTreeMap;

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
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct IndexedDocument {
    pub key: String,
    pub etag: String,
    /// INDEXED, FAILED, IGNORED or METADATA_UPDATE_FAILED.
    pub status: String,
    pub status_reason: Option<String>,
    /// `job` (applied by an ingestion job) or `direct` (IngestKnowledgeBaseDocuments).
    #[serde(default)]
    pub origin: Option<String>,
    /// Metadata given with a direct ingestion (`{"type": "S3_LOCATION", "uri", "etag"}` or
    /// `{"type": "IN_LINE_ATTRIBUTE", "attributes": [...]}`); null for job-indexed documents.
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// A direct ingestion or deletion still running on a data source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PendingDocument {
    pub key: String,
    /// `INGEST` or `DELETE`.
    pub operation: String,
    /// STARTING, IN_PROGRESS, DELETING or DELETE_IN_PROGRESS.
    pub status: String,
    /// What it ends as: INDEXED, FAILED, IGNORED, METADATA_UPDATE_FAILED, or NOT_FOUND.
    pub planned_status: String,
    pub planned_status_reason: Option<String>,
    pub client_token: Option<String>,
    pub accepted_at: String,
    pub scheduled_end_at: String,
}

/// Document API calls on one data source for one operation.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct DocumentCalls {
    pub calls: u64,
    pub succeeded: u64,
    /// Retries answered from a known clientToken.
    pub replayed: u64,
    pub documents: u64,
    /// Failed calls by error type (ConflictException: a write while an ingestion job ran).
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
}

/// What the emulator shows of a data source's direct document activity.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct DirectDocumentActivity {
    #[serde(default)]
    pub pending_documents: Vec<PendingDocument>,
    /// By operation name (IngestKnowledgeBaseDocuments, DeleteKnowledgeBaseDocuments,
    /// GetKnowledgeBaseDocuments, ListKnowledgeBaseDocuments).
    #[serde(default)]
    pub document_calls: BTreeMap<String, DocumentCalls>,
    /// Ingestion jobs started while direct operations of the data source were still running.
    #[serde(default)]
    pub job_starts_during_direct_operations: u64,
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

    /// The inspection entry of one data source.
    async fn data_source_state(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
    ) -> Result<Value, String> {
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
                    return Ok(ds.clone());
                }
            }
        }
        Err(format!(
            "emulator has no data source {knowledge_base_id}/{data_source_id}"
        ))
    }

    /// Documents the data source has indexed (or failed, ignored...), by key.
    pub async fn documents(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
    ) -> Result<Vec<IndexedDocument>, String> {
        let ds = self
            .data_source_state(knowledge_base_id, data_source_id)
            .await?;
        serde_json::from_value(ds["documents"].clone())
            .map_err(|e| format!("emulator documents: {e}"))
    }

    /// Direct ingestions/deletions still running, document API calls per operation, and jobs
    /// started while direct operations ran, for one data source.
    pub async fn direct_document_activity(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
    ) -> Result<DirectDocumentActivity, String> {
        let ds = self
            .data_source_state(knowledge_base_id, data_source_id)
            .await?;
        serde_json::from_value(ds).map_err(|e| format!("emulator direct document activity: {e}"))
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

    /// The next `count` document API calls (Ingest/Delete/Get/ListKnowledgeBaseDocuments) get
    /// ThrottlingException.
    pub async fn throttle_next_document_calls(&self, count: u32) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            "faults/throttle-document-operations",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_source_entry_of_the_inspection_document_deserializes() {
        let entry = json!({
            "data_source_id": "DS", "documents": [
                {"key": "docs/a.txt", "etag": "e", "size_bytes": 1, "status": "INDEXED",
                 "updated_at": "2024-05-01T12:30:00.123Z", "origin": "direct",
                 "metadata": {"type": "S3_LOCATION", "uri": "s3://b/docs/a.txt.metadata.json", "etag": "m"}}],
            "pending_documents": [
                {"key": "docs/b.txt", "operation": "DELETE", "status": "DELETING", "planned_status": "NOT_FOUND",
                 "planned_status_reason": null, "metadata": null, "client_token": null,
                 "accepted_at": "2024-05-01T12:30:00.123Z", "scheduled_in_progress_at": "2024-05-01T12:30:00.223Z",
                 "scheduled_end_at": "2024-05-01T12:30:00.623Z"}],
            "document_calls": {"IngestKnowledgeBaseDocuments":
                {"calls": 2, "succeeded": 1, "replayed": 0, "documents": 1, "errors": {"ConflictException": 1}}},
            "job_starts_during_direct_operations": 0
        });
        let documents: Vec<IndexedDocument> =
            serde_json::from_value(entry["documents"].clone()).unwrap();
        assert_eq!(documents[0].origin.as_deref(), Some("direct"));
        let activity: DirectDocumentActivity = serde_json::from_value(entry).unwrap();
        assert_eq!(activity.pending_documents[0].planned_status, "NOT_FOUND");
        assert_eq!(
            activity.document_calls["IngestKnowledgeBaseDocuments"].errors["ConflictException"],
            1
        );
    }
}
