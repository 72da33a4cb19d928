//! Starts and stops the local stack launcher and connects SDK clients to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::emulator::Emulator;

/// What the launcher wrote to `stack.json` (the fields the tests and the demo use).
#[derive(Debug, Clone, Deserialize)]
pub struct StackInfo {
    pub moto_endpoint: String,
    pub emulator_endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub tracking_table: String,
    pub metadata_table: String,
    pub sources_table: String,
    pub change_events_queue_url: String,
    pub change_events_dlq_url: String,
    pub sync_queue_url: String,
    pub sync_dlq_url: String,
    pub topic_arn: String,
    pub notifications_queue_url: String,
    pub state_machine_arn: String,
    pub logs_dir: PathBuf,
    /// Every route the functions get (ROUTES format); `bucket` is the first route's.
    #[serde(default)]
    pub routes: Vec<serde_json::Value>,
    /// The AWS limits the stack enforces, every one set (AWS's value unless lowered).
    #[serde(default)]
    pub limits: Limits,
}

/// AWS hard limits the local stack enforces although moto does not; `None` keeps AWS's value.
/// Tests lower them to reach a limit in seconds. Passed to the launcher as `--limit NAME=VALUE`.
///
/// A separate argument of [`LocalStack::start_with_limits`] rather than a field of
/// [`StackOptions`], which its callers build field by field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Limits {
    /// Events in a Standard execution's history (AWS: 25,000). An execution that would record
    /// more ends FAILED with `States.Runtime`, "The execution reached the maximum number of
    /// history events (N)."; event N is that failure unless it is ExecutionSucceeded.
    pub sfn_history_events: Option<u64>,
    /// Bytes of a state's output or a task's result, `States.DataLimitExceeded` above it (not
    /// matched by `States.ALL`); StartExecution input above it is a ValidationException
    /// (AWS: 262,144).
    pub sfn_payload_bytes: Option<u64>,
    /// Bytes of a DynamoDB item by AWS's size rules after any write: ValidationException "Item
    /// size (to update) has exceeded the maximum allowed size", nothing written (AWS: 409,600).
    pub dynamodb_item_bytes: Option<u64>,
    /// Bytes of an SQS message (body and attributes; InvalidParameterValue) and of a
    /// SendMessageBatch in total (BatchRequestTooLong) (262,144: AWS's limit until 2025, now 1 MiB).
    pub sqs_message_bytes: Option<u64>,
}

impl Limits {
    /// The launcher's `--limit` values for the limits that are set.
    fn flags(&self) -> Vec<String> {
        [
            ("sfn-history-events", self.sfn_history_events),
            ("sfn-payload-bytes", self.sfn_payload_bytes),
            ("dynamodb-item-bytes", self.dynamodb_item_bytes),
            ("sqs-message-bytes", self.sqs_message_bytes),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| format!("{name}={value}")))
        .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("the local stack's Python environment is missing ({0}): run `make demo` or `make e2e`, which install it")]
    NoVenv(PathBuf),
    #[error("cannot start the local stack launcher: {0}")]
    Spawn(std::io::Error),
    #[error("the local stack did not come up within {seconds} s; its last output:\n{log}")]
    Timeout { seconds: u64, log: String },
    #[error("the local stack launcher exited ({status}) before it was ready; its output:\n{log}")]
    Exited { status: String, log: String },
    #[error("stack.json is not what was expected: {0}")]
    StackJson(String),
}

/// How to start a stack. Timings are production defaults unless overridden through `params`.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Directory for stack.json and logs; kept after the stack stops, for inspection.
    pub state_dir: PathBuf,
    /// Template parameter overrides (`KnowledgeBaseId`, `SyncDelaySeconds`, ...).
    pub params: Vec<(String, String)>,
    /// Function environment overrides (`KEY=VALUE` or `binary:KEY=VALUE`).
    pub env: Vec<(String, String)>,
    /// Emulator configuration; None: one knowledge base and data source from the parameters.
    pub emulator_config: Option<serde_json::Value>,
    pub time_scale: f64,
    pub workers: u32,
    pub sweep_every_seconds: Option<u64>,
    /// Resource property overrides (`ChangeEventsQueue.VisibilityTimeout` = `1`), for tests
    /// that need redelivery in seconds rather than minutes.
    pub overrides: Vec<(String, String)>,
}

pub struct LocalStack {
    child: Child,
    pub info: StackInfo,
    pub state_dir: PathBuf,
    sdk: aws_config::SdkConfig,
}

/// The repository root (where template.yaml lives).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

impl LocalStack {
    /// Starts a stack held to AWS's own limits.
    pub async fn start(options: StackOptions) -> Result<Self, StackError> {
        Self::start_with_limits(options, Limits::default()).await
    }

    /// Starts a stack with some of AWS's limits lowered (see [`Limits`]).
    pub async fn start_with_limits(
        options: StackOptions,
        limits: Limits,
    ) -> Result<Self, StackError> {
        let root = project_root();
        let python = root.join(".local/venv/bin/python");
        if !python.exists() {
            return Err(StackError::NoVenv(python));
        }
        std::fs::create_dir_all(&options.state_dir).map_err(StackError::Spawn)?;
        let stack_json = options.state_dir.join("stack.json");
        let _ = std::fs::remove_file(&stack_json);
        let output_path = options.state_dir.join("launcher.out");
        let output = std::fs::File::create(&output_path).map_err(StackError::Spawn)?;
        let mut command = Command::new(&python);
        command
            .current_dir(&root)
            .arg("local/stack.py")
            .arg("up")
            .arg("--state-dir")
            .arg(&options.state_dir)
            .arg("--time-scale")
            .arg(format!(
                "{}",
                if options.time_scale > 0.0 {
                    options.time_scale
                } else {
                    1.0
                }
            ))
            .arg("--workers")
            .arg(format!("{}", options.workers.max(1)))
            .stdin(Stdio::null())
            .stdout(output.try_clone().map_err(StackError::Spawn)?)
            .stderr(output);
        for (key, value) in &options.params {
            command.arg("--param").arg(format!("{key}={value}"));
        }
        for (key, value) in &options.env {
            command.arg("--env").arg(format!("{key}={value}"));
        }
        for (key, value) in &options.overrides {
            command.arg("--override").arg(format!("{key}={value}"));
        }
        if let Some(config) = &options.emulator_config {
            let path = options.state_dir.join("emulator-config.json");
            std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap_or_default())
                .map_err(StackError::Spawn)?;
            command.arg("--emulator-config").arg(path);
        }
        if let Some(every) = options.sweep_every_seconds {
            command.arg("--sweep-every").arg(every.to_string());
        }
        for limit in limits.flags() {
            command.arg("--limit").arg(limit);
        }
        let mut child = command.spawn().map_err(StackError::Spawn)?;
        let deadline = Instant::now() + Duration::from_secs(180);
        let read_log = || std::fs::read_to_string(&output_path).unwrap_or_default();
        loop {
            if let Some(status) = child.try_wait().map_err(StackError::Spawn)? {
                return Err(StackError::Exited {
                    status: status.to_string(),
                    log: read_log(),
                });
            }
            if let Ok(text) = std::fs::read_to_string(&stack_json) {
                let info: StackInfo = serde_json::from_str(&text)
                    .map_err(|e| StackError::StackJson(e.to_string()))?;
                let sdk = sdk_config(&info).await;
                return Ok(Self {
                    child,
                    info,
                    state_dir: options.state_dir,
                    sdk,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let log = read_log();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(StackError::Timeout {
                    seconds: 180,
                    log: tail,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.sdk)
    }

    /// The SDK configuration pointing at the stack (for clients of other services).
    pub fn sdk_config(&self) -> &aws_config::SdkConfig {
        &self.sdk
    }

    pub fn emulator(&self) -> Emulator {
        Emulator::new(self.info.emulator_endpoint.clone().unwrap_or_default())
    }

    /// Everything a function logged so far (JSON lines).
    pub fn function_log(&self, binary: &str) -> String {
        std::fs::read_to_string(self.info.logs_dir.join(format!("{binary}.log")))
            .unwrap_or_default()
    }

    /// Stops the launcher, which stops every process it started.
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn sdk_config(info: &StackInfo) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&info.moto_endpoint)
        .region(aws_config::Region::new(info.region.clone()))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "local-stack",
        ))
        .load()
        .await
}
