//! sync-processor's input: the SQS batch, then every SyncQueue body (sync requests and sweeps).
#![no_main]

use aws_lambda_events::sqs::SqsEvent;
use kb_autosync_core::sync_request::SyncRequest;
use kb_autosync_fuzz::{as_text, assert_readable_rejection};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The batch as the runtime decodes it; its bodies go through the same check below.
    if let Ok(batch) = serde_json::from_slice::<SqsEvent>(data) {
        for message in batch.records {
            check_body(message.body.as_deref().unwrap_or_default());
        }
    }
    if let Some(body) = as_text(data) {
        check_body(body);
    }
});

fn check_body(body: &str) {
    match SyncRequest::parse(body) {
        Err(e) => assert_readable_rejection(&e),
        Ok(request) => {
            // What we send is what we read back: sync-processor re-queues nothing it cannot parse.
            let again =
                SyncRequest::parse(&request.to_body()).expect("a request we serialised parses");
            assert_eq!(again, request);
            assert_eq!(
                request.source().is_some(),
                matches!(request, SyncRequest::Sync { .. })
            );
        }
    }
}
