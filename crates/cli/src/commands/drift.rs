//! `autosync drift`: does each data source's index match its S3 scope? Gathers both listings,
//! compares them (`kb_autosync_core::drift`), renders counts and the first keys of each category.

use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_aws::objects::ObjectStore;
use kb_autosync_aws::scope_listing::{list_data_source, Listing, ListingError};
use kb_autosync_core::drift::{compare, Drift};
use kb_autosync_core::SourceId;
use serde::Serialize;

use crate::cli::DriftArgs;
use crate::commands::{routed_and, Invocation};
use crate::error::CliError;
use crate::output;

#[derive(Debug, Serialize)]
pub struct SourceDrift {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub bucket: String,
    /// The data source's inclusion prefixes ("" for the whole bucket).
    pub prefixes: Vec<String>,
    pub objects: usize,
    pub documents: usize,
    #[serde(flatten)]
    pub drift: Drift,
}

pub async fn run(inv: &Invocation, args: &DriftArgs) -> Result<i32, CliError> {
    let spinner =
        output::Spinner::start(inv.style, "listing S3 scopes and knowledge base documents");
    let rows = gather(inv, args).await?;
    drop(spinner);
    if inv.json {
        output::print_json(&rows);
    } else {
        render(&rows, args.limit);
    }
    Ok(if rows.iter().all(|r| r.drift.is_clean()) {
        0
    } else {
        1
    })
}

/// The routed data sources, narrowed by `--kb` / `--ds`.
pub async fn selected_sources(
    inv: &Invocation,
    kb: Option<&str>,
    ds: Option<&str>,
) -> Result<Vec<SourceId>, CliError> {
    Ok(routed_and(inv, Vec::new())
        .await?
        .into_iter()
        .filter(|s| kb.is_none_or(|kb| s.knowledge_base_id == kb))
        .filter(|s| ds.is_none_or(|ds| s.data_source_id == ds))
        .collect())
}

async fn gather(inv: &Invocation, args: &DriftArgs) -> Result<Vec<SourceDrift>, CliError> {
    let sources = selected_sources(inv, args.kb.as_deref(), args.ds.as_deref()).await?;
    let mut rows = Vec::with_capacity(sources.len());
    for source in sources {
        rows.push(source_drift(inv, &source).await?);
    }
    Ok(rows)
}

pub async fn list(inv: &Invocation, source: &SourceId) -> Result<Listing, CliError> {
    let kb = KnowledgeBase::new(inv.ctx.clients.bedrock.clone());
    let store = ObjectStore::new(inv.ctx.clients.s3.clone());
    list_data_source(&kb, &store, source)
        .await
        .map_err(|e| match e {
            ListingError::Call { service, error } => inv.ctx.fail(service, error),
            other => CliError::Usage(format!("{other} (autosync doctor says more)")),
        })
}

async fn source_drift(inv: &Invocation, source: &SourceId) -> Result<SourceDrift, CliError> {
    let listing = list(inv, source).await?;
    Ok(SourceDrift {
        knowledge_base_id: source.knowledge_base_id.clone(),
        data_source_id: source.data_source_id.clone(),
        drift: compare(&listing.objects, &listing.documents),
        objects: listing.objects.len(),
        documents: listing.documents.len(),
        bucket: listing.bucket,
        prefixes: listing.prefixes,
    })
}

fn render(rows: &[SourceDrift], limit: usize) {
    if rows.is_empty() {
        println!("no data sources: the routes name none");
        return;
    }
    let mut table = output::table(&[
        "KNOWLEDGE BASE",
        "DATA SOURCE",
        "S3 SCOPE",
        "OBJECTS",
        "DOCUMENTS",
        "MISSING",
        "STALE",
        "ORPHANED",
        "FAILED",
    ]);
    for row in rows {
        table.add_row(vec![
            row.knowledge_base_id.clone(),
            row.data_source_id.clone(),
            format!("s3://{}/{}", row.bucket, row.prefixes.join(",")),
            row.objects.to_string(),
            row.documents.to_string(),
            row.drift.missing.len().to_string(),
            row.drift.stale.len().to_string(),
            row.drift.orphaned.len().to_string(),
            row.drift.failed.len().to_string(),
        ]);
    }
    println!("{table}");
    for row in rows.iter().filter(|r| !r.drift.is_clean()) {
        render_categories(row, limit);
    }
    if rows.iter().any(|r| !r.drift.is_clean()) {
        println!("\n`autosync reconcile` records the missing, stale and orphaned objects as changes and syncs them.");
    } else {
        println!("\nevery data source's index matches its S3 scope");
    }
}

/// The first `limit` keys of each drift category of one data source.
fn render_categories(row: &SourceDrift, limit: usize) {
    let d = &row.drift;
    let failed: Vec<String> = d
        .failed
        .iter()
        .map(|f| format!("{} ({}: {})", f.key, f.status, f.reason))
        .collect();
    for (category, why, keys) in [
        ("missing", "in S3, not in the index", &d.missing),
        (
            "stale",
            "changed in S3 after the document's last update",
            &d.stale,
        ),
        ("orphaned", "in the index, gone from S3", &d.orphaned),
        ("failed", "Bedrock could not index it", &failed),
    ] {
        if keys.is_empty() {
            continue;
        }
        println!(
            "\n{}/{} {category} ({why}): {}",
            row.knowledge_base_id,
            row.data_source_id,
            keys.len()
        );
        for key in keys.iter().take(limit) {
            println!("  {key}");
        }
        if keys.len() > limit {
            println!("  ... and {} more", keys.len() - limit);
        }
    }
}
