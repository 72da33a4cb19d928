//! The SDK clients of one invocation, built from the standard AWS configuration chain plus the
//! command line's profile, region and endpoints.

use aws_config::{BehaviorVersion, Region};
use kb_autosync_aws::AwsError;

use crate::cli::Target;
use crate::error::CliError;

#[derive(Clone, Debug)]
pub struct Clients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub bedrock: aws_sdk_bedrockagent::Client,
}

/// Clients plus the region they talk to (every hint names it).
#[derive(Clone, Debug)]
pub struct Context {
    pub region: String,
    pub clients: Clients,
}

impl Context {
    pub async fn new(target: &Target) -> Result<Self, CliError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &target.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &target.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &target.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader.load().await;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| {
                CliError::Usage(
                    "no AWS region is configured: pass --region, set AWS_REGION, or set a region in the profile".into(),
                )
            })?;
        // An explicit endpoint is a local or private one: S3 bucket names cannot go into its host.
        let s3 = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(target.endpoint_url.is_some())
            .build();
        let mut bedrock = aws_sdk_bedrockagent::config::Builder::from(&sdk);
        if let Some(url) = &target.bedrock_endpoint_url {
            bedrock = bedrock.endpoint_url(url);
        }
        Ok(Self {
            region,
            clients: Clients {
                cloudformation: aws_sdk_cloudformation::Client::new(&sdk),
                lambda: aws_sdk_lambda::Client::new(&sdk),
                iam: aws_sdk_iam::Client::new(&sdk),
                events: aws_sdk_eventbridge::Client::new(&sdk),
                s3: aws_sdk_s3::Client::from_conf(s3),
                dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
                sqs: aws_sdk_sqs::Client::new(&sdk),
                sns: aws_sdk_sns::Client::new(&sdk),
                sfn: aws_sdk_sfn::Client::new(&sdk),
                bedrock: aws_sdk_bedrockagent::Client::from_conf(bedrock.build()),
            },
        })
    }

    /// Wraps a failed call of `service` with the hint for this region.
    pub fn fail(&self, service: &'static str, error: AwsError) -> CliError {
        CliError::call(service, error, &self.region)
    }
}

/// `AwsError::from_sdk` for any service (the SDKs share one error type).
pub fn sdk_error<E, R>(
    operation: &'static str,
    err: aws_sdk_dynamodb::error::SdkError<E, R>,
) -> AwsError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    AwsError::from_sdk(operation, err)
}
