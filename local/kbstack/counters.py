"""Request and invocation counters of the local stack, for the benchmark (`make bench`).

moto keeps no request counts and the function host keeps no invocation statistics, so this
module does both, in memory, and serves them at `GET {moto endpoint}/_kbstack/counters`:

  {"requests": {CALLER: {SERVICE: {ACTION: n}}},
   "empty_receives": {CALLER: n},
   "invocations": {BINARY: {"count": n, "errors": n, "events": n, "durations_ms": [...]}}}

CALLER says who made the request, from its User-Agent, because only some callers are part of
the service's cost: `functions` (the Rust SDK in the function binaries), `bench` (the Rust SDK
with the app name `kb-autosync-bench`: uploads and observation), `stack` (boto3 inside this
process: Step Functions service integrations, the SQS event source mapping pollers, the sweep).
`empty_receives` counts ReceiveMessage calls that returned no message (idle polling, which does
not grow with the number of changes). Counting never changes a request or its response.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

PATH = "/_kbstack/counters"
BENCH_APP_NAME = "kb-autosync-bench"

_lock = threading.Lock()
_requests: dict[str, dict[str, dict[str, int]]] = {}
_empty_receives: dict[str, int] = {}
_invocations: dict[str, dict[str, Any]] = {}


def snapshot() -> dict[str, Any]:
    with _lock:
        return json.loads(json.dumps({"requests": _requests, "empty_receives": _empty_receives,
                                      "invocations": _invocations}))


def record_request(caller: str, service: str, action: str) -> None:
    with _lock:
        by_action = _requests.setdefault(caller, {}).setdefault(service, {})
        by_action[action] = by_action.get(action, 0) + 1


def record_invocation(binary: str, duration_ms: float, errored: bool, payload: bytes) -> None:
    events = 1
    if payload.startswith(b'{"Records"'):  # SQS batches: count the messages, not the call
        try:
            events = len(json.loads(payload).get("Records") or []) or 1
        except ValueError:
            pass
    with _lock:
        stats = _invocations.setdefault(binary, {"count": 0, "errors": 0, "events": 0, "durations_ms": []})
        stats["count"] += 1
        stats["errors"] += int(errored)
        stats["events"] += events
        stats["durations_ms"].append(round(duration_ms, 3))


def caller_of(user_agent: str) -> str:
    if BENCH_APP_NAME in user_agent:
        return "bench"
    if "aws-sdk-rust" in user_agent:
        return "functions"
    return "stack"


def service_of(environ: dict) -> str:
    # SigV4: Credential=KEY/DATE/REGION/SERVICE/aws4_request
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker in auth:
        scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            return scope[3]
    return "unsigned"


def action_of(environ: dict, service: str, body: bytes | None) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:  # JSON protocols: DynamoDB, SQS, Step Functions, EventBridge
        return target.rsplit(".", 1)[-1]
    if body is not None:  # query protocol: SNS (and SQS from older clients)
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")
    if service == "lambda" and path.endswith("/invocations"):
        return "Invoke"
    if service == "s3":
        if method == "POST" and "delete" in environ.get("QUERY_STRING", ""):
            return "DeleteObjects"
        if len([p for p in path.split("/") if p]) < 2:  # path-style: /BUCKET
            return "ListObjects" if method == "GET" else f"{method} bucket"
        return {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject",
                "DELETE": "DeleteObject"}.get(method, method)
    return f"{method} {path.split('?', 1)[0]}"


class CountingMiddleware:
    """WSGI middleware in front of moto's application."""

    def __init__(self, app: Callable):
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH:
            body = json.dumps(snapshot()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        service = service_of(environ)
        body = None
        if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
            # Read the form once to name the action, and hand moto the same bytes.
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
        action = action_of(environ, service, body)
        caller = caller_of(environ.get("HTTP_USER_AGENT", ""))
        record_request(caller, service, action)
        if action != "ReceiveMessage":
            return self.app(environ, start_response)
        response = self.app(environ, start_response)
        try:
            chunks = list(response)
        finally:
            if hasattr(response, "close"):
                response.close()
        if b"MessageId" not in b"".join(chunks):
            with _lock:
                _empty_receives[caller] = _empty_receives.get(caller, 0) + 1
        return chunks
