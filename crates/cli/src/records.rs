//! Read access to the service's three tables, in the shapes the commands show. Writes stay with
//! the service: the CLI only reads tables (and sends sync requests through the queue).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use kb_autosync_aws::sources_table::{Slots, SourcesTable};
use kb_autosync_aws::tracking_table::TrackingTable;
use kb_autosync_core::change::ChangeRecord;
use kb_autosync_core::lease::LeaseState;
use kb_autosync_core::SourceId;
use serde::{Deserialize, Serialize};

use crate::context::{sdk_error, Context};
use crate::deployment::Deployment;
use crate::error::CliError;

/// One ingestion job as start-sync and monitor-sync recorded it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    #[serde(default)]
    pub knowledge_base_id: String,
    #[serde(default)]
    pub data_source_id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub execution_name: Option<String>,
    #[serde(default)]
    pub attempt: Option<u32>,
    /// IngestionJobStatistics as JSON text.
    #[serde(default)]
    pub statistics: Option<String>,
    #[serde(default)]
    pub failure_reasons: Vec<String>,
    #[serde(default)]
    pub change_count: Option<u64>,
    #[serde(default)]
    pub failed_change_count: Option<u64>,
}

impl JobRecord {
    pub fn statistics(&self) -> serde_json::Value {
        self.statistics
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// "new 3 · modified 1 · deleted 0 · failed 0", or "-" before the job ended.
    pub fn statistics_summary(&self) -> String {
        let stats = self.statistics();
        if stats.is_null() {
            return "-".into();
        }
        let n = |name: &str| stats[name].as_u64().unwrap_or(0);
        format!(
            "new {} · modified {} · deleted {} · failed {}",
            n("numberOfNewDocumentsIndexed"),
            n("numberOfModifiedDocumentsIndexed"),
            n("numberOfDocumentsDeleted"),
            n("numberOfDocumentsFailed")
        )
    }

    pub fn duration_seconds(&self) -> Option<i64> {
        crate::output::seconds_between(self.started_at.as_deref()?, self.ended_at.as_deref()?)
    }
}

/// An item in the shape the service writes; an item that is not is an error naming the table,
/// never a row silently left out.
fn decode<T: serde::de::DeserializeOwned>(
    table: &str,
    what: &str,
    item: HashMap<String, AttributeValue>,
) -> Result<T, CliError> {
    serde_dynamo::from_item(item).map_err(|e| {
        CliError::Usage(format!(
            "a {what} in {table} is not in the expected shape: {e}"
        ))
    })
}

pub struct Records {
    pub tracking: TrackingTable,
    pub sources: SourcesTable,
    client: aws_sdk_dynamodb::Client,
    tracking_table: String,
    metadata_table: String,
    ctx: Context,
}

impl Records {
    pub fn new(ctx: &Context, deployment: &Deployment) -> Result<Self, CliError> {
        let dynamodb = ctx.clients.dynamodb.clone();
        let tracking_table = deployment.output("TrackingTableName")?.to_string();
        let metadata_table = deployment.output("MetadataTableName")?.to_string();
        Ok(Self {
            tracking: TrackingTable::new(dynamodb.clone(), tracking_table.clone()),
            sources: SourcesTable::new(dynamodb.clone(), deployment.output("SourcesTableName")?),
            client: dynamodb,
            tracking_table,
            metadata_table,
            ctx: ctx.clone(),
        })
    }

    fn fail(&self, error: kb_autosync_aws::AwsError) -> CliError {
        self.ctx.fail("dynamodb", error)
    }

    async fn scan(&self, table: &str) -> Result<Vec<HashMap<String, AttributeValue>>, CliError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.fail(sdk_error("Scan", e)))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Every tracked change (a scan: the table holds RetentionDays of changes).
    pub async fn all_changes(&self) -> Result<Vec<ChangeRecord>, CliError> {
        self.scan(&self.tracking_table)
            .await?
            .into_iter()
            .map(|item| decode(&self.tracking_table, "change", item))
            .collect()
    }

    /// Every change of one object, from a filtered scan: for when a change may have left the
    /// pending index before it was looked for there.
    pub async fn changes_of(&self, bucket: &str, key: &str) -> Result<Vec<ChangeRecord>, CliError> {
        let mut changes = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.tracking_table)
                .filter_expression("#b = :b AND #k = :k")
                .expression_attribute_names("#b", "bucket")
                .expression_attribute_names("#k", "key")
                .expression_attribute_values(":b", AttributeValue::S(bucket.into()))
                .expression_attribute_values(":k", AttributeValue::S(key.into()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.fail(sdk_error("Scan", e)))?;
            for item in page.items.unwrap_or_default() {
                changes.push(decode(&self.tracking_table, "change", item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(changes),
            }
        }
    }

    /// The unsynced changes of one object numbered after `after_seq` in its data source, from
    /// the pending index (the range condition keeps the read to the newest changes).
    pub async fn unsynced_after(
        &self,
        source: &SourceId,
        after_seq: u64,
        key: &str,
    ) -> Result<Vec<ChangeRecord>, CliError> {
        let mut changes = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.tracking_table)
                .index_name("pending-by-source")
                .key_condition_expression("pending_source = :s AND source_seq > :n")
                .filter_expression("#k = :k")
                .expression_attribute_names("#k", "key")
                .expression_attribute_values(":s", AttributeValue::S(source.key()))
                .expression_attribute_values(":n", AttributeValue::N(after_seq.to_string()))
                .expression_attribute_values(":k", AttributeValue::S(key.into()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.fail(sdk_error("Query", e)))?;
            for item in page.items.unwrap_or_default() {
                changes.push(decode(&self.tracking_table, "change", item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(changes),
            }
        }
    }

    /// One change by id (a consistent read), if it is still in the table.
    pub async fn change(&self, change_id: &str) -> Result<Option<ChangeRecord>, CliError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tracking_table)
            .key("change_id", AttributeValue::S(change_id.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail(sdk_error("GetItem", e)))?;
        out.item
            .map(|item| decode(&self.tracking_table, "change", item))
            .transpose()
    }

    /// PENDING and FAILED changes of a source, from the sparse pending index (no scan).
    pub async fn unsynced(&self, source: &SourceId) -> Result<Vec<ChangeRecord>, CliError> {
        self.tracking
            .pending_up_to(source, u64::MAX)
            .await
            .map_err(|e| self.fail(e))
    }

    pub async fn all_jobs(&self) -> Result<Vec<JobRecord>, CliError> {
        let mut jobs = self
            .scan(&self.metadata_table)
            .await?
            .into_iter()
            .map(|item| decode(&self.metadata_table, "job", item))
            .collect::<Result<Vec<JobRecord>, _>>()?;
        jobs.sort_by(|a, b| b.started_at.cmp(&a.started_at));
        Ok(jobs)
    }

    /// The newest job of a source, from the `by-source` index.
    pub async fn latest_job(&self, source: &SourceId) -> Result<Option<JobRecord>, CliError> {
        let page = self
            .client
            .query()
            .table_name(&self.metadata_table)
            .index_name("by-source")
            .key_condition_expression("source_id = :s")
            .expression_attribute_values(":s", AttributeValue::S(source.key()))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| self.fail(sdk_error("Query", e)))?;
        page.items
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|item| decode(&self.metadata_table, "job", item))
            .transpose()
    }

    pub async fn leases(&self) -> Result<Vec<(SourceId, LeaseState)>, CliError> {
        self.sources.all_sources().await.map_err(|e| self.fail(e))
    }

    pub async fn lease(&self, source: &SourceId) -> Result<LeaseState, CliError> {
        Ok(self
            .sources
            .read(source)
            .await
            .map_err(|e| self.fail(e))?
            .unwrap_or_default())
    }

    pub async fn slots(&self) -> Result<Slots, CliError> {
        self.sources.read_slots().await.map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_item_is_an_error_naming_the_table() {
        let item = HashMap::from([("job_id".to_string(), AttributeValue::N("7".into()))]);
        let err = decode::<JobRecord>("kb-autosync-MetadataTable", "job", item).unwrap_err();
        assert!(
            err.to_string()
                .contains("a job in kb-autosync-MetadataTable"),
            "{err}"
        );
        let item = HashMap::from([("job_id".to_string(), AttributeValue::S("J1".into()))]);
        assert_eq!(decode::<JobRecord>("t", "job", item).unwrap().job_id, "J1");
    }
}
