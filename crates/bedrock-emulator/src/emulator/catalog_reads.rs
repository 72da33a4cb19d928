//! GetKnowledgeBase, ListDataSources, GetDataSource.

use super::Emulator;
use crate::catalog::{DataSource, KnowledgeBase};
use crate::counters::Operation;
use crate::errors::ApiError;
use crate::pagination::paginate;

impl Emulator {
    /// Every knowledge base of the account, a page at a time (ListKnowledgeBases).
    pub fn list_knowledge_bases(
        &self,
        max_results: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<(Vec<KnowledgeBase>, Option<String>), ApiError> {
        let (mut state, now) = self.lock();
        state.take_read_token(Operation::ListKnowledgeBases, now)?;
        let knowledge_bases = state.catalog.knowledge_bases.values().cloned().collect();
        paginate(knowledge_bases, max_results, next_token)
    }

    pub fn get_knowledge_base(&self, knowledge_base_id: &str) -> Result<KnowledgeBase, ApiError> {
        let (mut state, now) = self.lock();
        state.take_read_token(Operation::GetKnowledgeBase, now)?;
        state.catalog.knowledge_base(knowledge_base_id).cloned()
    }

    pub fn list_data_sources(
        &self,
        knowledge_base_id: &str,
        max_results: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<(Vec<DataSource>, Option<String>), ApiError> {
        let (mut state, now) = self.lock();
        state.take_read_token(Operation::ListDataSources, now)?;
        let data_sources = state
            .catalog
            .knowledge_base(knowledge_base_id)?
            .data_sources
            .values()
            .cloned()
            .collect();
        paginate(data_sources, max_results, next_token)
    }

    pub fn get_data_source(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
    ) -> Result<DataSource, ApiError> {
        let (mut state, now) = self.lock();
        state.take_read_token(Operation::GetDataSource, now)?;
        state
            .catalog
            .data_source(knowledge_base_id, data_source_id)
            .cloned()
    }
}
