//! What an operator (or a schedule) does to a running stack: invoke one of its functions, turn
//! its EventBridge change rule off and on again.

use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;

use crate::LocalStack;

/// The deployed name of the function with template logical id `logical_id`.
async fn function_name(
    lambda: &aws_sdk_lambda::Client,
    logical_id: &str,
) -> Result<String, String> {
    let suffix = format!("-{logical_id}");
    let functions = lambda
        .list_functions()
        .send()
        .await
        .map_err(|e| format!("list functions: {e:?}"))?
        .functions
        .unwrap_or_default();
    functions
        .iter()
        .filter_map(|f| f.function_name.clone())
        .find(|name| name.ends_with(&suffix))
        .ok_or_else(|| format!("no function {logical_id} in the stack (is its condition off?)"))
}

/// Invokes a function as its schedule would (an empty event): (result, function error).
pub async fn invoke_function(
    stack: &LocalStack,
    logical_id: &str,
) -> Result<(Value, Option<String>), String> {
    let lambda = aws_sdk_lambda::Client::new(stack.sdk_config());
    let name = function_name(&lambda, logical_id).await?;
    let out = lambda
        .invoke()
        .function_name(&name)
        .payload(Blob::new("{}"))
        .send()
        .await
        .map_err(|e| format!("invoke {name}: {e:?}"))?;
    let payload = out.payload.map(|p| p.into_inner()).unwrap_or_default();
    let payload = serde_json::from_slice(&payload).unwrap_or(Value::Null);
    Ok((payload, out.function_error))
}

/// The name of the stack's EventBridge rule for S3 changes.
pub async fn change_rule(stack: &LocalStack) -> Result<String, String> {
    let events = aws_sdk_eventbridge::Client::new(stack.sdk_config());
    let rules = events
        .list_rules()
        .send()
        .await
        .map_err(|e| format!("list rules: {e:?}"))?
        .rules
        .unwrap_or_default();
    rules
        .iter()
        .filter_map(|r| r.name.clone())
        .find(|n| n.contains("S3ChangeRule"))
        .ok_or_else(|| format!("no change rule among {rules:?}"))
}

/// Turns the change rule off (S3 events are then dropped, as in AWS) or on again.
pub async fn set_change_rule(stack: &LocalStack, enabled: bool) -> Result<(), String> {
    let events = aws_sdk_eventbridge::Client::new(stack.sdk_config());
    let rule = change_rule(stack).await?;
    let result = if enabled {
        events
            .enable_rule()
            .name(&rule)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    } else {
        events
            .disable_rule()
            .name(&rule)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    };
    result.map_err(|e| format!("set rule {rule} enabled={enabled}: {e}"))
}
