"""CloudFormation short tags, parameters, conditions, intrinsics and SAM Globals."""

import pytest

from kbstack import cfn_yaml
from kbstack.errors import StackError
from kbstack.intrinsics import Resolver, parse_parameters
from kbstack.provisioner import Provisioner
from kbstack.template import Template, default_binary_name, merge_globals

SMALL = """
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Parameters:
  Bucket:
    Type: String
  Prefix:
    Type: String
    Default: ""
  Timeout:
    Type: Number
    Default: 30
    AllowedValues: [10, 30]
  Email:
    Type: String
    Default: ""
Mappings:
  Settings:
    "30": {Visibility: 180}
    "10": {Visibility: 60}
Conditions:
  HasEmail: !Not [!Equals [!Ref Email, ""]]
  NoEmail: !Not [!Condition HasEmail]
Globals:
  Function:
    Timeout: !Ref Timeout
    MemorySize: 256
    Environment:
      Variables:
        QUEUE_URL: !Ref Queue
        QUEUE_ARN: !GetAtt Queue.Arn
        ROUTES: !Sub '[{"bucket":"${Bucket}","prefix":"${Prefix}"}]'
        LITERAL: !Sub "${!NotSubstituted}-${AWS::Region}"
    Tags: [a]
Resources:
  Dlq:
    Type: AWS::SQS::Queue
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub ${AWS::StackName}-work
      VisibilityTimeout: !FindInMap [Settings, !Ref Timeout, Visibility]
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt [Dlq, Arn]
        maxReceiveCount: 3
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Join ["-", [!Ref "AWS::StackName", !Select [1, !Split [",", "a,tbl,c"]]]]
      Extra: !If [HasEmail, !Ref Email, !Ref "AWS::NoValue"]
  EmailOnly:
    Type: AWS::SNS::Subscription
    Condition: HasEmail
    Properties: {Protocol: email, Endpoint: !Ref Email, TopicArn: x}
  WorkerFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties: {Binary: worker-bin}
    Properties:
      Timeout: 10
      Environment:
        Variables:
          TABLE: !Ref Table
          SELF_ARN: !Sub "${WorkerFunction.Arn}"
"""


def test_short_tags_are_loaded_as_intrinsics():
    doc = cfn_yaml.loads(SMALL)
    q = doc["Resources"]["Queue"]["Properties"]
    assert q["QueueName"] == {"Fn::Sub": "${AWS::StackName}-work"}
    assert q["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["Dlq", "Arn"]}
    assert doc["Conditions"]["NoEmail"] == {"Fn::Not": [{"Condition": "HasEmail"}]}
    env = doc["Globals"]["Function"]["Environment"]["Variables"]
    assert env["QUEUE_ARN"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert doc["AWSTemplateFormatVersion"] == "2010-09-09"


def test_unparsable_template_gives_one_line_error(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("Resources:\n  A: [unclosed\n")
    with pytest.raises(StackError) as err:
        cfn_yaml.load(bad)
    assert "cannot parse template" in str(err.value) and "line" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(StackError, match="no Resources"):
        cfn_yaml.loads("Foo: 1")


def test_parameters_defaults_overrides_and_validation():
    declared = cfn_yaml.loads(SMALL)["Parameters"]
    values = parse_parameters(declared, {"Bucket": "b1"})
    assert values == {"Bucket": "b1", "Prefix": "", "Timeout": "30", "Email": ""}
    assert parse_parameters(declared, {"Bucket": "b", "Timeout": "10"})["Timeout"] == "10"
    with pytest.raises(StackError, match="not one of"):
        parse_parameters(declared, {"Bucket": "b", "Timeout": "11"})
    with pytest.raises(StackError, match="--param Bucket=VALUE"):
        parse_parameters(declared, {})
    with pytest.raises(StackError, match="unknown template parameter Nope"):
        parse_parameters(declared, {"Bucket": "b", "Nope": "1"})
    assert parse_parameters(declared, {}, {"Bucket": "local"})["Bucket"] == "local"


def test_resolution_against_planned_resources(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(SMALL)
    t = Template(path, {"Bucket": "docs-bucket", "Prefix": "docs/"}, stack_name="st")
    prov = Provisioner(t, "http://127.0.0.1:1", client=None)
    assert "EmailOnly" not in t.resources  # condition false
    q = t.resolve(t.resources["Queue"].properties)
    assert q["QueueName"] == "st-work"
    assert q["VisibilityTimeout"] == 180
    assert q["RedrivePolicy"]["deadLetterTargetArn"] == "arn:aws:sqs:us-east-1:123456789012:st-Dlq"
    assert prov.ref("Queue") == "http://127.0.0.1:1/123456789012/st-work"
    table = t.resolve(t.resources["Table"].properties)
    assert table == {"TableName": "st-tbl"}  # Fn::If -> AWS::NoValue removes the key
    spec = t.function_spec(t.resources["WorkerFunction"])
    assert spec.binary == "worker-bin"
    assert spec.timeout == 10 and spec.memory_size == 256
    assert spec.environment == {
        "QUEUE_URL": "http://127.0.0.1:1/123456789012/st-work",
        "QUEUE_ARN": "arn:aws:sqs:us-east-1:123456789012:st-work",
        "ROUTES": '[{"bucket":"docs-bucket","prefix":"docs/"}]',
        "LITERAL": "${NotSubstituted}-us-east-1",
        "TABLE": "st-tbl",
        "SELF_ARN": "arn:aws:lambda:us-east-1:123456789012:function:st-WorkerFunction",
    }


def test_condition_true_keeps_resource_and_if_branch(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(SMALL)
    t = Template(path, {"Bucket": "b", "Email": "a@b.c"}, stack_name="st")
    Provisioner(t, "http://x", client=None)
    assert "EmailOnly" in t.resources
    assert t.resolve(t.resources["Table"].properties)["Extra"] == "a@b.c"


def test_unknown_reference_is_an_error_but_sam_generated_names_resolve(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(SMALL)
    t = Template(path, {"Bucket": "b"}, stack_name="st")
    Provisioner(t, "http://x", client=None)
    with pytest.raises(StackError, match="Nowhere"):
        t.resolve({"Ref": "Nowhere"})
    assert t.resolve({"Fn::GetAtt": ["WorkerFunctionRole", "Arn"]}).startswith("arn:aws:iam::123456789012:role/")


def test_globals_merge_and_misc():
    merged = merge_globals({"Timeout": 3, "Environment": {"Variables": {"A": "1", "B": "2"}}, "Layers": ["l1"]},
                           {"Timeout": 9, "Environment": {"Variables": {"B": "x"}}, "Layers": ["l2"]})
    assert merged == {"Timeout": 9, "Environment": {"Variables": {"A": "1", "B": "x"}}, "Layers": ["l1", "l2"]}
    assert default_binary_name("EventProcessorFunction") == "event-processor"
    r = Resolver({"P": "a,b"}, {"AWS::Region": "us-east-1"})
    assert r.resolve({"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "P"}]}]}) == "a"
    assert r.resolve({"Fn::Sub": ["${X}-${P}", {"X": "x"}]}) == "x-a,b"
    assert r.resolve({"Fn::ToJsonString": {"k": [1]}}) == '{"k":[1]}'
