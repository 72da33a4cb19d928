//! Messages on the sync queue.

use serde::{Deserialize, Serialize};

use crate::SourceId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SyncRequest {
    /// A change was recorded for this data source.
    Sync {
        knowledge_base_id: String,
        data_source_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change_id: Option<String>,
    },
    /// Anti-entropy: request a sync for every source with pending changes and no running execution.
    Sweep,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("sync request is not valid: {reason}; expected {{\"kind\":\"sync\",\"knowledge_base_id\":...,\"data_source_id\":...}} or {{\"kind\":\"sweep\"}}, got {preview:?}")]
pub struct SyncRequestError {
    pub reason: String,
    pub preview: String,
}

impl SyncRequest {
    pub fn for_change(source: &SourceId, change_id: &str) -> Self {
        Self::Sync {
            knowledge_base_id: source.knowledge_base_id.clone(),
            data_source_id: source.data_source_id.clone(),
            change_id: Some(change_id.to_string()),
        }
    }

    pub fn parse(body: &str) -> Result<Self, SyncRequestError> {
        let request: Self = serde_json::from_str(body).map_err(|e| SyncRequestError {
            reason: e.to_string(),
            preview: body.chars().take(120).collect(),
        })?;
        if let Self::Sync {
            knowledge_base_id,
            data_source_id,
            ..
        } = &request
        {
            if knowledge_base_id.is_empty() || data_source_id.is_empty() {
                return Err(SyncRequestError {
                    reason: "knowledge_base_id and data_source_id must not be empty".into(),
                    preview: body.chars().take(120).collect(),
                });
            }
        }
        Ok(request)
    }

    pub fn source(&self) -> Option<SourceId> {
        match self {
            Self::Sync {
                knowledge_base_id,
                data_source_id,
                ..
            } => Some(SourceId::new(knowledge_base_id, data_source_id)),
            Self::Sweep => None,
        }
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("sync requests always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_sweep() {
        let request = SyncRequest::for_change(&SourceId::new("KB", "DS"), "c1");
        assert_eq!(
            request.to_body(),
            r#"{"kind":"sync","knowledge_base_id":"KB","data_source_id":"DS","change_id":"c1"}"#
        );
        assert_eq!(SyncRequest::parse(&request.to_body()).unwrap(), request);
        assert_eq!(
            SyncRequest::parse(r#"{"kind":"sweep"}"#).unwrap(),
            SyncRequest::Sweep
        );
    }

    #[test]
    fn invalid_requests_say_what_is_wrong() {
        let err = SyncRequest::parse(r#"{"kind":"sync","knowledge_base_id":"KB"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("data_source_id"), "{err}");
        let err =
            SyncRequest::parse(r#"{"kind":"sync","knowledge_base_id":"","data_source_id":"D"}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("must not be empty"), "{err}");
        let err = SyncRequest::parse("garbage").unwrap_err().to_string();
        assert!(err.contains("garbage"), "{err}");
    }

    #[test]
    fn a_sync_request_is_a_few_hundred_bytes_whatever_it_names() {
        // SQS: 256 KB per message (1 MiB since 2025). One request per change, never a list.
        let source = SourceId::new("K".repeat(10), "D".repeat(10));
        let request = SyncRequest::for_change(&source, &"c".repeat(64));
        let body = serde_json::to_string(&request).unwrap();
        assert!(body.len() < 512, "{} bytes", body.len());
        assert_eq!(SyncRequest::parse(&body).unwrap(), request);
    }
}
