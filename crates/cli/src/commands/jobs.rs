//! `autosync jobs`: the ingestion jobs the service started, newest first.

use chrono::Utc;
use serde::Serialize;

use crate::cli::JobsArgs;
use crate::commands::Invocation;
use crate::error::CliError;
use crate::output::{self, or_dash, relative, span};
use crate::records::{JobRecord, Records};

#[derive(Debug, Serialize)]
pub struct JobRow {
    #[serde(flatten)]
    pub job: JobRecord,
    pub duration_seconds: Option<i64>,
    pub statistics_parsed: serde_json::Value,
}

pub fn select(jobs: Vec<JobRecord>, args: &JobsArgs) -> Vec<JobRecord> {
    jobs.into_iter()
        .filter(|j| {
            args.kb
                .as_deref()
                .is_none_or(|kb| j.knowledge_base_id == kb)
        })
        .filter(|j| args.ds.as_deref().is_none_or(|ds| j.data_source_id == ds))
        .take(args.limit)
        .collect()
}

pub async fn run(inv: &Invocation, args: &JobsArgs) -> Result<i32, CliError> {
    let spinner = output::Spinner::start(inv.style, "reading ingestion jobs");
    let records = Records::new(&inv.ctx, &inv.deployment)?;
    let jobs = select(records.all_jobs().await?, args);
    drop(spinner);
    if inv.json {
        let rows: Vec<JobRow> = jobs
            .into_iter()
            .map(|job| JobRow {
                duration_seconds: job.duration_seconds(),
                statistics_parsed: job.statistics(),
                job,
            })
            .collect();
        output::print_json(&rows);
        return Ok(0);
    }
    if jobs.is_empty() {
        println!("no ingestion jobs recorded");
        return Ok(0);
    }
    let now = Utc::now();
    let mut table = output::table(&[
        "JOB",
        "KNOWLEDGE BASE",
        "DATA SOURCE",
        "STATUS",
        "STARTED",
        "DURATION",
        "CHANGES SYNCED",
        "STATISTICS",
        "FAILURE REASONS",
    ]);
    for job in &jobs {
        let changes = match (job.change_count, job.failed_change_count) {
            (Some(n), Some(f)) if f > 0 => format!("{n} synced, {f} failed"),
            (Some(n), _) => n.to_string(),
            _ => "-".into(),
        };
        table.add_row(vec![
            job.job_id.clone(),
            job.knowledge_base_id.clone(),
            job.data_source_id.clone(),
            job.status.clone(),
            job.started_at
                .as_deref()
                .map(|t| relative(t, now))
                .unwrap_or_else(|| "-".into()),
            job.duration_seconds()
                .map(span)
                .unwrap_or_else(|| "-".into()),
            changes,
            job.statistics_summary(),
            or_dash(Some(job.failure_reasons.join("; ").as_str())),
        ]);
    }
    println!("{table}");
    Ok(0)
}
