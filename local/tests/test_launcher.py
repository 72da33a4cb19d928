"""`stack.py up` end to end with a small template, fake function binaries and a fake emulator;
and the one-line errors."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest

from conftest import FAKE_FUNCTION, LOCAL, wait_for

STACK_PY = LOCAL / "stack.py"

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  S3BucketName: {Type: String}
  S3KeyPrefix: {Type: String, Default: docs/}
  KnowledgeBaseId: {Type: String, Default: KB00000001}
  DataSourceId: {Type: String, Default: DS00000001}
Globals:
  Function:
    Timeout: 5
    MemorySize: 256
    LoggingConfig: {LogFormat: JSON, ApplicationLogLevel: DEBUG}
    Environment:
      Variables:
        TRACKING_TABLE_NAME: !Ref TrackingTable
        SYNC_QUEUE_URL: !Ref SyncQueue
        NOTIFICATION_TOPIC_ARN: !Ref NotificationTopic
        STATE_MACHINE_ARN: !Sub arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-sync
Resources:
  Key: {Type: AWS::KMS::Key}
  ChangeEventsDLQ: {Type: AWS::SQS::Queue}
  ChangeEventsQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
      KmsMasterKeyId: !Ref Key
      RedrivePolicy: {deadLetterTargetArn: !GetAtt ChangeEventsDLQ.Arn, maxReceiveCount: 3}
  SyncDLQ: {Type: AWS::SQS::Queue}
  SyncQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt SyncDLQ.Arn, maxReceiveCount: 3}
  TrackingTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: change_id, AttributeType: S}
        - {AttributeName: pending_source, AttributeType: S}
        - {AttributeName: source_seq, AttributeType: N}
      KeySchema: [{AttributeName: change_id, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - IndexName: pending-by-source
          KeySchema: [{AttributeName: pending_source, KeyType: HASH}, {AttributeName: source_seq, KeyType: RANGE}]
          Projection: {ProjectionType: ALL}
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
      SSESpecification: {SSEEnabled: true, SSEType: KMS, KMSMasterKeyId: !GetAtt Key.Arn}
  NotificationTopic: {Type: AWS::SNS::Topic}
  S3ChangeRule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern:
        source: [aws.s3]
        detail-type: [Object Created, Object Deleted]
        detail:
          bucket: {name: [!Ref S3BucketName]}
          object: {key: [{prefix: !Ref S3KeyPrefix}]}
      Targets: [{Id: q, Arn: !GetAtt ChangeEventsQueue.Arn}]
  EventProcessorFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: event-processor}}
    Properties:
      Events:
        Changes:
          Type: SQS
          Properties:
            Queue: !GetAtt ChangeEventsQueue.Arn
            BatchSize: 10
            FunctionResponseTypes: [ReportBatchItemFailures]
  SyncProcessorFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: sync-processor}}
  SyncRequests:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt SyncQueue.Arn
      FunctionName: !Ref SyncProcessorFunction
      MaximumBatchingWindowInSeconds: 1
      FunctionResponseTypes: [ReportBatchItemFailures]
  CheckQuotaFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: check-quota}}
  SyncStateMachine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: !Sub ${AWS::StackName}-sync
      DefinitionUri: workflow.asl.json
      DefinitionSubstitutions: {CheckQuotaFunctionArn: !GetAtt CheckQuotaFunction.Arn}
  SweepSchedule:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: rate(5 minutes)
      FlexibleTimeWindow: {Mode: "OFF"}
      Target: {Arn: !GetAtt SyncQueue.Arn, RoleArn: arn:aws:iam::123456789012:role/x, Input: '{"kind":"sweep"}'}
  Alarm: {Type: AWS::CloudWatch::Alarm, Properties: {MetricName: X}}
  Strange: {Type: Custom::Strange}
Outputs:
  SyncQueueUrl: {Value: !Ref SyncQueue}
"""

WORKFLOW = {"StartAt": "Check", "States": {"Check": {"Type": "Task", "Resource": "${CheckQuotaFunctionArn}", "End": True}}}

FAKE_EMULATOR = r'''
import argparse, http.server, json, threading
p = argparse.ArgumentParser()
for a in ("--config", "--port", "--s3-endpoint", "--time-scale", "--ready-file"):
    p.add_argument(a)
args = p.parse_args()
json.load(open(args.config))
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(args.port)), http.server.BaseHTTPRequestHandler)
open(args.ready_file, "w").write(json.dumps({"endpoint": "http://127.0.0.1:%d" % srv.server_address[1]}))
srv.serve_forever()
'''


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


@pytest.fixture
def project(tmp_path):
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (tmp_path / "workflow.asl.json").write_text(json.dumps(WORKFLOW))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("event-processor", "sync-processor", "check-quota"):
        _script(bin_dir / name, f"import runpy\nrunpy.run_path({str(FAKE_FUNCTION)!r}, run_name='__main__')\n")
    _script(bin_dir / "bedrock-emulator", FAKE_EMULATOR)
    return tmp_path


def _up(project, *extra, wait_ready=True):
    state = project / f"state-{uuid.uuid4().hex[:6]}"
    args = [sys.executable, str(STACK_PY), "up", "--state-dir", str(state), "--template", str(project / "template.yaml"),
            "--bin-dir", str(project / "bin"), *extra]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait_ready:
        return proc, state
    line = proc.stdout.readline()
    if not line.startswith("kb-autosync local stack ready: "):
        proc.kill()
        raise AssertionError(f"not ready: {line!r} {proc.stderr.read()}")
    return proc, Path(line.split(": ", 1)[1].strip())


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=15)


def _records(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_up_end_to_end(project):
    calls = project / "calls.jsonl"
    proc, stack_json = _up(project, "--param", "S3BucketName=local-bucket", "--env", f"FAKE_RECORD_FILE={calls}",
                           "--env", "check-quota:ONLY_CHECK=yes", "--time-scale", "5", "--workers", "1",
                           "--override", "SyncQueue.VisibilityTimeout=7")
    try:
        doc = json.loads(stack_json.read_text())
        for key in ("moto_endpoint", "emulator_endpoint", "region", "account_id", "parameters", "resources", "bucket",
                    "tracking_table", "metadata_table", "sources_table", "change_events_queue_url",
                    "change_events_dlq_url", "sync_queue_url", "sync_dlq_url", "topic_arn",
                    "notifications_queue_url", "state_machine_arn", "logs_dir"):
            assert key in doc, key
        assert doc["bucket"] == "local-bucket" and doc["parameters"]["S3KeyPrefix"] == "docs/"
        assert doc["tracking_table"] == "kb-autosync-TrackingTable" and doc["metadata_table"] is None
        assert doc["sync_queue_url"] == doc["resources"]["SyncQueue"] == doc["outputs"]["SyncQueueUrl"]
        assert doc["state_machine_arn"].endswith(":stateMachine:kb-autosync-sync")
        assert doc["emulator_endpoint"].startswith("http://127.0.0.1:")
        cfg = json.loads(Path(doc["emulator_config"]).read_text())
        assert cfg["knowledge_bases"][0]["data_sources"][0] == {
            "id": "DS00000001", "name": "kb-autosync-local-s3", "bucket_arn": "arn:aws:s3:::local-bucket",
            "inclusion_prefixes": ["docs/"]}
        endpoint = doc["moto_endpoint"]

        def aws(service):
            return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                                aws_access_key_id="test", aws_secret_access_key="test")

        attrs = aws("sqs").get_queue_attributes(QueueUrl=doc["sync_queue_url"], AttributeNames=["All"])["Attributes"]
        assert attrs["VisibilityTimeout"] == "7"  # --override
        assert json.loads(attrs["RedrivePolicy"]) == {"deadLetterTargetArn": doc["resource_details"]["SyncDLQ"]["Arn"],
                                                      "maxReceiveCount": 3}

        # S3 -> EventBridge -> ChangeEventsQueue -> (poller) -> event-processor
        aws("s3").put_object(Bucket="local-bucket", Key="docs/a.md", Body=b"hello")
        aws("s3").put_object(Bucket="local-bucket", Key="elsewhere/b.md", Body=b"x")
        recs = wait_for(lambda: [r for r in _records(calls) if "Records" in r], timeout=10, message="event-processor call")
        event = json.loads(recs[0]["Records"][0]["body"])
        assert event["detail-type"] == "Object Created" and event["detail"]["object"]["key"] == "docs/a.md"
        assert recs[0]["Records"][0]["eventSourceARN"].endswith(":kb-autosync-ChangeEventsQueue")

        # Lambda Invoke through moto's API -> function host; the environment of the process
        names = ["TRACKING_TABLE_NAME", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_AGENT", "AWS_LAMBDA_LOG_FORMAT",
                 "AWS_LAMBDA_LOG_LEVEL", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "ONLY_CHECK",
                 "STATE_MACHINE_ARN", "AWS_REGION"]
        out = aws("lambda").invoke(FunctionName="kb-autosync-CheckQuotaFunction",
                                   Payload=json.dumps({"action": "env", "names": names}))
        env = json.loads(out["Payload"].read())
        assert env["TRACKING_TABLE_NAME"] == "kb-autosync-TrackingTable"
        assert env["AWS_ENDPOINT_URL"] == endpoint
        assert env["AWS_ENDPOINT_URL_BEDROCK_AGENT"] == doc["emulator_endpoint"]
        assert env["AWS_LAMBDA_LOG_FORMAT"] == "JSON" and env["AWS_LAMBDA_LOG_LEVEL"] == "DEBUG"
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == "kb-autosync-CheckQuotaFunction"
        assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256" and env["AWS_REGION"] == "us-east-1"
        assert env["ONLY_CHECK"] == "yes" and env["STATE_MACHINE_ARN"] == doc["state_machine_arn"]
        failed = aws("lambda").invoke(FunctionName="kb-autosync-CheckQuotaFunction",
                                      Payload=json.dumps({"action": "fail", "errorType": "Busy"}))
        assert failed["FunctionError"] == "Unhandled" and json.loads(failed["Payload"].read())["errorType"] == "Busy"

        # the state machine (DefinitionSubstitutions) runs the hosted check-quota
        sfn = aws("stepfunctions")
        arn = sfn.start_execution(stateMachineArn=doc["state_machine_arn"], name="r1",
                                  input=json.dumps({"action": "echo", "round": 1}))["executionArn"]
        done = wait_for(lambda: (lambda d: d if d["status"] != "RUNNING" else None)(sfn.describe_execution(executionArn=arn)),
                        timeout=10, message="execution")
        assert done["status"] == "SUCCEEDED" and json.loads(done["output"])["event"]["round"] == 1

        # SNS -> <stack>-notifications (raw)
        aws("sns").publish(TopicArn=doc["topic_arn"], Message="sync done", Subject="s")
        msgs = wait_for(lambda: aws("sqs").receive_message(QueueUrl=doc["notifications_queue_url"]).get("Messages"),
                        timeout=5, message="notification")
        assert msgs[0]["Body"] == "sync done"

        # sweep -> SyncQueue -> sync-processor
        result = subprocess.run([sys.executable, str(STACK_PY), "sweep", "--state-dir", str(stack_json.parent)],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"sweep sent to {doc['sync_queue_url']}"
        wait_for(lambda: any(r.get("Records") and r["Records"][0]["body"] == '{"kind":"sweep"}' for r in _records(calls)),
                 timeout=10, message="sweep delivered to sync-processor")

        logs = Path(doc["logs_dir"])
        assert '"type": "platform.report"' in (logs / "event-processor.log").read_text()
        pid = json.loads(aws("lambda").invoke(FunctionName="kb-autosync-CheckQuotaFunction",
                                              Payload=b'{"action":"echo"}')["Payload"].read())["pid"]
    finally:
        code = _stop(proc)
    assert code == 0
    assert "Custom::Strange" in proc.stderr.read()  # unknown type: one note, skipped
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _error(project, *extra):
    proc, _ = _up(project, *extra, wait_ready=False)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("kb-autosync local stack: error: ")
    return lines[0]


def test_one_line_errors(project):
    (project / "bin" / "check-quota").unlink()
    line = _error(project, "--param", "S3BucketName=b1")
    assert "check-quota" in line and "cargo build -p check-quota" in line
    _script(project / "bin" / "check-quota", "")

    (project / "bad.yaml").write_text("Resources:\n  X: {Type: [\n")
    assert "cannot parse template" in _error(project, "--template", str(project / "bad.yaml"))

    assert "unknown template parameter Nope" in _error(project, "--param", "Nope=1")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        line = _error(project, "--param", "S3BucketName=b1", "--port", str(busy.getsockname()[1]))
        assert "is busy" in line


def test_limits_are_set_by_flag_and_recorded(project):
    line = _error(project, "--param", "S3BucketName=b1", "--limit", "sqs-bytes=5")
    assert "--limit 'sqs-bytes=5'" in line and "sqs-message-bytes" in line
    assert "positive integer" in _error(project, "--param", "S3BucketName=b1", "--limit", "sfn-history-events=0")

    proc, stack_json = _up(project, "--param", "S3BucketName=limits-bucket", "--limit", "sfn-history-events=40",
                           "--limit", "sqs-message-bytes=1024")
    try:
        doc = json.loads(stack_json.read_text())
        assert doc["limits"] == {"sfn_history_events": 40, "sfn_payload_bytes": 262144,
                                 "dynamodb_item_bytes": 409600, "sqs_message_bytes": 1024}
        sqs = boto3.client("sqs", endpoint_url=doc["moto_endpoint"], region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        sqs.send_message(QueueUrl=doc["sync_queue_url"], MessageBody="x" * 1024)
        with pytest.raises(sqs.exceptions.ClientError) as err:
            sqs.send_message(QueueUrl=doc["sync_queue_url"], MessageBody="x" * 1025)
        assert "Message must be shorter than 1024 bytes" in str(err.value)
    finally:
        assert _stop(proc) == 0


def test_missing_python_packages_are_named():
    # -S: no site-packages, so PyYAML / moto / boto3 are not importable
    result = subprocess.run([sys.executable, "-S", str(STACK_PY), "up", "--state-dir", "/nonexistent"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "missing Python packages" in result.stderr and "pip install -r tools/requirements-stack.txt" in result.stderr
