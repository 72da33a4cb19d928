//! One module per subcommand. Each takes the resolved invocation and returns the exit code.

pub mod canary;
pub mod changes;
pub mod drift;
pub mod jobs;
pub mod reconcile;
pub mod status;
pub mod sync;

use std::collections::BTreeMap;

use kb_autosync_core::SourceId;

use crate::context::Context;
use crate::deployment::Deployment;
use crate::error::CliError;
use crate::output::Style;
use crate::records::Records;

/// Everything a command needs: clients, the deployment they act on, and how to print.
pub struct Invocation {
    pub ctx: Context,
    pub deployment: Deployment,
    pub style: Style,
    pub json: bool,
}

/// The data sources the routes sync plus every data source with a lease item. A route whose
/// data source cannot be resolved is reported on stderr (`doctor` says why) and skipped.
pub async fn known_sources(inv: &Invocation, records: &Records) -> Result<Vec<SourceId>, CliError> {
    let leased: Vec<SourceId> = records
        .leases()
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    routed_and(inv, leased).await
}

pub async fn routed_and(
    inv: &Invocation,
    others: Vec<SourceId>,
) -> Result<Vec<SourceId>, CliError> {
    let mut sources: BTreeMap<String, SourceId> = BTreeMap::new();
    for (route, source) in inv.deployment.sources(&inv.ctx).await? {
        match source {
            Ok(source) => {
                sources.insert(source.key(), source);
            }
            Err(e) => eprintln!("note: route {} is skipped: {e}", route.s3_uri()),
        }
    }
    for source in others {
        sources.insert(source.key(), source);
    }
    Ok(sources.into_values().collect())
}
