//! How a route's changes reach the index.

use serde::{Deserialize, Serialize};

/// Per route (`ingestion_mode` in ROUTES) or for the stack (`IngestionMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IngestionMode {
    /// Direct ingestion for small rounds of a data source that has completed a job before;
    /// an ingestion job otherwise.
    #[default]
    Auto,
    /// Every round is an ingestion job (the behaviour before direct ingestion existed).
    Job,
    /// Every round is direct, whatever its size; a job only as the documented fallback.
    Direct,
}

impl IngestionMode {
    pub const NAMES: &'static str = "auto, job or direct";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Job => "job",
            Self::Direct => "direct",
        }
    }
}

impl std::str::FromStr for IngestionMode {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "job" => Ok(Self::Job),
            "direct" => Ok(Self::Direct),
            other => Err(format!(
                "ingestion mode {other:?} is not one of {}",
                Self::NAMES
            )),
        }
    }
}

impl std::fmt::Display for IngestionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a change was synced (`ingestion_method` in the tracking table and notifications).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IngestionMethod {
    #[default]
    Job,
    Direct,
}

impl IngestionMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Job => "job",
            Self::Direct => "direct",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_case_insensitively_and_name_the_allowed_values_otherwise() {
        assert_eq!("Direct".parse::<IngestionMode>(), Ok(IngestionMode::Direct));
        assert_eq!(" job ".parse::<IngestionMode>(), Ok(IngestionMode::Job));
        assert_eq!("".parse::<IngestionMode>(), Ok(IngestionMode::Auto));
        let err = "fast".parse::<IngestionMode>().unwrap_err();
        assert!(
            err.contains("\"fast\"") && err.contains("auto, job or direct"),
            "{err}"
        );
    }

    #[test]
    fn methods_serialise_as_the_tracking_table_shows_them() {
        assert_eq!(
            serde_json::to_value(IngestionMethod::Direct).unwrap(),
            serde_json::json!("direct")
        );
        assert_eq!(
            serde_json::from_value::<IngestionMode>(serde_json::json!("job")).unwrap(),
            IngestionMode::Job
        );
    }
}
