"""The Runtime API host driving tests/fake_function.py: success, errorType, timeout, crash, init error."""

import json
import threading
import time

from conftest import wait_for


def _json(inv):
    return json.loads(inv.result)


def test_success_with_runtime_headers(make_pool):
    pool = make_pool("fh-echo", timeout=5)
    before = time.time()
    inv = pool.invoke(json.dumps({"action": "echo", "n": 1}))
    assert not inv.errored and inv.status == "success"
    out = _json(inv)
    assert out["event"] == {"action": "echo", "n": 1}
    headers = out["headers"]
    assert headers["Lambda-Runtime-Aws-Request-Id"] == inv.request_id
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == "arn:aws:lambda:us-east-1:123456789012:function:fh-echo"
    deadline_ms = int(headers["Lambda-Runtime-Deadline-Ms"])
    assert before * 1000 + 4000 < deadline_ms < time.time() * 1000 + 5000
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    log = open(pool.config.log_path).read()
    assert '"type": "platform.start"' in log and '"status": "success"' in log
    assert "fake function started" in log  # the process's own stdout goes to the same file


def test_error_with_error_type(make_pool):
    pool = make_pool("fh-error")
    inv = pool.invoke(json.dumps({"action": "fail", "errorType": "DataSourceBusy"}))
    assert inv.errored and inv.error_type == "DataSourceBusy"
    assert _json(inv) == {"errorType": "DataSourceBusy", "errorMessage": "failed with DataSourceBusy"}
    # the process survives a handled error
    assert not pool.invoke(json.dumps({"action": "echo"})).errored


def test_timeout_kills_and_replaces_the_process(make_pool):
    pool = make_pool("fh-timeout", timeout=1.0)
    first_pid = _json(pool.invoke(json.dumps({"action": "echo"})))["pid"]
    started = time.monotonic()
    inv = pool.invoke(json.dumps({"action": "sleep", "seconds": 30}))
    elapsed = time.monotonic() - started
    assert inv.error_type == "Sandbox.Timedout" and inv.status == "timeout"
    assert "Task timed out after 1.00 seconds" in _json(inv)["errorMessage"]
    assert 0.9 < elapsed < 3.0
    after = pool.invoke(json.dumps({"action": "echo"}))
    assert not after.errored and _json(after)["pid"] != first_pid
    assert '"status": "timeout"' in open(pool.config.log_path).read()


def test_process_exit_mid_invocation_is_runtime_exit_error(make_pool):
    pool = make_pool("fh-exit")
    inv = pool.invoke(json.dumps({"action": "exit", "code": 7}))
    assert inv.error_type == "Runtime.ExitError"
    assert "exit status 7" in _json(inv)["errorMessage"]
    assert not pool.invoke(json.dumps({"action": "echo"})).errored  # restarted


def test_init_error_fails_the_waiting_invocation(make_pool):
    pool = make_pool("fh-init", env={"FAKE_INIT_ERROR": "Config.Missing"})
    inv = pool.invoke(json.dumps({"action": "echo"}))
    assert inv.error_type == "Config.Missing"
    assert _json(inv)["errorMessage"] == "init failed"


def test_workers_run_invocations_concurrently_and_queue_beyond(make_pool):
    pool = make_pool("fh-pool", workers=2, timeout=10)
    wait_for(lambda: len(pool.idle) == 2, message="two idle workers")
    results = []

    def call():
        results.append(pool.invoke(json.dumps({"action": "sleep", "seconds": 0.6})))

    threads = [threading.Thread(target=call) for _ in range(3)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert all(not r.errored for r in results)
    assert len({_json(r)["pid"] for r in results}) == 2
    assert 1.1 < elapsed < 2.5  # 2 in parallel, the third waits for a free process (no throttling)
