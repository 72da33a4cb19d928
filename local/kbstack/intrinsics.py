"""Parameters, conditions and CloudFormation intrinsic functions.

`Resolver.resolve(node)` walks a template fragment and replaces Ref, Fn::GetAtt, Fn::Sub,
Fn::Join, Fn::Select, Fn::Split, Fn::If, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition,
Fn::FindInMap, Fn::Base64, Fn::GetAZs, Fn::ToJsonString and Fn::Length by their values, and
Fn::Contains of the template's Rules.
Resources are looked up through two callbacks (Ref value, GetAtt value), so the provisioner
decides what a queue's Ref or a function's Arn is.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Callable

from .errors import StackError


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


def parse_parameters(
    declared: dict, given: dict[str, str], local_defaults: dict[str, str] | None = None
) -> dict[str, Any]:
    """Template parameter values: Default, overridden by `given`; for a parameter without a
    Default, `local_defaults` (if it names it). Validates AllowedValues / AllowedPattern /
    Min/MaxValue like CloudFormation does; list types become lists."""
    declared = declared or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise StackError(
            f"unknown template parameter {unknown[0]} (the template declares: {', '.join(sorted(declared)) or 'none'})"
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        spec = spec or {}
        ptype = str(spec.get("Type", "String"))
        if name in given:
            raw = given[name]
        elif "Default" in spec:
            raw = spec["Default"]
        elif local_defaults and name in local_defaults:
            raw = local_defaults[name]
        else:
            raise StackError(f"template parameter {name} has no default: pass --param {name}=VALUE")
        raw = _scalar_str(raw) if not isinstance(raw, list) else ",".join(_scalar_str(v) for v in raw)
        allowed = spec.get("AllowedValues")
        if allowed is not None and raw not in [_scalar_str(v) for v in allowed]:
            raise StackError(f"template parameter {name}={raw!r} is not one of {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern and not ptype.startswith("List") and not re.fullmatch(str(pattern), raw):
            raise StackError(f"template parameter {name}={raw!r} does not match AllowedPattern {pattern}")
        if "MaxLength" in spec and len(raw) > int(spec["MaxLength"]):
            raise StackError(f"template parameter {name} is longer than MaxLength {spec['MaxLength']}")
        if "MinLength" in spec and len(raw) < int(spec["MinLength"]):
            raise StackError(f"template parameter {name} is shorter than MinLength {spec['MinLength']}")
        if ptype == "Number":
            try:
                number = float(raw)
            except ValueError:
                raise StackError(f"template parameter {name}={raw!r} is not a Number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise StackError(f"template parameter {name}={raw} is below MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise StackError(f"template parameter {name}={raw} is above MaxValue {spec['MaxValue']}")
        if ptype.startswith("List<") or ptype == "CommaDelimitedList":
            # Like CloudFormation: an empty list parameter is one empty member, [""].
            values[name] = [item.strip() for item in raw.split(",")]
        else:
            values[name] = raw
    return values


def _scalar_str(value: Any) -> str:
    """CloudFormation's view of a YAML scalar: numbers and booleans are strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Resolver:
    def __init__(
        self,
        parameters: dict[str, Any],
        pseudo: dict[str, Any],
        conditions: dict | None = None,
        mappings: dict | None = None,
        ref: Callable[[str], Any] | None = None,
        getatt: Callable[[str, str], Any] | None = None,
    ):
        self.parameters = parameters
        self.pseudo = dict(pseudo)
        self.pseudo.setdefault("AWS::NoValue", NO_VALUE)
        self.raw_conditions = conditions or {}
        self.mappings = mappings or {}
        self._ref = ref
        self._getatt = getatt
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    # -- conditions ---------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        if name not in self.raw_conditions:
            raise StackError(f"template refers to an undeclared condition {name}")
        if name in self._evaluating:
            raise StackError(f"condition {name} refers to itself")
        self._evaluating.add(name)
        try:
            value = self.resolve(self.raw_conditions[name])
        finally:
            self._evaluating.discard(name)
        if not isinstance(value, bool):
            raise StackError(f"condition {name} does not evaluate to true/false")
        self._conditions[name] = value
        return value

    # -- values -------------------------------------------------------------------------
    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if self._ref is None:
            raise StackError(f"unresolvable !Ref {name}")
        return self._ref(name)

    def getatt(self, logical_id: str, attr: str) -> Any:
        if self._getatt is None:
            raise StackError(f"unresolvable !GetAtt {logical_id}.{attr}")
        return self._getatt(logical_id, attr)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.resolve(item) for item in node]
            return [item for item in out if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(self._str(self.resolve(arg), "Ref"))
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                fn = getattr(self, "_fn_" + key[4:], None)
                if fn is None:
                    raise StackError(f"unsupported intrinsic function {key}")
                return fn(arg)
        out = {}
        for key, value in node.items():
            resolved = self.resolve(value)
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

    @staticmethod
    def _str(value: Any, where: str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return _scalar_str(value)
        if not isinstance(value, str):
            raise StackError(f"{where}: expected a string, got {json.dumps(value, default=str)}")
        return value

    # -- functions ----------------------------------------------------------------------
    def _fn_GetAtt(self, arg: Any) -> Any:
        if isinstance(arg, str):
            logical_id, _, attr = arg.partition(".")
        else:
            arg = self.resolve(arg)
            if not (isinstance(arg, list) and len(arg) == 2):
                raise StackError(f"Fn::GetAtt expects [LogicalId, Attribute], got {arg!r}")
            logical_id, attr = arg
        return self.getatt(logical_id, attr)

    def _fn_Sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            if len(arg) != 2:
                raise StackError("Fn::Sub expects a string or [string, {variables}]")
            text, variables = arg[0], self.resolve(arg[1]) or {}
        else:
            text, variables = arg, {}
        text = self._str(self.resolve(text), "Fn::Sub")

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            name = name.strip()
            if name in variables:
                value = variables[name]
            elif "." in name and name.split(".", 1)[0] not in self.parameters and name not in self.pseudo:
                logical_id, attr = name.split(".", 1)
                value = self.getatt(logical_id, attr)
            else:
                value = self.ref(name)
            if isinstance(value, list):
                value = ",".join(self._str(v, "Fn::Sub") for v in value)
            return self._str(value, f"Fn::Sub ${{{name}}}")

        return _SUB_VAR.sub(replace, text)

    def _fn_Join(self, arg: Any) -> str:
        arg = self.resolve(arg)
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list)):
            raise StackError("Fn::Join expects [delimiter, [values]]")
        delimiter, values = arg
        return self._str(delimiter, "Fn::Join").join(self._str(v, "Fn::Join") for v in values)

    def _fn_Select(self, arg: Any) -> Any:
        arg = self.resolve(arg)
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list)):
            raise StackError("Fn::Select expects [index, [values]]")
        index, values = int(arg[0]), arg[1]
        if not 0 <= index < len(values):
            raise StackError(f"Fn::Select index {index} out of range for {values!r}")
        return values[index]

    def _fn_Split(self, arg: Any) -> list:
        arg = self.resolve(arg)
        if not (isinstance(arg, list) and len(arg) == 2):
            raise StackError("Fn::Split expects [delimiter, string]")
        return self._str(arg[1], "Fn::Split").split(self._str(arg[0], "Fn::Split"))

    def _fn_If(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) == 3):
            raise StackError("Fn::If expects [condition, value_if_true, value_if_false]")
        name = arg[0]
        return self.resolve(arg[1] if self.condition(name) else arg[2])

    def _fn_Equals(self, arg: Any) -> bool:
        arg = self.resolve(arg)
        if not (isinstance(arg, list) and len(arg) == 2):
            raise StackError("Fn::Equals expects [a, b]")
        a, b = (_scalar_str(v) if not isinstance(v, (list, dict)) else v for v in arg)
        return a == b

    def _fn_Not(self, arg: Any) -> bool:
        arg = self.resolve(arg)
        value = arg[0] if isinstance(arg, list) and len(arg) == 1 else arg
        if not isinstance(value, bool):
            raise StackError("Fn::Not expects [condition]")
        return not value

    def _fn_And(self, arg: Any) -> bool:
        return all(self._bools(arg, "Fn::And"))

    def _fn_Or(self, arg: Any) -> bool:
        return any(self._bools(arg, "Fn::Or"))

    def _bools(self, arg: Any, where: str) -> list[bool]:
        values = self.resolve(arg)
        if not isinstance(values, list) or not all(isinstance(v, bool) for v in values):
            raise StackError(f"{where} expects a list of conditions")
        return values

    def _fn_Contains(self, arg: Any) -> bool:
        """Rules only: is the string one of the list's members?"""
        arg = self.resolve(arg)
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], list)):
            raise StackError("Fn::Contains expects [[values], value]")
        return self._str(arg[1], "Fn::Contains") in [self._str(v, "Fn::Contains") for v in arg[0]]

    def _fn_FindInMap(self, arg: Any) -> Any:
        arg = self.resolve(arg)
        if not (isinstance(arg, list) and len(arg) >= 3):
            raise StackError("Fn::FindInMap expects [map, top key, second key]")
        try:
            return self.mappings[arg[0]][arg[1]][arg[2]]
        except (KeyError, TypeError):
            if len(arg) == 4 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                return arg[3]["DefaultValue"]
            raise StackError(f"Fn::FindInMap: no {arg[0]}/{arg[1]}/{arg[2]} in Mappings") from None

    def _fn_Base64(self, arg: Any) -> str:
        return base64.b64encode(self._str(self.resolve(arg), "Fn::Base64").encode()).decode()

    def _fn_GetAZs(self, arg: Any) -> list:
        region = self.resolve(arg) or self.pseudo.get("AWS::Region", "us-east-1")
        return [f"{region}{zone}" for zone in "abc"]

    def _fn_ToJsonString(self, arg: Any) -> str:
        return json.dumps(self.resolve(arg), separators=(",", ":"))

    def _fn_Length(self, arg: Any) -> int:
        value = self.resolve(arg)
        if not isinstance(value, list):
            raise StackError("Fn::Length expects a list")
        return len(value)

    def _fn_ImportValue(self, arg: Any) -> Any:
        raise StackError(f"Fn::ImportValue {self.resolve(arg)!r} cannot be resolved in the local stack")
