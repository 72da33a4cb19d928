//! The lease protocol's rounds on an in-memory account: what the lease names and which
//! executions ran afterwards, whatever the wording of the conditional writes (those are the
//! adapter's, tested in `kb_autosync_aws::sources_table`).

use kb_autosync_core::handover::{ContinueRequest, HandOverPolicy, Next};
use kb_autosync_core::lease::{execution_name, ExecutionState};
use kb_autosync_test_support::MemoryAccount;

use super::*;

fn settings() -> WorkflowSettings {
    WorkflowSettings {
        monitor_interval_seconds: 1,
        quota_wait_seconds: 1,
        max_job_attempts: 2,
        retry_backoff_seconds: 1,
    }
}

fn rounds(account: &MemoryAccount) -> Rounds<MemoryAccount, MemoryAccount> {
    Rounds {
        sources: account.clone(),
        executions: account.clone(),
        settings: settings(),
        claim_grace_ms: 60_000,
        hand_over: HandOverPolicy {
            after_history_events: 100,
        },
    }
}

fn source() -> SourceId {
    SourceId::new("KB", "DS")
}

pub(super) fn now() -> i64 {
    kb_autosync_aws::now_ms()
}

/// The lease of `KB#DS` held by `holder` for `round`, claimed at `claimed_at_ms`.
async fn held(account: &MemoryAccount, holder: &str, round: u64, claimed_at_ms: i64) {
    account.bump_requested(&source(), 0).await.unwrap();
    assert!(account
        .claim(&source(), round, holder, claimed_at_ms)
        .await
        .unwrap());
}

fn holder(account: &MemoryAccount) -> Option<String> {
    account.with(|a| a.lease(&source()).and_then(|l| l.active_execution.clone()))
}

#[tokio::test]
async fn a_free_lease_is_claimed_and_the_round_started() {
    let account = MemoryAccount::new();
    let name = rounds(&account).ensure_running(&source(), 3).await.unwrap();
    assert_eq!(name, execution_name(&source(), 1));
    assert_eq!(account.with(|a| a.started.clone()), vec![name.clone()]);
    assert_eq!(holder(&account), Some(name));
    assert_eq!(
        account.with(|a| a.lease(&source()).unwrap().requested_seq),
        3
    );
}

#[tokio::test]
async fn a_running_holder_covers_the_request_without_a_new_execution() {
    let account = MemoryAccount::new();
    held(&account, "KB-DS-r4", 4, now()).await;
    account.add_execution("KB-DS-r4", ExecutionState::Running);
    let name = rounds(&account).ensure_running(&source(), 2).await.unwrap();
    assert_eq!(name, "KB-DS-r4");
    assert!(account.with(|a| a.started.is_empty()));
    assert_eq!(
        account.with(|a| a.lease(&source()).unwrap().requested_seq),
        2
    );
}

#[tokio::test]
async fn a_holder_that_ended_without_releasing_is_reclaimed_for_the_next_round() {
    let account = MemoryAccount::new();
    held(&account, "KB-DS-r4", 4, now() - 600_000).await;
    account.add_execution("KB-DS-r4", ExecutionState::Ended("TIMED_OUT".into()));
    let name = rounds(&account).ensure_running(&source(), 1).await.unwrap();
    assert_eq!(name, "KB-DS-r5");
    assert_eq!(holder(&account).as_deref(), Some("KB-DS-r5"));
    assert_eq!(account.with(|a| a.started.clone()), vec!["KB-DS-r5"]);
}

#[tokio::test(start_paused = true)]
async fn a_fresh_claim_without_execution_sends_the_request_back() {
    let account = MemoryAccount::new();
    held(&account, "KB-DS-r2", 2, now()).await;
    let err = rounds(&account)
        .ensure_running(&source(), 1)
        .await
        .unwrap_err();
    assert!(matches!(err, RoundError::RetryLater(_)), "{err:?}");
    assert!(
        account.with(|a| a.started.is_empty()),
        "the claimer may still start it: never twice"
    );
    assert_eq!(holder(&account).as_deref(), Some("KB-DS-r2"));
}

#[tokio::test]
async fn an_old_claim_without_execution_is_healed_by_starting_the_named_execution() {
    let account = MemoryAccount::new();
    held(&account, "KB-DS-r2", 2, now() - 600_000).await;
    let name = rounds(&account).ensure_running(&source(), 1).await.unwrap();
    assert_eq!(name, "KB-DS-r2");
    assert_eq!(account.with(|a| a.started.clone()), vec!["KB-DS-r2"]);
}

#[tokio::test]
async fn a_round_whose_name_a_closed_execution_used_moves_to_the_next_round() {
    let account = MemoryAccount::new();
    // The lease was released after round 1; round 2's name is taken by a closed execution
    // (a start that ran and ended after the lease moved on).
    account.with(|a| a.lease_mut(&source()).round = 1);
    account.add_execution("KB-DS-r2", ExecutionState::Ended("SUCCEEDED".into()));
    let name = rounds(&account).ensure_running(&source(), 1).await.unwrap();
    assert_eq!(name, "KB-DS-r3");
    assert_eq!(holder(&account).as_deref(), Some("KB-DS-r3"));
    assert_eq!(account.with(|a| a.started.clone()), vec!["KB-DS-r3"]);
}

#[tokio::test]
async fn requests_one_after_another_start_one_execution() {
    let account = MemoryAccount::new();
    let rounds = rounds(&account);
    for _ in 0..5 {
        rounds.ensure_running(&source(), 1).await.unwrap();
    }
    assert_eq!(account.with(|a| a.started.len()), 1);
    assert_eq!(
        account.with(|a| a.lease(&source()).unwrap().requested_seq),
        5
    );
}

fn continue_request(reason: &str) -> ContinueRequest {
    serde_json::from_value(serde_json::json!({
        "reason": reason, "execution_arn": "arn:aws:states:us-east-1:1:execution:kb-sync:KB-DS-r7",
        "state": {
            "knowledge_base_id": "KB", "data_source_id": "DS", "round": 7, "execution_name": "KB-DS-r7", "source_key": "KB#DS",
            "settings": {"monitor_interval_seconds": 1, "quota_wait_seconds": 1, "max_job_attempts": 2, "retry_backoff_seconds": 1},
            "job": {"job_id": "J", "attempt": 1, "client_token": "t", "target_seq": 40, "target_seq_text": "40", "cutoff_seq": 33, "started_at": "x", "skipped": false},
            "previous_target": "12", "previous_cutoff": 10
        }
    }))
    .unwrap()
}

/// Round 7 running and holding the lease, its history `events` long.
async fn round_seven(events: u64) -> MemoryAccount {
    let account = MemoryAccount::new();
    held(&account, "KB-DS-r7", 7, now()).await;
    account.add_execution("KB-DS-r7", ExecutionState::Running);
    account.with(|a| a.executions.get_mut("KB-DS-r7").unwrap().history_events = events);
    account
}

#[tokio::test]
async fn a_short_history_goes_round_again_in_the_same_execution() {
    let account = round_seven(99).await;
    let rounds = rounds(&account);
    let c = rounds
        .continue_round(&continue_request("requests_during_job"))
        .await
        .unwrap();
    assert_eq!((c.next, c.history_events), (Next::Continue, 99));
    let next = c.state.unwrap();
    assert_eq!(next.input.execution_name, "KB-DS-r7");
    assert_eq!(next.previous_cutoff, Some(33));
    let c = rounds
        .continue_round(&continue_request("requests_during_failure"))
        .await
        .unwrap();
    assert_eq!(c.next, Next::ContinueAfterWait);
    assert_eq!(c.state.unwrap().previous_cutoff, Some(10));
    assert_eq!(holder(&account).as_deref(), Some("KB-DS-r7"));
    assert!(account.with(|a| a.started.is_empty()));
}

#[tokio::test]
async fn an_execution_that_lost_its_lease_does_not_go_round_again() {
    let account = round_seven(10).await;
    account.with(|a| a.lease_mut(&source()).active_execution = Some("KB-DS-r8".into()));
    let c = rounds(&account)
        .continue_round(&continue_request("requests_during_job"))
        .await
        .unwrap();
    assert_eq!(
        (c.next, c.handed_over_to.as_deref()),
        (Next::End, Some("KB-DS-r8"))
    );
    assert!(c.state.is_none());
}

#[tokio::test]
async fn a_long_history_hands_the_lease_to_the_next_round_and_a_retry_starts_it_once() {
    let account = round_seven(100).await;
    let rounds = rounds(&account);
    for _ in 0..2 {
        let c = rounds
            .continue_round(&continue_request("requests_during_job"))
            .await
            .unwrap();
        assert_eq!(
            (c.next, c.handed_over_to.as_deref()),
            (Next::End, Some("KB-DS-r8"))
        );
        assert!(c.state.is_none());
    }
    assert_eq!(holder(&account).as_deref(), Some("KB-DS-r8"));
    assert_eq!(account.with(|a| a.started.clone()), vec!["KB-DS-r8"]);
    let input = account.with(|a| a.executions["KB-DS-r8"].input.clone());
    assert_eq!(
        (
            &input["round"],
            &input["previous_target"],
            &input["previous_cutoff"]
        ),
        (
            &serde_json::json!(8),
            &serde_json::json!("40"),
            &serde_json::json!(33)
        )
    );
    assert!(input.get("job").is_none());
}

#[tokio::test]
async fn a_lease_lost_before_the_hand_over_ends_the_execution_without_a_successor() {
    let account = round_seven(250).await;
    account.with(|a| a.lease_mut(&source()).active_execution = Some("KB-DS-r9".into()));
    let c = rounds(&account)
        .continue_round(&continue_request("requests_during_job"))
        .await
        .unwrap();
    assert_eq!(
        (c.next, c.handed_over_to.as_deref()),
        (Next::End, Some("KB-DS-r9"))
    );
    assert!(account.with(|a| a.started.is_empty()));
}
