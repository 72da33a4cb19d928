//! The state document check-quota and start-sync receive from the state machine (and the round
//! input sync-processor starts it with), plus what start-sync derives from it before any call.
#![no_main]

use kb_autosync_core::workflow::{RoundInput, WorkflowState};
use kb_autosync_fuzz::assert_readable_rejection;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match serde_json::from_slice::<WorkflowState>(data) {
        Err(e) => assert_readable_rejection(&e),
        Ok(state) => {
            let attempt = state.next_attempt();
            for a in [1, attempt, attempt.saturating_add(1)] {
                let token = state.client_token(a);
                assert!(
                    (33..=256).contains(&token.len()),
                    "client token length Bedrock refuses"
                );
                assert!(
                    token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                    "client token with a character Bedrock refuses"
                );
                assert_eq!(
                    token,
                    state.client_token(a),
                    "client tokens are deterministic"
                );
            }
            let _ = state.input.source().key();
            let value = serde_json::to_value(&state).expect("a state we read serialises");
            let again: WorkflowState =
                serde_json::from_value(value).expect("a state we wrote reads back");
            assert_eq!(again, state);
        }
    }
    if let Ok(input) = serde_json::from_slice::<RoundInput>(data) {
        let again: RoundInput =
            serde_json::from_value(serde_json::to_value(&input).unwrap()).unwrap();
        assert_eq!(again, input);
    }
});
