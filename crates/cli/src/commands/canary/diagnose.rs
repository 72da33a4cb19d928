//! Why a stage did not happen: the `doctor` checks that bear on the stage, run when it fails,
//! and where to look when none of them fails.

use std::time::Duration;

use super::{Stage, Target};
use crate::commands::Invocation;
use crate::deployment::FUNCTION_OUTPUTS;
use crate::doctor::checks;
use crate::doctor::Finding;
use crate::error::CliError;

/// How long a stage may lag before its checks run while the canary still waits: an S3 event
/// reaches the tracking table in seconds, so a setup check that fails by then explains a
/// change that will never arrive. Later stages wait for quotas and jobs: only the timeout.
pub fn early_after(stage: Stage) -> Option<Duration> {
    match stage {
        Stage::Recorded | Stage::DeleteRecorded => Some(Duration::from_secs(10)),
        _ => None,
    }
}

/// A failed call as a finding: what failed and the hint that goes with it.
pub fn call(stage: Stage, error: &CliError) -> Finding {
    let text = error.to_string();
    let (detail, hint) = match text.split_once("\n  hint: ") {
        Some((detail, hint)) => (detail.to_string(), hint.to_string()),
        None => (
            text,
            "see the error; run `autosync doctor` for the setup checks".to_string(),
        ),
    };
    Finding::fail(stage.name(), detail, hint)
}

async fn permissions(inv: &Invocation, functions: &[&str]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (function, output) in FUNCTION_OUTPUTS {
        if functions.contains(&function) {
            findings.push(checks::permissions(inv, function, output).await);
        }
    }
    findings
}

/// The failed checks that explain why `stage` did not happen (empty when all pass).
pub async fn checks_for(inv: &Invocation, target: &Target, stage: Stage) -> Vec<Finding> {
    let route = &target.route;
    let mut findings = Vec::new();
    match stage {
        Stage::Recorded | Stage::DeleteRecorded => {
            findings.push(checks::bucket_notifications(inv, &route.bucket).await);
            findings.push(checks::change_rule(inv).await);
            findings.push(checks::dead_letter_queue(inv, "ChangeEventsDLQUrl").await);
            findings.extend(permissions(inv, &["event-processor"]).await);
        }
        Stage::SyncRequested | Stage::Execution => {
            findings.push(checks::dead_letter_queue(inv, "SyncDLQUrl").await);
            findings.extend(permissions(inv, &["event-processor", "sync-processor"]).await);
        }
        Stage::Covered | Stage::DeleteCovered => {
            findings.extend(knowledge_base(inv, target).await);
            let functions = ["check-quota", "start-sync", "monitor-sync"];
            findings.extend(permissions(inv, &functions).await);
        }
        Stage::Indexed | Stage::Removed => {
            findings.extend(scope(target));
            findings.extend(knowledge_base(inv, target).await);
            findings.extend(permissions(inv, &["monitor-sync"]).await);
        }
        Stage::KnowledgeBase | Stage::Uploaded | Stage::Deleted => {}
    }
    findings.retain(|f| !f.passed);
    findings
}

/// The checks that explain it, or where to look when none does.
pub async fn explain(inv: &Invocation, target: &Target, stage: Stage) -> Vec<Finding> {
    let findings = checks_for(inv, target, stage).await;
    if !findings.is_empty() {
        return findings;
    }
    vec![Finding::fail(
        stage.name(),
        format!("every setup check that bears on `{}` passes", stage.name()),
        where_to_look(inv, stage),
    )]
}

/// doctor's knowledge base and data source checks, its scope check aside (see [`scope`]).
async fn knowledge_base(inv: &Invocation, target: &Target) -> Vec<Finding> {
    checks::knowledge_base(inv, &target.route)
        .await
        .into_iter()
        .filter(|f| f.check != "data-source-scope")
        .collect()
}

/// The canary's own scope check: is its object inside the data source's scope? (A scope wider
/// than the route, which doctor also flags, does not stop the canary.)
fn scope(target: &Target) -> Option<Finding> {
    (!target.in_scope).then(|| {
        Finding::fail(
            "data-source-scope",
            format!(
                "data source {} reads {}, which does not contain the route {}: jobs never ingest the canary, nor anything else uploaded under the route",
                target.source.data_source_id,
                target.scope_text(),
                target.route.s3_uri()
            ),
            checks::scope_fix(&target.route),
        )
    })
}

fn where_to_look(inv: &Invocation, stage: Stage) -> String {
    let log = |role: &str| {
        let name = inv.deployment.function_name(role).unwrap_or(role);
        format!("`aws logs tail /aws/lambda/{name} --since 1h`")
    };
    match stage {
        Stage::Recorded | Stage::DeleteRecorded => format!(
            "read event-processor's log {} (\"no route matches the object\" lists the routes); is the key under the rule's prefix?",
            log("event-processor")
        ),
        Stage::SyncRequested | Stage::Execution => format!(
            "read sync-processor's log {}; `autosync status` shows the lease holder",
            log("sync-processor")
        ),
        Stage::Covered | Stage::DeleteCovered => format!(
            "`autosync status` shows what the data source waits for (a job started elsewhere, the account's job limit); `autosync jobs` the last job; monitor-sync's log {}",
            log("monitor-sync")
        ),
        Stage::Indexed | Stage::Removed => "`autosync changes --include-canary` shows the document's status in the knowledge base; `autosync jobs` the job's statistics".to_string(),
        Stage::KnowledgeBase | Stage::Uploaded | Stage::Deleted => {
            "run `autosync doctor` for the setup checks".to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CliError;
    use kb_autosync_aws::AwsError;

    #[test]
    fn a_failed_call_keeps_its_hint_as_the_fix() {
        let error = CliError::call(
            "s3",
            AwsError::new("PutObject", "AccessDenied", "Access Denied"),
            "us-east-1",
        );
        let finding = call(Stage::Uploaded, &error);
        assert!(!finding.passed);
        assert_eq!(finding.check, "uploaded");
        assert!(
            finding.detail.contains("PutObject") && finding.detail.contains("AccessDenied"),
            "{}",
            finding.detail
        );
        assert!(finding.fix.unwrap().contains("s3:PutObject"));
    }

    #[test]
    fn only_the_event_path_is_checked_early() {
        assert!(early_after(Stage::Recorded).is_some());
        assert!(early_after(Stage::DeleteRecorded).is_some());
        assert!(early_after(Stage::Covered).is_none());
        assert!(early_after(Stage::Indexed).is_none());
    }
}
