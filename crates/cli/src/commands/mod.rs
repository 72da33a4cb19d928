//! One module per subcommand. Each takes the resolved invocation and returns the exit code.

pub mod changes;
pub mod jobs;
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

/// The data sources the routes sync plus every data source with a lease item.
pub async fn known_sources(inv: &Invocation, records: &Records) -> Result<Vec<SourceId>, CliError> {
    let mut sources: BTreeMap<String, SourceId> = BTreeMap::new();
    for (_, source) in inv.deployment.sources(&inv.ctx).await? {
        if let Ok(source) = source {
            sources.insert(source.key(), source);
        }
    }
    for (source, _) in records.leases().await? {
        sources.insert(source.key(), source);
    }
    Ok(sources.into_values().collect())
}
