//! Deterministic names for the calls and the record of a direct batch: a retried task sends the
//! same call with the same client token, and Bedrock answers it without doing it twice.

use sha2::{Digest, Sha256};

use super::DocumentAction;

/// The batch's id in the metadata table, the tracking table and notifications: `direct-` and a
/// digest of the round's client token (one batch per attempt of an iteration).
pub fn batch_id(round_token: &str) -> String {
    let digest = Sha256::digest(round_token.as_bytes());
    format!("direct-{}", hex::encode(&digest[..12]))
}

/// Client token of one document call: the round's token and exactly what the call carries. A
/// retry with the same documents repeats the token; a call that carries other documents (a
/// change recorded late joined the batch) gets its own. 64 hex digits fit Bedrock's 33-256
/// characters of `[a-zA-Z0-9](-*[a-zA-Z0-9])*`.
pub fn call_token(round_token: &str, actions: &[&DocumentAction]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(round_token.as_bytes());
    for action in actions {
        hasher.update([0u8]);
        hasher.update(action.fingerprint().as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest(uri: &str) -> DocumentAction {
        DocumentAction::Ingest {
            uri: uri.into(),
            metadata_uri: None,
        }
    }

    #[test]
    fn the_same_call_gets_the_same_token_and_any_other_call_another() {
        let (a, b) = (ingest("s3://b/a.txt"), ingest("s3://b/b.txt"));
        let token = call_token("round-1", &[&a, &b]);
        assert_eq!(token, call_token("round-1", &[&a, &b]));
        assert_eq!(token.len(), 64);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(token, call_token("round-2", &[&a, &b]));
        assert_ne!(token, call_token("round-1", &[&a]));
        let with_metadata = DocumentAction::Ingest {
            uri: "s3://b/a.txt".into(),
            metadata_uri: Some("s3://b/a.txt.metadata.json".into()),
        };
        assert_ne!(token, call_token("round-1", &[&with_metadata, &b]));
        let delete = DocumentAction::Delete {
            uri: "s3://b/a.txt".into(),
        };
        assert_ne!(call_token("r", &[&a]), call_token("r", &[&delete]));
    }

    #[test]
    fn batch_ids_are_stable_per_round_token() {
        assert_eq!(batch_id("t1"), batch_id("t1"));
        assert_ne!(batch_id("t1"), batch_id("t2"));
        assert!(batch_id("t1").starts_with("direct-"));
    }
}
