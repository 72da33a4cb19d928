//! The reads and writes a canary makes: its object in S3, its change in the tracking table, the
//! data source's lease and execution, and its document in the knowledge base.

use kb_autosync_aws::executions::Executions;
use kb_autosync_aws::knowledge_base::{DocumentState, KnowledgeBase};
use kb_autosync_core::change::ChangeRecord;
use kb_autosync_core::event::ChangeType;
use kb_autosync_core::lease::{ExecutionState, LeaseState};

use super::Target;
use crate::commands::Invocation;
use crate::context::sdk_error;
use crate::error::CliError;
use crate::records::Records;

pub struct Probe<'a> {
    inv: &'a Invocation,
    target: &'a Target,
    records: Records,
    executions: Executions,
    kb: KnowledgeBase,
}

/// Which change to look for: an object's create or delete, numbered after `after_seq`.
pub struct ChangeQuery<'a> {
    pub key: &'a str,
    pub change_type: ChangeType,
    pub after_seq: u64,
    /// The change's id once it was seen: read directly from then on.
    pub known_id: Option<&'a str>,
    /// Also scan the table (it may have left the pending index before it was seen there).
    pub scan: bool,
}

impl<'a> Probe<'a> {
    pub fn new(inv: &'a Invocation, target: &'a Target) -> Result<Self, CliError> {
        Ok(Self {
            inv,
            target,
            records: Records::new(&inv.ctx, &inv.deployment)?,
            executions: Executions::new(
                inv.ctx.clients.sfn.clone(),
                inv.deployment.output("SyncStateMachineArn")?,
            ),
            kb: KnowledgeBase::new(inv.ctx.clients.bedrock.clone()),
        })
    }

    pub async fn lease(&self) -> Result<LeaseState, CliError> {
        self.records.lease(&self.target.source).await
    }

    pub async fn put(&self, key: &str, body: String) -> Result<(), CliError> {
        self.inv
            .ctx
            .clients
            .s3
            .put_object()
            .bucket(&self.target.route.bucket)
            .key(key)
            .content_type("text/plain; charset=utf-8")
            .body(body.into_bytes().into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.inv.ctx.fail("s3", sdk_error("PutObject", e)))
    }

    pub async fn delete(&self, key: &str) -> Result<(), CliError> {
        self.inv
            .ctx
            .clients
            .s3
            .delete_object()
            .bucket(&self.target.route.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.inv.ctx.fail("s3", sdk_error("DeleteObject", e)))
    }

    /// The newest matching change, if recorded.
    pub async fn change(&self, query: &ChangeQuery<'_>) -> Result<Option<ChangeRecord>, CliError> {
        if let Some(id) = query.known_id {
            return self.records.change(id).await;
        }
        let source = &self.target.source;
        let wanted = |c: &ChangeRecord| c.change_type == query.change_type && c.key == query.key;
        let mut found = self
            .records
            .unsynced_after(source, query.after_seq, query.key)
            .await?;
        if query.scan && !found.iter().any(wanted) {
            found = self
                .records
                .changes_of(&self.target.route.bucket, query.key)
                .await?;
        }
        Ok(found
            .into_iter()
            .filter(|c| wanted(c) && c.source_seq > query.after_seq)
            .max_by_key(|c| c.source_seq))
    }

    /// The lease holder, when its execution is running.
    pub async fn running(&self, lease: &LeaseState) -> Result<Option<String>, CliError> {
        let Some(name) = &lease.active_execution else {
            return Ok(None);
        };
        let state = self
            .executions
            .state(name)
            .await
            .map_err(|e| self.inv.ctx.fail("stepfunctions", e))?;
        Ok((state == ExecutionState::Running).then(|| name.clone()))
    }

    /// The document's status in the knowledge base; None when Bedrock does not list it.
    pub async fn document(&self, key: &str) -> Result<Option<DocumentState>, CliError> {
        let uri = self.target.uri(key);
        let states = self
            .kb
            .document_states(&self.target.source, std::slice::from_ref(&uri))
            .await
            .map_err(|e| self.inv.ctx.fail("bedrock-agent", e))?;
        Ok(states.into_iter().find(|s| s.uri == uri))
    }
}
