//! What the benchmark reads from the local stack. Its own AWS clients carry the app name
//! `kb-autosync-bench`, so the stack's request counters tell its requests (uploads,
//! observation) apart from the service's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use kb_autosync_local::LocalStack;
use serde::Deserialize;
use serde_json::Value;

pub const APP_NAME: &str = "kb-autosync-bench";

pub struct Probe {
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sfn: aws_sdk_sfn::Client,
    http: reqwest::Client,
    moto: String,
    emulator: String,
    tracking_table: String,
    sources_table: String,
    state_machine_arn: String,
}

/// The launcher's counters (`GET /_kbstack/counters`, local/kbstack/counters.py).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Counters {
    /// caller -> service -> action -> requests
    pub requests: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>>,
    pub empty_receives: BTreeMap<String, u64>,
    pub invocations: BTreeMap<String, InvocationCounters>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct InvocationCounters {
    pub count: u64,
    pub errors: u64,
    pub events: u64,
    pub durations_ms: Vec<f64>,
}

impl Counters {
    /// What happened between `self` (before) and `after`.
    pub fn delta(&self, after: &Counters) -> Counters {
        let mut out = Counters::default();
        for (caller, services) in &after.requests {
            for (service, actions) in services {
                for (action, n) in actions {
                    let before = self
                        .requests
                        .get(caller)
                        .and_then(|s| s.get(service))
                        .and_then(|a| a.get(action))
                        .copied()
                        .unwrap_or(0);
                    if *n > before {
                        *out.requests
                            .entry(caller.clone())
                            .or_default()
                            .entry(service.clone())
                            .or_default()
                            .entry(action.clone())
                            .or_default() = n - before;
                    }
                }
            }
        }
        for (caller, n) in &after.empty_receives {
            let before = self.empty_receives.get(caller).copied().unwrap_or(0);
            out.empty_receives.insert(caller.clone(), n - before);
        }
        for (function, stats) in &after.invocations {
            let before = self.invocations.get(function).cloned().unwrap_or_default();
            out.invocations.insert(
                function.clone(),
                InvocationCounters {
                    count: stats.count - before.count,
                    errors: stats.errors - before.errors,
                    events: stats.events - before.events,
                    durations_ms: stats.durations_ms[before.durations_ms.len()..].to_vec(),
                },
            );
        }
        out
    }

    /// Requests of one service by the service itself (functions and Step Functions
    /// integrations, event source mappings), not by the benchmark.
    pub fn service_requests(&self, service: &str) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for caller in ["functions", "stack"] {
            for (action, n) in self
                .requests
                .get(caller)
                .and_then(|s| s.get(service))
                .into_iter()
                .flatten()
            {
                *out.entry(action.clone()).or_default() += n;
            }
        }
        out
    }
}

/// A change as the tracking table shows it, with the times the benchmark needs.
#[derive(Debug, Clone)]
pub struct ChangeTimes {
    pub key: String,
    pub status: String,
    pub recorded: chrono::DateTime<chrono::Utc>,
    pub synced: Option<chrono::DateTime<chrono::Utc>>,
}

fn text(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn time(value: Option<String>) -> Option<chrono::DateTime<chrono::Utc>> {
    value
        .and_then(|v| chrono::DateTime::parse_from_rfc3339(&v).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

impl Probe {
    pub async fn new(stack: &LocalStack) -> Self {
        let info = &stack.info;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&info.moto_endpoint)
            .region(aws_config::Region::new(info.region.clone()))
            .app_name(aws_config::AppName::new(APP_NAME).expect("valid app name"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "bench",
            ))
            .load()
            .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        Self {
            s3,
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            sfn: aws_sdk_sfn::Client::new(&sdk),
            http: reqwest::Client::new(),
            moto: info.moto_endpoint.clone(),
            emulator: info.emulator_endpoint.clone().unwrap_or_default(),
            tracking_table: info.tracking_table.clone(),
            sources_table: info.sources_table.clone(),
            state_machine_arn: info.state_machine_arn.clone(),
        }
    }

    pub async fn counters(&self) -> Result<Counters, String> {
        let url = format!("{}/_kbstack/counters", self.moto);
        self.http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("{url}: {e}"))
    }

    /// The emulator's inspection document (jobs, calls by operation).
    pub async fn emulator_state(&self) -> Result<Value, String> {
        let url = format!("{}/_emulator/state", self.emulator);
        self.http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("{url}: {e}"))
    }

    /// Changes recorded so far for a data source (its `change_seq` counter).
    pub async fn change_seq(&self, source_key: &str) -> Result<u64, String> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.sources_table)
            .key("source_id", AttributeValue::S(source_key.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| format!("get source item: {e:?}"))?;
        Ok(out
            .item
            .and_then(|i| i.get("change_seq").and_then(|v| v.as_n().ok()).cloned())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Changes of a data source not yet SYNCED (the sparse pending index).
    pub async fn pending(&self, source_key: &str) -> Result<u64, String> {
        let mut total = 0u64;
        let mut start = None;
        loop {
            let out = self
                .dynamodb
                .query()
                .table_name(&self.tracking_table)
                .index_name("pending-by-source")
                .key_condition_expression("pending_source = :s")
                .expression_attribute_values(":s", AttributeValue::S(source_key.into()))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| format!("query pending: {e:?}"))?;
            total += out.count as u64;
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(total),
            }
        }
    }

    pub async fn execution_arns(&self) -> Result<Vec<(String, bool)>, String> {
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .sfn
                .list_executions()
                .state_machine_arn(&self.state_machine_arn)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| format!("list executions: {e:?}"))?;
            for e in out.executions {
                let running = e.status == aws_sdk_sfn::types::ExecutionStatus::Running;
                arns.push((e.execution_arn, running));
            }
            match out.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(arns),
            }
        }
    }

    /// States entered by an execution: Step Functions bills one transition per state entered.
    pub async fn transitions(&self, execution_arn: &str) -> Result<u64, String> {
        let mut entered = 0;
        let mut token = None;
        loop {
            let out = self
                .sfn
                .get_execution_history()
                .execution_arn(execution_arn)
                .max_results(1000)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| format!("execution history: {e:?}"))?;
            entered += out
                .events
                .iter()
                .filter(|e| e.r#type.as_str().ends_with("StateEntered"))
                .count() as u64;
            match out.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(entered),
            }
        }
    }

    /// Waits until `expected` changes are recorded, none is PENDING and no execution runs,
    /// twice in a row. Ok(false) after `timeout`: the scenario is reported as it stands (its
    /// changes not SYNCED are counted) rather than dropped.
    pub async fn wait_settled(
        &self,
        source_key: &str,
        expected_seq: u64,
        timeout: Duration,
    ) -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        let mut quiet = 0;
        loop {
            // Cheapest first: the pending count is a Query that moto answers by sorting the whole
            // table, so it is asked only once every change is recorded and nothing runs (asked
            // every half second during a burst of 10,000, it took most of moto's time).
            let seq = self.change_seq(source_key).await?;
            let running = if seq >= expected_seq {
                let arns = self.execution_arns().await?;
                Some(arns.iter().filter(|(_, r)| *r).count())
            } else {
                None
            };
            let pending = if running == Some(0) {
                Some(self.pending(source_key).await?)
            } else {
                None
            };
            if pending == Some(0) {
                quiet += 1;
                if quiet >= 2 {
                    return Ok(true);
                }
            } else {
                quiet = 0;
            }
            if Instant::now() > deadline {
                let counted = |n: Option<String>| n.unwrap_or_else(|| "not counted".into());
                let pending = counted(pending.map(|p| p.to_string()));
                let running = counted(running.map(|r| r.to_string()));
                eprintln!(
                    "    not settled after {} s: {seq}/{expected_seq} changes recorded, {pending} not SYNCED, {running} executions running",
                    timeout.as_secs()
                );
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Changes whose key starts with `prefix`.
    pub async fn changes(&self, prefix: &str) -> Result<Vec<ChangeTimes>, String> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.tracking_table)
                .filter_expression("begins_with(#k, :p)")
                .projection_expression("#k, #t, synced_at, #s")
                .expression_attribute_names("#k", "key")
                .expression_attribute_names("#t", "timestamp")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| format!("scan tracking table: {e:?}"))?;
            for item in page.items.unwrap_or_default() {
                out.push(ChangeTimes {
                    key: text(&item, "key").unwrap_or_default(),
                    status: text(&item, "status").unwrap_or_default(),
                    recorded: time(text(&item, "timestamp")).unwrap_or_default(),
                    synced: time(text(&item, "synced_at")),
                });
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    pub async fn known_executions(&self) -> Result<BTreeSet<String>, String> {
        Ok(self
            .execution_arns()
            .await?
            .into_iter()
            .map(|(a, _)| a)
            .collect())
    }
}
