"""A tiny Lambda Runtime API client: the "function" of the local-stack tests.

It loops on GET /runtime/invocation/next and acts on the event:
  {"action": "echo"}                      -> responds {"event": ..., "headers": {...}, "pid": ...}
  {"action": "fail", "errorType": "X"}    -> POSTs /error with {"errorType": "X", "errorMessage": ...}
  {"action": "sleep", "seconds": N}       -> sleeps, then responds {"slept": N, "pid": ...}
  {"action": "exit", "code": N}           -> exits mid-invocation
  {"action": "env", "names": [...]}       -> responds with those environment variables
  {"action": "big", "bytes": N}           -> responds {"blob": "x" * N}
  {"Records": [...]} (an SQS event)       -> fails the records whose body contains "fail"
      (ReportBatchItemFailures); {"raise": true} in a body makes the whole invocation fail
Env: FAKE_INIT_ERROR=Type posts /runtime/init/error and exits; FAKE_RECORD_FILE=path appends one
JSON line per invocation (the event), for tests that count deliveries.
"""

import json
import os
import sys
import time
import urllib.request

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = f"http://{API}/2018-06-01/runtime"


def post(path, body, headers=None):
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), method="POST",
                                 headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def record(event):
    path = os.environ.get("FAKE_RECORD_FILE")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(event) + "\n")


def handle(event, headers):
    if "Records" in event:
        failures = []
        for rec in event["Records"]:
            body = rec.get("body", "")
            if '"raise": true' in body or '"raise":true' in body:
                raise RuntimeError("whole batch fails")
            if "fail" in body:
                failures.append({"itemIdentifier": rec["messageId"]})
        return {"batchItemFailures": failures}
    action = event.get("action", "echo")
    if action == "echo":
        return {"event": event, "headers": headers, "pid": os.getpid()}
    if action == "sleep":
        time.sleep(float(event["seconds"]))
        return {"slept": event["seconds"], "pid": os.getpid()}
    if action == "exit":
        os._exit(int(event.get("code", 3)))
    if action == "env":
        return {name: os.environ.get(name) for name in event["names"]}
    if action == "big":
        return {"blob": "x" * int(event["bytes"])}
    if action == "fail":
        raise LookupError(event.get("errorType", "Failed"))
    return {"unknown": action}


def main():
    if os.environ.get("FAKE_INIT_ERROR"):
        post("/init/error", {"errorType": os.environ["FAKE_INIT_ERROR"], "errorMessage": "init failed"},
             {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
        time.sleep(5)
        sys.exit(1)
    print(json.dumps({"level": "INFO", "message": "fake function started", "pid": os.getpid()}), flush=True)
    while True:
        with urllib.request.urlopen(BASE + "/invocation/next", timeout=3600) as resp:
            request_id = resp.headers["Lambda-Runtime-Aws-Request-Id"]
            headers = {k: resp.headers[k] for k in (
                "Lambda-Runtime-Aws-Request-Id", "Lambda-Runtime-Deadline-Ms",
                "Lambda-Runtime-Invoked-Function-Arn", "Lambda-Runtime-Trace-Id")}
            event = json.loads(resp.read() or b"null")
        record(event)
        try:
            result = handle(event, headers)
        except LookupError as exc:
            post(f"/invocation/{request_id}/error", {"errorType": str(exc), "errorMessage": f"failed with {exc}"},
                 {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
            continue
        except Exception as exc:  # noqa: BLE001
            post(f"/invocation/{request_id}/error", {"errorType": type(exc).__name__, "errorMessage": str(exc)},
                 {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
            continue
        print(json.dumps({"level": "INFO", "message": "handled", "requestId": request_id}), flush=True)
        post(f"/invocation/{request_id}/response", result)


if __name__ == "__main__":
    main()
