//! A fair share of the account's job slots: eight knowledge bases (one with two data sources),
//! two buckets, routes from the template parameters, and an account limit of two, changes on all of them at once while one data source keeps
//! changing. Every change is SYNCED, the service's own starts meet no quota error, never more
//! than two of its jobs run at once, and no data source waits more than ceil(waiting / slots) + 1
//! job durations: the slot goes to the data source whose oldest pending change is oldest, so the
//! noisy neighbour goes to the back of the line after each of its jobs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kb_autosync_core::change::ChangeStatus;
use kb_autosync_e2e::*;
use kb_autosync_local::{invariants, observe, LocalStack};
use serde_json::{json, Value};

const BUCKET_A: &str = "kb-autosync-fair-a";
const BUCKET_B: &str = "kb-autosync-fair-b";

/// A data source and where it reads: (bucket, prefix, knowledge base, data source).
struct FairSource {
    bucket: &'static str,
    prefix: String,
    knowledge_base_id: String,
    data_source_id: String,
}

/// Nine data sources over eight knowledge bases and two buckets; the first is the noisy
/// neighbour, the second knowledge base has a data source in each bucket.
fn sources() -> Vec<FairSource> {
    let source = |bucket, prefix: &str, kb: &str, ds: &str| FairSource {
        bucket,
        prefix: prefix.to_string(),
        knowledge_base_id: kb.to_string(),
        data_source_id: ds.to_string(),
    };
    let mut sources = vec![
        source(BUCKET_A, "kb1/", "KBFAIR0001", "DSFAIR0001"),
        source(BUCKET_A, "kb2a/", "KBFAIR0002", "DSFAIR002A"),
        source(BUCKET_B, "kb2b/", "KBFAIR0002", "DSFAIR002B"),
    ];
    for n in 3..=8 {
        let bucket = if n % 2 == 0 { BUCKET_A } else { BUCKET_B };
        sources.push(source(
            bucket,
            &format!("kb{n}/"),
            &format!("KBFAIR000{n}"),
            &format!("DSFAIR000{n}"),
        ));
    }
    sources
}

/// A stack deployed with the Routes, RouteBuckets and RouteKnowledgeBaseIds parameters.
fn fairness_options() -> kb_autosync_local::StackOptions {
    let mut options = options("fairness");
    let mut knowledge_bases: Vec<Value> = Vec::new();
    let mut routes = Vec::new();
    for s in sources() {
        let data_source = json!({"id": s.data_source_id, "name": s.data_source_id, "bucket_arn": format!("arn:aws:s3:::{}", s.bucket), "inclusion_prefixes": [s.prefix]});
        match knowledge_bases
            .iter_mut()
            .find(|k| k["id"] == s.knowledge_base_id.as_str())
        {
            Some(k) => k["data_sources"].as_array_mut().unwrap().push(data_source),
            None => knowledge_bases.push(
                json!({"id": s.knowledge_base_id, "name": s.knowledge_base_id, "data_sources": [data_source]}),
            ),
        }
        routes.push(json!({"bucket": s.bucket, "prefix": s.prefix, "knowledge_base_id": s.knowledge_base_id, "data_source_id": s.data_source_id}));
    }
    let knowledge_base_ids: Vec<String> = knowledge_bases
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    options.emulator_config = Some(json!({
        "knowledge_bases": knowledge_bases,
        // 20 s jobs at time scale 10: long next to the seconds a slot takes to change hands, as
        // Bedrock's minutes are.
        "jobs": {"starting_seconds": 10, "base_duration_seconds": 180, "per_document_seconds": 0.5, "stopping_seconds": 10}
    }));
    options.params.retain(|(name, _)| {
        !matches!(
            name.as_str(),
            "KnowledgeBaseId" | "DataSourceId" | "S3BucketName" | "S3KeyPrefix"
        )
    });
    options.params.extend([
        ("Routes".into(), Value::Array(routes).to_string()),
        ("RouteBuckets".into(), format!("{BUCKET_A},{BUCKET_B}")),
        ("RouteKnowledgeBaseIds".into(), knowledge_base_ids.join(",")),
    ]);
    // Rounds waiting for a slot check again every 10 s, as QuotaWaitSeconds' minute is long
    // next to the seconds a round that goes again takes to check: without the line, the noisy
    // neighbour would take every slot it frees.
    options.env.retain(|(name, _)| name != "QUOTA_WAIT_SECONDS");
    options.env.extend([
        (
            "MAX_CONCURRENT_JOBS_PER_ACCOUNT".to_string(),
            "2".to_string(),
        ),
        ("QUOTA_WAIT_SECONDS".to_string(), "10".to_string()),
    ]);
    options
}

/// Uploads to the noisy neighbour every 300 ms until `stop`.
fn keep_changing(stack: &LocalStack, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<usize> {
    let s3 = stack.s3();
    tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let key = format!("kb1/noise-{n}.txt");
            s3.put_object()
                .bucket(BUCKET_A)
                .key(&key)
                .body(key.clone().into_bytes().into())
                .send()
                .await
                .unwrap();
            n += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        n
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_noisy_neighbour_cannot_starve_the_others_of_the_two_job_slots() {
    let stack = start(fairness_options()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let noise = keep_changing(&stack, stop.clone());
    // The quiet data sources change one after the other, 4 s apart: the line serves them in
    // that order.
    for s in sources().iter().skip(1) {
        let key = format!("{}doc.txt", s.prefix);
        observe::put_object_in(&stack, s.bucket, &key, b"quiet")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    // The noisy neighbour keeps changing until every other data source has had its job.
    eventually(
        Duration::from_secs(400),
        "every quiet data source's change to be SYNCED",
        || async {
            observe::changes(&stack).await.is_ok_and(|changes| {
                changes
                    .iter()
                    .filter(|c| !c.key.starts_with("kb1/"))
                    .filter(|c| c.status == ChangeStatus::Synced)
                    .count()
                    == 8
            })
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let noisy_uploads = noise.await.unwrap();
    let changes = settle_count(&stack, 8 + noisy_uploads, Duration::from_secs(120)).await;
    assert_all_synced(&stack, &changes).await;

    let jobs = jobs(&stack).await;
    assert!(invariants::peak_concurrency(&jobs) <= 2, "{jobs:?}");
    for error in [
        "ConflictException",
        "ServiceQuotaExceededException",
        "ThrottlingException",
    ] {
        assert_eq!(start_job_errors(&stack, error).await, 0, "{error}");
    }
    // A slot changes hands within a monitor poll, a check of the first in line and the start
    // interval (1 s each here); the sync delay (2 s) once.
    let waits = invariants::waits_within_the_fair_share(&changes, &jobs, 2, 3.0, 2.0)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(waits.len(), 9, "{waits:?}");
    println!("longest wait per data source: {waits:?}");
    // The same rule in a form no machine load bends: while a change waits for its data source's
    // job, no other data source starts more than two jobs (three with the race of a round's
    // first check against a start already decided).
    invariants::no_data_source_overtakes_more_than(&changes, &jobs, 3)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_served_in_order_of_waiting(&jobs);
}

/// The quiet data sources' first jobs start in the order of their changes (a start may come up
/// to 3 s before an older one's: two rounds let through together race for the start interval).
fn assert_served_in_order_of_waiting(jobs: &[kb_autosync_local::emulator::EmulatedJob]) {
    let first_start = |ds: &str| {
        jobs.iter()
            .filter(|j| j.origin == "api" && j.data_source_id.as_deref() == Some(ds))
            .filter_map(|j| chrono::DateTime::parse_from_rfc3339(&j.started_at).ok())
            .min()
            .unwrap_or_else(|| panic!("no job of {ds}"))
    };
    // DSFAIR002B waits for its knowledge base's other data source, which changed first (one
    // job per knowledge base): the order holds between knowledge bases.
    let starts: Vec<(String, chrono::DateTime<chrono::FixedOffset>)> = sources()
        .into_iter()
        .skip(1)
        .filter(|s| s.data_source_id != "DSFAIR002B")
        .map(|s| {
            let at = first_start(&s.data_source_id);
            (s.data_source_id, at)
        })
        .collect();
    for (i, (older, older_start)) in starts.iter().enumerate() {
        for (younger, younger_start) in &starts[i + 1..] {
            assert!(
                *younger_start >= *older_start - chrono::Duration::seconds(3),
                "{younger} changed after {older} but its first job started first: {starts:?}"
            );
        }
    }
}
