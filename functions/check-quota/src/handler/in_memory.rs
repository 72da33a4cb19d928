//! check-quota's decisions on an in-memory account: who gets a free job slot, what the line
//! holds afterwards, which slots are freed. Behaviour, not request wording.

use kb_autosync_aws::sources_table::SlotHolder;
use kb_autosync_core::change::ChangeStatus;
use kb_autosync_core::lease::execution_name;
use kb_autosync_test_support::{Job, MemoryAccount};

use super::*;

type InMemory = CheckQuota<MemoryAccount, MemoryAccount, MemoryAccount, MemoryAccount>;

const A: (&str, &str) = ("KBA", "DSA");
const B: (&str, &str) = ("KBB", "DSB");
const X: (&str, &str) = ("KBX", "DSX");

fn source((kb, ds): (&str, &str)) -> SourceId {
    SourceId::new(kb, ds)
}

fn handler(account: &MemoryAccount, slots: u32, mode: &str) -> InMemory {
    let routes: Vec<_> = [A, B, X]
        .iter()
        .map(|(kb, ds)| {
            serde_json::json!({"bucket": "docs", "prefix": format!("{kb}/"), "knowledge_base_id": kb,
                "data_source_id": ds, "ingestion_mode": mode})
        })
        .collect();
    CheckQuota {
        knowledge_base: account.clone(),
        sources: account.clone(),
        executions: account.clone(),
        quota: IngestionQuota {
            max_concurrent_jobs_per_account: slots,
            start_min_interval_ms: 0,
        },
        tracking: account.clone(),
        routes: RouteTable::from_json(&serde_json::Value::from(routes).to_string()).unwrap(),
        direct: DirectSettings::default(),
    }
}

/// The round `round` of `source`'s execution, as the state machine passes it.
fn state(source: &SourceId, round: u64) -> WorkflowState {
    serde_json::from_value(serde_json::json!({
        "knowledge_base_id": source.knowledge_base_id, "data_source_id": source.data_source_id,
        "round": round, "execution_name": execution_name(source, round), "source_key": source.key(),
        "settings": {"monitor_interval_seconds": 1, "quota_wait_seconds": 7, "max_job_attempts": 2, "retry_backoff_seconds": 1}
    }))
    .unwrap()
}

/// A, B and X managed and known to Bedrock with one COMPLETE job each; a change of each
/// pending since `pending_minutes_ago` (A, B, X).
async fn account(pending_minutes_ago: [i64; 3]) -> MemoryAccount {
    let account = MemoryAccount::new();
    for (route, minutes) in [A, B, X].into_iter().zip(pending_minutes_ago) {
        let source = source(route);
        let done = Job {
            id: format!("{}-first", source.data_source_id),
            running: false,
            complete: true,
        };
        account.add_data_source(&source, vec![done]);
        account.bump_requested(&source, 1).await.unwrap();
        let at = chrono::Utc::now() - chrono::Duration::minutes(minutes);
        account.record_change(&source, 1, &at.to_rfc3339(), ChangeStatus::Pending);
    }
    account
}

/// `execution` of `route` holds its knowledge base's job slot.
fn holds_slot(account: &MemoryAccount, route: (&str, &str), execution: &str) {
    account.with(|a| {
        a.slots.holders.push(SlotHolder {
            knowledge_base_id: route.0.into(),
            execution_name: execution.into(),
            data_source_id: route.1.into(),
            since_ms: kb_autosync_aws::now_ms(),
        })
    });
}

fn waits_because(decision: &QuotaDecision) -> &str {
    match decision {
        QuotaDecision::Wait { reason, .. } => reason,
        QuotaDecision::Proceed => panic!("expected a wait"),
    }
}

#[tokio::test]
async fn a_freed_slot_goes_to_the_data_source_waiting_longest_whoever_checks_first() {
    let account = account([30, 5, 60]).await;
    let check = handler(&account, 1, "job");
    holds_slot(&account, X, "KBX-DSX-r1");
    account.add_execution("KBX-DSX-r1", ExecutionState::Running);
    let (a, b) = (state(&source(A), 1), state(&source(B), 1));
    assert!(waits_because(&check.handle(b.clone()).await.unwrap()).contains("account busy"));
    assert!(waits_because(&check.handle(a.clone()).await.unwrap()).contains("account busy"));
    // X's execution is killed without giving its slot back.
    account.add_execution("KBX-DSX-r1", ExecutionState::Ended("ABORTED".into()));
    let younger = check.handle(b).await.unwrap();
    assert!(
        waits_because(&younger).contains("1 data source(s) with older pending changes go first"),
        "{younger:?}"
    );
    assert_eq!(check.handle(a).await.unwrap(), QuotaDecision::Proceed);
    account.with(|acc| {
        assert!(
            acc.slot_holder("KBX").is_none(),
            "the slot of a gone execution is freed"
        );
        let a_place = acc
            .in_line(&source(A))
            .expect("A keeps its place until start-sync");
        let b_place = acc.in_line(&source(B)).expect("B stays in line");
        assert!(a_place.waiting_since_ms < b_place.waiting_since_ms);
        assert!(b_place.reason.contains("go first"), "{}", b_place.reason);
    });
}

#[tokio::test]
async fn a_place_in_line_is_kept_when_the_oldest_pending_change_is_synced_meanwhile() {
    let account = account([30, 10, 60]).await;
    let check = handler(&account, 1, "job");
    holds_slot(&account, X, "KBX-DSX-r1");
    account.add_execution("KBX-DSX-r1", ExecutionState::Running);
    let (a, b) = (state(&source(A), 1), state(&source(B), 1));
    check.handle(a.clone()).await.unwrap();
    check.handle(b.clone()).await.unwrap();
    // A's old change is synced by a job of another round; a new one is younger than B's.
    account.with(|acc| acc.changes.insert(source(A).key(), Vec::new()));
    let now = chrono::Utc::now().to_rfc3339();
    account.record_change(&source(A), 2, &now, ChangeStatus::Pending);
    account.with(|acc| acc.slots.holders.clear());
    assert_eq!(check.handle(a).await.unwrap(), QuotaDecision::Proceed);
    assert!(matches!(
        check.handle(b).await.unwrap(),
        QuotaDecision::Wait { .. }
    ));
}

#[tokio::test]
async fn a_round_that_holds_its_slot_bypasses_the_line() {
    let account = account([5, 30, 60]).await;
    let check = handler(&account, 1, "job");
    let a = state(&source(A), 2);
    holds_slot(&account, A, &a.input.execution_name);
    account.add_execution(&a.input.execution_name, ExecutionState::Running);
    // B waited longer and stands in line; A's round retries the start it holds the slot for.
    check.handle(state(&source(B), 1)).await.unwrap();
    assert!(account.with(|acc| acc.in_line(&source(B)).is_some()));
    assert_eq!(check.handle(a).await.unwrap(), QuotaDecision::Proceed);
}

#[tokio::test]
async fn a_round_that_stopped_checking_loses_its_place() {
    let account = account([5, 30, 60]).await;
    let check = handler(&account, 1, "job");
    // B stood in line long ago (older than its staleness bound) and never came back.
    let b = state(&source(B), 1);
    check.handle(b).await.unwrap();
    account.with(|acc| {
        let line = acc.slots.line.as_mut().unwrap();
        line[0].seen_ms -= 10 * 60 * 1000;
        line[0].for_account_slot = true;
    });
    assert_eq!(
        check.handle(state(&source(A), 1)).await.unwrap(),
        QuotaDecision::Proceed
    );
    assert!(account.with(|acc| acc.in_line(&source(B)).is_none()));
}

#[tokio::test]
async fn a_job_on_a_sibling_data_source_holds_the_knowledge_base() {
    let account = account([5, 30, 60]).await;
    let sibling = SourceId::new("KBA", "CONSOLE");
    let console = Job {
        id: "CONSOLE1".into(),
        running: true,
        complete: false,
    };
    account.add_data_source(&sibling, vec![console]);
    let decision = handler(&account, 5, "job")
        .handle(state(&source(A), 1))
        .await
        .unwrap();
    assert!(
        waits_because(&decision).contains("knowledge base busy: job CONSOLE1"),
        "{decision:?}"
    );
}

#[tokio::test]
async fn a_full_account_holds_a_job_round_but_not_one_that_goes_direct() {
    let account = account([5, 30, 60]).await;
    holds_slot(&account, X, "KBX-DSX-r1");
    account.add_execution("KBX-DSX-r1", ExecutionState::Running);
    let a = state(&source(A), 1);
    let direct = handler(&account, 1, "auto")
        .handle(a.clone())
        .await
        .unwrap();
    assert_eq!(direct, QuotaDecision::Proceed);
    assert!(
        account.with(|acc| acc.in_line(&source(A)).is_none()),
        "a direct round needs no slot"
    );
    let job = handler(&account, 1, "job").handle(a).await.unwrap();
    assert!(waits_because(&job).contains("account busy"), "{job:?}");
    assert!(account.with(|acc| acc.in_line(&source(A)).is_some()));
}

#[tokio::test]
async fn an_unknown_knowledge_base_is_an_error_naming_it() {
    let account = account([5, 30, 60]).await;
    let err = handler(&account, 1, "job")
        .handle(state(&SourceId::new("KBGONE", "DSA"), 1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("KBGONE"), "{err}");
}

#[tokio::test]
async fn a_job_started_elsewhere_counts_against_the_account_until_a_census_sees_it_end() {
    let account = account([5, 30, 60]).await;
    let console = |running| Job {
        id: "CONSOLE-X".into(),
        running,
        complete: !running,
    };
    account.add_data_source(&source(X), vec![console(true)]);
    let check = handler(&account, 1, "job");
    let a = state(&source(A), 1);
    let busy = check.handle(a.clone()).await.unwrap();
    assert!(
        waits_because(&busy).contains("account busy: 1 jobs running"),
        "{busy:?}"
    );
    // The job ends; the next census (due after its interval) sees it gone.
    account.add_data_source(&source(X), vec![console(false)]);
    assert!(matches!(
        check.handle(a.clone()).await.unwrap(),
        QuotaDecision::Wait { .. }
    ));
    account
        .with(|acc| acc.slots.census.as_mut().unwrap().at_ms -= foreign_jobs::CENSUS_INTERVAL_MS);
    assert_eq!(check.handle(a).await.unwrap(), QuotaDecision::Proceed);
    assert_eq!(account.with(|acc| acc.census_claims), 2);
}

#[tokio::test]
async fn a_long_line_costs_bedrock_one_census_not_one_listing_per_data_source_per_check() {
    let account = MemoryAccount::new();
    let sources: Vec<SourceId> = (0..20)
        .map(|i| SourceId::new(format!("KB{i:02}"), format!("DS{i:02}")))
        .collect();
    let at = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    for (i, s) in sources.iter().enumerate() {
        account.add_data_source(s, Vec::new());
        account.bump_requested(s, 1).await.unwrap();
        account.record_change(s, 1, &at, ChangeStatus::Pending);
        if i < 2 {
            let holder = execution_name(s, 9);
            holds_slot(&account, (&s.knowledge_base_id, &s.data_source_id), &holder);
            account.add_execution(&holder, ExecutionState::Running);
        }
    }
    let mut check = handler(&account, 2, "job");
    check.routes = RouteTable::from_json(
        &serde_json::Value::from(
            sources
                .iter()
                .map(|s| serde_json::json!({"bucket": "docs", "prefix": format!("{}/", s.knowledge_base_id),
                    "knowledge_base_id": s.knowledge_base_id, "data_source_id": s.data_source_id,
                    "ingestion_mode": "job"}))
                .collect::<Vec<_>>(),
        )
        .to_string(),
    )
    .unwrap();
    for _ in 0..3 {
        for s in &sources[2..] {
            let decision = check.handle(state(s, 1)).await.unwrap();
            assert!(waits_because(&decision).contains("account busy"));
        }
    }
    // 54 checks while both slots are held: one census of the 18 data sources without a slot.
    assert_eq!(
        account.with(|acc| (acc.census_claims, acc.job_listings)),
        (1, 18)
    );
}

#[tokio::test]
async fn a_data_source_that_keeps_changing_lets_its_sibling_take_the_knowledge_base_next() {
    let account = account([5, 30, 60]).await;
    let (noisy, sibling) = (SourceId::new("KBA", "DSA"), SourceId::new("KBA", "DSS"));
    account.add_data_source(&sibling, Vec::new());
    account.bump_requested(&sibling, 1).await.unwrap();
    let at = (chrono::Utc::now() - chrono::Duration::minutes(20)).to_rfc3339();
    account.record_change(&sibling, 1, &at, ChangeStatus::Pending);
    let mut check = handler(&account, 5, "job");
    check.routes = RouteTable::from_json(
        r#"[{"bucket":"docs","prefix":"a/","knowledge_base_id":"KBA","data_source_id":"DSA","ingestion_mode":"job"},
            {"bucket":"docs","prefix":"s/","knowledge_base_id":"KBA","data_source_id":"DSS","ingestion_mode":"job"}]"#,
    )
    .unwrap();
    // The noisy data source's job holds the knowledge base; its sibling waits meanwhile.
    holds_slot(&account, ("KBA", "DSA"), "KBA-DSA-r1");
    account.add_execution("KBA-DSA-r1", ExecutionState::Running);
    let sibling_round = state(&sibling, 1);
    assert!(
        waits_because(&check.handle(sibling_round.clone()).await.unwrap())
            .contains("holds its job slot")
    );
    // Its job ends and frees the slot; changes recorded during the job send its round again,
    // and it checks first. Its oldest pending change is younger than the sibling's.
    account.with(|acc| acc.slots.holders.clear());
    account.with(|acc| acc.changes.insert(noisy.key(), Vec::new()));
    let now = chrono::Utc::now().to_rfc3339();
    account.record_change(&noisy, 2, &now, ChangeStatus::Pending);
    let again = check.handle(state(&noisy, 1)).await.unwrap();
    assert!(
        waits_because(&again).contains("data source KBA#DSS has older pending changes"),
        "{again:?}"
    );
    assert_eq!(
        check.handle(sibling_round).await.unwrap(),
        QuotaDecision::Proceed
    );
    account.with(|acc| {
        let noisy_entry = acc.in_line(&noisy).unwrap();
        assert!(
            !noisy_entry.for_account_slot,
            "behind its sibling, it holds no place in the account's line"
        );
    });
}
