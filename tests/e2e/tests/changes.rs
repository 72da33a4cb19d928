//! Create, overwrite and delete of single files; a burst; a change while a job runs.

use std::time::Duration;

use kb_autosync_core::change::ChangeStatus;
use kb_autosync_core::event::ChangeType;
use kb_autosync_e2e::*;
use kb_autosync_local::{invariants, observe};

#[tokio::test(flavor = "multi_thread")]
async fn create_overwrite_and_delete_single_files() {
    let stack = start(options("create_overwrite_delete")).await;
    put(&stack, "docs/a.md", "first version").await;
    let changes = settle(&stack).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].change_type, ChangeType::Create);
    put(&stack, "docs/a.md", "second version").await;
    settle_count(&stack, 2, Duration::from_secs(60)).await;
    observe::delete_object(&stack, "docs/a.md").await.unwrap();
    let changes = settle_count(&stack, 3, Duration::from_secs(60)).await;
    assert_eq!(
        changes
            .iter()
            .filter(|c| c.change_type == ChangeType::Delete)
            .count(),
        1
    );
    assert_all_synced(&stack, &changes).await;
    assert_eq!(
        assert_index_matches_s3(&stack, KB, DS, PREFIX).await,
        0,
        "the deleted file left the index"
    );
    let jobs = jobs(&stack).await;
    assert_eq!(jobs.len(), 3, "one job per separate change");
    let stats: Vec<(i64, i64, i64)> = jobs
        .iter()
        .map(|j| {
            let s = &j.statistics;
            (
                s["numberOfNewDocumentsIndexed"].as_i64().unwrap_or(0),
                s["numberOfModifiedDocumentsIndexed"].as_i64().unwrap_or(0),
                s["numberOfDocumentsDeleted"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(stats, vec![(1, 0, 0), (0, 1, 0), (0, 0, 1)]);
    let notifications = observe::take_notifications(&stack).await.unwrap();
    assert_eq!(notifications.len(), 3);
    for n in &notifications {
        assert_eq!(n.body["status"], "COMPLETE");
        assert_eq!(n.body["knowledge_base_id"], KB);
        assert_eq!(n.body["processed_changes"], 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_200_uploads_costs_at_most_two_jobs() {
    // Coalescing is promised for a burst shorter than the sync delay: recording 200 changes
    // takes a loaded 2-core machine up to ~20 s with debug builds, so the delay here is longer.
    let mut options = options("burst_200");
    options.env.push(("SYNC_DELAY_SECONDS".into(), "45".into()));
    let stack = start(options).await;
    let started = std::time::Instant::now();
    // 200 uploads from 20 concurrent writers, as a sync tool would do.
    let s3 = stack.s3();
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..20 {
        let s3 = s3.clone();
        writers.spawn(async move {
            for i in (writer..200).step_by(20) {
                s3.put_object()
                    .bucket(BUCKET)
                    .key(format!("docs/burst/file-{i:03}.txt"))
                    .body(format!("content {i}").into_bytes().into())
                    .send()
                    .await
                    .expect("upload");
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let changes = settle(&stack).await;
    println!(
        "burst of 200: settled in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(changes.len(), 200);
    assert_all_synced(&stack, &changes).await;
    let jobs = jobs(&stack).await;
    assert!(
        jobs.len() <= 2,
        "{} jobs for one burst: {:?}",
        jobs.len(),
        jobs.iter().map(|j| &j.ingestion_job_id).collect::<Vec<_>>()
    );
    // No job is spent on nothing: requests counted after a pin whose changes the job already
    // covered make the round go again, but start no job.
    for record in observe::job_records(&stack).await.unwrap() {
        assert!(
            record["change_count"].as_u64().unwrap_or(0) > 0,
            "a job covered no change: {record}"
        );
    }
    assert_eq!(assert_index_matches_s3(&stack, KB, DS, PREFIX).await, 200);
    // The documents' status of a burst is read by listing the data source (1 page), not by
    // asking for the 200 documents 10 at a time.
    let calls = &stack.emulator().state().await.unwrap()["calls"];
    assert!(
        calls["ListKnowledgeBaseDocuments"].as_u64().unwrap_or(0) >= 1,
        "{calls}"
    );
    assert!(
        calls["GetKnowledgeBaseDocuments"].as_u64().unwrap_or(0) <= 2,
        "{calls}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_while_a_job_runs_gets_a_follow_up_job() {
    let stack = start(options("change_during_job")).await;
    stack.emulator().slow_jobs(80.0, 1).await.unwrap();
    put(&stack, "docs/first.txt", "one").await;
    eventually(Duration::from_secs(60), "the first job to run", || async {
        stack
            .emulator()
            .jobs()
            .await
            .map(|j| j.iter().any(|j| !invariants::is_terminal(&j.status)))
            .unwrap_or(false)
    })
    .await;
    put(&stack, "docs/second.txt", "two").await;
    let changes = settle_count(&stack, 2, Duration::from_secs(30)).await;
    assert_all_synced(&stack, &changes).await;
    let jobs = jobs(&stack).await;
    assert_eq!(
        jobs.len(),
        2,
        "the change made during the first job needs its own job"
    );
    let second = changes.iter().find(|c| c.key == "docs/second.txt").unwrap();
    assert_eq!(
        second.ingestion_job_id.as_deref(),
        Some(jobs[1].ingestion_job_id.as_str())
    );
    assert!(changes.iter().all(|c| c.status == ChangeStatus::Synced));
    assert_eq!(assert_index_matches_s3(&stack, KB, DS, PREFIX).await, 2);
}
