"""SendMessage and ReceiveMessage on a backlog: no walk over the queue per message (the patch);
the counts GetQueueAttributes reports are still right."""

import uuid

from moto.sqs import models as sqs_models


def _queue(client, **attributes):
    sqs = client("sqs")
    name = f"q-{uuid.uuid4().hex[:8]}" + (".fifo" if attributes.get("FifoQueue") == "true" else "")
    return sqs, sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def test_sends_and_receives_do_not_walk_the_backlog_per_message(client, monkeypatch):
    sqs, url = _queue(client)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(10)])
    for _ in range(19):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(10)])
    checked = []
    visible = sqs_models.Message.visible

    def counting(self):
        checked.append(self)
        return visible.fget(self)

    monkeypatch.setattr(sqs_models.Message, "visible", property(counting))
    sqs.send_message(QueueUrl=url, MessageBody="one more")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "y"}, {"Id": "b", "MessageBody": "z"}])
    # Unpatched, each send checks every one of the 200 queued messages three times.
    assert checked == []
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 10
    # Finding 10 visible messages checks the queue once, not three more times per message.
    assert len(checked) < 2 * 203


def test_counts_are_still_reported(client):
    sqs, url = _queue(client)
    sqs.send_message(QueueUrl=url, MessageBody="visible")
    sqs.send_message(QueueUrl=url, MessageBody="in flight")
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "1"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"


def test_content_based_deduplication_still_applies(client):
    sqs, url = _queue(client, FifoQueue="true", ContentBasedDeduplication="true")
    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody="same body", MessageGroupId="g")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") or []
    assert [m["Body"] for m in messages] == ["same body"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
