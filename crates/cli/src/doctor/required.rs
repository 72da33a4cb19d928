//! The AWS actions each function calls, read off its code (handlers and the adapters they use,
//! plus what the Lambda SQS event source mapping does with the function's role). A role that
//! lacks one of them fails at run time with AccessDenied, usually long after the deploy.

const RECEIVE_FROM_QUEUE: [&str; 4] = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
];
const USE_STACK_KEY: [&str; 2] = ["kms:Decrypt", "kms:GenerateDataKey"];

const EVENT_PROCESSOR: &[&str] = &[
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "s3:GetObject",
    "s3:ListBucket",
    "sqs:SendMessage",
    "bedrock:ListDataSources",
    "bedrock:GetDataSource",
];
const SYNC_PROCESSOR: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "states:StartExecution",
    "states:DescribeExecution",
    "states:GetExecutionHistory",
];
const CHECK_QUOTA: &[&str] = &[
    "bedrock:ListIngestionJobs",
    "bedrock:ListDataSources",
    "bedrock:GetDataSource",
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "states:DescribeExecution",
];
const START_SYNC: &[&str] = &[
    "bedrock:StartIngestionJob",
    "bedrock:ListIngestionJobs",
    "bedrock:IngestKnowledgeBaseDocuments",
    "bedrock:DeleteKnowledgeBaseDocuments",
    "bedrock:GetKnowledgeBaseDocuments",
    "s3:GetObject",
    "sns:Publish",
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "states:DescribeExecution",
];
const MONITOR_SYNC: &[&str] = &[
    "bedrock:GetIngestionJob",
    "bedrock:GetKnowledgeBaseDocuments",
    "bedrock:ListKnowledgeBaseDocuments",
    "dynamodb:Query",
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "sns:Publish",
];

/// The function's own calls plus those made with its role on its behalf: the queue polling of
/// its event source mapping and the use of the stack's KMS key.
pub fn actions(function: &str) -> Vec<&'static str> {
    let own: &[&str] = match function {
        "event-processor" => EVENT_PROCESSOR,
        "sync-processor" => SYNC_PROCESSOR,
        "check-quota" => CHECK_QUOTA,
        "start-sync" => START_SYNC,
        "monitor-sync" => MONITOR_SYNC,
        _ => &[],
    };
    let queue: &[&str] = match function {
        "event-processor" | "sync-processor" => &RECEIVE_FROM_QUEUE,
        _ => &[],
    };
    own.iter()
        .chain(queue)
        .chain(USE_STACK_KEY.iter())
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::FUNCTION_OUTPUTS;

    #[test]
    fn every_function_has_its_calls_listed() {
        for (function, _) in FUNCTION_OUTPUTS {
            let actions = actions(function);
            assert!(actions.len() > USE_STACK_KEY.len(), "{function}");
            assert!(actions.iter().all(|a| a.contains(':')), "{function}");
        }
        assert!(actions("monitor-sync").contains(&"sns:Publish"));
        assert!(actions("event-processor").contains(&"sqs:ReceiveMessage"));
        assert!(actions("event-processor").contains(&"dynamodb:BatchGetItem"));
        assert!(actions("event-processor").contains(&"s3:GetObject"));
        assert!(!actions("start-sync").contains(&"sqs:ReceiveMessage"));
    }
}
