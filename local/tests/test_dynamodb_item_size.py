"""DynamoDB's 400 KB item size, set low here: every write that would leave an item over it is
rejected as AWS rejects it, and nothing of it is written. moto checked only top-level attributes
against 405,000 bytes of its own measure, and left a failed update half applied."""

import json
import uuid

import pytest

from kbstack.limits import item_size
from kbstack.provisioner import LOCAL_ROLE_ARN

PUT_TOO_LARGE = "Item size has exceeded the maximum allowed size"
UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"


@pytest.fixture
def table(client, set_limits):
    ddb = client("dynamodb")
    name = f"size-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    set_limits(dynamodb_item_bytes=1000)
    return name


def _item(ddb, table, key):
    return ddb.get_item(TableName=table, Key={"k": {"S": key}}, ConsistentRead=True).get("Item")


def test_item_size_follows_aws_rules():
    assert item_size({"k": {"S": "héllo"}}) == 1 + 6
    assert item_size({"n": {"N": "123.4500"}}) == 1 + 4  # 5 significant digits: 3 bytes + 1
    assert item_size({"b": {"B": "AAEC"}, "t": {"BOOL": True}, "z": {"NULL": True}}) == (1 + 3) + (1 + 1) + (1 + 1)
    # A map: 3 bytes, and per entry 1 byte + its name + its value; a list the same without names.
    assert item_size({"m": {"M": {"ab": {"S": "x"}, "l": {"L": [{"S": "y"}, {"N": "7"}]}}}}) == \
        1 + 3 + (1 + 2 + 1) + (1 + 1 + (3 + (1 + 1) + (1 + 2)))
    assert item_size({"ss": {"SS": ["a", "bc"]}}) == 2 + 3


def test_the_default_limit_is_400_kib(client):
    ddb = client("dynamodb")
    name = f"size-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    # 409,600 bytes: above moto's own 405,000, exactly AWS's 400 KB.
    ddb.put_item(TableName=name, Item={"k": {"S": "a"}, "p": {"S": "x" * (409_600 - 3)}})
    with pytest.raises(ddb.exceptions.ClientError) as err:
        ddb.put_item(TableName=name, Item={"k": {"S": "b"}, "p": {"S": "x" * (409_600 - 2)}})
    assert err.value.response["Error"]["Message"] == PUT_TOO_LARGE


def test_put_item_over_the_limit_is_rejected(client, table):
    ddb = client("dynamodb")
    # ("k" + "a") + ("p" + 997 x) = 2 + 998 = 1,000 bytes: exactly the limit.
    ddb.put_item(TableName=table, Item={"k": {"S": "a"}, "p": {"S": "x" * 997}})
    with pytest.raises(ddb.exceptions.ClientError) as err:
        ddb.put_item(TableName=table, Item={"k": {"S": "b"}, "p": {"S": "x" * 998}})
    assert err.value.response["Error"] == {"Code": "ValidationException", "Message": PUT_TOO_LARGE}
    assert _item(ddb, table, "a") is not None and _item(ddb, table, "b") is None


def test_a_nested_update_over_the_limit_is_rejected_and_not_applied(client, table):
    ddb = client("dynamodb")
    key = {"k": {"S": "lease"}}
    ddb.put_item(TableName=table, Item={**key, "snapshots": {"M": {}}, "seq": {"N": "1"}})
    before = _item(ddb, table, "lease")

    def update(value):
        ddb.update_item(TableName=table, Key=key, UpdateExpression="SET snapshots.#s = :v ADD seq :one",
                        ExpressionAttributeNames={"#s": "big"},
                        ExpressionAttributeValues={":v": {"S": value}, ":one": {"N": "1"}})

    with pytest.raises(ddb.exceptions.ClientError) as err:
        update("x" * 1000)
    assert err.value.response["Error"] == {"Code": "ValidationException", "Message": UPDATE_TOO_LARGE}
    assert _item(ddb, table, "lease") == before
    update("x" * 900)
    assert _item(ddb, table, "lease")["seq"] == {"N": "2"}


def test_an_update_creating_an_item_over_the_limit_creates_nothing(client, table):
    ddb = client("dynamodb")
    with pytest.raises(ddb.exceptions.ClientError) as err:
        ddb.update_item(TableName=table, Key={"k": {"S": "new"}}, UpdateExpression="SET p = :v",
                        ExpressionAttributeValues={":v": {"S": "x" * 1000}})
    assert err.value.response["Error"]["Message"] == UPDATE_TOO_LARGE
    assert _item(ddb, table, "new") is None


def test_batch_write_with_one_item_over_the_limit_writes_nothing(client, table):
    ddb = client("dynamodb")
    puts = [{"PutRequest": {"Item": {"k": {"S": f"i{i}"}, "p": {"S": "x" * (10 if i != 2 else 1000)}}}} for i in range(4)]
    with pytest.raises(ddb.exceptions.ClientError) as err:
        ddb.batch_write_item(RequestItems={table: puts})
    assert err.value.response["Error"] == {"Code": "ValidationException", "Message": PUT_TOO_LARGE}
    assert all(_item(ddb, table, f"i{i}") is None for i in range(4))


def test_a_transaction_growing_an_item_over_the_limit_is_cancelled(client, table):
    ddb = client("dynamodb")
    ddb.put_item(TableName=table, Item={"k": {"S": "t1"}, "p": {"S": "small"}})
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as err:
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": table, "Key": {"k": {"S": "t1"}}, "UpdateExpression": "SET p = :v",
                        "ExpressionAttributeValues": {":v": {"S": "x" * 1000}}}},
            {"Put": {"TableName": table, "Item": {"k": {"S": "t2"}}}},
        ])
    reasons = err.value.response["CancellationReasons"]
    assert reasons[0] == {"Code": "ValidationError", "Message": UPDATE_TOO_LARGE} and reasons[1]["Code"] == "None"
    assert _item(ddb, table, "t1")["p"] == {"S": "small"} and _item(ddb, table, "t2") is None
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as err:
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": {"k": {"S": "t3"}, "p": {"S": "x" * 1000}}}}])
    assert err.value.response["CancellationReasons"] == [{"Code": "ValidationError", "Message": PUT_TOO_LARGE}]


def test_step_functions_update_item_over_the_limit_fails_the_task(client, table):
    from test_stepfunctions import _run

    ddb = client("dynamodb")
    ddb.put_item(TableName=table, Item={"k": {"S": "src"}, "snapshots": {"M": {}}})
    machine = client("stepfunctions").create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}", roleArn=LOCAL_ROLE_ARN, definition=json.dumps({"StartAt": "Save", "States": {
            "Save": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem",
                     "Parameters": {"TableName": table, "Key": {"k": {"S": "src"}},
                                    "UpdateExpression": "SET snapshots.#r = :v", "ExpressionAttributeNames": {"#r": "r1"},
                                    "ExpressionAttributeValues": {":v": {"S.$": "$.blob"}}},
                     "End": True}}}))["stateMachineArn"]
    ok = _run(client, machine, {"blob": "x" * 100})
    assert ok["status"] == "SUCCEEDED", ok
    failed = _run(client, machine, {"blob": "y" * 1000})
    assert failed["status"] == "FAILED", failed
    assert failed["error"] == "DynamoDB.ValidationException" and UPDATE_TOO_LARGE in failed["cause"]
    assert _item(ddb, table, "src")["snapshots"] == {"M": {"r1": {"S": "x" * 100}}}
