//! JSON shapes of the bedrock-agent REST protocol, as aws-sdk-bedrockagent serializes requests
//! (`protocol_serde/shape_*_input.rs`) and deserializes responses (`protocol_serde/shape_*.rs`).
//! Names are camelCase; every timestamp is an RFC 3339 string (the SDK reads them with
//! `Format::DateTimeWithOffset`), never epoch seconds.

use serde::{Deserialize, Serialize};

use crate::catalog::{DataSource, KnowledgeBase};
use crate::emulator::{DocumentDetail, DocumentIdentifier};
use crate::jobs::IngestionJobView;
use crate::sync_plan::IngestionStatistics;
use crate::timestamps::rfc3339_millis;

// ----- requests -----

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartIngestionJobBody {
    pub client_token: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListIngestionJobsBody {
    pub filters: Option<Vec<IngestionJobFilterBody>>,
    pub sort_by: Option<IngestionJobSortByBody>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionJobFilterBody {
    pub attribute: String,
    pub operator: String,
    pub values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionJobSortByBody {
    pub attribute: String,
    pub order: String,
}

/// ListDataSources and ListKnowledgeBaseDocuments.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageBody {
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// GetKnowledgeBaseDocuments and DeleteKnowledgeBaseDocuments (only the latter sends a
/// clientToken).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentIdentifiersBody {
    pub client_token: Option<String>,
    #[serde(default)]
    pub document_identifiers: Vec<DocumentIdentifierWire>,
}

/// IngestKnowledgeBaseDocuments.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestDocumentsBody {
    pub client_token: Option<String>,
    #[serde(default)]
    pub documents: Vec<KnowledgeBaseDocumentBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KnowledgeBaseDocumentBody {
    pub content: DocumentContentBody,
    pub metadata: Option<DocumentMetadataBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentContentBody {
    pub data_source_type: String,
    pub s3: Option<S3ContentBody>,
    pub custom: Option<CustomContentBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3ContentBody {
    pub s3_location: S3LocationWire,
}

/// Only its identifier matters here: CUSTOM content is refused on an S3 data source.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomContentBody {
    pub custom_document_identifier: Option<CustomDocumentIdWire>,
}

/// DocumentMetadata: `type` and the field of that type. The accessControlList is accepted and not
/// modelled.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentMetadataBody {
    #[serde(rename = "type")]
    pub metadata_type: String,
    pub inline_attributes: Option<Vec<MetadataAttributeBody>>,
    pub s3_location: Option<CustomS3LocationBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataAttributeBody {
    pub key: String,
    pub value: Option<MetadataAttributeValueBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataAttributeValueBody {
    #[serde(rename = "type")]
    pub value_type: String,
    pub number_value: Option<f64>,
    pub boolean_value: Option<bool>,
    pub string_value: Option<String>,
    pub string_list_value: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomS3LocationBody {
    pub uri: String,
    pub bucket_owner_account_id: Option<String>,
}

// ----- shared -----

/// DocumentIdentifier: `{"dataSourceType":"S3","s3":{"uri":"s3://bucket/key"}}` or
/// `{"dataSourceType":"CUSTOM","custom":{"id":"..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentIdentifierWire {
    pub data_source_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3LocationWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomDocumentIdWire>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct S3LocationWire {
    pub uri: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomDocumentIdWire {
    pub id: String,
}

impl From<&DocumentIdentifier> for DocumentIdentifierWire {
    fn from(identifier: &DocumentIdentifier) -> Self {
        match identifier {
            DocumentIdentifier::S3 { uri } => Self {
                data_source_type: "S3".to_string(),
                s3: Some(S3LocationWire { uri: uri.clone() }),
                custom: None,
            },
            DocumentIdentifier::Custom { id } => Self {
                data_source_type: "CUSTOM".to_string(),
                s3: None,
                custom: Some(CustomDocumentIdWire { id: id.clone() }),
            },
        }
    }
}

// ----- responses -----

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionJobWire {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub ingestion_job_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub status: &'static str,
    pub statistics: IngestionStatistics,
    /// Only on IngestionJob, not on IngestionJobSummary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reasons: Option<Vec<String>>,
    pub started_at: String,
    pub updated_at: String,
}

impl IngestionJobWire {
    pub fn job(job: &IngestionJobView) -> Self {
        let failure_reasons =
            (!job.failure_reasons.is_empty()).then(|| job.failure_reasons.clone());
        Self {
            failure_reasons,
            ..Self::summary(job)
        }
    }

    pub fn summary(job: &IngestionJobView) -> Self {
        Self {
            knowledge_base_id: job.knowledge_base_id.clone(),
            data_source_id: job.data_source_id.clone(),
            ingestion_job_id: job.ingestion_job_id.clone(),
            description: job.description.clone(),
            status: job.status.as_str(),
            statistics: job.statistics.clone(),
            failure_reasons: None,
            started_at: rfc3339_millis(job.started_at),
            updated_at: rfc3339_millis(job.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KnowledgeBaseWire {
    pub knowledge_base_id: String,
    pub name: String,
    pub knowledge_base_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub role_arn: String,
    pub knowledge_base_configuration: serde_json::Value,
    pub status: &'static str,
    pub created_at: String,
    pub updated_at: String,
}

impl KnowledgeBaseWire {
    pub fn new(knowledge_base: &KnowledgeBase, region: &str, account_id: &str) -> Self {
        Self {
            knowledge_base_id: knowledge_base.id.clone(),
            name: knowledge_base.name.clone(),
            knowledge_base_arn: format!("arn:aws:bedrock:{region}:{account_id}:knowledge-base/{}", knowledge_base.id),
            description: knowledge_base.description.clone(),
            role_arn: format!("arn:aws:iam::{account_id}:role/service-role/AmazonBedrockExecutionRoleForKnowledgeBase_emulator"),
            knowledge_base_configuration: serde_json::json!({
                "type": "VECTOR",
                "vectorKnowledgeBaseConfiguration": {
                    "embeddingModelArn": format!("arn:aws:bedrock:{region}::foundation-model/amazon.titan-embed-text-v2:0")
                }
            }),
            status: "ACTIVE",
            created_at: rfc3339_millis(knowledge_base.created_at),
            updated_at: rfc3339_millis(knowledge_base.created_at),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceWire {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub name: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub data_source_configuration: serde_json::Value,
    pub data_deletion_policy: &'static str,
    pub created_at: String,
    pub updated_at: String,
}

impl DataSourceWire {
    pub fn new(data_source: &DataSource) -> Self {
        let mut s3_configuration = serde_json::json!({ "bucketArn": data_source.bucket_arn });
        if !data_source.scope.inclusion_prefixes.is_empty() {
            s3_configuration["inclusionPrefixes"] =
                serde_json::json!(data_source.scope.inclusion_prefixes);
        }
        Self {
            knowledge_base_id: data_source.knowledge_base_id.clone(),
            data_source_id: data_source.id.clone(),
            name: data_source.name.clone(),
            status: "AVAILABLE",
            description: data_source.description.clone(),
            data_source_configuration: serde_json::json!({ "type": "S3", "s3Configuration": s3_configuration }),
            data_deletion_policy: "DELETE",
            created_at: rfc3339_millis(data_source.created_at),
            updated_at: rfc3339_millis(data_source.created_at),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KnowledgeBaseSummaryWire {
    pub knowledge_base_id: String,
    pub name: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub updated_at: String,
}

impl KnowledgeBaseSummaryWire {
    pub fn new(knowledge_base: &KnowledgeBase) -> Self {
        Self {
            knowledge_base_id: knowledge_base.id.clone(),
            name: knowledge_base.name.clone(),
            status: "ACTIVE",
            description: knowledge_base.description.clone(),
            updated_at: rfc3339_millis(knowledge_base.created_at),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceSummaryWire {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub name: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub updated_at: String,
}

impl DataSourceSummaryWire {
    pub fn new(data_source: &DataSource) -> Self {
        Self {
            knowledge_base_id: data_source.knowledge_base_id.clone(),
            data_source_id: data_source.id.clone(),
            name: data_source.name.clone(),
            status: "AVAILABLE",
            description: data_source.description.clone(),
            updated_at: rfc3339_millis(data_source.created_at),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentDetailWire {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub status: &'static str,
    pub identifier: DocumentIdentifierWire,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl From<&DocumentDetail> for DocumentDetailWire {
    fn from(detail: &DocumentDetail) -> Self {
        Self {
            knowledge_base_id: detail.knowledge_base_id.clone(),
            data_source_id: detail.data_source_id.clone(),
            status: detail.status,
            identifier: DocumentIdentifierWire::from(&detail.identifier),
            status_reason: detail.status_reason.clone(),
            updated_at: detail.updated_at.map(rfc3339_millis),
        }
    }
}
