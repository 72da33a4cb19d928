//! event-processor's whole payload: EventBridge events, S3 notifications, or an SQS batch of
//! either, as `parse_payload` sees it after the Lambda runtime decoded the JSON.
#![no_main]

use kb_autosync_core::event::{parse_payload, ParsedPayload};
use kb_autosync_fuzz::{as_text, assert_readable_rejection};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = as_text(data) else { return };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    match parse_payload(&value) {
        Err(e) => assert_readable_rejection(&e),
        Ok(ParsedPayload::Direct(changes)) => changes.iter().for_each(check_change),
        Ok(ParsedPayload::Sqs(items)) => {
            for item in items {
                assert!(!item.message_id.is_empty(), "an SQS item without an id");
                match item.changes {
                    Ok(changes) => changes.iter().for_each(check_change),
                    Err(e) => assert_readable_rejection(&e),
                }
            }
        }
    }
});

/// An accepted change names an object: routing and the tracking table key on it. Folder
/// placeholders are never changes.
fn check_change(change: &kb_autosync_core::event::ObjectChange) {
    assert!(
        !change.key.raw.is_empty(),
        "an accepted change with an empty key"
    );
    assert!(
        !change.key.decoded.is_empty(),
        "a key that decodes to nothing"
    );
    assert!(
        !change.is_folder_placeholder(),
        "a folder placeholder accepted as a change"
    );
}
