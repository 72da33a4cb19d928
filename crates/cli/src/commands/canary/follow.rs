//! Following the canary object: upload, the create's stages, delete, the delete's stages. What
//! a stage needs to pass is decided by [`verdict`], a pure function of what was seen.

use std::time::{Duration, Instant};

use chrono::Utc;
use kb_autosync_aws::knowledge_base::DocumentState;
use kb_autosync_core::change::{ChangeRecord, ChangeStatus};
use kb_autosync_core::event::ChangeType;
use kb_autosync_core::lease::LeaseState;

use super::probe::{ChangeQuery, Probe};
use super::{diagnose, RouteReport, Settings, Stage, Target};
use crate::commands::Invocation;
use crate::error::CliError;

/// What one look at the deployment saw. `None` fields were not looked at.
#[derive(Debug, Default)]
pub struct Seen {
    pub change: Option<ChangeRecord>,
    pub lease: Option<LeaseState>,
    /// The lease holder, when its execution runs.
    pub running: Option<String>,
    /// Some(None): looked, and Bedrock does not list the document.
    pub document: Option<Option<DocumentState>>,
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Done(String),
    Failed(String),
    Waiting,
}

/// Statuses of GetKnowledgeBaseDocuments that say the document is in the index.
const INDEXED: [&str; 3] = ["INDEXED", "PARTIALLY_INDEXED", "METADATA_PARTIALLY_INDEXED"];
/// Statuses that will not turn into INDEXED by waiting.
const REFUSED: [&str; 3] = ["FAILED", "IGNORED", "METADATA_UPDATE_FAILED"];

/// Whether `stage` happened, given what was seen. `covered_for`: how long ago the change was
/// seen SYNCED (the index may lag the job by up to `grace`).
pub fn verdict(
    stage: Stage,
    seen: &Seen,
    baseline: &LeaseState,
    covered_for: Option<Duration>,
    grace: Duration,
) -> Verdict {
    let change = seen.change.as_ref();
    let settled = change.is_some_and(|c| c.status != ChangeStatus::Pending);
    match stage {
        Stage::Recorded | Stage::DeleteRecorded => match change {
            Some(c) => Verdict::Done(format!(
                "change {} numbered {} in the tracking table{}",
                c.change_id,
                c.source_seq,
                c.origin
                    .as_deref()
                    .map(|o| format!(", origin {o}"))
                    .unwrap_or_default()
            )),
            None => Verdict::Waiting,
        },
        Stage::SyncRequested => match &seen.lease {
            _ if settled => {
                Verdict::Done("the change was settled before the lease was read".into())
            }
            Some(l) if l.requested_seq > baseline.requested_seq => Verdict::Done(format!(
                "requested_seq {} -> {} on the lease",
                baseline.requested_seq, l.requested_seq
            )),
            _ => Verdict::Waiting,
        },
        Stage::Execution => match &seen.running {
            _ if settled => Verdict::Done("its round ended before the lease was read".into()),
            Some(name) => Verdict::Done(format!("{name} running")),
            None => Verdict::Waiting,
        },
        Stage::Covered | Stage::DeleteCovered => covered(change),
        Stage::Indexed => indexed(seen, covered_for, grace),
        Stage::Removed => removed(seen, covered_for, grace),
        Stage::KnowledgeBase | Stage::Uploaded | Stage::Deleted => Verdict::Waiting,
    }
}

fn covered(change: Option<&ChangeRecord>) -> Verdict {
    let Some(c) = change else {
        return Verdict::Waiting;
    };
    let by = c.ingestion_job_id.as_deref().filter(|id| !id.is_empty());
    match (c.status, by) {
        (ChangeStatus::Synced, Some(id)) if id.starts_with("direct-") => {
            Verdict::Done(format!("SYNCED by direct batch {id}"))
        }
        (ChangeStatus::Synced, Some(id)) => Verdict::Done(format!("SYNCED by ingestion job {id}")),
        (ChangeStatus::Failed, _) => Verdict::Failed(format!(
            "the change is FAILED{}: {}",
            by.map(|id| format!(" (job {id})")).unwrap_or_default(),
            c.failure_reason.as_deref().unwrap_or("no reason recorded")
        )),
        _ => Verdict::Waiting,
    }
}

fn status_text(d: &DocumentState) -> String {
    match &d.reason {
        Some(reason) => format!("{}: {reason}", d.status),
        None => d.status.clone(),
    }
}

fn indexed(seen: &Seen, covered_for: Option<Duration>, grace: Duration) -> Verdict {
    let Some(document) = &seen.document else {
        return Verdict::Waiting;
    };
    let status = document.as_ref().map(|d| d.status.as_str());
    match document {
        Some(d) if INDEXED.contains(&d.status.as_str()) => Verdict::Done(format!("{} in the knowledge base", d.status)),
        Some(d) if REFUSED.contains(&d.status.as_str()) => Verdict::Failed(format!("the knowledge base reports {}", status_text(d))),
        _ if covered_for.is_some_and(|t| t >= grace) && matches!(status, None | Some("NOT_FOUND")) => Verdict::Failed(format!(
            "the change was SYNCED {}s ago and the knowledge base still does not have the document (NOT_FOUND)",
            covered_for.unwrap_or_default().as_secs()
        )),
        _ => Verdict::Waiting,
    }
}

fn removed(seen: &Seen, covered_for: Option<Duration>, grace: Duration) -> Verdict {
    let Some(document) = &seen.document else {
        return Verdict::Waiting;
    };
    match document {
        None => Verdict::Done("not in the knowledge base".into()),
        Some(d) if d.status == "NOT_FOUND" => {
            Verdict::Done("NOT_FOUND in the knowledge base".into())
        }
        Some(d) if covered_for.is_some_and(|t| t >= grace) && !d.status.starts_with("DELET") => {
            Verdict::Failed(format!(
                "the delete was SYNCED {}s ago and the knowledge base still reports {}",
                covered_for.unwrap_or_default().as_secs(),
                status_text(d)
            ))
        }
        _ => Verdict::Waiting,
    }
}

/// Where a half (create or delete) has got to.
#[derive(Debug, Default)]
struct Progress {
    next: usize,
    change_id: Option<String>,
    covered_at: Option<Instant>,
    polls: u64,
    early_checked: Option<Stage>,
}

/// Follows one half of the canary: the create or the delete of `key`.
pub struct Watch<'a> {
    inv: &'a Invocation,
    target: &'a Target,
    probe: &'a Probe<'a>,
    key: &'a str,
    change_type: ChangeType,
    baseline: &'a LeaseState,
    settings: Settings,
}

impl Watch<'_> {
    /// Passes `stages` in order; false (with the failed stage recorded) when one does not happen.
    async fn follow(&self, stages: &[Stage], report: &mut RouteReport) -> bool {
        let deadline = Instant::now() + self.settings.timeout;
        let mut progress = Progress::default();
        loop {
            let stage = stages[progress.next];
            let seen = match self.look(stage, &progress).await {
                Ok(seen) => seen,
                Err(e) => {
                    let detail = format!("could not check: {e}");
                    report.fail(stage, detail, vec![diagnose::call(stage, &e)]);
                    return false;
                }
            };
            match self.advance(stages, &seen, &mut progress, report) {
                Some(Verdict::Failed(detail)) => {
                    let failed = stages[progress.next];
                    let findings = diagnose::explain(self.inv, self.target, failed).await;
                    report.fail(failed, detail, findings);
                    return false;
                }
                Some(_) => return true,
                None => {}
            }
            if !self
                .keep_waiting(stages[progress.next], deadline, &mut progress, report)
                .await
            {
                return false;
            }
            progress.polls += 1;
            if !self.pause(stages[progress.next], report).await {
                return false;
            }
        }
    }

    /// Waits one poll interval; false (the stage failed as interrupted) on Ctrl-C, so that the
    /// caller still deletes the object.
    async fn pause(&self, stage: Stage, report: &mut RouteReport) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(self.settings.poll) => true,
            _ = tokio::signal::ctrl_c() => {
                report.fail(stage, "interrupted (Ctrl-C) before it was seen".into(), Vec::new());
                false
            }
        }
    }

    /// Passes every stage `seen` shows; Some(Done) when all passed, Some(Failed) when one cannot.
    fn advance(
        &self,
        stages: &[Stage],
        seen: &Seen,
        progress: &mut Progress,
        report: &mut RouteReport,
    ) -> Option<Verdict> {
        if let Some(c) = &seen.change {
            progress.change_id = Some(c.change_id.clone());
        }
        while let Some(&stage) = stages.get(progress.next) {
            let covered_for = progress.covered_at.map(|t| t.elapsed());
            let grace = self.settings.index_grace();
            match verdict(stage, seen, self.baseline, covered_for, grace) {
                Verdict::Done(detail) => report.pass(stage, detail),
                Verdict::Failed(detail) => return Some(Verdict::Failed(detail)),
                Verdict::Waiting => return None,
            }
            if matches!(stage, Stage::Covered | Stage::DeleteCovered) {
                progress.covered_at = Some(Instant::now());
            }
            progress.next += 1;
        }
        Some(Verdict::Done(String::new()))
    }

    /// False (with the stage failed) at the deadline, or early when a setup check already
    /// explains why the event cannot arrive.
    async fn keep_waiting(
        &self,
        stage: Stage,
        deadline: Instant,
        progress: &mut Progress,
        report: &mut RouteReport,
    ) -> bool {
        let waited = report.waiting();
        let early = diagnose::early_after(stage);
        if early.is_some_and(|after| waited >= after) && progress.early_checked != Some(stage) {
            progress.early_checked = Some(stage);
            let findings = diagnose::checks_for(self.inv, self.target, stage).await;
            if !findings.is_empty() {
                let detail = format!("not seen within {}s: {}", waited.as_secs(), stage.meaning());
                report.fail(stage, detail, findings);
                return false;
            }
        }
        if Instant::now() < deadline {
            return true;
        }
        let findings = diagnose::explain(self.inv, self.target, stage).await;
        let detail = format!(
            "not seen within the timeout ({}s): {}",
            self.settings.timeout.as_secs(),
            stage.meaning()
        );
        report.fail(stage, detail, findings);
        false
    }

    /// Reads what the next stage needs, and the change.
    async fn look(&self, stage: Stage, progress: &Progress) -> Result<Seen, CliError> {
        let query = ChangeQuery {
            key: self.key,
            change_type: self.change_type,
            after_seq: self.baseline.change_seq,
            known_id: progress.change_id.as_deref(),
            scan: progress.polls % 10 == 9,
        };
        let mut seen = Seen {
            change: self.probe.change(&query).await?,
            ..Seen::default()
        };
        if matches!(stage, Stage::SyncRequested | Stage::Execution) {
            let lease = self.probe.lease().await?;
            seen.running = self.probe.running(&lease).await?;
            seen.lease = Some(lease);
        }
        // The document as soon as the change is settled, so `indexed` is timed from this look.
        let settled = seen
            .change
            .as_ref()
            .is_some_and(|c| c.status != ChangeStatus::Pending);
        let covering = matches!(stage, Stage::Covered | Stage::DeleteCovered) && settled;
        if covering || matches!(stage, Stage::Indexed | Stage::Removed) {
            seen.document = Some(self.probe.document(self.key).await?);
        }
        Ok(seen)
    }
}

fn body(target: &Target) -> String {
    format!(
        "kb-autosync canary, written by `autosync canary` at {} to check that changes under {} reach knowledge base {}. The same run deletes it; it is safe to delete.\n",
        Utc::now().to_rfc3339(),
        target.route.s3_uri(),
        target.route.knowledge_base_id
    )
}

/// Uploads the canary object, follows it to the index, deletes it and follows the delete out.
/// The object never stays in S3: a failure on the way deletes it before returning.
pub async fn object(
    inv: &Invocation,
    target: &Target,
    settings: Settings,
    report: &mut RouteReport,
) {
    let key = super::target::canary_key(&target.base, Utc::now());
    report.object = Some(target.uri(&key));
    let prepared = match Probe::new(inv, target) {
        Ok(probe) => probe.lease().await.map(|lease| (probe, lease)),
        Err(e) => Err(e),
    };
    let (probe, baseline) = match prepared {
        Ok(ready) => ready,
        Err(e) => {
            return report.fail(
                Stage::Uploaded,
                format!("could not start: {e}"),
                vec![diagnose::call(Stage::Uploaded, &e)],
            )
        }
    };
    if let Err(e) = probe.put(&key, body(target)).await {
        return report.fail(
            Stage::Uploaded,
            e.to_string(),
            vec![diagnose::call(Stage::Uploaded, &e)],
        );
    }
    report.pass(Stage::Uploaded, format!("PutObject {}", target.uri(&key)));
    let mut watch = Watch {
        inv,
        target,
        probe: &probe,
        key: &key,
        change_type: ChangeType::Create,
        baseline: &baseline,
        settings,
    };
    let created = watch.follow(&Stage::CREATE, report).await;
    if delete(&probe, target, &key, created, report).await && created {
        watch.change_type = ChangeType::Delete;
        watch.follow(&Stage::DELETE, report).await;
    }
}

/// Deletes the canary object: the `deleted` stage after a create that passed, a cleanup line
/// after one that failed. True when the object is gone.
async fn delete(
    probe: &Probe<'_>,
    target: &Target,
    key: &str,
    created: bool,
    report: &mut RouteReport,
) -> bool {
    let uri = target.uri(key);
    match probe.delete(key).await {
        Ok(()) if created => report.pass(Stage::Deleted, format!("DeleteObject {uri}")),
        Ok(()) => report.cleanup.push(format!(
            "deleted the canary object {uri} (the service removes its document, if it was indexed, with the delete)"
        )),
        Err(e) => {
            let detail =
                format!("could not delete the canary object: {e}; delete it: aws s3 rm {uri}");
            if created {
                report.fail(Stage::Deleted, detail, vec![diagnose::call(Stage::Deleted, &e)]);
            } else {
                report.cleanup.push(detail);
            }
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(status: ChangeStatus, job: Option<&str>, reason: Option<&str>) -> ChangeRecord {
        serde_json::from_value(serde_json::json!({
            "change_id": "c1", "knowledge_base_id": "KB", "data_source_id": "DS",
            "change_type": "create", "bucket": "b", "key": "docs/.kb-autosync-canary/t.txt",
            "origin": "canary", "timestamp": "2026-12-01T00:00:00.000Z", "event_name": "Object Created",
            "status": status, "processed": status == ChangeStatus::Synced, "source_seq": 8,
            "ingestion_job_id": job, "failure_reason": reason, "expires_at": 0
        }))
        .unwrap()
    }

    fn doc(status: &str, reason: Option<&str>) -> Option<Option<DocumentState>> {
        Some(Some(DocumentState {
            uri: "s3://b/k".into(),
            status: status.into(),
            reason: reason.map(str::to_string),
            updated_at: None,
        }))
    }

    const GRACE: Duration = Duration::from_secs(5);

    fn lease(requested_seq: u64) -> LeaseState {
        LeaseState {
            requested_seq,
            ..LeaseState::default()
        }
    }

    #[test]
    fn recorded_and_the_sync_request_follow_the_tables() {
        let base = lease(3);
        let mut seen = Seen::default();
        assert_eq!(
            verdict(Stage::Recorded, &seen, &base, None, GRACE),
            Verdict::Waiting
        );
        seen.change = Some(change(ChangeStatus::Pending, None, None));
        let Verdict::Done(line) = verdict(Stage::Recorded, &seen, &base, None, GRACE) else {
            panic!("recorded")
        };
        assert!(
            line.contains("numbered 8") && line.contains("origin canary"),
            "{line}"
        );
        seen.lease = Some(lease(3));
        assert_eq!(
            verdict(Stage::SyncRequested, &seen, &base, None, GRACE),
            Verdict::Waiting
        );
        seen.lease = Some(lease(4));
        assert!(matches!(
            verdict(Stage::SyncRequested, &seen, &base, None, GRACE),
            Verdict::Done(_)
        ));
        assert_eq!(
            verdict(Stage::Execution, &seen, &base, None, GRACE),
            Verdict::Waiting
        );
        seen.running = Some("KB-DS-r2".into());
        assert_eq!(
            verdict(Stage::Execution, &seen, &base, None, GRACE),
            Verdict::Done("KB-DS-r2 running".into())
        );
        // A change settled before the lease was read: the request and the execution happened.
        let settled = Seen {
            change: Some(change(ChangeStatus::Synced, Some("J1"), None)),
            ..Seen::default()
        };
        assert!(matches!(
            verdict(Stage::SyncRequested, &settled, &base, None, GRACE),
            Verdict::Done(_)
        ));
        assert!(matches!(
            verdict(Stage::Execution, &settled, &base, None, GRACE),
            Verdict::Done(_)
        ));
    }

    #[test]
    fn covered_by_a_job_or_a_direct_batch_and_failed_with_its_reason() {
        let base = lease(0);
        let at = |status, job, reason| Seen {
            change: Some(change(status, job, reason)),
            ..Seen::default()
        };
        let v = |seen: &Seen| verdict(Stage::Covered, seen, &base, None, GRACE);
        assert_eq!(
            v(&at(ChangeStatus::Synced, Some("JOB1"), None)),
            Verdict::Done("SYNCED by ingestion job JOB1".into())
        );
        assert_eq!(
            v(&at(ChangeStatus::Synced, Some("direct-7f"), None)),
            Verdict::Done("SYNCED by direct batch direct-7f".into())
        );
        assert_eq!(
            v(&at(ChangeStatus::Synced, Some(""), None)),
            Verdict::Waiting,
            "SYNCED needs a job id"
        );
        assert_eq!(v(&at(ChangeStatus::Pending, None, None)), Verdict::Waiting);
        let Verdict::Failed(why) = v(&at(
            ChangeStatus::Failed,
            Some("JOB2"),
            Some("Unsupported file content"),
        )) else {
            panic!("failed")
        };
        assert!(
            why.contains("JOB2") && why.contains("Unsupported file content"),
            "{why}"
        );
    }

    #[test]
    fn indexed_waits_out_the_grace_then_fails_and_refused_documents_fail_at_once() {
        let base = lease(0);
        let with = |document| Seen {
            document,
            ..Seen::default()
        };
        let v = |seen: &Seen, covered: Option<u64>| {
            verdict(
                Stage::Indexed,
                seen,
                &base,
                covered.map(Duration::from_secs),
                GRACE,
            )
        };
        assert_eq!(
            v(&with(None), Some(60)),
            Verdict::Waiting,
            "not looked at yet"
        );
        assert!(matches!(
            v(&with(doc("INDEXED", None)), Some(0)),
            Verdict::Done(_)
        ));
        assert_eq!(
            v(&with(doc("IN_PROGRESS", None)), Some(60)),
            Verdict::Waiting
        );
        assert_eq!(v(&with(Some(None)), Some(1)), Verdict::Waiting);
        assert!(matches!(v(&with(Some(None)), Some(5)), Verdict::Failed(_)));
        assert!(matches!(
            v(&with(doc("NOT_FOUND", None)), Some(9)),
            Verdict::Failed(_)
        ));
        let Verdict::Failed(why) = v(&with(doc("FAILED", Some("too big"))), None) else {
            panic!()
        };
        assert!(why.contains("FAILED: too big"), "{why}");
    }

    #[test]
    fn removed_when_not_found_and_failed_when_still_indexed_after_the_grace() {
        let base = lease(0);
        let with = |document| Seen {
            document,
            ..Seen::default()
        };
        let v = |seen: &Seen, covered: Option<u64>| {
            verdict(
                Stage::Removed,
                seen,
                &base,
                covered.map(Duration::from_secs),
                GRACE,
            )
        };
        assert!(matches!(v(&with(Some(None)), None), Verdict::Done(_)));
        assert!(matches!(
            v(&with(doc("NOT_FOUND", None)), None),
            Verdict::Done(_)
        ));
        assert_eq!(v(&with(doc("DELETING", None)), Some(60)), Verdict::Waiting);
        assert_eq!(v(&with(doc("INDEXED", None)), Some(1)), Verdict::Waiting);
        assert!(matches!(
            v(&with(doc("INDEXED", None)), Some(6)),
            Verdict::Failed(_)
        ));
    }
}
