//! One ChangeEventsQueue message body (what EventBridge or S3 put on the queue), wrapped in the
//! SQS batch the event source mapping delivers: a bad body is rejected alone, never the batch.
#![no_main]

use kb_autosync_core::event::{parse_payload, ParsedPayload};
use kb_autosync_fuzz::{as_text, assert_readable_rejection};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Some(body) = as_text(data) else { return };
    let batch = json!({"Records": [
        {"messageId": "m0", "receiptHandle": "rh", "body": body, "attributes": {}, "messageAttributes": {},
         "md5OfBody": "x", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:changes", "awsRegion": "us-east-1"},
        {"messageId": "m1", "receiptHandle": "rh", "body": "{}", "attributes": {}, "messageAttributes": {},
         "md5OfBody": "x", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:changes", "awsRegion": "us-east-1"}
    ]});
    let parsed =
        parse_payload(&batch).expect("a well-formed SQS batch is never rejected as a whole");
    let ParsedPayload::Sqs(items) = parsed else {
        panic!("an SQS batch parsed as a direct invocation")
    };
    assert_eq!(items.len(), 2, "one result per message");
    assert_eq!(items[0].message_id, "m0");
    if let Err(e) = &items[0].changes {
        assert_readable_rejection(e);
    }
    // The neighbour's outcome does not depend on the fuzzed body.
    assert!(items[1].changes.is_err());
});
