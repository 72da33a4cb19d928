"""DynamoDB conditional writes are linearizable, as in AWS: of two concurrent writers that each
take the job slot only if nobody holds it, exactly one wins. Unpatched moto let both win in a few
percent of the rounds (its condition check and update are not under one lock)."""

import threading
import time
import uuid

import boto3

TAKE_SLOT = ("attribute_exists(holders) AND (attribute_not_exists(last_start_ms) OR last_start_ms <= :cut) "
             "AND (holders.#kb.execution = :exec OR (attribute_not_exists(holders.#kb) AND size(holders) < :max))")


def test_concurrent_conditional_updates_have_one_winner(moto, client):
    ddb = client("dynamodb")
    table = f"cond-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    # One client (one connection pool) per writer, so the requests really are concurrent.
    writers = [boto3.client("dynamodb", endpoint_url=moto.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test") for _ in range(2)]
    doubles = 0
    for round_ in range(60):
        key = {"k": {"S": f"SLOTS-{round_}"}}
        ddb.update_item(TableName=table, Key=key, UpdateExpression="SET holders = :e",
                        ExpressionAttributeValues={":e": {"M": {}}})
        wins, start = [], threading.Barrier(len(writers))

        def take(i):
            now = int(time.time() * 1000)
            start.wait()
            try:
                writers[i].update_item(
                    TableName=table, Key=key, ConditionExpression=TAKE_SLOT,
                    UpdateExpression="SET holders.#kb = :holder, last_start_ms = :stamp",
                    ExpressionAttributeNames={"#kb": "KB"},
                    ExpressionAttributeValues={":holder": {"M": {"execution": {"S": f"e{i}"}}},
                                               ":stamp": {"N": str(now + 5000)}, ":cut": {"N": str(now - 1000)},
                                               ":exec": {"S": f"e{i}"}, ":max": {"N": "2"}})
                wins.append(i)
            except writers[i].exceptions.ConditionalCheckFailedException:
                pass

        threads = [threading.Thread(target=take, args=(i,)) for i in range(len(writers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        doubles += len(wins) != 1
    assert doubles == 0, f"{doubles} of 60 rounds had two writers take the slot"
