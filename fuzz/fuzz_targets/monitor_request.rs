//! monitor-sync's payload (`{"action": ..., "state": $}`) and the Catch error it reads the
//! failure reason from.
#![no_main]

use kb_autosync_core::workflow::{CaughtError, MonitorRequest};
use kb_autosync_fuzz::assert_readable_rejection;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match serde_json::from_slice::<MonitorRequest>(data) {
        Err(e) => assert_readable_rejection(&e),
        Ok(request) => {
            let _ = request.state.next_attempt();
            if let Some(error) = &request.state.error {
                let _ = error.message();
            }
            let value = serde_json::to_value(&request).expect("a request we read serialises");
            let again: MonitorRequest = serde_json::from_value(value).expect("and reads back");
            assert_eq!(again, request);
        }
    }
    if let Ok(error) = serde_json::from_slice::<CaughtError>(data) {
        let _ = error.message();
    }
});
