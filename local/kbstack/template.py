"""The SAM template as the launcher sees it: parameters, rules, conditions, resources, SAM Globals
merged into each function / state machine, and the facts the function host needs."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ACCOUNT_ID, REGION, cfn_yaml
from .errors import StackError
from .intrinsics import Resolver, parse_parameters

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")

# Used only for parameters that the template declares WITHOUT a Default, so that `up` works
# with no --param at all. A template Default always wins over these.
LOCAL_DEFAULTS = {
    "S3BucketName": "kb-autosync-local-docs",
    "S3KeyPrefix": "docs/",
    "KnowledgeBaseId": "KBLOCAL001",
    "DataSourceId": "DSLOCAL001",
    "NotificationEmail": "",
}

# Given one of these when Routes is not given (see Template.__init__).
ONE_ROUTE_PARAMETERS = ("S3BucketName", "KnowledgeBaseId")

# SAM Globals sections and the resource types they apply to.
_GLOBALS_SECTIONS = {
    "Function": ("AWS::Serverless::Function",),
    "StateMachine": ("AWS::Serverless::StateMachine",),
    "Api": ("AWS::Serverless::Api",),
    "HttpApi": ("AWS::Serverless::HttpApi",),
    "SimpleTable": ("AWS::Serverless::SimpleTable",),
}


def merge_globals(global_props: dict, props: dict) -> dict:
    """SAM's rule: resource scalars win, maps are merged recursively (resource wins), lists are
    additive (global entries first)."""
    out = copy.deepcopy(global_props)
    for key, value in props.items():
        if key in out and isinstance(out[key], dict) and isinstance(value, dict) and not _is_intrinsic(value):
            out[key] = merge_globals(out[key], value)
        elif key in out and isinstance(out[key], list) and isinstance(value, list):
            out[key] = out[key] + copy.deepcopy(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _is_intrinsic(value: dict) -> bool:
    return len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref", "Condition"))


def default_binary_name(logical_id: str) -> str:
    """EventProcessorFunction -> event-processor (used only when Metadata names no Binary)."""
    base = re.sub(r"Function$", "", logical_id) or logical_id
    return re.sub(r"(?<!^)(?=[A-Z])", "-", base).lower()


@dataclass
class Resource:
    logical_id: str
    type: str
    properties: dict  # raw (intrinsics unresolved), SAM Globals already merged
    metadata: dict = field(default_factory=dict)


@dataclass
class FunctionSpec:
    logical_id: str
    binary: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    log_format: str
    log_level: str
    events: dict


class Template:
    def __init__(self, path: str | Path, params: dict[str, str] | None = None, stack_name: str = "kb-autosync"):
        self.path = Path(path)
        self.dir = self.path.parent
        self.doc = cfn_yaml.load(self.path)
        self.stack_name = stack_name
        declared = self.doc.get("Parameters") or {}
        given = dict(params or {})
        if not given.get("Routes"):
            # The single route's bucket and knowledge base have an empty Default (Routes may
            # replace them) but are required without Routes: `up` with no --param gets local ones.
            for name in ONE_ROUTE_PARAMETERS:
                if name in declared and name not in given:
                    given[name] = LOCAL_DEFAULTS[name]
        self.parameters = parse_parameters(declared, given, LOCAL_DEFAULTS)
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{stack_name}/00000000-0000-0000-0000-000000000000",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        # ref/getatt are bound later by the provisioner (resolver.set_resources).
        self.resolver = Resolver(
            self.parameters,
            self.pseudo,
            conditions=self.doc.get("Conditions") or {},
            mappings=self.doc.get("Mappings") or {},
        )
        self._check_rules()
        self.resources = self._resources()

    def _check_rules(self) -> None:
        """The template's Rules, as CloudFormation checks them before creating anything: each
        assertion of a rule whose RuleCondition holds (or that has none) must hold."""
        for name, rule in (self.doc.get("Rules") or {}).items():
            rule = rule or {}
            if "RuleCondition" in rule and not self.resolve(rule["RuleCondition"]):
                continue
            for assertion in rule.get("Assertions") or []:
                if self.resolve(assertion.get("Assert")) is not True:
                    description = assertion.get("AssertDescription") or "an assertion does not hold"
                    raise StackError(f"template rule {name}: {description}")

    def bind(self, ref, getatt) -> None:
        self.resolver._ref = ref
        self.resolver._getatt = getatt

    def resolve(self, node: Any) -> Any:
        return self.resolver.resolve(node)

    def _resources(self) -> dict[str, Resource]:
        globals_ = self.doc.get("Globals") or {}
        out: dict[str, Resource] = {}
        for logical_id, body in self.doc["Resources"].items():
            if not isinstance(body, dict) or "Type" not in body:
                raise StackError(f"cannot parse template {self.path}: resource {logical_id} has no Type")
            condition = body.get("Condition")
            if condition is not None and not self.resolver.condition(condition):
                continue
            rtype = body["Type"]
            props = body.get("Properties") or {}
            for section, types in _GLOBALS_SECTIONS.items():
                if rtype in types and isinstance(globals_.get(section), dict):
                    props = merge_globals(globals_[section], props)
            out[logical_id] = Resource(logical_id, rtype, props, body.get("Metadata") or {})
        return out

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type in types]

    def function_spec(self, res: Resource) -> FunctionSpec:
        """Needs the resolver bound (environment values refer to resources)."""
        props = res.properties
        build = res.metadata.get("BuildProperties") or {}
        binary = build.get("Binary") or default_binary_name(res.logical_id)
        env = self.resolve((props.get("Environment") or {}).get("Variables") or {})
        logging_config = self.resolve(props.get("LoggingConfig") or {})
        log_format = str(logging_config.get("LogFormat", "JSON"))
        log_level = str(logging_config.get("ApplicationLogLevel", "INFO"))
        return FunctionSpec(
            logical_id=res.logical_id,
            binary=str(self.resolve(binary)),
            timeout=int(self.resolve(props.get("Timeout", 3))),
            memory_size=int(self.resolve(props.get("MemorySize", 128))),
            environment={str(k): _env_str(v) for k, v in env.items()},
            log_format=log_format,
            log_level=log_level,
            events=props.get("Events") or {},
        )


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, separators=(",", ":"))
    return str(value)
