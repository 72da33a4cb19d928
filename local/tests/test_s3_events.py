"""S3 -> EventBridge -> SQS in moto, with the patch: unique ids, increasing sequencers, prefix rules."""

import json
import uuid


def _rule_to_queue(client, bucket, prefix):
    sqs, events = client("sqs"), client("events")
    name = f"s3ev-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted", "Object Restore Completed"],
               "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": prefix}]}}}
    events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    return url


def _drain(sqs, url):
    out = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") or []
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_unique_ids_increasing_sequencers_and_prefix_filter(client):
    s3, sqs = client("s3"), client("sqs")
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    docs = _rule_to_queue(client, bucket, "docs/")
    everything = _rule_to_queue(client, bucket, "")  # an empty prefix matches every key
    for body in (b"one", b"two", b"three"):
        s3.put_object(Bucket=bucket, Key="docs/a.txt", Body=body)
    s3.put_object(Bucket=bucket, Key="other/b.txt", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="docs/a.txt")

    events = _drain(sqs, docs)
    assert [e["detail-type"] for e in events] == ["Object Created"] * 3 + ["Object Deleted"]
    assert {e["detail"]["object"]["key"] for e in events} == {"docs/a.txt"}
    ids = [e["id"] for e in events]
    assert len(set(ids)) == 4
    seqs = [e["detail"]["object"]["sequencer"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert all(len(s) == len(seqs[0]) for s in seqs)
    created = events[0]
    # the rest is moto's own shape
    assert created["source"] == "aws.s3" and created["detail"]["bucket"]["name"] == bucket
    assert created["detail"]["object"]["eTag"] and created["detail"]["object"]["size"] == 3
    assert created["time"].endswith("Z") and created["resources"] == [f"arn:aws:s3:::{bucket}"]

    all_events = _drain(sqs, everything)
    assert len(all_events) == 5
    assert {e["detail"]["object"]["key"] for e in all_events} == {"docs/a.txt", "other/b.txt"}
    # the same S3 event carries the same id to every rule, like EventBridge
    assert [e["id"] for e in all_events if e["detail"]["object"]["key"] == "docs/a.txt"] == ids


def test_a_disabled_rule_delivers_nothing(client):
    s3, sqs, events = client("s3"), client("sqs"), client("events")
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    url = _rule_to_queue(client, bucket, "docs/")
    rule = url.rsplit("/", 1)[1]
    events.disable_rule(Name=rule)
    s3.put_object(Bucket=bucket, Key="docs/a.txt", Body=b"one")
    assert _drain(sqs, url) == []
    events.enable_rule(Name=rule)
    s3.put_object(Bucket=bucket, Key="docs/b.txt", Body=b"two")
    assert [e["detail"]["object"]["key"] for e in _drain(sqs, url)] == ["docs/b.txt"]
