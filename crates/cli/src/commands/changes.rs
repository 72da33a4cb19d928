//! `autosync changes`: tracked changes, newest first, with the job that covered each and the
//! document's status in the knowledge base where Bedrock knows it.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_core::change::{ChangeRecord, ChangeStatus};
use kb_autosync_core::event::ChangeType;
use kb_autosync_core::SourceId;
use serde::Serialize;

use crate::cli::ChangesArgs;
use crate::commands::{known_sources, Invocation};
use crate::error::CliError;
use crate::output::{self, or_dash, relative};
use crate::records::Records;

#[derive(Debug, Serialize)]
pub struct ChangeRow {
    #[serde(flatten)]
    pub change: ChangeRecord,
    /// GetKnowledgeBaseDocuments status (INDEXED, FAILED, ...), when asked and known.
    pub document_status: Option<String>,
    pub document_status_reason: Option<String>,
}

/// The rows to show: filter, newest first, at most `limit`.
pub fn select(mut changes: Vec<ChangeRecord>, args: &ChangesArgs) -> Vec<ChangeRecord> {
    changes.retain(|c| {
        (!args.pending || c.status == ChangeStatus::Pending)
            && (!args.failed || c.status == ChangeStatus::Failed)
            && args.prefix.as_deref().is_none_or(|p| c.key.starts_with(p))
            && (args.include_canary || !c.is_canary())
    });
    changes.sort_by(|a, b| {
        b.timestamp
            .cmp(&a.timestamp)
            .then(b.source_seq.cmp(&a.source_seq))
    });
    changes.truncate(args.limit);
    changes
}

pub async fn run(inv: &Invocation, args: &ChangesArgs) -> Result<i32, CliError> {
    let spinner = output::Spinner::start(inv.style, "reading changes");
    let rows = gather(inv, args).await?;
    drop(spinner);
    if inv.json {
        output::print_json(&rows);
    } else {
        render(&rows);
    }
    Ok(0)
}

/// The selected changes, each with its document's live status. Statuses are looked up after
/// selecting, so `--limit` also bounds the Bedrock calls.
async fn gather(inv: &Invocation, args: &ChangesArgs) -> Result<Vec<ChangeRow>, CliError> {
    let records = Records::new(&inv.ctx, &inv.deployment)?;
    let changes = if args.pending || args.failed {
        // Unsynced changes sit in the sparse pending index: no scan needed.
        let mut unsynced = Vec::new();
        for source in known_sources(inv, &records).await? {
            unsynced.extend(records.unsynced(&source).await?);
        }
        unsynced
    } else {
        records.all_changes().await?
    };
    let selected = select(changes, args);
    let documents = document_states(inv, &selected).await;
    Ok(selected
        .into_iter()
        .map(|change| {
            let uri = format!("s3://{}/{}", change.bucket, change.key);
            let state = documents.get(&(change.knowledge_base_id.clone(), uri));
            ChangeRow {
                document_status: state.map(|s| s.0.clone()),
                document_status_reason: state.and_then(|s| s.1.clone()),
                change,
            }
        })
        .collect())
}

fn render(rows: &[ChangeRow]) {
    if rows.is_empty() {
        println!("no changes match");
        return;
    }
    let now = Utc::now();
    let mut table = output::table(&[
        "RECORDED",
        "STATUS",
        "TYPE",
        "KEY",
        "KNOWLEDGE BASE",
        "DATA SOURCE",
        "JOB",
        "DOCUMENT",
        "REASON",
    ]);
    for row in rows {
        let c = &row.change;
        table.add_row(vec![
            relative(&c.timestamp, now),
            format!("{:?}", c.status).to_uppercase(),
            c.change_type.as_str().to_string(),
            c.key.clone(),
            c.knowledge_base_id.clone(),
            c.data_source_id.clone(),
            or_dash(c.ingestion_job_id.as_deref()),
            or_dash(row.document_status.as_deref()),
            or_dash(
                c.failure_reason
                    .as_deref()
                    .or(row.document_status_reason.as_deref()),
            ),
        ]);
    }
    println!("{table}");
}

type DocumentStates = HashMap<(String, String), (String, Option<String>)>;

/// Live document status of the rows whose document should exist (not deletes), one
/// GetKnowledgeBaseDocuments call per ten documents. Best effort: a failure is reported on
/// stderr and the column stays empty.
async fn document_states(inv: &Invocation, changes: &[ChangeRecord]) -> DocumentStates {
    let kb = KnowledgeBase::new(inv.ctx.clients.bedrock.clone());
    let mut by_source: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for c in changes
        .iter()
        .filter(|c| c.change_type == ChangeType::Create)
    {
        let uri = format!("s3://{}/{}", c.bucket, c.key);
        let uris = by_source
            .entry((c.knowledge_base_id.clone(), c.data_source_id.clone()))
            .or_default();
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    let mut states = DocumentStates::new();
    for ((kb_id, ds_id), uris) in by_source {
        match kb
            .document_states(&SourceId::new(&kb_id, &ds_id), &uris)
            .await
        {
            Ok(found) => {
                for s in found {
                    states.insert((kb_id.clone(), s.uri), (s.status, s.reason));
                }
            }
            Err(e) => eprintln!(
                "note: document status of {kb_id}/{ds_id} unavailable: {}",
                inv.ctx.fail("bedrock-agent", e)
            ),
        }
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str, status: ChangeStatus, timestamp: &str, seq: u64) -> ChangeRecord {
        serde_json::from_value(serde_json::json!({
            "change_id": format!("c{seq}"), "knowledge_base_id": "KB", "data_source_id": "DS",
            "change_type": "create", "bucket": "b", "key": key, "timestamp": timestamp,
            "event_name": "Object Created", "status": status, "processed": status == ChangeStatus::Synced,
            "source_seq": seq, "expires_at": 0
        }))
        .unwrap()
    }

    fn args(pending: bool, failed: bool, prefix: Option<&str>, limit: usize) -> ChangesArgs {
        ChangesArgs {
            pending,
            failed,
            prefix: prefix.map(str::to_string),
            limit,
            include_canary: false,
        }
    }

    #[test]
    fn filters_sorts_newest_first_and_limits() {
        let all = vec![
            change(
                "docs/a.txt",
                ChangeStatus::Synced,
                "2026-11-24T10:00:00Z",
                1,
            ),
            change(
                "docs/b.txt",
                ChangeStatus::Pending,
                "2026-11-24T10:00:02Z",
                2,
            ),
            change("img/c.png", ChangeStatus::Failed, "2026-11-24T10:00:01Z", 3),
            change(
                "docs/d.txt",
                ChangeStatus::Pending,
                "2026-11-24T10:00:03Z",
                4,
            ),
        ];
        let keys = |rows: Vec<ChangeRecord>| rows.into_iter().map(|c| c.key).collect::<Vec<_>>();
        assert_eq!(
            keys(select(all.clone(), &args(false, false, None, 10))),
            ["docs/d.txt", "docs/b.txt", "img/c.png", "docs/a.txt"]
        );
        assert_eq!(
            keys(select(all.clone(), &args(true, false, None, 10))),
            ["docs/d.txt", "docs/b.txt"]
        );
        assert_eq!(
            keys(select(all.clone(), &args(false, true, None, 10))),
            ["img/c.png"]
        );
        assert_eq!(
            keys(select(all.clone(), &args(false, false, Some("docs/"), 2))),
            ["docs/d.txt", "docs/b.txt"]
        );
    }

    #[test]
    fn canary_changes_are_shown_only_when_asked() {
        let canary_key = "docs/.kb-autosync-canary/20261124T100005.000Z.txt";
        let all = vec![
            change(
                "docs/a.txt",
                ChangeStatus::Pending,
                "2026-11-24T10:00:00Z",
                1,
            ),
            change(canary_key, ChangeStatus::Pending, "2026-11-24T10:00:05Z", 2),
        ];
        let keys = |rows: Vec<ChangeRecord>| rows.into_iter().map(|c| c.key).collect::<Vec<_>>();
        assert_eq!(
            keys(select(all.clone(), &args(true, false, None, 10))),
            ["docs/a.txt"]
        );
        let mut with_canary = args(true, false, None, 10);
        with_canary.include_canary = true;
        assert_eq!(keys(select(all, &with_canary)), [canary_key, "docs/a.txt"]);
    }
}
