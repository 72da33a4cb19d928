//! The README's guarantees, checked against what the local stack shows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kb_autosync_core::change::{ChangeRecord, ChangeStatus};

use crate::emulator::EmulatedJob;
use crate::{observe, LocalStack};

/// Waits until nothing is PENDING, no execution runs and the emulator has no running job,
/// twice in a row. Returns the changes as they are then.
pub async fn wait_until_settled(
    stack: &LocalStack,
    timeout: Duration,
) -> Result<Vec<ChangeRecord>, String> {
    let deadline = Instant::now() + timeout;
    let mut quiet = 0;
    loop {
        let changes = observe::changes(stack).await?;
        let pending = changes
            .iter()
            .filter(|c| c.status == ChangeStatus::Pending)
            .count();
        let executions = observe::running_executions(stack).await?;
        let jobs_running = stack
            .emulator()
            .jobs()
            .await?
            .iter()
            .filter(|j| !is_terminal(&j.status))
            .count();
        if pending == 0 && executions == 0 && jobs_running == 0 && !changes.is_empty() {
            quiet += 1;
            if quiet >= 2 {
                return Ok(changes);
            }
        } else {
            quiet = 0;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not settled after {} s: {pending} changes PENDING, {executions} executions running, {jobs_running} jobs running",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "COMPLETE" | "FAILED" | "STOPPED")
}

/// A direct batch as the metadata table records it (`ingestion_method` = `direct`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectBatch {
    pub batch_id: String,
    pub status: String,
    pub started_at: String,
}

/// The direct batches among the metadata table's rows (`observe::job_records`).
pub fn direct_batches(records: &[serde_json::Value]) -> Vec<DirectBatch> {
    records
        .iter()
        .filter(|r| r["ingestion_method"] == "direct")
        .map(|r| DirectBatch {
            batch_id: r["job_id"].as_str().unwrap_or_default().to_string(),
            status: r["status"].as_str().unwrap_or_default().to_string(),
            started_at: r["started_at"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// Invariants 1 and 7: every change SYNCED by a COMPLETE job that started after it was
/// recorded, or by a direct batch that started (and so read its documents' statuses) after it
/// was recorded.
pub fn every_change_synced_by_a_later_job_or_batch(
    changes: &[ChangeRecord],
    jobs: &[EmulatedJob],
    batches: &[DirectBatch],
) -> Result<(), String> {
    let by_id: BTreeMap<&str, &EmulatedJob> = jobs
        .iter()
        .map(|j| (j.ingestion_job_id.as_str(), j))
        .collect();
    let batch_by_id: BTreeMap<&str, &DirectBatch> =
        batches.iter().map(|b| (b.batch_id.as_str(), b)).collect();
    let mut problems = Vec::new();
    for change in changes {
        if change.status != ChangeStatus::Synced || !change.processed {
            problems.push(format!(
                "{} {} is {:?} ({})",
                change.change_id,
                change.key,
                change.status,
                change.failure_reason.clone().unwrap_or_default()
            ));
            continue;
        }
        if let Some(batch) = change
            .ingestion_job_id
            .as_deref()
            .and_then(|id| batch_by_id.get(id))
        {
            if batch.started_at < change.timestamp {
                problems.push(format!(
                    "{} {} recorded at {} but its direct batch {} started earlier, at {}",
                    change.change_id,
                    change.key,
                    change.timestamp,
                    batch.batch_id,
                    batch.started_at
                ));
            }
            if !matches!(batch.status.as_str(), "COMPLETE" | "INCOMPLETE") {
                problems.push(format!(
                    "{} {} was synced by direct batch {} which is {}",
                    change.change_id, change.key, batch.batch_id, batch.status
                ));
            }
            continue;
        }
        let Some(job) = change
            .ingestion_job_id
            .as_deref()
            .and_then(|id| by_id.get(id))
        else {
            problems.push(format!(
                "{} {} names no known job ({:?})",
                change.change_id, change.key, change.ingestion_job_id
            ));
            continue;
        };
        if job.status != "COMPLETE" {
            problems.push(format!(
                "{} {} was synced by job {} which is {}",
                change.change_id, change.key, job.ingestion_job_id, job.status
            ));
        }
        if job.started_at < change.timestamp {
            problems.push(format!(
                "{} {} recorded at {} but its job {} started earlier, at {}",
                change.change_id,
                change.key,
                change.timestamp,
                job.ingestion_job_id,
                job.started_at
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Invariant 2: no two jobs of one knowledge base ever ran at the same time.
pub fn no_overlapping_jobs_per_knowledge_base(jobs: &[EmulatedJob]) -> Result<(), String> {
    let mut by_kb: BTreeMap<String, Vec<&EmulatedJob>> = BTreeMap::new();
    for job in jobs {
        by_kb
            .entry(job.knowledge_base_id.clone().unwrap_or_default())
            .or_default()
            .push(job);
    }
    for (kb, mut jobs) in by_kb {
        jobs.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        for pair in jobs.windows(2) {
            let end = pair[0].ended_at.clone().unwrap_or_else(|| "9999".into());
            if pair[1].started_at < end {
                return Err(format!(
                    "knowledge base {kb}: job {} started at {} while job {} ran until {end}",
                    pair[1].ingestion_job_id, pair[1].started_at, pair[0].ingestion_job_id
                ));
            }
        }
    }
    Ok(())
}

/// The emulator's index of a data source equals the objects in its S3 scope (key and ETag),
/// leaving out documents Bedrock failed.
pub async fn index_matches_s3(
    stack: &LocalStack,
    knowledge_base_id: &str,
    data_source_id: &str,
    prefix: &str,
) -> Result<usize, String> {
    index_matches_s3_in(
        stack,
        &stack.info.bucket,
        knowledge_base_id,
        data_source_id,
        prefix,
    )
    .await
}

/// [`index_matches_s3`] for a data source on `bucket`, one of the stack's buckets.
pub async fn index_matches_s3_in(
    stack: &LocalStack,
    bucket: &str,
    knowledge_base_id: &str,
    data_source_id: &str,
    prefix: &str,
) -> Result<usize, String> {
    let documents = stack
        .emulator()
        .documents(knowledge_base_id, data_source_id)
        .await?;
    let (indexed, failed): (Vec<_>, Vec<_>) =
        documents.into_iter().partition(|d| d.status == "INDEXED");
    let mut indexed: Vec<(String, String)> = indexed.into_iter().map(|d| (d.key, d.etag)).collect();
    indexed.sort();
    let failed: Vec<String> = failed.into_iter().map(|d| d.key).collect();
    let in_s3: Vec<(String, String)> = observe::s3_objects_in(stack, bucket, prefix)
        .await?
        .into_iter()
        .filter(|(k, _)| !failed.contains(k))
        .collect();
    if indexed == in_s3 {
        Ok(indexed.len())
    } else {
        let missing: Vec<_> = in_s3.iter().filter(|o| !indexed.contains(o)).collect();
        let extra: Vec<_> = indexed.iter().filter(|o| !in_s3.contains(o)).collect();
        Err(format!("index of {knowledge_base_id}/{data_source_id} differs from s3://{bucket}/{prefix}: missing {missing:?}, extra {extra:?}"))
    }
}

/// Jobs this stack started (not foreign ones) on a data source.
pub fn service_jobs<'a>(jobs: &'a [EmulatedJob], data_source_id: &str) -> Vec<&'a EmulatedJob> {
    jobs.iter()
        .filter(|j| j.origin == "api" && j.data_source_id.as_deref() == Some(data_source_id))
        .collect()
}

/// The most jobs of this stack (origin `api`) running at once.
pub fn peak_concurrency(jobs: &[EmulatedJob]) -> usize {
    let ours: Vec<&EmulatedJob> = jobs.iter().filter(|j| j.origin == "api").collect();
    ours.iter()
        .map(|a| {
            ours.iter()
                .filter(|b| {
                    let end = b.ended_at.clone().unwrap_or_else(|| "9999".into());
                    b.started_at <= a.started_at && a.started_at < end
                })
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn instant(rfc3339: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Each data source's longest wait, in seconds: from a change being recorded to the start of
/// the first job of its data source that started after it (changes no job followed are left
/// out: other invariants catch them). Keyed by `KB/DS`.
pub fn longest_waits(changes: &[ChangeRecord], jobs: &[EmulatedJob]) -> BTreeMap<String, f64> {
    let mut waits: BTreeMap<String, f64> = BTreeMap::new();
    for change in changes {
        let Some(recorded) = instant(&change.timestamp) else {
            continue;
        };
        let next_start = jobs
            .iter()
            .filter(|j| {
                j.origin == "api" && j.data_source_id.as_deref() == Some(&change.data_source_id)
            })
            .filter_map(|j| instant(&j.started_at))
            .filter(|started| *started >= recorded)
            .min();
        if let Some(started) = next_start {
            let wait = (started - recorded).num_milliseconds() as f64 / 1000.0;
            let key = format!("{}/{}", change.knowledge_base_id, change.data_source_id);
            let longest = waits.entry(key).or_insert(0.0);
            *longest = longest.max(wait);
        }
    }
    waits
}

/// Invariant 8 (a fair share of job slots): with `waiting` data sources and `slots` job slots,
/// none waits more than ceil(waiting / slots) + 1 job durations (the longest job this stack
/// ran), plus `handoff_seconds` for each of those ceil(waiting / slots) times a slot changes
/// hands (the job's end seen by monitor-sync, the next round's check) and `slack_seconds` once
/// (the sync delay).
pub fn waits_within_the_fair_share(
    changes: &[ChangeRecord],
    jobs: &[EmulatedJob],
    slots: usize,
    handoff_seconds: f64,
    slack_seconds: f64,
) -> Result<BTreeMap<String, f64>, String> {
    let waits = longest_waits(changes, jobs);
    let longest_job = jobs
        .iter()
        .filter(|j| j.origin == "api")
        .filter_map(|j| {
            Some((instant(j.ended_at.as_deref()?)? - instant(&j.started_at)?).num_milliseconds())
        })
        .max()
        .unwrap_or(0) as f64
        / 1000.0;
    let waves = waits.len().max(1).div_ceil(slots.max(1));
    let bound = (waves + 1) as f64 * longest_job + waves as f64 * handoff_seconds + slack_seconds;
    let over: Vec<String> = waits
        .iter()
        .filter(|(_, wait)| **wait > bound)
        .map(|(source, wait)| format!("{source} waited {wait:.1} s"))
        .collect();
    if over.is_empty() {
        Ok(waits)
    } else {
        Err(format!(
            "waits beyond the fair share of {slots} slot(s) among {} data sources ({bound:.1} s = {} x the longest job of {longest_job:.1} s + {waves} x {handoff_seconds} s + {slack_seconds} s): {}",
            waits.len(),
            waves + 1,
            over.join(", ")
        ))
    }
}

/// Invariant 8 in a form no machine load can bend: while a change of one data source waits for
/// its data source's next job, no other data source starts more than `max` jobs. With slots
/// served oldest pending change first, another data source starts at most twice meanwhile (a job
/// for changes older than the waiting one, and one more if it had another change older than it);
/// a noisy neighbour taking every slot it frees starts one job per wave.
pub fn no_data_source_overtakes_more_than(
    changes: &[ChangeRecord],
    jobs: &[EmulatedJob],
    max: usize,
) -> Result<(), String> {
    let starts: Vec<(String, chrono::DateTime<chrono::Utc>)> = jobs
        .iter()
        .filter(|j| j.origin == "api")
        .filter_map(|j| Some((j.data_source_id.clone()?, instant(&j.started_at)?)))
        .collect();
    let mut problems = BTreeMap::new();
    for change in changes {
        let Some(recorded) = instant(&change.timestamp) else {
            continue;
        };
        let Some(own_start) = starts
            .iter()
            .filter(|(ds, at)| *ds == change.data_source_id && *at >= recorded)
            .map(|(_, at)| *at)
            .min()
        else {
            continue;
        };
        let mut overtaken_by: BTreeMap<&str, usize> = BTreeMap::new();
        for (ds, at) in &starts {
            if *ds != change.data_source_id && *at > recorded && *at < own_start {
                *overtaken_by.entry(ds).or_default() += 1;
            }
        }
        for (ds, count) in overtaken_by.into_iter().filter(|(_, n)| *n > max) {
            problems.insert(
                (change.data_source_id.clone(), ds.to_string()),
                format!(
                    "{ds} started {count} jobs while change {} of {} waited for its job (at most {max})",
                    change.change_id, change.data_source_id
                ),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.into_values().collect::<Vec<_>>().join("\n"))
    }
}
