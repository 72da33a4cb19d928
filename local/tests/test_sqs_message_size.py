"""The SQS message size limit, set low here: a message counts its body and its attributes in UTF-8
bytes, a batch the sum of its messages. moto counted body characters against 1 MiB."""

import uuid

import pytest


@pytest.fixture
def queue(client, set_limits):
    set_limits(sqs_message_bytes=1024)
    sqs = client("sqs")
    return sqs, sqs.create_queue(QueueName=f"size-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def _count(sqs, url):
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def test_send_message_over_the_limit_is_rejected(queue):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="é" * 512)  # 1,024 bytes: exactly the limit
    with pytest.raises(sqs.exceptions.ClientError) as err:
        sqs.send_message(QueueUrl=url, MessageBody="é" * 512 + "x")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert err.value.response["Error"]["Message"] == \
        "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes."
    assert _count(sqs, url) == 1


def test_message_attributes_count_towards_the_size(queue):
    sqs, url = queue
    # "trace" (5) + "String" (6) + 13 = 24 bytes of attribute, 1,001 of body.
    with pytest.raises(sqs.exceptions.ClientError) as err:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1001,
                         MessageAttributes={"trace": {"DataType": "String", "StringValue": "a" * 13}})
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    sqs.send_message(QueueUrl=url, MessageBody="x" * 1000,
                     MessageAttributes={"trace": {"DataType": "String", "StringValue": "a" * 13}})
    assert _count(sqs, url) == 1


def test_send_message_batch_over_the_limit_in_total_is_rejected(queue):
    sqs, url = queue
    entries = [{"Id": str(i), "MessageBody": "x" * 400} for i in range(3)]  # each fits, 1,200 together
    with pytest.raises(sqs.exceptions.BatchRequestTooLong) as err:  # Code AWS.SimpleQueueService.BatchRequestTooLong
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert "cannot be longer than 1024 bytes" in err.value.response["Error"]["Message"]
    assert _count(sqs, url) == 0
    sent = sqs.send_message_batch(QueueUrl=url, Entries=entries[:2])
    assert len(sent["Successful"]) == 2 and _count(sqs, url) == 2
