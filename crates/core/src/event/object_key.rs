use serde::{Deserialize, Serialize};

/// An S3 object key as received, plus its decoded form.
///
/// Direct S3 notifications URL-encode keys (spaces as `+`). Whether EventBridge does is not
/// documented; in practice it sends keys unencoded. The service keeps the key exactly as received
/// (`raw`) and decodes only notification keys, where the encoding is documented. Routing and the
/// tracking table use `decoded`, which is the key as S3 stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectKey {
    pub raw: String,
    pub decoded: String,
}

impl ObjectKey {
    /// A key that arrived unencoded (EventBridge).
    pub fn verbatim(key: impl Into<String>) -> Self {
        let key = key.into();
        Self {
            raw: key.clone(),
            decoded: key,
        }
    }

    /// A key URL-encoded the way S3 notifications encode it (`+` for space, `%XX` for the rest).
    /// A malformed escape (invalid UTF-8 after decoding) is an error naming the key.
    pub fn url_encoded(raw: impl Into<String>) -> Result<Self, String> {
        let raw = raw.into();
        let plus_as_space = raw.replace('+', " ");
        let decoded = percent_encoding::percent_decode_str(&plus_as_space)
            .decode_utf8()
            .map_err(|e| format!("object key {raw:?} is not valid URL-encoded UTF-8: {e}"))?
            .into_owned();
        Ok(Self { raw, decoded })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_keys_decode_plus_and_percent() {
        let key = ObjectKey::url_encoded("docs/my+report%282024%29.pdf").unwrap();
        assert_eq!(key.decoded, "docs/my report(2024).pdf");
        assert_eq!(key.raw, "docs/my+report%282024%29.pdf");
    }

    #[test]
    fn encoded_plus_stays_plus() {
        let key = ObjectKey::url_encoded("a%2Bb.txt").unwrap();
        assert_eq!(key.decoded, "a+b.txt");
    }

    #[test]
    fn invalid_utf8_escape_is_an_error_naming_the_key() {
        let err = ObjectKey::url_encoded("bad%FF.txt").unwrap_err();
        assert!(err.contains("bad%FF.txt"), "{err}");
    }

    #[test]
    fn eventbridge_keys_are_kept_verbatim() {
        let key = ObjectKey::verbatim("docs/a+b %41.txt");
        assert_eq!(key.decoded, "docs/a+b %41.txt");
    }
}
