"""The SQS poller against moto: partial batch responses, redelivery, redrive to the DLQ."""

import json
import uuid

import pytest

from conftest import wait_for
from kbstack.esm import ALL, EsmConfig, SqsPoller, failed_message_ids, lambda_record


def _queue_with_dlq(sqs, max_receive=2, visibility=1):
    name = f"esm-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}),
    })["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dlq_url


def _deliveries(path):
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [rec for line in lines for rec in json.loads(line).get("Records", [])]


def _count(sqs, url):
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_partial_batch_failure_redelivers_only_the_failed_message_then_dlq(client, make_pool, tmp_path):
    sqs = client("sqs")
    url, arn, dlq_url = _queue_with_dlq(sqs, max_receive=2, visibility=2)
    record_file = tmp_path / "deliveries.jsonl"
    pool = make_pool("esm-partial", env={"FAKE_RECORD_FILE": str(record_file)})
    poller = SqsPoller(EsmConfig(uuid="u1", function_name="esm-partial", queue_url=url, queue_arn=arn,
                                 batch_size=10, window_seconds=0.5, report_batch_item_failures=True), pool, sqs)
    good = sqs.send_message(QueueUrl=url, MessageBody='{"ok": 1}',
                            MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}})["MessageId"]
    bad = sqs.send_message(QueueUrl=url, MessageBody='{"please": "fail"}')["MessageId"]
    poller.start()
    try:
        # The failed message is received maxReceiveCount (2) times, then moto moves it to the DLQ.
        dlq_msgs = wait_for(lambda: sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages"),
                            timeout=15, message="the failed message in the DLQ")
    finally:
        poller.stop()
    assert [m["MessageId"] for m in dlq_msgs] == [bad]
    assert _count(sqs, url) == 0
    records = _deliveries(record_file)
    by_id = {}
    for rec in records:
        by_id.setdefault(rec["messageId"], []).append(rec)
    assert len(by_id[good]) == 1, "the succeeded message was deleted after the first batch"
    assert len(by_id[bad]) == 2
    assert [r["attributes"]["ApproximateReceiveCount"] for r in by_id[bad]] == ["1", "2"]
    first = by_id[good][0]
    assert first["eventSource"] == "aws:sqs" and first["eventSourceARN"] == arn
    assert first["awsRegion"] == "us-east-1" and first["body"] == '{"ok": 1}'
    assert first["messageAttributes"]["kind"]["stringValue"] == "test"
    assert first["messageAttributes"]["kind"]["dataType"] == "String"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"} <= set(first["attributes"])
    assert len(first["md5OfBody"]) == 32
    # both messages were in the first batch (batching window)
    assert {r["messageId"] for r in records[:2]} == {good, bad}


def test_invocation_error_deletes_nothing(client, make_pool, tmp_path):
    sqs = client("sqs")
    url, arn, dlq_url = _queue_with_dlq(sqs, max_receive=5, visibility=30)
    record_file = tmp_path / "deliveries.jsonl"
    pool = make_pool("esm-error", env={"FAKE_RECORD_FILE": str(record_file)})
    poller = SqsPoller(EsmConfig(uuid="u2", function_name="esm-error", queue_url=url, queue_arn=arn,
                                 batch_size=10, window_seconds=1.0, report_batch_item_failures=True), pool, sqs)
    sqs.send_message(QueueUrl=url, MessageBody='{"fine": 1}')
    sqs.send_message(QueueUrl=url, MessageBody='{"raise": true}')
    poller.start()
    try:
        wait_for(lambda: poller.completed >= 1, message="one batch")
    finally:
        poller.stop()
    assert len(_deliveries(record_file)) == 2
    assert _count(sqs, url) == 2  # both still there (in flight until the visibility timeout)


def test_batch_response_parsing():
    ids = ["a", "b"]
    assert failed_message_ids(b"null", ids) == set()
    assert failed_message_ids(b"", ids) == set()
    assert failed_message_ids(b"{}", ids) == set()
    assert failed_message_ids(b'{"batchItemFailures": []}', ids) == set()
    assert failed_message_ids(b'{"batchItemFailures": [{"itemIdentifier": "b"}]}', ids) == {"b"}
    assert failed_message_ids(b'{"batchItemFailures": [{"itemIdentifier": "zzz"}]}', ids) is ALL
    assert failed_message_ids(b'{"batchItemFailures": [{"itemIdentifier": ""}]}', ids) is ALL
    assert failed_message_ids(b'{"batchItemFailures": [{"id": "a"}]}', ids) is ALL
    assert failed_message_ids(b"not json", ids) is ALL


@pytest.mark.parametrize("fifo", [False, True])
def test_lambda_record_shape(fifo):
    msg = {"MessageId": "m", "ReceiptHandle": "r", "Body": "b", "MD5OfBody": "0" * 32,
           "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", **({"MessageGroupId": "g"} if fifo else {})},
           "MessageAttributes": {"x": {"DataType": "Binary", "BinaryValue": b"\x01"}}}
    rec = lambda_record(msg, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
    assert rec["messageAttributes"]["x"] == {"binaryValue": "AQ==", "dataType": "Binary",
                                             "stringListValues": [], "binaryListValues": []}
    assert ("MessageGroupId" in rec["attributes"]) == fifo
