"""Create in moto what the template declares.

Every resource gets a `Physical` record (its Ref value and GetAtt attributes) computed from the
template alone (names are `<stack>-<LogicalId>` unless the template names them), so intrinsics
resolve before or after creation. Handlers per resource type; resource types that do not
matter locally are recorded (synthetic ARN) and skipped; unknown types are noted on one line
and skipped. Adding a queue, a table, a topic, a rule or a function to the template needs no
change here.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import ACCOUNT_ID, REGION
from .errors import StackError
from .esm import EsmConfig
from .template import FUNCTION_TYPES, STATE_MACHINE_TYPES, Resource, Template

log = logging.getLogger("kbstack.provisioner")

LOCAL_ROLE_NAME = "kb-autosync-local-role"
LOCAL_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/{LOCAL_ROLE_NAME}"

# Declared but irrelevant locally (no behaviour to emulate, or emulated by the launcher itself).
SKIPPED_TYPES = {
    "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::InstanceProfile",
    "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy", "AWS::Lambda::Permission",
    "AWS::Lambda::EventInvokeConfig", "AWS::Lambda::Version", "AWS::Lambda::Alias", "AWS::KMS::Alias",
    "AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm", "AWS::CloudWatch::Dashboard",
    "AWS::Logs::LogGroup", "AWS::Logs::MetricFilter", "AWS::Logs::SubscriptionFilter",
    "AWS::Scheduler::Schedule", "AWS::Scheduler::ScheduleGroup", "AWS::Events::Archive",
    "AWS::Serverless::Application", "AWS::CloudFormation::WaitConditionHandle", "AWS::SSM::Parameter",
    "AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion",
}

_SQS_ATTRIBUTES = (
    "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout", "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope",
    "FifoThroughputLimit", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled",
)


@dataclass
class Physical:
    logical_id: str
    type: str
    ref: Any
    attrs: dict[str, Any] = field(default_factory=dict)
    status: str = "planned"  # planned | created | skipped
    extra: dict[str, Any] = field(default_factory=dict)


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _synthetic_arn(rtype: str, name: str) -> str:
    parts = rtype.split("::")
    service = parts[1].lower() if len(parts) > 1 else "local"
    kind = parts[2].lower() if len(parts) > 2 else "resource"
    account = "" if service in ("iam", "s3") else ACCOUNT_ID
    region = "" if service in ("iam", "s3") else REGION
    return f"arn:aws:{service}:{region}:{account}:{kind}/{name}"


def dummy_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("bootstrap", "#!/bin/sh\necho 'hosted by the kb-autosync local stack'\n")
    return buf.getvalue()


class Provisioner:
    def __init__(self, template: Template, moto_endpoint: str, client: Callable[[str], Any],
                 note: Callable[[str], None] | None = None):
        self.t = template
        self.endpoint = moto_endpoint
        self.client = client
        self.note = note or (lambda line: log.info("%s", line))
        self.stack = template.stack_name
        self.physical: dict[str, Physical] = {}
        self._planning: set[str] = set()
        self.esms: list[EsmConfig] = []
        self.extra_queues: dict[str, str] = {}  # name -> url (launcher-made queues)
        self.notes: list[str] = []
        template.bind(self.ref, self.getatt)

    # -- intrinsic callbacks -------------------------------------------------------------
    def ref(self, logical_id: str) -> Any:
        return self.info(logical_id).ref

    def getatt(self, logical_id: str, attr: str) -> Any:
        info = self.info(logical_id)
        if attr in info.attrs:
            return info.attrs[attr]
        if attr == "Arn" or attr.endswith("Arn"):
            return _synthetic_arn(info.type, str(info.ref))
        if info.status == "skipped":
            return f"{info.ref}-{attr}"
        raise StackError(f"template asks for !GetAtt {logical_id}.{attr}, which the local stack does not know")

    def info(self, logical_id: str) -> Physical:
        if logical_id in self.physical:
            return self.physical[logical_id]
        res = self.t.resources.get(logical_id)
        if res is None:
            # SAM generates resources named after declared ones (FooFunctionRole, ...).
            if any(logical_id.startswith(lid) for lid in self.t.doc["Resources"]):
                phys = Physical(logical_id, "AWS::IAM::Role" if logical_id.endswith("Role") else "SAM::Generated",
                                f"{self.stack}-{logical_id}", status="skipped")
                if logical_id.endswith("Role"):
                    phys.attrs["Arn"] = LOCAL_ROLE_ARN
                self.physical[logical_id] = phys
                return phys
            raise StackError(f"template refers to an undeclared (or conditioned-out) resource {logical_id}")
        if logical_id in self._planning:
            raise StackError(f"resource {logical_id} refers to itself through its name")
        self._planning.add(logical_id)
        try:
            phys = self._plan(res)
        finally:
            self._planning.discard(logical_id)
        self.physical[logical_id] = phys
        return phys

    def _name(self, res: Resource, prop: str | None, default: str | None = None) -> str:
        if prop and res.properties.get(prop) is not None:
            return _str(self.t.resolve(res.properties[prop]))
        return default or f"{self.stack}-{res.logical_id}"

    def _plan(self, res: Resource) -> Physical:
        t, lid, p = res.type, res.logical_id, res.properties
        if t == "AWS::SQS::Queue":
            default = f"{self.stack}-{lid}" + (".fifo" if str(self.t.resolve(p.get("FifoQueue", False))).lower() == "true" else "")
            name = self._name(res, "QueueName", default)
            url = f"{self.endpoint}/{ACCOUNT_ID}/{name}"
            arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
            return Physical(lid, t, url, {"Arn": arn, "QueueName": name, "QueueUrl": url})
        if t in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            name = self._name(res, "TableName")
            arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
            return Physical(lid, t, name, {"Arn": arn, "StreamArn": f"{arn}/stream/local"})
        if t == "AWS::SNS::Topic":
            name = self._name(res, "TopicName")
            arn = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}"
            return Physical(lid, t, arn, {"TopicArn": arn, "TopicName": name})
        if t in FUNCTION_TYPES:
            name = self._name(res, "FunctionName")[:64]
            arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
            return Physical(lid, t, name, {"Arn": arn})
        if t in STATE_MACHINE_TYPES:
            name = self._name(res, "Name" if t == "AWS::Serverless::StateMachine" else "StateMachineName")
            arn = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}"
            return Physical(lid, t, arn, {"Arn": arn, "Name": name})
        if t == "AWS::Events::Rule":
            name = self._name(res, "Name")
            bus = _str(self.t.resolve(p.get("EventBusName", "default")))
            bus_name = bus.rsplit("/", 1)[-1]
            arn = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/" + (name if bus_name == "default" else f"{bus_name}/{name}")
            return Physical(lid, t, name if bus_name == "default" else f"{bus_name}|{name}", {"Arn": arn})
        if t == "AWS::Events::EventBus":
            name = self._name(res, "Name")
            arn = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{name}"
            return Physical(lid, t, name, {"Arn": arn, "Name": name})
        if t == "AWS::S3::Bucket":
            name = self._name(res, "BucketName", f"{self.stack}-{lid}".lower())
            return Physical(lid, t, name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com",
                                           "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com"})
        if t == "AWS::KMS::Key":
            return self._create_kms_key(res)
        if t == "AWS::SNS::Subscription":
            return Physical(lid, t, f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{self.stack}-{lid}:{uuid.uuid4()}")
        if t == "AWS::Lambda::EventSourceMapping":
            return Physical(lid, t, str(uuid.uuid4()))
        if t == "AWS::IAM::Role":
            name = self._name(res, "RoleName")
            return Physical(lid, t, name, {"Arn": LOCAL_ROLE_ARN, "RoleId": "AROALOCAL" + lid.upper()[:12]}, status="skipped")
        if t == "AWS::Logs::LogGroup":
            name = self._name(res, "LogGroupName", f"/aws/{self.stack}/{lid}")
            return Physical(lid, t, name, {"Arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"}, status="skipped")
        name = f"{self.stack}-{lid}"
        return Physical(lid, t, name, {"Arn": _synthetic_arn(t, name)}, status="skipped")

    def _create_kms_key(self, res: Resource) -> Physical:
        # Created while planning: its id is moto's, and other resources' properties refer to it.
        try:
            meta = self.client("kms").create_key(Description=f"{self.stack} {res.logical_id}")["KeyMetadata"]
            return Physical(res.logical_id, res.type, meta["KeyId"], {"Arn": meta["Arn"], "KeyId": meta["KeyId"]},
                            status="created")
        except Exception as exc:  # noqa: BLE001
            key_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.stack}.{res.logical_id}"))
            self.note(f"KMS key {res.logical_id} not created in moto ({exc}); using a synthetic id")
            return Physical(res.logical_id, res.type, key_id,
                            {"Arn": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{key_id}", "KeyId": key_id}, status="skipped")

    # -- provisioning --------------------------------------------------------------------
    def provision(self, bucket_name: str | None) -> None:
        for lid in self.t.resources:
            self.info(lid)
        self._create_local_role()
        steps = [
            (("AWS::S3::Bucket",), self._create_bucket),
            (("AWS::SQS::Queue",), self._create_queue),
            (("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"), self._create_table),
            (("AWS::SNS::Topic",), self._create_topic),
            (("AWS::SNS::Subscription",), self._create_subscription),
            (("AWS::Events::EventBus",), self._create_event_bus),
            (FUNCTION_TYPES, self._create_function),
            (STATE_MACHINE_TYPES, self._create_state_machine),
            (("AWS::Events::Rule",), self._create_rule),
        ]
        handled = set()
        for types, fn in steps:
            handled.update(types)
            for res in self.t.of_type(*types):
                started = time.monotonic()
                fn(res)
                log.info("created %s (%s) in %.2f s", res.logical_id, res.type, time.monotonic() - started)
        self._set_queue_redrive()
        for res in self.t.of_type(*FUNCTION_TYPES):
            self._function_events(res)
        for res in self.t.of_type("AWS::Lambda::EventSourceMapping"):
            self._esm_resource(res)
        handled.update(("AWS::Lambda::EventSourceMapping", "AWS::KMS::Key"))
        for res in self.t.resources.values():
            if res.type in handled:
                continue
            if res.type in SKIPPED_TYPES:
                log.info("skipped %s (%s): not needed locally", res.logical_id, res.type)
            else:
                self.note(f"skipping {res.logical_id}: resource type {res.type} is not emulated by the local stack")
        self._notifications_queue()
        if bucket_name:
            self.ensure_bucket(bucket_name, eventbridge=True)

    def _create_local_role(self) -> None:
        iam = self.client("iam")
        try:
            iam.create_role(
                RoleName=LOCAL_ROLE_NAME,
                AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": "sts:AssumeRole",
                    "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com", "scheduler.amazonaws.com"]}}]}),
            )
        except iam.exceptions.EntityAlreadyExistsException:
            pass

    def ensure_bucket(self, name: str, eventbridge: bool) -> None:
        s3 = self.client("s3")
        try:
            s3.create_bucket(Bucket=name)
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            pass
        if eventbridge:
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}})

    def _create_bucket(self, res: Resource) -> None:
        props = self.t.resolve(res.properties)
        phys = self.physical[res.logical_id]
        eventbridge = "EventBridgeConfiguration" in (props.get("NotificationConfiguration") or {})
        self.ensure_bucket(phys.ref, eventbridge)
        if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
            self.client("s3").put_bucket_versioning(Bucket=phys.ref, VersioningConfiguration={"Status": "Enabled"})
        phys.status = "created"

    def _create_queue(self, res: Resource) -> None:
        props = self.t.resolve(res.properties)
        phys = self.physical[res.logical_id]
        attrs = {key: _str(props[key]) for key in _SQS_ATTRIBUTES if key in props}
        sqs = self.client("sqs")
        try:
            url = sqs.create_queue(QueueName=phys.attrs["QueueName"], Attributes=attrs)["QueueUrl"]
        except sqs.exceptions.ClientError:
            attrs = {k: v for k, v in attrs.items() if not k.startswith("Kms")}
            url = sqs.create_queue(QueueName=phys.attrs["QueueName"], Attributes=attrs)["QueueUrl"]
        phys.ref = phys.attrs["QueueUrl"] = url
        phys.extra["properties"] = props
        phys.status = "created"

    def _set_queue_redrive(self) -> None:
        sqs = self.client("sqs")
        for res in self.t.of_type("AWS::SQS::Queue"):
            phys = self.physical[res.logical_id]
            props = phys.extra.get("properties") or {}
            attrs = {}
            for key in ("RedrivePolicy", "RedriveAllowPolicy"):
                if key in props:
                    value = props[key]
                    attrs[key] = value if isinstance(value, str) else json.dumps(value)
            if attrs:
                sqs.set_queue_attributes(QueueUrl=phys.ref, Attributes=attrs)
            if "RedrivePolicy" in props:
                policy = props["RedrivePolicy"]
                policy = json.loads(policy) if isinstance(policy, str) else policy
                phys.extra["dlq_arn"] = policy.get("deadLetterTargetArn")
                phys.extra["max_receive_count"] = int(policy.get("maxReceiveCount", 0))

    def queue_by_arn(self, arn: str) -> Physical | None:
        for phys in self.physical.values():
            if phys.type == "AWS::SQS::Queue" and phys.attrs.get("Arn") == arn:
                return phys
        return None

    def _create_table(self, res: Resource) -> None:
        props = self.t.resolve(res.properties)
        phys = self.physical[res.logical_id]
        ddb = self.client("dynamodb")
        if res.type == "AWS::Serverless::SimpleTable":
            pk = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
            ptype = {"String": "S", "Number": "N", "Binary": "B"}.get(pk.get("Type", "String"), "S")
            args: dict[str, Any] = {
                "AttributeDefinitions": [{"AttributeName": pk["Name"], "AttributeType": ptype}],
                "KeySchema": [{"AttributeName": pk["Name"], "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
            }
        else:
            args = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode",
                                          "ProvisionedThroughput", "TableClass") if k in props}
            args.setdefault("BillingMode", "PROVISIONED" if "ProvisionedThroughput" in props else "PAY_PER_REQUEST")
            pay = args["BillingMode"] == "PAY_PER_REQUEST"
            for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
                if props.get(key):
                    indexes = []
                    for index in props[key]:
                        index = {k: v for k, v in index.items() if k in (
                            "IndexName", "KeySchema", "Projection", "ProvisionedThroughput")}
                        if pay:
                            index.pop("ProvisionedThroughput", None)
                        indexes.append(index)
                    args[key] = indexes
            stream = props.get("StreamSpecification")
            if stream and stream.get("StreamViewType"):
                args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
            sse = props.get("SSESpecification")
            if sse:
                args["SSESpecification"] = {k: v for k, v in sse.items() if k in ("Enabled", "SSEEnabled", "SSEType", "KMSMasterKeyId")}
                if "SSEEnabled" in args["SSESpecification"]:
                    args["SSESpecification"]["Enabled"] = bool(args["SSESpecification"].pop("SSEEnabled"))
        try:
            desc = ddb.create_table(TableName=phys.ref, **args)["TableDescription"]
        except ddb.exceptions.ClientError as exc:
            if "SSESpecification" not in args:
                raise StackError(f"table {res.logical_id}: moto rejected it: {exc}") from None
            args.pop("SSESpecification")
            desc = ddb.create_table(TableName=phys.ref, **args)["TableDescription"]
        if desc.get("LatestStreamArn"):
            phys.attrs["StreamArn"] = desc["LatestStreamArn"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and str(ttl.get("Enabled", "true")).lower() == "true" and ttl.get("AttributeName"):
            ddb.update_time_to_live(TableName=phys.ref, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": ttl["AttributeName"]})
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr and str(pitr.get("PointInTimeRecoveryEnabled", "false")).lower() == "true":
            try:
                ddb.update_continuous_backups(TableName=phys.ref, PointInTimeRecoverySpecification={
                    "PointInTimeRecoveryEnabled": True})
            except Exception:  # noqa: BLE001 - cosmetic locally
                pass
        phys.status = "created"

    def _create_topic(self, res: Resource) -> None:
        props = self.t.resolve(res.properties)
        phys = self.physical[res.logical_id]
        sns = self.client("sns")
        attributes = {}
        if props.get("FifoTopic"):
            attributes["FifoTopic"] = _str(props["FifoTopic"])
        arn = sns.create_topic(Name=phys.attrs["TopicName"], Attributes=attributes)["TopicArn"]
        phys.ref = phys.attrs["TopicArn"] = arn
        for sub in props.get("Subscription") or []:
            self._subscribe(arn, sub.get("Protocol"), sub.get("Endpoint"), {})
        phys.status = "created"

    def _subscribe(self, topic_arn: str, protocol: str, endpoint: str, attributes: dict) -> None:
        if protocol == "lambda":
            self.note(f"SNS subscription of {endpoint} to {topic_arn}: lambda subscriptions are not delivered locally")
            return
        self.client("sns").subscribe(TopicArn=topic_arn, Protocol=protocol, Endpoint=endpoint,
                                     Attributes={k: _str(v) if not isinstance(v, (dict, list)) else json.dumps(v)
                                                 for k, v in attributes.items()})

    def _create_subscription(self, res: Resource) -> None:
        props = self.t.resolve(res.properties)
        attrs = {k: props[k] for k in ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope",
                                       "RedrivePolicy") if k in props}
        self._subscribe(props["TopicArn"], props.get("Protocol"), props.get("Endpoint"), attrs)
        self.physical[res.logical_id].status = "created"

    def _notifications_queue(self) -> None:
        """`<stack>-notifications`, subscribed raw to every topic: what a user would get by mail."""
        topics = [p for p in self.physical.values() if p.type == "AWS::SNS::Topic" and p.status == "created"]
        if not topics:
            return
        sqs = self.client("sqs")
        name = f"{self.stack}-notifications"
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
        for topic in topics:
            self.client("sns").subscribe(TopicArn=topic.ref, Protocol="sqs", Endpoint=arn,
                                         Attributes={"RawMessageDelivery": "true"})
        self.extra_queues[name] = url

    def _create_event_bus(self, res: Resource) -> None:
        phys = self.physical[res.logical_id]
        self.client("events").create_event_bus(Name=phys.ref)
        phys.status = "created"

    def _function_role(self, res: Resource, function_name: str) -> str:
        """The function's execution role with the template's inline policy statements, so that
        `autosync doctor` reads the same permissions locally as in a deployed stack. Only IAM
        stores them: moto does not enforce IAM, and SAM policy templates (strings) are not expanded."""
        statements = []
        for policy in self.t.resolve(res.properties.get("Policies") or []):
            if isinstance(policy, dict) and "Statement" in policy:
                found = policy["Statement"]
                statements.extend(found if isinstance(found, list) else [found])
        if not statements:
            return LOCAL_ROLE_ARN
        iam = self.client("iam")
        role_name = f"{function_name}-role"[:64]
        try:
            role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                        "Principal": {"Service": "lambda.amazonaws.com"}}]}))
            arn = role["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
        iam.put_role_policy(RoleName=role_name, PolicyName=f"{res.logical_id}Policy",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
        return arn

    def _create_function(self, res: Resource) -> None:
        phys = self.physical[res.logical_id]
        spec = self.t.function_spec(res)
        lam = self.client("lambda")
        lam.create_function(
            FunctionName=phys.ref,
            Runtime="provided.al2023",
            Role=self._function_role(res, phys.ref),
            Handler="bootstrap",
            Code={"ZipFile": dummy_zip()},
            Timeout=spec.timeout,
            MemorySize=spec.memory_size,
            Description=f"{res.logical_id} ({spec.binary}), hosted by the kb-autosync local stack",
        )
        phys.extra["spec"] = spec
        phys.status = "created"

    def _state_machine_definition(self, res: Resource) -> str:
        props = res.properties
        if "Definition" in props:
            text = json.dumps(self.t.resolve(props["Definition"]))
        elif "DefinitionString" in props:
            text = _str(self.t.resolve(props["DefinitionString"]))
        else:
            uri = self.t.resolve(props.get("DefinitionUri"))
            if not isinstance(uri, str):
                raise StackError(f"state machine {res.logical_id}: DefinitionUri must be a local path for the local stack")
            path = (self.t.dir / uri) if not Path(uri).is_absolute() else Path(uri)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise StackError(f"state machine {res.logical_id}: cannot read {path}: {exc.strerror}") from None
        subs = self.t.resolve(props.get("DefinitionSubstitutions") or {})
        for key, value in subs.items():
            text = text.replace("${" + key + "}", _str(value))
        left = sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text)))
        if left:
            self.note(f"state machine {res.logical_id}: no DefinitionSubstitutions for {', '.join(left)}")
        return text

    def _create_state_machine(self, res: Resource) -> None:
        phys = self.physical[res.logical_id]
        definition = self._state_machine_definition(res)
        role = res.properties.get("Role") or res.properties.get("RoleArn")
        role_arn = _str(self.t.resolve(role)) if role else LOCAL_ROLE_ARN
        sm_type = self.t.resolve(res.properties.get("Type") or res.properties.get("StateMachineType") or "STANDARD")
        sfn = self.client("stepfunctions")
        try:
            arn = sfn.create_state_machine(name=phys.attrs["Name"], definition=definition, roleArn=role_arn,
                                           type=sm_type)["stateMachineArn"]
        except sfn.exceptions.ClientError as exc:
            raise StackError(f"state machine {res.logical_id}: moto rejected its definition: {exc}") from None
        phys.ref = phys.attrs["Arn"] = arn
        phys.extra["definition"] = definition
        phys.status = "created"

    def _create_rule(self, res: Resource) -> None:
        props = self.t.resolve(res.properties)
        phys = self.physical[res.logical_id]
        events = self.client("events")
        name = phys.ref.split("|")[-1]
        bus = _str(props.get("EventBusName", "default")).rsplit("/", 1)[-1]
        args: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            pattern = props["EventPattern"]
            args["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if "ScheduleExpression" in props:
            args["ScheduleExpression"] = props["ScheduleExpression"]
            self.note(f"rule {res.logical_id}: schedules do not fire locally")
        if "Description" in props:
            args["Description"] = props["Description"]
        events.put_rule(**args)
        targets = []
        for target in props.get("Targets") or []:
            arn = target["Arn"]
            if ":sqs:" not in arn and ":events:" not in arn and ":logs:" not in arn:
                self.note(f"rule {res.logical_id}: target {arn} is not delivered by moto (only SQS, buses, logs)")
            targets.append({k: v for k, v in target.items() if k in (
                "Id", "Arn", "Input", "InputPath", "InputTransformer", "SqsParameters", "RoleArn",
                "DeadLetterConfig", "RetryPolicy")})
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        phys.extra["properties"] = props
        phys.status = "created"

    # -- event source mappings -----------------------------------------------------------
    def _function_events(self, res: Resource) -> None:
        phys = self.physical[res.logical_id]
        for event_id, event in (res.properties.get("Events") or {}).items():
            etype = event.get("Type")
            props = self.t.resolve(event.get("Properties") or {})
            if etype == "SQS":
                self._add_esm(f"{res.logical_id}.{event_id}", phys.ref, props)
            else:
                self.note(f"function {res.logical_id} event {event_id}: type {etype} is not emulated (use SQS)")

    def _esm_resource(self, res: Resource) -> None:
        props = self.t.resolve(res.properties)
        arn = _str(props.get("EventSourceArn", ""))
        if ":sqs:" not in arn:
            self.note(f"skipping {res.logical_id}: only SQS event source mappings are emulated")
            return
        function = _str(props["FunctionName"])
        name = function.split(":")[6] if function.startswith("arn:") else function
        props = dict(props, Queue=arn)
        self._add_esm(res.logical_id, name, props, esm_uuid=self.physical[res.logical_id].ref)
        self.physical[res.logical_id].status = "created"

    def _add_esm(self, label: str, function_name: str, props: dict, esm_uuid: str | None = None) -> None:
        queue_arn = _str(props["Queue"])
        queue = self.queue_by_arn(queue_arn)
        if queue is None:
            self.note(f"event source {label}: queue {queue_arn} is not declared in the template; skipped")
            return
        fifo = queue_arn.endswith(".fifo")
        batch_size = int(props.get("BatchSize", 10))
        window = float(props.get("MaximumBatchingWindowInSeconds", 0))
        enabled = str(props.get("Enabled", True)).lower() != "false"
        report = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        scaling = props.get("ScalingConfig") or {}
        # Registered in moto DISABLED, so moto's own synchronous ESM never fires; the launcher's
        # poller (esm.py) does the work.
        try:
            resp = self.client("lambda").create_event_source_mapping(
                EventSourceArn=queue_arn, FunctionName=function_name, BatchSize=batch_size, Enabled=False,
                **({"MaximumBatchingWindowInSeconds": int(window)} if window and not fifo else {}),
                **({"FunctionResponseTypes": ["ReportBatchItemFailures"]} if report else {}),
            )
            esm_uuid = resp.get("UUID") or esm_uuid
        except Exception as exc:  # noqa: BLE001 - registration in moto is cosmetic
            log.info("moto did not register ESM %s: %s", label, exc)
        self.esms.append(EsmConfig(
            uuid=esm_uuid or str(uuid.uuid4()), function_name=function_name, queue_url=queue.ref,
            queue_arn=queue_arn, batch_size=batch_size, window_seconds=window,
            report_batch_item_failures=report, enabled=enabled,
            max_concurrency=int(scaling["MaximumConcurrency"]) if scaling.get("MaximumConcurrency") else None,
            region=REGION,
        ))

    # -- reporting -----------------------------------------------------------------------
    def resources_map(self) -> dict[str, Any]:
        out = {}
        for lid, phys in self.physical.items():
            if lid not in self.t.resources:
                continue
            entry: dict[str, Any] = {"type": phys.type, "ref": phys.ref, "status": phys.status}
            entry.update({k: v for k, v in phys.attrs.items() if isinstance(v, (str, int))})
            out[lid] = entry
        return out
