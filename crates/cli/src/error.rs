//! What went wrong, said so that the operator knows which AWS call failed, why, and what to do.

use kb_autosync_aws::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An AWS call failed; `hint` says what usually fixes it.
    #[error("{service} {}: {}: {}{}", .error.operation, .error.code, .error.message, hint_suffix(.hint))]
    Call {
        service: &'static str,
        error: AwsError,
        hint: Option<String>,
    },
    #[error("stack {stack} in {region}: {what}")]
    Deployment {
        stack: String,
        region: String,
        what: String,
    },
    #[error("{0}")]
    Usage(String),
}

const MAX_MESSAGE: usize = 300;

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|h| format!("\n  hint: {h}"))
        .unwrap_or_default()
}

impl CliError {
    /// Classifies a failed call by its error code and message; `region` goes into the hints.
    pub fn call(service: &'static str, mut error: AwsError, region: &str) -> Self {
        let hint = hint_for(service, &error, region);
        // Transport errors carry the whole raw response; the first lines say what happened.
        if error.message.chars().count() > MAX_MESSAGE {
            error.message = error.message.chars().take(MAX_MESSAGE).collect::<String>() + " …";
        }
        Self::Call {
            service,
            error,
            hint,
        }
    }
}

/// The hint a user needs for the failures operators meet most.
pub fn hint_for(service: &str, error: &AwsError, region: &str) -> Option<String> {
    let code = error.code.as_str();
    let text = format!("{} {}", error.code, error.message).to_ascii_lowercase();
    let hint = match code {
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            "your AWS credentials have expired: renew them (`aws sso login --profile NAME`, or refresh the session) and run again".to_string()
        }
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthorizationError" => format!(
            "the caller is not allowed to call {service}:{}: check the identity (`aws sts get-caller-identity`) and its IAM policy",
            error.operation
        ),
        "UnrecognizedClientException" | "InvalidClientTokenId" | "InvalidSignatureException"
        | "SignatureDoesNotMatch" => {
            "the credentials are not valid for this account: check AWS_PROFILE / --profile and the access keys".to_string()
        }
        "ResourceNotFoundException" | "NoSuchBucket" | "NotFoundException"
        | "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" | "StateMachineDoesNotExist" => format!(
            "it does not exist in region {region}: check --region and --stack-name (resources are regional)"
        ),
        "ValidationError" if text.contains("does not exist") => format!(
            "no such stack in region {region}: check --stack-name and --region (`aws cloudformation list-stacks`)"
        ),
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" => {
            "the API is throttling this account: wait a moment and run again".to_string()
        }
        _ if ["no credentials", "credentials provider", "failed to load credentials", "no providers in chain"]
            .iter()
            .any(|t| text.contains(t)) =>
        {
            "no AWS credentials were found: set AWS_PROFILE or --profile, run `aws configure` or `aws sso login`".to_string()
        }
        _ if ["dispatch failure", "connection refused", "dns error", "timed out", "io error"]
            .iter()
            .any(|t| text.contains(t)) =>
        {
            format!("the {service} endpoint could not be reached in region {region}: check --region, --endpoint-url and the network")
        }
        _ if text.contains("region") => {
            "no region is configured: pass --region or set AWS_REGION".to_string()
        }
        _ => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: &str, message: &str) -> AwsError {
        AwsError::new("DescribeStacks", code, message)
    }

    #[test]
    fn expired_credentials_say_how_to_renew() {
        let hint = hint_for(
            "cloudformation",
            &err(
                "ExpiredToken",
                "The security token included in the request is expired",
            ),
            "eu-west-1",
        )
        .unwrap();
        assert!(
            hint.contains("expired") && hint.contains("sso login"),
            "{hint}"
        );
    }

    #[test]
    fn access_denied_names_the_action() {
        let hint = hint_for(
            "dynamodb",
            &AwsError::new("Scan", "AccessDeniedException", "User is not authorized"),
            "us-east-1",
        )
        .unwrap();
        assert!(hint.contains("dynamodb:Scan"), "{hint}");
    }

    #[test]
    fn missing_stack_points_at_region_and_name() {
        let hint = hint_for(
            "cloudformation",
            &err(
                "ValidationError",
                "Stack with id kb-autosync does not exist",
            ),
            "eu-central-1",
        )
        .unwrap();
        assert!(
            hint.contains("eu-central-1") && hint.contains("--stack-name"),
            "{hint}"
        );
    }

    #[test]
    fn unreachable_endpoint_and_missing_credentials() {
        let hint = hint_for(
            "sqs",
            &err("Unknown", "dispatch failure: io error: Connection refused"),
            "us-east-1",
        )
        .unwrap();
        assert!(hint.contains("--endpoint-url"), "{hint}");
        let hint = hint_for(
            "sqs",
            &err(
                "Unknown",
                "failed to construct request: no credentials in the property bag",
            ),
            "us-east-1",
        )
        .unwrap();
        assert!(hint.contains("AWS_PROFILE"), "{hint}");
        // A parse error whose raw response mentions "connection: close" is not a network error.
        assert_eq!(
            hint_for(
                "s3",
                &err(
                    "Unknown",
                    "error parsing XML: ... \"connection\": \"close\""
                ),
                "us-east-1"
            ),
            None
        );
        let long = CliError::call("s3", err("Unknown", &"x".repeat(2000)), "us-east-1").to_string();
        assert!(long.len() < 400, "{long}");
        assert!(hint.contains("AWS_PROFILE"), "{hint}");
    }

    #[test]
    fn unknown_errors_get_no_made_up_hint() {
        assert_eq!(
            hint_for("sqs", &err("InternalError", "boom"), "us-east-1"),
            None
        );
    }

    #[test]
    fn the_message_names_service_operation_and_code() {
        let e = CliError::call(
            "dynamodb",
            AwsError::new("Query", "AccessDeniedException", "denied"),
            "us-east-1",
        );
        let text = e.to_string();
        assert!(
            text.starts_with("dynamodb Query: AccessDeniedException: denied"),
            "{text}"
        );
        assert!(text.contains("hint:"), "{text}");
    }
}
