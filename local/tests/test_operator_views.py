"""What operators' tools read from moto, with the patches: EventBridge delivery on a bucket, and
e-mail subscriptions pending confirmation as AWS lists them."""

import uuid


def test_bucket_notification_reports_eventbridge(client):
    s3 = client("s3")
    bucket = f"ops-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    assert "EventBridgeConfiguration" not in s3.get_bucket_notification_configuration(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    assert s3.get_bucket_notification_configuration(Bucket=bucket)["EventBridgeConfiguration"] == {}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    assert "EventBridgeConfiguration" not in s3.get_bucket_notification_configuration(Bucket=bucket)


def test_email_subscriptions_are_listed_pending_confirmation(client):
    sns, sqs = client("sns"), client("sqs")
    topic = sns.create_topic(Name=f"ops-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"ops-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
    listed = {s["Protocol"]: s for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]}
    assert listed["email"]["SubscriptionArn"] == "PendingConfirmation"
    assert listed["email"]["Endpoint"] == "ops@example.com"
    assert listed["sqs"]["SubscriptionArn"].startswith(topic + ":")
