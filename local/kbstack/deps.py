"""Check the launcher's Python packages before anything imports them (stdlib only here)."""

from __future__ import annotations

import importlib.util

INSTALL = ("python3 -m venv .local/venv && .local/venv/bin/pip install -r tools/requirements-stack.txt "
           "(from the repository root), then run .local/venv/bin/python local/stack.py")

# import name -> distribution (as pinned in tools/requirements-stack.txt)
REQUIRED = {
    "yaml": "PyYAML",
    "boto3": "boto3 (moto[server])",
    "moto": "moto[server]==5.2.5",
    "werkzeug": "werkzeug (moto[server])",
    "flask": "flask (moto[server])",
    "flask_cors": "flask-cors (moto[server])",
    "antlr4": "antlr4-python3-runtime (moto[server], Step Functions)",
    "jsonpath_ng": "jsonpath-ng (moto[server], Step Functions)",
}


def missing() -> list[str]:
    return [dist for name, dist in REQUIRED.items() if importlib.util.find_spec(name) is None]


def check() -> str | None:
    """None when everything is importable, else the one-line error."""
    absent = missing()
    if not absent:
        return None
    return f"missing Python packages: {', '.join(absent)}; install them with: {INSTALL}"
