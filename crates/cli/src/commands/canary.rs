//! `autosync canary`: proves that a change really travels the whole way. For each route it
//! writes a small object under the reserved `.kb-autosync-canary/` segment, follows it through
//! every stage (recorded, sync requested, execution, covered by a job or a direct batch, indexed),
//! deletes it and follows the delete until the document is gone. The first stage that does not
//! happen is named, with its likely cause and fix from the same checks `doctor` runs.
//!
//! Gathering (`follow`, `probe`, `target`, `diagnose`) is kept apart from printing (`render`).

mod diagnose;
mod follow;
mod probe;
mod render;
mod target;

use std::time::{Duration, Instant};

use kb_autosync_core::routing::Route;
use serde::Serialize;

use crate::cli::CanaryArgs;
use crate::commands::Invocation;
use crate::doctor::Finding;
use crate::error::CliError;
use crate::output;

pub use target::Target;

/// The stages a canary goes through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    KnowledgeBase,
    Uploaded,
    Recorded,
    SyncRequested,
    Execution,
    Covered,
    Indexed,
    Deleted,
    DeleteRecorded,
    DeleteCovered,
    Removed,
}

impl Stage {
    /// Followed after the upload.
    pub const CREATE: [Stage; 5] = [
        Stage::Recorded,
        Stage::SyncRequested,
        Stage::Execution,
        Stage::Covered,
        Stage::Indexed,
    ];
    /// Followed after the delete.
    pub const DELETE: [Stage; 3] = [Stage::DeleteRecorded, Stage::DeleteCovered, Stage::Removed];

    pub fn name(self) -> &'static str {
        match self {
            Self::KnowledgeBase => "knowledge-base",
            Self::Uploaded => "uploaded",
            Self::Recorded => "recorded",
            Self::SyncRequested => "sync-requested",
            Self::Execution => "execution",
            Self::Covered => "covered",
            Self::Indexed => "indexed",
            Self::Deleted => "deleted",
            Self::DeleteRecorded => "delete-recorded",
            Self::DeleteCovered => "delete-covered",
            Self::Removed => "removed",
        }
    }

    /// What has to be seen for the stage to pass.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::KnowledgeBase => "the knowledge base and its data source in Bedrock",
            Self::Uploaded => "the canary object written to S3",
            Self::Recorded => "the upload recorded as a change in the tracking table",
            Self::SyncRequested => "a sync request counted on the data source's lease",
            Self::Execution => "a state machine execution holding the data source's lease",
            Self::Covered => "the change SYNCED by an ingestion job or a direct batch",
            Self::Indexed => "the document INDEXED in the knowledge base",
            Self::Deleted => "the canary object deleted from S3",
            Self::DeleteRecorded => "the delete recorded as a change in the tracking table",
            Self::DeleteCovered => "the delete SYNCED by an ingestion job or a direct batch",
            Self::Removed => "the document gone from the knowledge base",
        }
    }
}

/// One stage that passed or failed.
#[derive(Debug, Clone, Serialize)]
pub struct StageRecord {
    pub stage: Stage,
    pub passed: bool,
    /// Seconds since the previous stage passed.
    pub seconds: f64,
    /// Seconds since the canary of this route started.
    pub at_seconds: f64,
    pub detail: String,
}

/// The canary of one route.
#[derive(Debug, Serialize)]
pub struct RouteReport {
    /// The watched bucket and prefix, `s3://bucket/prefix`.
    pub route: String,
    pub knowledge_base_id: String,
    pub data_source_id: Option<String>,
    /// The canary object, `s3://bucket/key`, once chosen.
    pub object: Option<String>,
    pub passed: bool,
    pub failed_stage: Option<Stage>,
    pub stages: Vec<StageRecord>,
    /// Why the failed stage did not happen, and the fix (failed checks, `doctor` style).
    pub findings: Vec<Finding>,
    /// What the run removed: its own object after a failure, leftovers of earlier runs.
    pub cleanup: Vec<String>,
    pub total_seconds: f64,
    #[serde(skip)]
    started: Instant,
    #[serde(skip)]
    last: Instant,
}

impl RouteReport {
    pub fn new(route: &Route) -> Self {
        let now = Instant::now();
        Self {
            route: route.s3_uri(),
            knowledge_base_id: route.knowledge_base_id.clone(),
            data_source_id: route.data_source_id.clone(),
            object: None,
            passed: false,
            failed_stage: None,
            stages: Vec::new(),
            findings: Vec::new(),
            cleanup: Vec::new(),
            total_seconds: 0.0,
            started: now,
            last: now,
        }
    }

    fn record(&mut self, stage: Stage, passed: bool, detail: String) {
        let now = Instant::now();
        self.stages.push(StageRecord {
            stage,
            passed,
            seconds: round((now - self.last).as_secs_f64()),
            at_seconds: round((now - self.started).as_secs_f64()),
            detail,
        });
        self.last = now;
        self.total_seconds = round((now - self.started).as_secs_f64());
    }

    pub fn pass(&mut self, stage: Stage, detail: String) {
        self.record(stage, true, detail);
    }

    pub fn fail(&mut self, stage: Stage, detail: String, findings: Vec<Finding>) {
        self.record(stage, false, detail);
        self.failed_stage = Some(stage);
        self.findings = findings;
    }

    /// Seconds since the previous stage passed (how long the current one has been awaited).
    pub fn waiting(&self) -> Duration {
        self.last.elapsed()
    }

    pub fn finish(mut self) -> Self {
        self.passed = self.failed_stage.is_none();
        self.total_seconds = round(self.started.elapsed().as_secs_f64());
        self
    }
}

fn round(seconds: f64) -> f64 {
    (seconds * 10.0).round() / 10.0
}

/// How a canary runs, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub timeout: Duration,
    pub poll: Duration,
}

impl Settings {
    pub fn new(timeout_seconds: u64, poll_seconds: f64) -> Self {
        Self {
            timeout: Duration::from_secs(timeout_seconds.max(1)),
            poll: Duration::from_secs_f64(poll_seconds.clamp(0.1, 60.0)),
        }
    }

    fn of(args: &CanaryArgs) -> Self {
        Self::new(args.timeout, args.poll_seconds)
    }

    /// After a stage was covered, how long its document may take to show in the index.
    pub fn index_grace(&self) -> Duration {
        (self.timeout / 10).clamp(Duration::from_secs(5), Duration::from_secs(60))
    }
}

pub async fn run(inv: &Invocation, args: &CanaryArgs) -> Result<i32, CliError> {
    let settings = Settings::of(args);
    let reports = run_routes(inv, args.kb.as_deref(), args.ds.as_deref(), settings).await?;
    if inv.json {
        output::print_json(&reports);
    } else {
        render::summary(inv.style, &reports);
    }
    Ok(if reports.iter().all(|r| r.passed) {
        0
    } else {
        1
    })
}

/// The canary of every selected route, one after the other (each printed as it ends, unless
/// the invocation prints JSON).
pub async fn run_routes(
    inv: &Invocation,
    kb: Option<&str>,
    ds: Option<&str>,
    settings: Settings,
) -> Result<Vec<RouteReport>, CliError> {
    let mut reports = Vec::new();
    for selected in target::select_routes(inv, kb, ds).await? {
        let report = match selected {
            Ok(route) => one_route(inv, &route, settings).await,
            Err(report) => *report,
        };
        if !inv.json {
            render::route(inv.style, &report);
        }
        reports.push(report);
    }
    Ok(reports)
}

/// The whole canary of one route: never returns with the object left in S3.
async fn one_route(inv: &Invocation, route: &Route, settings: Settings) -> RouteReport {
    let mut report = RouteReport::new(route);
    let _spinner = output::Spinner::start(inv.style, &format!("canary on {}", route.s3_uri()));
    let target = match target::resolve(inv, route).await {
        Ok(target) => target,
        Err(findings) => {
            let detail = findings
                .first()
                .map(|f| f.detail.clone())
                .unwrap_or_default();
            report.fail(Stage::KnowledgeBase, detail, findings);
            return report.finish();
        }
    };
    report.data_source_id = Some(target.source.data_source_id.clone());
    report.pass(Stage::KnowledgeBase, target.describe());
    match target::sweep_leftovers(inv, &target, settings.timeout).await {
        Ok(swept) => report.cleanup.extend(swept),
        Err(e) => report
            .cleanup
            .push(format!("could not look for leftovers: {e}")),
    }
    follow::object(inv, &target, settings, &mut report).await;
    report.finish()
}
