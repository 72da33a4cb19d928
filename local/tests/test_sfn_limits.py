"""Step Functions limits moto does not enforce: the execution history quota (25,000 events) and
the payload size (256 KiB), each set low here."""

import json
import uuid

import pytest

from kbstack.limits import HISTORY_CAUSE
from kbstack.provisioner import LOCAL_ROLE_ARN
from test_stepfunctions import _register, _run

# Pass -> Wait 0 s -> Choice, round and round until $.i reaches $.n. ExecutionStarted, 6 events per
# round, then SucceedStateEntered / SucceedStateExited / ExecutionSucceeded: 6n + 4 events.
LOOP = {"StartAt": "Count", "States": {
    "Count": {"Type": "Pass", "Parameters": {"n.$": "$.n", "i.$": "States.MathAdd($.i, 1)"}, "Next": "Pause"},
    "Pause": {"Type": "Wait", "Seconds": 0, "Next": "More"},
    "More": {"Type": "Choice", "Choices": [{"Variable": "$.i", "NumericLessThanPath": "$.n", "Next": "Count"}],
             "Default": "Done"},
    "Done": {"Type": "Succeed"},
}}


def _machine(client, definition):
    return client("stepfunctions").create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=LOCAL_ROLE_ARN)["stateMachineArn"]


def _history(client, execution_arn):
    sfn = client("stepfunctions")
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000,
                                         **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def _loop(client, rounds):
    return _run(client, _machine(client, LOOP), {"n": rounds, "i": 0})


def test_an_execution_under_the_history_limit_succeeds(client, set_limits):
    set_limits(sfn_history_events=300)
    done = _loop(client, 40)
    assert done["status"] == "SUCCEEDED", done
    assert len(_history(client, done["executionArn"])) == 6 * 40 + 4


def test_an_execution_past_the_history_limit_fails_as_in_aws(client, set_limits):
    set_limits(sfn_history_events=300)
    done = _loop(client, 1000)
    assert done["status"] == "FAILED"
    assert done["error"] == "States.Runtime"
    assert done["cause"] == "The execution reached the maximum number of history events (300)."
    events = _history(client, done["executionArn"])
    # Event 300 is the last; it is the failure, and the one before it is the machine's own.
    assert [e["id"] for e in events] == list(range(1, 301))
    assert events[-1]["type"] == "ExecutionFailed"
    assert events[-1]["executionFailedEventDetails"] == {"error": "States.Runtime", "cause": HISTORY_CAUSE.format(limit=300)}
    assert events[-2]["type"] in ("PassStateEntered", "PassStateExited", "WaitStateEntered", "WaitStateExited",
                                  "ChoiceStateEntered", "ChoiceStateExited")


@pytest.mark.parametrize("spare", [0, 1])
def test_event_n_may_be_execution_succeeded(client, set_limits, spare):
    # 6 * 10 + 4 = 64 events: a limit of 64 lets it succeed (ExecutionSucceeded is event 64), 63 does not.
    set_limits(sfn_history_events=63 + 1 - spare)
    done = _loop(client, 10)
    if spare == 0:
        assert done["status"] == "SUCCEEDED", done
        assert _history(client, done["executionArn"])[-1]["id"] == 64
    else:
        assert done["status"] == "FAILED" and done["error"] == "States.Runtime"
        assert _history(client, done["executionArn"])[-1]["type"] == "ExecutionFailed"


def test_no_task_runs_past_the_history_limit(client, make_pool, set_limits, tmp_path):
    name = f"sfn-history-{uuid.uuid4().hex[:6]}"
    calls = tmp_path / "calls.jsonl"
    make_pool(name, env={"FAKE_RECORD_FILE": str(calls)})
    function_arn = _register(client, name)
    machine = _machine(client, {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": function_arn, "ResultPath": None, "Next": "Call"},
    }})
    # Without a limit: ExecutionStarted, then per call TaskStateEntered, LambdaFunctionScheduled,
    # LambdaFunctionStarted, LambdaFunctionSucceeded, TaskStateExited. Event 8 is the second
    # LambdaFunctionScheduled: with a limit of 8 the second call must never be made.
    set_limits(sfn_history_events=8)
    done = _run(client, machine, {"action": "echo"})
    assert done["status"] == "FAILED" and done["error"] == "States.Runtime"
    types = [e["type"] for e in _history(client, done["executionArn"])]
    assert types == ["ExecutionStarted", "TaskStateEntered", "LambdaFunctionScheduled", "LambdaFunctionStarted",
                     "LambdaFunctionSucceeded", "TaskStateExited", "TaskStateEntered", "ExecutionFailed"]
    assert len(calls.read_text().splitlines()) == 1


# -- payloads -------------------------------------------------------------------------------------
def _big_result_machine(client, function_arn, integration, catch):
    if integration == "lambda:invoke":
        task = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"}, "OutputPath": "$.Payload"}
    else:
        task = {"Type": "Task", "Resource": function_arn}
    task.update({"Catch": [{"ErrorEquals": [catch], "ResultPath": "$.error", "Next": "Caught"}], "End": True})
    return _machine(client, {"StartAt": "Call", "States": {
        "Call": task, "Caught": {"Type": "Pass", "Result": "caught", "ResultPath": "$.route", "End": True}}})


@pytest.mark.parametrize("integration", ["lambda:invoke", "function-arn"])
def test_a_task_result_over_the_payload_limit_is_data_limit_exceeded(client, make_pool, set_limits, integration):
    name = f"sfn-payload-{integration.replace(':', '-')}-{uuid.uuid4().hex[:6]}"
    make_pool(name)
    function_arn = _register(client, name)
    set_limits(sfn_payload_bytes=4096)

    small = _run(client, _big_result_machine(client, function_arn, integration, "States.DataLimitExceeded"),
                 {"action": "big", "bytes": 3000})
    assert small["status"] == "SUCCEEDED", small

    # Caught by name, as in AWS ...
    caught = _run(client, _big_result_machine(client, function_arn, integration, "States.DataLimitExceeded"),
                  {"action": "big", "bytes": 5000})
    assert caught["status"] == "SUCCEEDED", caught
    out = json.loads(caught["output"])
    assert out["route"] == "caught" and out["error"]["Error"] == "States.DataLimitExceeded"
    assert "returned a result with a size exceeding the maximum number of bytes service limit" in out["error"]["Cause"]

    # ... but not by States.ALL: a terminal error in AWS.
    failed = _run(client, _big_result_machine(client, function_arn, integration, "States.ALL"),
                  {"action": "big", "bytes": 5000})
    assert failed["status"] == "FAILED" and failed["error"] == "States.DataLimitExceeded", failed


def test_a_state_output_of_exactly_the_limit_passes(client, set_limits):
    machine = _machine(client, {"StartAt": "Grow", "States": {
        "Grow": {"Type": "Pass", "Parameters": {"pad.$": "$.pad", "more.$": "$.pad"}, "End": True}}})
    # Output {"pad":"x..x","more":"x..x"}: 8 + 990 + 10 + 990 + 2 = 2,000 bytes of compact JSON.
    set_limits(sfn_payload_bytes=2000)
    at_limit = _run(client, machine, {"pad": "x" * 990})
    assert at_limit["status"] == "SUCCEEDED", at_limit
    assert len(json.dumps(json.loads(at_limit["output"]), separators=(",", ":"))) == 2000
    set_limits(sfn_payload_bytes=1999)
    over = _run(client, machine, {"pad": "x" * 990})
    assert over["status"] == "FAILED" and over["error"] == "States.DataLimitExceeded", over


def test_start_execution_input_over_the_limit_is_rejected(client, set_limits):
    sfn = client("stepfunctions")
    machine = _machine(client, {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    set_limits(sfn_payload_bytes=1000)
    def body(accents):
        return json.dumps({"pad": "é" * accents}, ensure_ascii=False, separators=(",", ":"))

    assert len(body(495).encode()) == 1000  # UTF-8 bytes, 2 per é
    sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=body(495))
    with pytest.raises(sfn.exceptions.ValidationException) as err:
        sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=body(496))
    assert "Member must have length less than or equal to 1000" in str(err.value)
