"""The repository's template with several routes (Routes, RouteBuckets, RouteKnowledgeBaseIds)
and with one: what the functions, their policies and the S3 event rule get; the Rules."""

import json

import pytest

from conftest import LOCAL
from kbstack.emulator import generated_config_for_routes
from kbstack.errors import StackError
from kbstack.intrinsics import Resolver, parse_parameters
from kbstack.launcher import routed_buckets, template_routes
from kbstack.provisioner import Provisioner
from kbstack.template import Template

TEMPLATE = LOCAL.parent / "template.yaml"

ROUTES = [
    {"bucket": "docs-a", "prefix": "manuals/", "knowledge_base_id": "KBONE00001", "data_source_id": "DSONE00001"},
    {"bucket": "docs-a", "prefix": "notes/", "knowledge_base_id": "KBTWO00001", "data_source_id": ""},
    {"bucket": "docs-b", "prefix": "", "knowledge_base_id": "KBTWO00001", "data_source_id": "DSTWO00002"},
]
MANY = {
    "Routes": json.dumps(ROUTES),
    "RouteBuckets": "docs-a, docs-b",
    "RouteKnowledgeBaseIds": "KBONE00001,KBTWO00001",
}


def _template(params: dict) -> Template:
    t = Template(TEMPLATE, params, stack_name="st")
    Provisioner(t, "http://127.0.0.1:1", client=None)
    return t


def _statement(t: Template, function: str, sid: str) -> dict:
    for policy in t.resolve(t.resources[function].properties["Policies"]):
        for statement in policy.get("Statement", []):
            if statement.get("Sid") == sid:
                return statement
    raise AssertionError(f"{function} has no statement {sid}")


def test_routes_reach_the_functions_with_the_lists_they_are_checked_against():
    t = _template(MANY)
    env = t.function_spec(t.resources["EventProcessorFunction"]).environment
    assert json.loads(env["ROUTES"]) == ROUTES
    assert env["ROUTE_BUCKETS"] == "docs-a,docs-b"
    assert env["ROUTE_KNOWLEDGE_BASE_IDS"] == "KBONE00001,KBTWO00001"


def test_routes_scope_policies_and_the_event_rule_to_the_listed_buckets_and_knowledge_bases():
    t = _template(MANY)
    assert _statement(t, "EventProcessorFunction", "HeadWatchedObjects")["Resource"] == [
        "arn:*:s3:::docs-a/*", "arn:*:s3:::docs-b/*"]
    assert _statement(t, "EventProcessorFunction", "HeadWatchedObjectsMissing")["Resource"] == [
        "arn:*:s3:::docs-a", "arn:*:s3:::docs-b"]
    assert _statement(t, "StartSyncFunction", "StartIngestionJobs")["Resource"] == [
        "arn:*:bedrock:*:*:knowledge-base/KBONE00001", "arn:*:bedrock:*:*:knowledge-base/KBTWO00001"]
    pattern = t.resolve(t.resources["S3ChangeRule"].properties)["EventPattern"]
    assert pattern["detail"]["bucket"]["name"] == ["docs-a", "docs-b"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": ""}]


def test_one_route_keeps_its_exact_scope():
    t = _template({"S3BucketName": "docs-a", "S3KeyPrefix": "docs/", "KnowledgeBaseId": "KBONE00001"})
    env = t.function_spec(t.resources["EventProcessorFunction"]).environment
    assert json.loads(env["ROUTES"]) == [
        {"bucket": "docs-a", "prefix": "docs/", "knowledge_base_id": "KBONE00001", "data_source_id": ""}]
    assert env["ROUTE_BUCKETS"] == "" and env["ROUTE_KNOWLEDGE_BASE_IDS"] == ""
    assert _statement(t, "EventProcessorFunction", "HeadWatchedObjects")["Resource"] == "arn:aws:s3:::docs-a/docs/*"
    assert _statement(t, "StartSyncFunction", "StartIngestionJobs")["Resource"] == (
        "arn:aws:bedrock:us-east-1:123456789012:knowledge-base/KBONE00001")
    pattern = t.resolve(t.resources["S3ChangeRule"].properties)["EventPattern"]
    assert pattern["detail"] == {"bucket": {"name": ["docs-a"]}, "object": {"key": [{"prefix": "docs/"}]}}


def test_rules_name_the_missing_parameter():
    with pytest.raises(StackError, match="RoutesNeedTheirLists: With Routes, RouteBuckets must name"):
        Template(TEMPLATE, {"Routes": MANY["Routes"], "RouteKnowledgeBaseIds": "KBONE00001"})
    with pytest.raises(StackError, match="RouteKnowledgeBaseIds must name every knowledge base"):
        Template(TEMPLATE, {"Routes": MANY["Routes"], "RouteBuckets": "docs-a,docs-b"})
    with pytest.raises(StackError, match="OneRouteNeedsItsParameters: KnowledgeBaseId is required"):
        Template(TEMPLATE, {"KnowledgeBaseId": ""})


def test_empty_list_parameter_is_one_empty_member_like_cloudformation():
    declared = {"L": {"Type": "CommaDelimitedList", "Default": ""}}
    assert parse_parameters(declared, {})["L"] == [""]
    assert parse_parameters(declared, {"L": "a, b"})["L"] == ["a", "b"]
    r = Resolver({"L": ["a", "b"]}, {})
    assert r.resolve({"Fn::Contains": [{"Ref": "L"}, "b"]}) is True
    assert r.resolve({"Fn::Contains": [{"Ref": "L"}, ""]}) is False
    with pytest.raises(StackError, match=r"Fn::Contains expects \[\[values\], value\]"):
        r.resolve({"Fn::Contains": ["a", "b"]})


def test_the_launcher_reads_routes_buckets_and_derives_the_emulator_config():
    params = Template(TEMPLATE, MANY).parameters
    assert template_routes(params) == ROUTES
    assert routed_buckets(params) == ["docs-a", "docs-b"]
    config = generated_config_for_routes(ROUTES)
    by_kb = {kb["id"]: kb["data_sources"] for kb in config["knowledge_bases"]}
    assert [ds["id"] for ds in by_kb["KBONE00001"]] == ["DSONE00001"]
    assert [(ds["id"], ds["bucket_arn"], ds["inclusion_prefixes"]) for ds in by_kb["KBTWO00001"]] == [
        ("DSLOCAL001", "arn:aws:s3:::docs-a", ["notes/"]),
        ("DSTWO00002", "arn:aws:s3:::docs-b", []),
    ]
    with pytest.raises(StackError, match="template parameter Routes is not JSON"):
        template_routes({"Routes": "[{"})
    with pytest.raises(StackError, match="must be a JSON array of objects with a bucket"):
        template_routes({"Routes": '[{"prefix": "a/"}]'})


def _monitoring(t: Template) -> tuple[str, str, list]:
    body = json.loads(t.resolve(t.resources["Dashboard"].properties)["DashboardBody"])
    search = body["widgets"][0]["properties"]["metrics"][0][0]["expression"]
    query = t.resolve(t.resources["IngestionJobsFailedAlarm"].properties)["Metrics"][0]["Expression"]
    dimensions = t.resolve(t.resources["CanaryAlarm"].properties)["Dimensions"]
    return search, query, dimensions


def test_alarms_and_dashboard_cover_this_stacks_routes_one_by_one():
    for params, canary_kb in [
        ({**MANY, "CanarySchedule": "60"}, "KBONE00001"),
        ({"S3BucketName": "docs-a", "KnowledgeBaseId": "KBTWO00001", "CanarySchedule": "60"}, "KBTWO00001"),
    ]:
        t = _template(params)
        search, query, dimensions = _monitoring(t)
        stack = t.resolve({"Ref": "AWS::StackName"})
        # Another stack's routes in the namespace are never drawn or counted ...
        assert search.endswith(f'MetricName="ChangesRecorded" StackName="{stack}"\', \'Sum\', 300)'), search
        assert f"WHERE StackName = '{stack}'" in query
        # ... and each route of this one is an alarm contributor of its own.
        assert query.endswith("GROUP BY KnowledgeBaseId, DataSourceId"), query
        assert dimensions == [{"Name": "StackName", "Value": stack},
                              {"Name": "KnowledgeBaseId", "Value": canary_kb}]
        errors = t.resolve(t.resources["CanaryErrorsAlarm"].properties)
        assert errors["Dimensions"][0]["Name"] == "FunctionName"
