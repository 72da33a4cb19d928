//! start-sync's job path on an in-memory account: the counters it pins, the job Bedrock runs
//! afterwards, who holds the slot and who stands in line. Behaviour, not request wording.

use aws_smithy_mocks::mock_client;
use kb_autosync_aws::notifier::Notifier;
use kb_autosync_aws::objects::ObjectStore;
use kb_autosync_core::change::ChangeStatus;
use kb_autosync_core::direct::{DirectSettings, IngestionMode};
use kb_autosync_core::lease::{ExecutionState, LeaseState};
use kb_autosync_core::routing::RouteTable;
use kb_autosync_core::slot_line::WaitingRound;
use kb_autosync_test_support::{Job, MemoryAccount};

use super::*;

type InMemory = StartSync<MemoryAccount, MemoryAccount, MemoryAccount, MemoryAccount>;

fn source() -> SourceId {
    SourceId::new("KB", "DS")
}

fn state() -> WorkflowState {
    serde_json::from_value(serde_json::json!({
        "knowledge_base_id": "KB", "data_source_id": "DS", "round": 1, "execution_name": "KB-DS-r1", "source_key": "KB#DS",
        "settings": {"monitor_interval_seconds": 1, "quota_wait_seconds": 1, "max_job_attempts": 2, "retry_backoff_seconds": 1}
    }))
    .unwrap()
}

/// The direct way switched off (`job` mode): it then makes no call at all, so its clients
/// answer nothing.
fn job_mode() -> DirectIngestion {
    let dynamo = mock_client!(aws_sdk_dynamodb, []);
    let bedrock = mock_client!(aws_sdk_bedrockagent, []);
    DirectIngestion {
        knowledge_base: KnowledgeBase::new(bedrock),
        objects: ObjectStore::new(mock_client!(aws_sdk_s3, [])),
        tracking: TrackingTable::new(dynamo.clone(), "tracking"),
        jobs: MetadataTable::new(dynamo, "jobs", 1),
        notifier: Notifier::new(mock_client!(aws_sdk_sns, []), "arn:aws:sns:us-east-1:1:t"),
        metrics: Metrics::new("Test", "test-stack"),
        routes: RouteTable::from_json(
            r#"[{"bucket":"b","knowledge_base_id":"KB","data_source_id":"DS","ingestion_mode":"job"}]"#,
        )
        .unwrap(),
        settings: DirectSettings {
            mode: IngestionMode::Job,
            ..DirectSettings::default()
        },
    }
}

fn handler(account: &MemoryAccount, max_jobs: u32) -> InMemory {
    StartSync {
        direct: job_mode(),
        knowledge_base: account.clone(),
        sources: account.clone(),
        tracking: account.clone(),
        jobs: account.clone(),
        quota: IngestionQuota {
            max_concurrent_jobs_per_account: max_jobs,
            start_min_interval_ms: 0,
        },
        start_in_flight_ms: 60_000,
        metrics: Metrics::new("Test", "test-stack"),
    }
}

/// `KB#DS` with 12 requests and 40 changes counted, its lease held by `KB-DS-r1`, which
/// stands in line for a slot; changes 39 and 40 PENDING.
async fn account() -> MemoryAccount {
    let account = MemoryAccount::new();
    account.add_data_source(&source(), Vec::new());
    account.with(|a| {
        *a.lease_mut(&source()) = LeaseState {
            requested_seq: 12,
            change_seq: 40,
            round: 1,
            active_execution: Some("KB-DS-r1".into()),
            claimed_at_ms: Some(0),
        }
    });
    account.add_execution("KB-DS-r1", ExecutionState::Running);
    let waiting = WaitingRound::new(source().key(), "KB-DS-r1", 0, 0).waiting(true, "in line");
    account.stand_in_line(&waiting).await.unwrap();
    for seq in [39, 40] {
        account.record_change(
            &source(),
            seq,
            "2026-01-01T00:00:00Z",
            ChangeStatus::Pending,
        );
    }
    account
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

#[tokio::test]
async fn a_job_starts_with_the_pinned_counters_and_a_retry_gets_the_same_job() {
    let account = account().await;
    let start = handler(&account, 5);
    let job = start.handle(state(), deadline()).await.unwrap();
    assert_eq!((job.target_seq, job.cutoff_seq, job.attempt), (12, 40, 1));
    // Counted meanwhile: the retry of the same attempt keeps its pin and its job.
    account.with(|a| a.lease_mut(&source()).requested_seq = 15);
    let retried = start.handle(state(), deadline()).await.unwrap();
    assert_eq!(
        (retried.job_id.as_str(), retried.target_seq),
        (job.job_id.as_str(), 12)
    );
    account.with(|a| {
        assert_eq!(a.running_job_count(), 1, "one job in Bedrock");
        assert_eq!(a.recorded_starts.len(), 1);
        assert_eq!(
            a.slot_holder("KB").map(|h| h.execution_name.as_str()),
            Some("KB-DS-r1")
        );
        assert!(
            a.in_line(&source()).is_none(),
            "the slot taken, it left the line"
        );
    });
}

#[tokio::test]
async fn a_full_account_is_busy_without_calling_bedrock_and_keeps_the_place_in_line() {
    let account = account().await;
    let other = SourceId::new("KB2", "DS2");
    account
        .acquire_slot(&other, "KB2-DS2-r3", 0, 1, 0, 0)
        .await
        .unwrap();
    let err = handler(&account, 1)
        .handle(state(), deadline())
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "DataSourceBusy");
    assert!(err.message.contains("KB2-DS2-r3"), "{}", err.message);
    account.with(|a| {
        assert_eq!(a.start_calls, 0);
        assert!(a.in_line(&source()).is_some());
    });
}

#[tokio::test]
async fn a_round_that_lost_its_lease_starts_nothing() {
    let account = account().await;
    account.with(|a| a.lease_mut(&source()).active_execution = Some("KB-DS-r2".into()));
    let err = handler(&account, 5)
        .handle(state(), deadline())
        .await
        .unwrap_err();
    assert!(
        err.message.contains("no longer holds the lease"),
        "{}",
        err.message
    );
    account.with(|a| {
        assert_eq!((a.start_calls, a.slots.holders.len()), (0, 0));
    });
}

#[tokio::test]
async fn a_round_going_again_without_new_changes_leaves_the_line_without_a_job() {
    let account = account().await;
    account.with(|a| {
        for change in a.changes.get_mut(&source().key()).unwrap() {
            change.status = ChangeStatus::Synced;
        }
    });
    let mut again = state();
    again.previous_target = Some("0".into());
    again.previous_cutoff = Some(40);
    let job = handler(&account, 5)
        .handle(again.clone(), deadline())
        .await
        .unwrap();
    assert!(job.skipped);
    account.with(|a| {
        assert_eq!(a.start_calls, 0);
        assert!(a.in_line(&source()).is_none());
    });
    // A change numbered before the pin but still PENDING (written after the last job marked
    // its changes) gets a job.
    account.record_change(&source(), 38, "2026-01-01T00:00:00Z", ChangeStatus::Pending);
    let job = handler(&account, 5)
        .handle(again, deadline())
        .await
        .unwrap();
    assert!(!job.skipped);
}

#[tokio::test]
async fn a_job_started_elsewhere_makes_the_start_busy_and_frees_the_slot() {
    let account = account().await;
    let console = Job {
        id: "CONSOLE".into(),
        running: true,
        complete: false,
    };
    account.add_data_source(&SourceId::new("KB", "OTHER"), vec![console]);
    let err = handler(&account, 5)
        .handle(state(), deadline())
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "DataSourceBusy");
    account.with(|a| {
        assert_eq!(a.start_calls, 1);
        assert!(a.slot_holder("KB").is_none(), "the slot is given back");
        assert!(
            a.slots
                .last_start_ms
                .is_some_and(|at| at <= kb_autosync_aws::now_ms()),
            "the refused call still counts as a start"
        );
    });
}
