//! The `foreign-jobs` finding: ingestion jobs running in the account that this stack did not
//! start, while its own data sources wait for a job slot. Bedrock's five concurrent jobs are per
//! account: a second stack, or a tool, that starts jobs takes slots this stack counts as free.

use std::collections::BTreeSet;

use chrono::Utc;
use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_aws::sources_table::Slots;
use kb_autosync_core::slot_line;
use kb_autosync_core::SourceId;

use super::checks::call_failed;
use super::Finding;
use crate::commands::Invocation;
use crate::records::Records;

const CHECK: &str = "foreign-jobs";

/// A running job: (knowledge base, data source, job id).
type RunningJob = (String, String, String);

pub async fn finding(inv: &Invocation) -> Finding {
    let kb = KnowledgeBase::new(inv.ctx.clients.bedrock.clone());
    let running = match running_jobs(&kb).await {
        Ok(jobs) => jobs,
        Err(e) => return call_failed(inv, CHECK, "bedrock-agent", e),
    };
    let slots = match read_slots(inv).await {
        Ok(slots) => slots,
        Err(e) => return Finding::fail(CHECK, format!("could not check: {e}"), "see the error"),
    };
    let quota_wait = inv.deployment.quota_wait_seconds();
    verdict(&running, &slots, waiting_for_a_slot(&slots, quota_wait))
}

async fn read_slots(inv: &Invocation) -> Result<Slots, crate::error::CliError> {
    Records::new(&inv.ctx, &inv.deployment)?.slots().await
}

/// Every job running in the account.
async fn running_jobs(kb: &KnowledgeBase) -> Result<Vec<RunningJob>, kb_autosync_aws::AwsError> {
    let mut running = Vec::new();
    for knowledge_base_id in kb.knowledge_base_ids().await? {
        for data_source_id in kb.data_source_ids(&knowledge_base_id).await? {
            let source = SourceId::new(&knowledge_base_id, &data_source_id);
            for job in kb.running_jobs(&source).await? {
                running.push((knowledge_base_id.clone(), data_source_id.clone(), job));
            }
        }
    }
    Ok(running)
}

/// How many of this stack's data sources wait in line for an account slot now.
fn waiting_for_a_slot(slots: &Slots, quota_wait_seconds: u64) -> usize {
    let line = slots.line.clone().unwrap_or_default();
    slot_line::in_order(
        &line,
        Utc::now().timestamp_millis(),
        slot_line::stale_after_ms(quota_wait_seconds),
    )
    .len()
}

/// A job on a knowledge base whose slot this stack holds is this stack's (one job per knowledge
/// base); every other running job was started elsewhere.
fn verdict(running: &[RunningJob], slots: &Slots, waiting: usize) -> Finding {
    let ours: BTreeSet<&str> = slots
        .holders
        .iter()
        .map(|h| h.knowledge_base_id.as_str())
        .collect();
    let foreign: Vec<String> = running
        .iter()
        .filter(|(kb, _, _)| !ours.contains(kb.as_str()))
        .map(|(kb, ds, job)| format!("{kb}/{ds} job {job}"))
        .collect();
    if foreign.is_empty() {
        return Finding::pass(
            CHECK,
            "no ingestion job in the account besides this stack's",
        );
    }
    let listed = foreign
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if waiting == 0 {
        return Finding::pass(
            CHECK,
            format!("{} job(s) this stack did not start are running ({listed}); none of its data sources waits for a slot", foreign.len()),
        );
    }
    Finding::fail(
        CHECK,
        format!(
            "{} job(s) this stack did not start are running ({listed}) while {waiting} of its data source(s) wait for one of the account's job slots",
            foreign.len()
        ),
        "Bedrock runs at most 5 ingestion jobs per account: when another stack or tool starts jobs here, split MaxConcurrentJobsPerAccount between them so that they add up to 5 at most",
    )
}

#[cfg(test)]
mod tests {
    use kb_autosync_aws::sources_table::SlotHolder;

    use super::*;

    fn job(kb: &str) -> RunningJob {
        (kb.into(), "DS".into(), format!("J-{kb}"))
    }

    #[test]
    fn jobs_started_elsewhere_fail_only_while_this_stack_waits() {
        let slots = Slots {
            holders: vec![SlotHolder {
                knowledge_base_id: "OURS".into(),
                execution_name: "OURS-DS-r1".into(),
                data_source_id: "DS".into(),
                since_ms: 0,
            }],
            ..Default::default()
        };
        assert!(verdict(&[job("OURS")], &slots, 3).passed);
        let idle = verdict(&[job("OURS"), job("OTHER")], &slots, 0);
        assert!(idle.passed && idle.detail.contains("OTHER/DS job J-OTHER"));
        let waiting = verdict(&[job("OURS"), job("OTHER")], &slots, 2);
        assert!(!waiting.passed);
        assert!(waiting
            .detail
            .contains("while 2 of its data source(s) wait"));
        assert!(waiting.fix.unwrap().contains("MaxConcurrentJobsPerAccount"));
    }
}
