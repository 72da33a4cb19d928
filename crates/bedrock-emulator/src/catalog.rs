//! Knowledge bases and their data sources: what GetKnowledgeBase / ListDataSources / GetDataSource
//! describe and what jobs run against.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::{bucket_from_arn, ConfigError, DataSourceConfig, KnowledgeBaseConfig};
use crate::errors::ApiError;
use crate::s3_scope::DataSourceScope;

/// Identifies a data source: its id is only unique within its knowledge base.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataSourceKey {
    pub knowledge_base_id: String,
    pub data_source_id: String,
}

impl DataSourceKey {
    pub fn new(knowledge_base_id: &str, data_source_id: &str) -> Self {
        Self {
            knowledge_base_id: knowledge_base_id.to_string(),
            data_source_id: data_source_id.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub data_sources: BTreeMap<String, DataSource>,
}

#[derive(Debug, Clone)]
pub struct DataSource {
    pub id: String,
    pub knowledge_base_id: String,
    pub name: String,
    pub description: Option<String>,
    pub bucket_arn: String,
    pub scope: DataSourceScope,
    pub created_at: DateTime<Utc>,
}

impl DataSource {
    pub fn key(&self) -> DataSourceKey {
        DataSourceKey::new(&self.knowledge_base_id, &self.id)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub knowledge_bases: BTreeMap<String, KnowledgeBase>,
}

impl Catalog {
    pub fn from_config(
        knowledge_bases: &[KnowledgeBaseConfig],
        now: DateTime<Utc>,
    ) -> Result<Self, ConfigError> {
        let mut catalog = Self::default();
        for knowledge_base in knowledge_bases {
            catalog.add_knowledge_base(knowledge_base, now)?;
        }
        Ok(catalog)
    }

    /// Adds a knowledge base with its data sources; an id already present is an error, because
    /// silently replacing it would orphan its jobs and index.
    pub fn add_knowledge_base(
        &mut self,
        config: &KnowledgeBaseConfig,
        now: DateTime<Utc>,
    ) -> Result<(), ConfigError> {
        config.validate()?;
        if self.knowledge_bases.contains_key(&config.id) {
            return Err(ConfigError::Invalid(format!(
                "knowledge base {} already exists",
                config.id
            )));
        }
        let mut knowledge_base = KnowledgeBase {
            id: config.id.clone(),
            name: config.name.clone(),
            description: config.description.clone(),
            created_at: now,
            data_sources: BTreeMap::new(),
        };
        for data_source in &config.data_sources {
            let data_source = build_data_source(&config.id, data_source, now)?;
            knowledge_base
                .data_sources
                .insert(data_source.id.clone(), data_source);
        }
        self.knowledge_bases
            .insert(knowledge_base.id.clone(), knowledge_base);
        Ok(())
    }

    pub fn add_data_source(
        &mut self,
        knowledge_base_id: &str,
        config: &DataSourceConfig,
        now: DateTime<Utc>,
    ) -> Result<(), CatalogChangeError> {
        let knowledge_base = self
            .knowledge_bases
            .get_mut(knowledge_base_id)
            .ok_or_else(|| {
                CatalogChangeError::NotFound(ApiError::knowledge_base_not_found(knowledge_base_id))
            })?;
        if knowledge_base.data_sources.contains_key(&config.id) {
            return Err(CatalogChangeError::Invalid(ConfigError::Invalid(format!(
                "data source {} already exists in knowledge base {knowledge_base_id}",
                config.id
            ))));
        }
        let data_source = build_data_source(knowledge_base_id, config, now)
            .map_err(CatalogChangeError::Invalid)?;
        knowledge_base
            .data_sources
            .insert(data_source.id.clone(), data_source);
        Ok(())
    }

    pub fn knowledge_base(&self, knowledge_base_id: &str) -> Result<&KnowledgeBase, ApiError> {
        self.knowledge_bases
            .get(knowledge_base_id)
            .ok_or_else(|| ApiError::knowledge_base_not_found(knowledge_base_id))
    }

    pub fn data_source(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
    ) -> Result<&DataSource, ApiError> {
        self.knowledge_base(knowledge_base_id)?
            .data_sources
            .get(data_source_id)
            .ok_or_else(|| ApiError::data_source_not_found(knowledge_base_id, data_source_id))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogChangeError {
    #[error("{0}")]
    NotFound(ApiError),
    #[error("{0}")]
    Invalid(ConfigError),
}

fn build_data_source(
    knowledge_base_id: &str,
    config: &DataSourceConfig,
    now: DateTime<Utc>,
) -> Result<DataSource, ConfigError> {
    config.validate()?;
    Ok(DataSource {
        id: config.id.clone(),
        knowledge_base_id: knowledge_base_id.to_string(),
        name: config.name.clone(),
        description: config.description.clone(),
        bucket_arn: config.bucket_arn.clone(),
        scope: DataSourceScope {
            bucket: bucket_from_arn(&config.bucket_arn)?,
            inclusion_prefixes: config.inclusion_prefixes.clone(),
        },
        created_at: now,
    })
}
