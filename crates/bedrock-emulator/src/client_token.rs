//! clientToken: the format every operation that takes one checks, and the replay record of the
//! document write operations.
//!
//! Bedrock's contract ("if this token matches a previous request, Amazon Bedrock ignores the
//! request, but does not return an error") is kept by answering a retry with the first call's
//! answer. A token reused with another request body is a client bug; the document operations'
//! model lists no ConflictException, so that is a ValidationException.

use crate::errors::ApiError;

/// Bedrock: 33-256 characters, `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,256}$`. The SDKs fill in a UUID.
pub fn validate_client_token(client_token: Option<&str>) -> Result<(), ApiError> {
    let Some(token) = client_token else {
        return Ok(());
    };
    let valid_length = (33..=256).contains(&token.len());
    let valid_characters = token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && token.starts_with(|c: char| c.is_ascii_alphanumeric())
        && token.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid_length && valid_characters {
        Ok(())
    } else {
        Err(ApiError::Validation(format!(
            "1 validation error detected: Value '{token}' at 'clientToken' failed to satisfy constraint: \
             Member must have length between 33 and 256 and match pattern ^[a-zA-Z0-9](-*[a-zA-Z0-9]){{0,256}}$"
        )))
    }
}

/// What a call with a clientToken answered, and a canonical form of the request it answered.
#[derive(Debug, Clone)]
pub struct ReplayRecord<T> {
    pub fingerprint: String,
    pub response: T,
}

impl<T: Clone> ReplayRecord<T> {
    /// The first call's answer for a retry of the same request; a ValidationException for the same
    /// token with another request.
    pub fn replay(&self, token: &str, fingerprint: &str) -> Result<T, ApiError> {
        if self.fingerprint == fingerprint {
            Ok(self.response.clone())
        } else {
            Err(ApiError::Validation(format!(
                "The clientToken {token} was already used with a different request. \
                 Use a new clientToken for a new request."
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tokens_follow_bedrock_constraints() {
        assert!(validate_client_token(None).is_ok());
        assert!(validate_client_token(Some("3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b")).is_ok());
        assert!(validate_client_token(Some("short")).is_err());
        assert!(validate_client_token(Some(&format!("-{}", "a".repeat(40)))).is_err());
        assert!(validate_client_token(Some(&"a b".repeat(20))).is_err());
    }

    #[test]
    fn replays_answer_the_same_request_and_reject_another() {
        let record = ReplayRecord {
            fingerprint: "a".to_string(),
            response: 7,
        };
        assert_eq!(record.replay("t", "a"), Ok(7));
        assert!(matches!(
            record.replay("t", "b"),
            Err(ApiError::Validation(_))
        ));
    }
}
