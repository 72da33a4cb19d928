//! Runs one scenario on its own local stack: injects the faults, plays the workload, waits for
//! quiescence and checks the invariants.

use std::time::{Duration, Instant};

use kb_autosync_local::{invariants, observe, operate, LocalStack};
use serde_json::json;

use crate::checks::{self, Outcome};
use crate::plan::{Fault, Op, Scenario, BUCKET};

/// How long a scenario may take to settle after its workload.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(240);

pub async fn run(scenario: &Scenario) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::new(scenario);
    let limits = crate::stack::limits(scenario);
    let mut stack =
        match LocalStack::start_with_limits(crate::stack::options(scenario), limits).await {
            Ok(stack) => stack,
            Err(e) => {
                outcome.fail(format!("the local stack did not start: {e}"));
                return outcome;
            }
        };
    if let Err(e) = play(&stack, scenario, &mut outcome).await {
        outcome.fail(e);
    } else {
        checks::check(&stack, scenario, &mut outcome, SETTLE_TIMEOUT).await;
    }
    outcome.wall = started.elapsed();
    stack.stop();
    outcome
}

async fn play(
    stack: &LocalStack,
    scenario: &Scenario,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let emulator = stack.emulator();
    for fault in &scenario.faults {
        match fault {
            Fault::Throttle { count } => emulator.throttle_next_starts(*count).await?,
            Fault::FailJobs { count } => {
                emulator
                    .fail_next_jobs(*count, &["injected failure"])
                    .await?
            }
            Fault::FailDocuments { pattern } => {
                emulator
                    .fail_documents(pattern, "injected document failure")
                    .await?
            }
            Fault::ForeignJob { source, seconds } => {
                let s = scenario.sources()[*source];
                emulator
                    .start_foreign_job(s.knowledge_base_id, s.data_source_id, *seconds)
                    .await?;
            }
            Fault::Poison { count } => {
                for n in 0..*count {
                    let body = format!("poison {} {n}: not an event", scenario.seed);
                    let id = send(stack, &stack.info.change_events_queue_url, &body).await?;
                    outcome.poison.push((id, body));
                    let body = json!({"kind": "sync", "knowledge_base_id": format!("poison-{}-{n}", scenario.seed)}).to_string();
                    let id = send(stack, &stack.info.sync_queue_url, &body).await?;
                    outcome.poison.push((id, body));
                }
            }
            _ => {}
        }
    }
    let stopper = scenario.faults.iter().find_map(|f| match f {
        Fault::StopExecution { after_millis } => Some(*after_millis),
        _ => None,
    });
    let stopper = stopper.map(|after| {
        let sfn = stack.sfn();
        let arn = stack.info.state_machine_arn.clone();
        tokio::spawn(async move { stop_one_execution(sfn, arn, after).await })
    });

    let noise = scenario.faults.iter().find_map(|f| match f {
        Fault::NoisyNeighbour { extra_millis } => Some(*extra_millis),
        _ => None,
    });
    let noise = noise.map(|extra| (extra, keep_changing(stack, scenario.sources()[0].prefix)));
    let dropped = scenario.dropped_events();
    for (i, op) in scenario.ops.iter().enumerate() {
        if dropped.as_ref().is_some_and(|d| d.start == i) {
            stop_hearing(stack).await?;
        }
        match op {
            Op::Put { key, body } => observe::put_object(stack, key, body.as_bytes()).await?,
            Op::Delete { key } => observe::delete_object(stack, key).await?,
            Op::Burst { keys } => burst(stack, keys).await?,
            Op::Race { key } => {
                let (a, b) = tokio::join!(
                    observe::put_object(stack, key, b"racer one"),
                    observe::put_object(stack, key, b"racer two")
                );
                a?;
                b?;
            }
            Op::Pause { millis } => tokio::time::sleep(Duration::from_millis(*millis)).await,
        }
        if dropped.as_ref().is_some_and(|d| d.end == i + 1) {
            operate::set_change_rule(stack, true).await?;
        }
    }

    // Deliveries the runner makes itself: EventBridge events of an object that exists, sent
    // twice (duplicate) or newest first (reordered).
    let duplicate = scenario.has(|f| matches!(f, Fault::DuplicateDelivery));
    let reordered = scenario.has(|f| matches!(f, Fault::ReorderedDelivery));
    if duplicate || reordered {
        let objects = observe::s3_objects(stack, "").await?;
        if let Some((key, etag)) = objects.first() {
            let queue = &stack.info.change_events_queue_url;
            if duplicate {
                let event = object_created(scenario.seed, "dup", key, etag, "0000000000000001");
                send(stack, queue, &event).await?;
                send(stack, queue, &event).await?;
            }
            if reordered {
                let newer = object_created(scenario.seed, "new", key, etag, "0000000000000009");
                let older = object_created(scenario.seed, "old", key, etag, "0000000000000008");
                send(stack, queue, &newer).await?;
                send(stack, queue, &older).await?;
            }
        }
    }
    if let Some((extra_millis, (stop, task))) = noise {
        tokio::time::sleep(Duration::from_millis(extra_millis)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        task.await
            .map_err(|e| format!("the noisy neighbour failed: {e}"))??;
    }
    if let Some(stopper) = stopper {
        match stopper.await {
            Ok(Ok(true)) => outcome.stopped_executions += 1,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(format!("the stopper task failed: {e}")),
        }
    }
    Ok(())
}

/// Turns the change rule off once what was heard so far has settled and a second has passed:
/// the drift check compares S3's LastModified (whole seconds) with the document's last update,
/// so an unheard overwrite in the same second as the ingestion before it is, in AWS as here,
/// beyond what a drift check can see.
async fn stop_hearing(stack: &LocalStack) -> Result<(), String> {
    invariants::wait_until_settled(stack, SETTLE_TIMEOUT).await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    operate::set_change_rule(stack, false).await
}

/// The noisy neighbour: an upload under `prefix` every 300 ms until told to stop.
fn keep_changing(
    stack: &LocalStack,
    prefix: &'static str,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    tokio::task::JoinHandle<Result<(), String>>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s3, stopped) = (stack.s3(), stop.clone());
    let task = tokio::spawn(async move {
        let mut n = 0;
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            let key = format!("{prefix}noise-{n}.txt");
            s3.put_object()
                .bucket(BUCKET)
                .key(&key)
                .body(key.clone().into_bytes().into())
                .send()
                .await
                .map_err(|e| format!("put {key}: {e:?}"))?;
            n += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok(())
    });
    (stop, task)
}

/// Uploads every key at once, each on its own task: a burst as S3 sees it.
async fn burst(stack: &LocalStack, keys: &[String]) -> Result<(), String> {
    let mut uploads = tokio::task::JoinSet::new();
    for key in keys {
        let s3 = stack.s3();
        let key = key.clone();
        uploads.spawn(async move {
            s3.put_object()
                .bucket(BUCKET)
                .key(&key)
                .body(key.clone().into_bytes().into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("put {key}: {e:?}"))
        });
    }
    while let Some(result) = uploads.join_next().await {
        result.map_err(|e| format!("upload task: {e}"))??;
    }
    Ok(())
}

async fn send(stack: &LocalStack, queue_url: &str, body: &str) -> Result<String, String> {
    let out = stack
        .sqs()
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| format!("send to {queue_url}: {e:?}"))?;
    Ok(out.message_id.unwrap_or_default())
}

fn object_created(seed: u64, tag: &str, key: &str, etag: &str, sequencer: &str) -> String {
    json!({
        "version": "0",
        "id": format!("scenario-{seed}-{tag}"),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{BUCKET}")],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": key, "size": 1, "etag": etag, "sequencer": sequencer},
            "request-id": format!("scenario-{seed}"),
            "requester": "123456789012",
            "reason": "PutObject"
        }
    })
    .to_string()
}

/// Stops the first running execution seen after `after_millis` (waiting up to 20 s for one).
async fn stop_one_execution(
    sfn: aws_sdk_sfn::Client,
    state_machine_arn: String,
    after_millis: u64,
) -> Result<bool, String> {
    tokio::time::sleep(Duration::from_millis(after_millis)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let running = sfn
            .list_executions()
            .state_machine_arn(&state_machine_arn)
            .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
            .send()
            .await
            .map_err(|e| format!("list executions: {e:?}"))?;
        if let Some(execution) = running.executions.first() {
            sfn.stop_execution()
                .execution_arn(&execution.execution_arn)
                .error("Scenario.Stopped")
                .cause("stopped by the fault scenario")
                .send()
                .await
                .map_err(|e| format!("stop execution: {e:?}"))?;
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(false)
}
