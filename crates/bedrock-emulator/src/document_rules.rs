//! Which S3 objects Bedrock can index: metadata sidecars, size limit, supported file types.

use crate::config::DocumentRulesConfig;

/// Suffix of the metadata sidecar files Bedrock reads instead of indexing.
pub const METADATA_SUFFIX: &str = ".metadata.json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    /// `X.metadata.json`: metadata of document `X`, counted apart from documents.
    Metadata { document_key: String },
    /// A document Bedrock can parse.
    Document,
    /// A document Bedrock scans but cannot index; the reason ends up in the document's statusReason.
    Unindexable {
        reason: String,
        cause: UnindexableCause,
    },
}

/// Why a document cannot be indexed. Jobs count both as failed documents; direct ingestion reports
/// an unsupported type as IGNORED (what Bedrock says of files it skips) and an oversized one as
/// FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnindexableCause {
    TooLarge,
    UnsupportedType,
}

pub fn classify(rules: &DocumentRulesConfig, key: &str, size_bytes: u64) -> ObjectKind {
    if let Some(document_key) = key.strip_suffix(METADATA_SUFFIX) {
        return ObjectKind::Metadata {
            document_key: document_key.to_string(),
        };
    }
    if size_bytes > rules.max_document_bytes {
        return ObjectKind::Unindexable {
            reason: format!(
                "The document size ({size_bytes} bytes) exceeds the maximum supported size of {} bytes.",
                rules.max_document_bytes
            ),
            cause: UnindexableCause::TooLarge,
        };
    }
    let lower_key = key.to_ascii_lowercase();
    let supported = rules
        .supported_extensions
        .iter()
        .any(|extension| lower_key.ends_with(&extension.to_ascii_lowercase()));
    if !supported {
        return ObjectKind::Unindexable {
            reason: format!(
                "Unsupported file type: {key}. Supported types: {}.",
                rules.supported_extensions.join(", ")
            ),
            cause: UnindexableCause::UnsupportedType,
        };
    }
    ObjectKind::Document
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_files_are_recognised_before_other_rules() {
        let rules = DocumentRulesConfig::default();
        assert_eq!(
            classify(&rules, "docs/a.pdf.metadata.json", 10),
            ObjectKind::Metadata {
                document_key: "docs/a.pdf".to_string()
            }
        );
        assert_eq!(classify(&rules, "docs/data.json", 10), ObjectKind::Document);
    }

    #[test]
    fn oversized_and_unsupported_objects_are_unindexable() {
        let rules = DocumentRulesConfig::default();
        assert_eq!(
            classify(&rules, "docs/a.PDF", 50 * 1024 * 1024),
            ObjectKind::Document
        );
        assert!(matches!(
            classify(&rules, "docs/a.pdf", 50 * 1024 * 1024 + 1),
            ObjectKind::Unindexable {
                cause: UnindexableCause::TooLarge,
                ..
            }
        ));
        assert!(matches!(
            classify(&rules, "docs/a.exe", 1),
            ObjectKind::Unindexable {
                cause: UnindexableCause::UnsupportedType,
                ..
            }
        ));
        assert!(matches!(
            classify(&rules, "docs/noext", 1),
            ObjectKind::Unindexable { .. }
        ));
    }
}
