"""The benchmark's counters: requests by caller/service/action through moto, without changing them."""

import json
import urllib.request

from kbstack import counters


def _counters(endpoint):
    with urllib.request.urlopen(f"{endpoint}{counters.PATH}") as resp:
        return json.load(resp)


def test_counts_requests_by_caller_service_and_action(moto, client):
    before = _counters(moto.endpoint)
    sqs, sns = client("sqs"), client("sns")
    url = sqs.create_queue(QueueName="counted")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]["Body"] == "x"
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages") is None
    topic = sns.create_topic(Name="counted")["TopicArn"]  # query protocol: the form is read and passed on
    sns.publish(TopicArn=topic, Message="m")
    after = _counters(moto.endpoint)

    def delta(service, action):
        get = lambda doc: doc["requests"].get("stack", {}).get(service, {}).get(action, 0)  # noqa: E731
        return get(after) - get(before)

    assert delta("sqs", "SendMessage") == 1
    assert delta("sqs", "ReceiveMessage") == 2
    assert delta("sns", "Publish") == 1
    assert after["empty_receives"]["stack"] - before["empty_receives"].get("stack", 0) == 1


def test_callers_and_actions():
    assert counters.caller_of("aws-sdk-rust/1.3 os/linux app/kb-autosync-bench") == "bench"
    assert counters.caller_of("aws-sdk-rust/1.3 os/linux lang/rust") == "functions"
    assert counters.caller_of("Boto3/1.40 md/Botocore#1.40") == "stack"
    env = {"HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, "
                                 "SignedHeaders=host, Signature=x",
           "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.UpdateItem"}
    assert counters.service_of(env) == "dynamodb"
    assert counters.action_of(env, "dynamodb", None) == "UpdateItem"
    put = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/bucket/docs/a.txt"}
    assert counters.action_of(put, "s3", None) == "PutObject"
    invoke = {"REQUEST_METHOD": "POST", "PATH_INFO": "/2015-03-31/functions/f/invocations"}
    assert counters.action_of(invoke, "lambda", None) == "Invoke"


def test_invocations_count_sqs_records():
    before = counters.snapshot()["invocations"].get("fn-under-test", {"count": 0, "events": 0})
    counters.record_invocation("fn-under-test", 1.5, False, json.dumps({"Records": [{}, {}, {}]}).encode())
    counters.record_invocation("fn-under-test", 2.5, True, b'{"action":"poll"}')
    after = counters.snapshot()["invocations"]["fn-under-test"]
    assert after["count"] - before["count"] == 2
    assert after["events"] - before["events"] == 4
    assert after["durations_ms"][-2:] == [1.5, 2.5]
    assert after["errors"] >= 1
