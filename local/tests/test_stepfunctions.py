"""moto's Step Functions (real ASL) invoking a hosted function: Catch / Retry on the errorType."""

import io
import json
import uuid
import zipfile

import pytest

from conftest import wait_for
from kbstack.provisioner import LOCAL_ROLE_ARN, Provisioner


def _register(client, name):
    iam = client("iam")
    try:
        iam.create_role(RoleName=LOCAL_ROLE_ARN.rsplit("/", 1)[-1], AssumeRolePolicyDocument="{}")
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("bootstrap", "")
    return client("lambda").create_function(
        FunctionName=name, Runtime="provided.al2023", Role=LOCAL_ROLE_ARN, Handler="bootstrap",
        Code={"ZipFile": buf.getvalue()})["FunctionArn"]


def _machine(client, function_arn, integration):
    if integration == "lambda:invoke":
        task = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"}, "OutputPath": "$.Payload"}
    else:
        task = {"Type": "Task", "Resource": function_arn}
    task.update({
        "Retry": [{"ErrorEquals": ["ThrottlingException"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}],
        "Catch": [{"ErrorEquals": ["DataSourceBusy"], "ResultPath": "$.error", "Next": "Busy"}],
        "End": True,
    })
    definition = {"StartAt": "Call", "States": {
        "Call": task,
        "Busy": {"Type": "Pass", "Result": "caught", "ResultPath": "$.route", "End": True},
    }}
    return client("stepfunctions").create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=LOCAL_ROLE_ARN)["stateMachineArn"]


def _run(client, machine, payload):
    sfn = client("stepfunctions")
    # moto 5.2.5 names an unnamed execution "None" (a second one then fails): always name them
    arn = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps(payload))["executionArn"]
    return wait_for(lambda: (lambda d: d if d["status"] != "RUNNING" else None)(sfn.describe_execution(executionArn=arn)),
                    timeout=20, message="execution end")


@pytest.mark.parametrize("integration", ["lambda:invoke", "function-arn"])
def test_catch_and_retry_on_error_type(client, make_pool, tmp_path, integration):
    name = f"sfn-{integration.replace(':', '-')}-{uuid.uuid4().hex[:6]}"
    record_file = tmp_path / "calls.jsonl"
    make_pool(name, env={"FAKE_RECORD_FILE": str(record_file)})
    function_arn = _register(client, name)
    machine = _machine(client, function_arn, integration)

    caught = _run(client, machine, {"action": "fail", "errorType": "DataSourceBusy"})
    assert caught["status"] == "SUCCEEDED"
    out = json.loads(caught["output"])
    assert out["route"] == "caught"
    assert out["error"]["Error"] == "DataSourceBusy"
    assert json.loads(out["error"]["Cause"])["errorType"] == "DataSourceBusy"

    other = _run(client, machine, {"action": "fail", "errorType": "SomethingElse"})
    assert other["status"] == "FAILED" and other["error"] == "SomethingElse"

    ok = _run(client, machine, {"action": "echo", "x": 1})
    assert ok["status"] == "SUCCEEDED" and json.loads(ok["output"])["event"] == {"action": "echo", "x": 1}

    record_file.write_text("")
    throttled = _run(client, machine, {"action": "fail", "errorType": "ThrottlingException"})
    assert throttled["status"] == "FAILED" and throttled["error"] == "ThrottlingException"
    assert len(record_file.read_text().splitlines()) == 3  # first try + MaxAttempts 2


def test_timeout_surfaces_as_sandbox_timedout(client, make_pool):
    name = f"sfn-timeout-{uuid.uuid4().hex[:6]}"
    make_pool(name, timeout=1.0)
    machine = _machine(client, _register(client, name), "lambda:invoke")
    result = _run(client, machine, {"action": "sleep", "seconds": 10})
    assert result["status"] == "FAILED" and result["error"] == "Sandbox.Timedout"


def test_definition_substitutions(tmp_path):
    (tmp_path / "sm.json").write_text('{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"${FnArn}","End":true}}}')
    (tmp_path / "template.yaml").write_text(
        "Resources:\n"
        "  Fn:\n    Type: AWS::Serverless::Function\n"
        "  Machine:\n    Type: AWS::Serverless::StateMachine\n    Properties:\n"
        "      DefinitionUri: sm.json\n      DefinitionSubstitutions:\n        FnArn: !GetAtt Fn.Arn\n")
    from kbstack.template import Template

    t = Template(tmp_path / "template.yaml", {}, stack_name="st")
    prov = Provisioner(t, "http://x", client=None)
    text = prov._state_machine_definition(t.resources["Machine"])
    assert json.loads(text)["States"]["A"]["Resource"] == "arn:aws:lambda:us-east-1:123456789012:function:st-Fn"
