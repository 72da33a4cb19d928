"""Load CloudFormation / SAM templates (YAML or JSON) with the short-form intrinsic tags.

`!Ref X` becomes `{"Ref": "X"}`, `!GetAtt A.B` becomes `{"Fn::GetAtt": ["A", "B"]}`,
`!Condition C` becomes `{"Condition": "C"}`, and every other `!Name ...` becomes
`{"Fn::Name": ...}` (Sub, Join, Select, Split, If, Equals, Not, And, Or, FindInMap, Base64,
GetAZs, ImportValue, Cidr, Transform, ToJsonString, Length, and Contains of Rules).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import StackError

_FN_TAGS = (
    "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or", "FindInMap",
    "Base64", "GetAZs", "ImportValue", "Cidr", "Transform", "ToJsonString", "Length", "Contains",
)


class CfnLoader(yaml.SafeLoader):
    """SafeLoader plus the CloudFormation tags. Like CloudFormation, it keeps YAML 1.1
    timestamps and similar as strings only where they are quoted; unquoted dates are
    turned back into strings below."""


def _construct(loader: CfnLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _ref(loader: CfnLoader, node: yaml.Node) -> Any:
    return {"Ref": _construct(loader, node)}


def _condition(loader: CfnLoader, node: yaml.Node) -> Any:
    return {"Condition": _construct(loader, node)}


def _getatt(loader: CfnLoader, node: yaml.Node) -> Any:
    value = _construct(loader, node)
    if isinstance(value, str):
        # "Resource.Attr" or "Resource.Nested.Attr": split at the first dot only
        logical_id, _, attr = value.partition(".")
        return {"Fn::GetAtt": [logical_id, attr]}
    return {"Fn::GetAtt": value}


def _fn(name: str):
    def construct(loader: CfnLoader, node: yaml.Node) -> Any:
        return {f"Fn::{name}": _construct(loader, node)}

    return construct


def _timestamp_as_string(loader: CfnLoader, node: yaml.Node) -> Any:
    # CloudFormation reads `2010-09-09` as the string it is (AWSTemplateFormatVersion).
    return loader.construct_scalar(node)


CfnLoader.add_constructor("!Ref", _ref)
CfnLoader.add_constructor("!Condition", _condition)
CfnLoader.add_constructor("!GetAtt", _getatt)
for _name in _FN_TAGS:
    CfnLoader.add_constructor(f"!{_name}", _fn(_name))
CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_string)


def loads(text: str, source: str = "<template>") -> dict:
    """Parse template text; raise StackError with the position on a syntax error."""
    try:
        doc = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader derives from SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StackError(f"cannot parse template {source}{where}: {problem}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("Resources"), dict):
        raise StackError(f"cannot parse template {source}: no Resources mapping at the top level")
    return doc


def load(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StackError(f"cannot read template {path}: {exc.strerror}") from None
    return loads(text, str(path))
