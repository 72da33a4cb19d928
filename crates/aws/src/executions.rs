//! The sync state machine: start a round's execution, ask whether one runs.

use kb_autosync_core::lease::ExecutionState;

use crate::AwsError;

#[derive(Clone, Debug)]
pub struct Executions {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StartOutcome {
    Started,
    /// An execution with this name exists with another input, or has closed: the round is used.
    NameTaken,
}

impl Executions {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// `arn:aws:states:R:A:stateMachine:NAME` -> `arn:aws:states:R:A:execution:NAME:EXEC`.
    pub fn execution_arn(&self, execution_name: &str) -> String {
        format!(
            "{}:{}",
            self.state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1),
            execution_name
        )
    }

    /// Starts the named execution. Step Functions makes this idempotent for a running execution
    /// with the same name and input, which is what makes healing a claimed lease safe.
    pub async fn start(
        &self,
        execution_name: &str,
        input: &serde_json::Value,
    ) -> Result<StartOutcome, AwsError> {
        match self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(execution_name)
            .input(input.to_string())
            .send()
            .await
        {
            Ok(_) => Ok(StartOutcome::Started),
            Err(err) => {
                let err = AwsError::from_sdk("StartExecution", err);
                if err.is("ExecutionAlreadyExists") {
                    Ok(StartOutcome::NameTaken)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// How many events the execution's history holds: the id of its latest event. Asks for the
    /// newest event only; takes the largest id returned, so a server that ignores `reverseOrder`
    /// and `maxResults` still gives the right answer.
    pub async fn history_events(&self, execution_arn: &str) -> Result<u64, AwsError> {
        let out = self
            .client
            .get_execution_history()
            .execution_arn(execution_arn)
            .reverse_order(true)
            .max_results(1)
            .include_execution_data(false)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetExecutionHistory", e))?;
        Ok(out
            .events
            .iter()
            .map(|e| e.id.max(0) as u64)
            .max()
            .unwrap_or(0))
    }

    pub async fn state(&self, execution_name: &str) -> Result<ExecutionState, AwsError> {
        match self
            .client
            .describe_execution()
            .execution_arn(self.execution_arn(execution_name))
            .send()
            .await
        {
            Ok(out) => Ok(match out.status.as_str() {
                "RUNNING" | "PENDING_REDRIVE" => ExecutionState::Running,
                other => ExecutionState::Ended(other.to_string()),
            }),
            Err(err) => {
                let err = AwsError::from_sdk("DescribeExecution", err);
                if err.is("ExecutionDoesNotExist") {
                    Ok(ExecutionState::NotFound)
                } else {
                    Err(err)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arn_from_state_machine_arn() {
        let config = aws_sdk_sfn::Config::builder()
            .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
            .build();
        let executions = Executions::new(
            aws_sdk_sfn::Client::from_conf(config),
            "arn:aws:states:us-east-1:123456789012:stateMachine:kb-sync",
        );
        assert_eq!(
            executions.execution_arn("KB-DS-r1"),
            "arn:aws:states:us-east-1:123456789012:execution:kb-sync:KB-DS-r1"
        );
    }
}
