//! Decoding of URL-encoded S3 notification keys.
#![no_main]

use kb_autosync_core::event::ObjectKey;
use kb_autosync_fuzz::{as_text, assert_readable_rejection};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

fuzz_target!(|data: &[u8]| {
    let Some(raw) = as_text(data) else { return };
    match ObjectKey::url_encoded(raw) {
        Err(e) => assert_readable_rejection(&e),
        Ok(key) => {
            assert_eq!(key.raw, raw, "the raw key is kept as received");
            if !raw.contains(['%', '+']) {
                assert_eq!(key.decoded, raw, "a key without escapes decodes to itself");
            }
            // Encoding the decoded key the way S3 does decodes back to it.
            let encoded = utf8_percent_encode(&key.decoded, NON_ALPHANUMERIC).to_string();
            let again = ObjectKey::url_encoded(encoded).expect("an encoded key decodes");
            assert_eq!(again.decoded, key.decoded);
        }
    }
});
