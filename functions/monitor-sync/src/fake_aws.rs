//! In-memory stand-ins for what monitor-sync talks to (tracking, metadata and sources tables,
//! Bedrock, SNS), behind the real adapters: the SDK clients answer from one shared state through
//! aws-smithy-mocks rules. Tests run one invocation after another against the same state, as
//! Step Functions does when it retries a task whose invocation failed or timed out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aws_sdk_bedrockagent::operation::get_ingestion_job::GetIngestionJobOutput;
use aws_sdk_bedrockagent::operation::get_knowledge_base_documents::GetKnowledgeBaseDocumentsOutput;
use aws_sdk_bedrockagent::types::{
    DocumentStatus, IngestionJob, IngestionJobStatistics, IngestionJobStatus,
    KnowledgeBaseDocumentDetail,
};
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::update_item::{
    UpdateItemError, UpdateItemInput, UpdateItemOutput,
};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::DateTime;
use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_aws::metadata_table::MetadataTable;
use kb_autosync_aws::metrics::Metrics;
use kb_autosync_aws::notifier::Notifier;
use kb_autosync_aws::sources_table::SourcesTable;
use kb_autosync_aws::test_util::update_condition_failed;
use kb_autosync_aws::tracking_table::TrackingTable;
use kb_autosync_core::change::{ChangeRecord, ChangeStatus};
use kb_autosync_core::event::ChangeType;

use crate::handler::MonitorSync;

type Item = HashMap<String, AttributeValue>;

/// What the fake services hold.
#[derive(Default)]
pub struct World {
    /// Tracking table, by change id.
    pub changes: BTreeMap<String, ChangeRecord>,
    /// Metadata table, by job id.
    pub jobs: HashMap<String, Item>,
    /// What GetIngestionJob answers (the job is terminal in these tests).
    pub job_status: String,
    /// Documents Bedrock failed, by S3 URI, with the reason; every other one is INDEXED.
    pub failed_documents: HashMap<String, String>,
    /// Changes whose marking write fails: the invocation stops there, as one that timed out
    /// after marking part of the job.
    pub broken_writes: HashSet<String>,
    /// SNS messages published, parsed.
    pub published: Vec<serde_json::Value>,
}

impl World {
    pub fn with_status(&self, status: ChangeStatus) -> usize {
        self.changes.values().filter(|c| c.status == status).count()
    }
}

pub struct Fake {
    pub world: Arc<Mutex<World>>,
}

pub const SOURCE_KEY: &str = "KB#DS";

/// A change of `KB#DS` numbered `seq`, PENDING, for `s3://docs/<key>`.
pub fn pending_change(seq: u64, key: &str) -> ChangeRecord {
    serde_json::from_value(serde_json::json!({
        "change_id": format!("c{seq}"),
        "knowledge_base_id": "KB",
        "data_source_id": "DS",
        "change_type": ChangeType::Create,
        "bucket": "docs",
        "key": key,
        "timestamp": "2026-01-01T00:00:00.000Z",
        "event_name": "Object Created",
        "status": "PENDING",
        "processed": false,
        "source_seq": seq,
        "pending_source": SOURCE_KEY,
        "expires_at": 0,
    }))
    .expect("a valid change record")
}

fn item_of(change: &ChangeRecord) -> Item {
    let json = serde_json::to_value(change).expect("a change serializes");
    json.as_object()
        .expect("an object")
        .iter()
        .filter_map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => AttributeValue::S(s.clone()),
                serde_json::Value::Number(n) => AttributeValue::N(n.to_string()),
                serde_json::Value::Bool(b) => AttributeValue::Bool(*b),
                _ => return None,
            };
            Some((k.clone(), value))
        })
        .collect()
}

fn text(values: Option<&Item>, name: &str) -> Option<String> {
    values
        .and_then(|v| v.get(name))
        .and_then(|v| v.as_s().ok())
        .cloned()
}

fn number(values: Option<&Item>, name: &str) -> u64 {
    values
        .and_then(|v| v.get(name))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl World {
    /// `TrackingTable::mark_synced` and `mark_failed`, with their conditions.
    fn update_change(
        &mut self,
        req: &UpdateItemInput,
        id: &str,
    ) -> MockResponse<UpdateItemOutput, UpdateItemError> {
        if self.broken_writes.contains(id) {
            return MockResponse::Error(UpdateItemError::generic(
                ErrorMetadata::builder()
                    .code("TaskTimedOut")
                    .message("the invocation ended here")
                    .build(),
            ));
        }
        let values = req.expression_attribute_values();
        let Some(change) = self.changes.get_mut(id) else {
            return MockResponse::Error(update_condition_failed());
        };
        if req
            .update_expression()
            .unwrap_or_default()
            .contains(":synced")
        {
            if change.status == ChangeStatus::Synced {
                return MockResponse::Error(update_condition_failed());
            }
            change.status = ChangeStatus::Synced;
            change.processed = true;
            change.ingestion_job_id = text(values, ":job");
            change.synced_at = text(values, ":at");
            change.pending_source = None;
            change.failure_reason = None;
        } else {
            if change.status != ChangeStatus::Pending {
                return MockResponse::Error(update_condition_failed());
            }
            change.status = ChangeStatus::Failed;
            change.failure_reason = text(values, ":reason");
            if let Some(job) = text(values, ":job") {
                change.ingestion_job_id = Some(job);
            }
        }
        MockResponse::Output(UpdateItemOutput::builder().build())
    }

    /// The metadata table's updates: `SET a = :v, b = if_not_exists(b, :w), ...`.
    fn update_job(&mut self, req: &UpdateItemInput, id: &str) -> UpdateItemOutput {
        let names = req.expression_attribute_names();
        let values = req.expression_attribute_values();
        let item = self.jobs.entry(id.to_string()).or_default();
        let mut updated = Item::new();
        let expression = req.update_expression().unwrap_or_default();
        let assignments = expression.strip_prefix("SET ").expect("SET only");
        // Split on the commas between assignments, not those inside `if_not_exists(a, :b)`.
        let mut depth = 0;
        let assignments = assignments.split(|c| {
            depth += i32::from(c == '(') - i32::from(c == ')');
            c == ',' && depth == 0
        });
        for assignment in assignments.map(str::trim) {
            let (name, value) = assignment.split_once(" = ").expect("name = value");
            let name = names
                .and_then(|n| n.get(name))
                .map(String::as_str)
                .unwrap_or(name);
            let (value, only_if_absent) = match value.strip_prefix("if_not_exists(") {
                Some(rest) => (rest.split(", ").nth(1).unwrap().trim_end_matches(')'), true),
                None => (value, false),
            };
            let value = values.and_then(|v| v.get(value)).expect("a bound value");
            if !(only_if_absent && item.contains_key(name)) {
                item.insert(name.to_string(), value.clone());
            }
            updated.insert(name.to_string(), item[name].clone());
        }
        let output = UpdateItemOutput::builder();
        if req.return_values() == Some(&ReturnValue::UpdatedNew) {
            output.set_attributes(Some(updated)).build()
        } else if req.return_values() == Some(&ReturnValue::AllNew) {
            output.set_attributes(Some(item.clone())).build()
        } else {
            output.build()
        }
    }
}

impl Fake {
    pub fn new(changes: Vec<ChangeRecord>, job_status: &str) -> Self {
        let world = World {
            changes: changes
                .into_iter()
                .map(|c| (c.change_id.clone(), c))
                .collect(),
            job_status: job_status.to_string(),
            ..World::default()
        };
        Self {
            world: Arc::new(Mutex::new(world)),
        }
    }

    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }

    /// A fresh handler (a new Lambda process) on the shared state.
    pub fn handler(&self) -> MonitorSync {
        let dynamo = self.dynamodb();
        MonitorSync {
            knowledge_base: KnowledgeBase::new(self.bedrock()),
            tracking: TrackingTable::new(dynamo.clone(), "tracking"),
            jobs: MetadataTable::new(dynamo.clone(), "jobs", 1),
            sources: SourcesTable::new(dynamo, "sources"),
            notifier: Notifier::new(self.sns(), "arn:aws:sns:us-east-1:123456789012:topic"),
            metrics: Metrics::new("Test", "test-stack"),
        }
    }

    fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let world = self.world.clone();
        let query = mock!(aws_sdk_dynamodb::Client::query).then_compute_output(move |q| {
            let world = world.lock().unwrap();
            let values = q.expression_attribute_values();
            let source = text(values, ":s");
            let cutoff = values
                .and_then(|v| v.get(":c"))
                .map(|_| number(values, ":c"));
            let mut found: Vec<&ChangeRecord> = world
                .changes
                .values()
                .filter(|c| c.pending_source == source)
                .filter(|c| cutoff.is_none_or(|cutoff| c.source_seq <= cutoff))
                // `oldest_pending` filters on PENDING.
                .filter(|c| q.filter_expression().is_none() || c.status == ChangeStatus::Pending)
                .collect();
            found.sort_by_key(|c| c.source_seq);
            QueryOutput::builder()
                .set_items(Some(found.into_iter().map(item_of).collect()))
                .build()
        });
        let world = self.world.clone();
        let update =
            mock!(aws_sdk_dynamodb::Client::update_item).then_compute_response(move |req| {
                let mut world = world.lock().unwrap();
                let key = req.key().expect("a key");
                if let Some(id) = key.get("change_id").and_then(|v| v.as_s().ok()) {
                    world.update_change(req, id)
                } else if let Some(id) = key.get("job_id").and_then(|v| v.as_s().ok()) {
                    MockResponse::Output(world.update_job(req, id))
                } else {
                    // The sources table: the job slot's release.
                    MockResponse::Output(UpdateItemOutput::builder().build())
                }
            });
        let world = self.world.clone();
        let get = mock!(aws_sdk_dynamodb::Client::get_item).then_compute_output(move |req| {
            let world = world.lock().unwrap();
            let id = req
                .key()
                .and_then(|k| k.get("job_id"))
                .and_then(|v| v.as_s().ok());
            GetItemOutput::builder()
                .set_item(id.and_then(|id| world.jobs.get(id)).cloned())
                .build()
        });
        mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&query, &update, &get]
        )
    }

    fn bedrock(&self) -> aws_sdk_bedrockagent::Client {
        let world = self.world.clone();
        let job = mock!(aws_sdk_bedrockagent::Client::get_ingestion_job).then_compute_output(
            move |req| {
                let world = world.lock().unwrap();
                let documents = world.changes.len() as i64;
                let statistics = IngestionJobStatistics::builder()
                    .number_of_documents_scanned(documents)
                    .number_of_modified_documents_indexed(
                        documents - world.failed_documents.len() as i64,
                    )
                    .number_of_documents_failed(world.failed_documents.len() as i64)
                    .build();
                let mut job = IngestionJob::builder()
                    .knowledge_base_id("KB")
                    .data_source_id("DS")
                    .ingestion_job_id(req.ingestion_job_id().unwrap_or_default())
                    .status(IngestionJobStatus::from(world.job_status.as_str()))
                    .statistics(statistics)
                    .started_at(DateTime::from_secs(1_767_225_600))
                    .updated_at(DateTime::from_secs(1_767_225_900));
                if world.job_status != "COMPLETE" {
                    job = job.failure_reasons("The data source's S3 bucket could not be read");
                }
                GetIngestionJobOutput::builder()
                    .ingestion_job(job.build().unwrap())
                    .build()
            },
        );
        let world = self.world.clone();
        let documents = mock!(aws_sdk_bedrockagent::Client::get_knowledge_base_documents)
            .then_compute_output(move |req| {
                let world = world.lock().unwrap();
                let details = req
                    .document_identifiers()
                    .iter()
                    .map(|id| {
                        let uri = id.s3().map(|s| s.uri().to_string()).unwrap_or_default();
                        let failed = world.failed_documents.get(&uri);
                        KnowledgeBaseDocumentDetail::builder()
                            .knowledge_base_id("KB")
                            .data_source_id("DS")
                            .identifier(id.clone())
                            .status(if failed.is_some() {
                                DocumentStatus::Failed
                            } else {
                                DocumentStatus::Indexed
                            })
                            .set_status_reason(failed.cloned())
                            .build()
                            .unwrap()
                    })
                    .collect();
                GetKnowledgeBaseDocumentsOutput::builder()
                    .set_document_details(Some(details))
                    .build()
            });
        mock_client!(aws_sdk_bedrockagent, RuleMode::MatchAny, [&job, &documents])
    }

    fn sns(&self) -> aws_sdk_sns::Client {
        let world = self.world.clone();
        let publish: Rule = mock!(aws_sdk_sns::Client::publish).then_compute_output(move |req| {
            let message = serde_json::from_str(req.message().unwrap_or_default())
                .expect("notifications are JSON");
            world.lock().unwrap().published.push(message);
            PublishOutput::builder().message_id("m").build()
        });
        mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish])
    }
}
