"""Lambda function host: pools of long-lived function processes behind the Lambda Runtime API.

Each process ("incarnation") gets its own Runtime API server on 127.0.0.1 and
AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT. Implemented endpoints (2018-06-01):

  GET  /2018-06-01/runtime/invocation/next          -> event, with Lambda-Runtime-Aws-Request-Id,
       Lambda-Runtime-Deadline-Ms, Lambda-Runtime-Invoked-Function-Arn, Lambda-Runtime-Trace-Id
  POST /2018-06-01/runtime/invocation/{id}/response -> 202
  POST /2018-06-01/runtime/invocation/{id}/error    -> 202 (Lambda-Runtime-Function-Error-Type,
       body {errorType, errorMessage[, stackTrace]}; the body's errorType wins over the header)
  POST /2018-06-01/runtime/init/error               -> 202, the process is then ended

`FunctionPool.invoke(payload)` queues the invocation until a process is idle (no throttling),
enforces the function Timeout (the process is killed and replaced; the result is
`Sandbox.Timedout`), and reports a process that exits mid-invocation as `Runtime.ExitError`,
like Lambda. Platform records (platform.start / platform.report) are appended to the same log
file as the function's own stdout/stderr, in the function's log format.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import counters, procs

_PREFIX = "/2018-06-01/runtime/"
log = logging.getLogger("kbstack.function_host")


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class Invocation:
    def __init__(self, payload: bytes):
        self.request_id = str(uuid.uuid4())
        self.payload = payload
        self.trace_id = _trace_id()
        self.assigned = threading.Event()
        self.done = threading.Event()
        self.deadline: float | None = None  # epoch seconds, set when handed to a process
        self.started: float | None = None
        self.incarnation: "Incarnation | None" = None
        self.result: bytes = b""
        self.error_type: str | None = None
        self.status = "pending"
        self.duration_ms = 0.0
        self._lock = threading.Lock()
        self._finished = False

    def finish(self, payload: bytes, error_type: str | None, status: str, report=None) -> bool:
        """First finisher wins; `report(self)` (the platform.report log line) runs before the
        invoker is woken, so a caller that reads the log after invoke() sees it."""
        with self._lock:
            if self._finished:
                return False
            self._finished = True
            self.result = payload
            self.error_type = error_type
            self.status = status
            if self.started is not None:
                self.duration_ms = (time.time() - self.started) * 1000
        if report is not None and self.started is not None:
            report(self)
        self.assigned.set()
        self.done.set()
        return True

    @property
    def errored(self) -> bool:
        return self.error_type is not None


@dataclass
class FunctionConfig:
    name: str  # FunctionName (physical)
    arn: str
    command: list[str]
    environment: dict[str, str]
    timeout: float = 3.0
    memory_size: int = 128
    workers: int = 2
    log_path: str | None = None
    log_format: str = "JSON"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_RuntimeApiServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") != _PREFIX + "invocation/next":
            self._send(404, error_payload("NotFound", f"no route {self.path}"))
            return
        inv = self.server.incarnation.next_invocation()
        if inv is None:
            self._send(500, error_payload("Runtime.Shutdown", "the function host is stopping"), {"Connection": "close"})
            self.close_connection = True
            return
        pool = self.server.incarnation.pool
        self._send(
            200,
            inv.payload,
            {
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(int((inv.deadline or time.time()) * 1000)),
                "Lambda-Runtime-Invoked-Function-Arn": pool.config.arn,
                "Lambda-Runtime-Trace-Id": inv.trace_id,
            },
        )

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        inc = self.server.incarnation
        path = self.path.rstrip("/")
        if path == _PREFIX + "init/error":
            inc.init_failed(self._error(body))
            self._send(202, b'{"status":"OK"}')
            return
        if path.startswith(_PREFIX + "invocation/"):
            parts = path[len(_PREFIX + "invocation/"):].split("/")
            if len(parts) == 2 and parts[1] in ("response", "error"):
                request_id = parts[0]
                if parts[1] == "response":
                    ok = inc.complete(request_id, body, None)
                else:
                    error_type, payload = self._error(body)
                    ok = inc.complete(request_id, payload, error_type)
                if ok:
                    self._send(202, b'{"status":"OK"}')
                else:
                    self._send(400, error_payload("InvalidRequestID", f"unknown or finished request id {request_id}"))
                return
        self._send(404, error_payload("NotFound", f"no route {self.path}"))

    def _error(self, body: bytes) -> tuple[str, bytes]:
        header_type = self.headers.get("Lambda-Runtime-Function-Error-Type") or "Unhandled"
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            return header_type, error_payload(header_type, body.decode("utf-8", "replace"))
        error_type = str(doc.get("errorType") or header_type)
        out: dict[str, Any] = {"errorType": error_type, "errorMessage": str(doc.get("errorMessage", ""))}
        if isinstance(doc.get("stackTrace"), list):
            out["stackTrace"] = doc["stackTrace"]
        return error_type, json.dumps(out).encode()


class _RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, incarnation: "Incarnation"):
        self.incarnation = incarnation
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A process killed (timeout, shutdown) while it waits in /next: nothing to report.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            log.warning("Runtime API of %s: %r", self.incarnation.pool.config.name, exc)


class Incarnation:
    """One process of a function and its Runtime API server."""

    def __init__(self, pool: "FunctionPool", slot: int, generation: int):
        self.pool = pool
        self.slot = slot
        self.generation = generation
        self.alive = True
        self.ready = False  # called /next at least once
        self.assigned: Invocation | None = None  # handed to a waiting /next
        self.current: Invocation | None = None  # returned by /next, not yet answered
        self.init_error: tuple[str, bytes] | None = None
        self.server = _RuntimeApiServer(self)
        self._server_thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True,
                                               name=f"runtime-api-{pool.config.name}-{slot}")
        self._server_thread.start()
        cfg = pool.config
        env = dict(cfg.environment)
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{self.server.server_address[1]}"
        env["AWS_LAMBDA_LOG_STREAM_NAME"] = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{secrets.token_hex(16)}"
        self.proc = procs.popen(
            cfg.command, env=env, stdin=procs.subprocess.DEVNULL, stdout=pool.log_fd, stderr=pool.log_fd,
            cwd=os.path.dirname(cfg.command[-1]) or None,
        )
        threading.Thread(target=self._watch, daemon=True, name=f"watch-{cfg.name}-{slot}").start()

    def _watch(self) -> None:
        code = self.proc.wait()
        self.pool._on_exit(self, code)

    # -- called by the Runtime API handlers ---------------------------------------------
    def next_invocation(self) -> Invocation | None:
        pool = self.pool
        with pool.cond:
            if not self.alive or pool.closed:
                return None
            if self.current is not None:
                # /next without answering the previous event: Lambda treats it as answered
                # with null. Keep the caller from hanging.
                inv, self.current = self.current, None
                inv.finish(b"null", None, "success")
            self.ready = True
            pool.fail_streak = 0
            pool.idle.append(self)
            pool._dispatch()
            while self.alive and self.assigned is None and not pool.closed:
                pool.cond.wait(1.0)
            inv = self.assigned
            if inv is None:
                return None
            self.assigned = None
            self.current = inv
        pool._platform_start(inv)
        return inv

    def complete(self, request_id: str, payload: bytes, error_type: str | None) -> bool:
        pool = self.pool
        with pool.cond:
            inv = self.current
            if inv is None or inv.request_id != request_id:
                return False
            self.current = None
        inv.finish(payload, error_type, "error" if error_type else "success", report=pool._platform_report)
        return True

    def init_failed(self, error: tuple[str, bytes]) -> None:
        self.init_error = error
        # Lambda ends the runtime after an init error; the watcher then reports and restarts.
        threading.Thread(target=procs.kill, args=(self.proc,), daemon=True).start()

    def shutdown(self, grace: float = 0.5) -> None:
        if grace > 0:
            procs.terminate(self.proc, grace=grace)
        else:
            procs.kill(self.proc)
        self.server.shutdown()
        self.server.server_close()


class FunctionPool:
    """Up to `workers` processes of one function."""

    def __init__(self, config: FunctionConfig):
        self.config = config
        self.cond = threading.Condition()
        self.pending: deque[Invocation] = deque()
        self.idle: deque[Incarnation] = deque()
        self.slots: list[Incarnation | None] = [None] * max(1, config.workers)
        self.generations = [0] * len(self.slots)
        self.closed = False
        self.fail_streak = 0
        path = config.log_path or os.devnull
        self.log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "FunctionPool":
        for slot in range(len(self.slots)):
            self._spawn(slot)
        return self

    def _spawn(self, slot: int) -> None:
        with self.cond:
            if self.closed:
                return
            self.generations[slot] += 1
            generation = self.generations[slot]
        inc = Incarnation(self, slot, generation)
        with self.cond:
            if self.closed:
                stale = inc
            else:
                stale = None
                self.slots[slot] = inc
        if stale is not None:
            stale.alive = False
            stale.shutdown()

    def close(self) -> None:
        for thread in self.begin_close():
            thread.join()
        self.close_log()

    def close_log(self) -> None:
        fd, self.log_fd = self.log_fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass

    def begin_close(self) -> list[threading.Thread]:
        """Stop accepting work; returns the started threads that end the processes."""
        with self.cond:
            self.closed = True
            incs = [inc for inc in self.slots if inc is not None]
            for inc in incs:
                inc.alive = False
            for inv in list(self.pending):
                inv.finish(error_payload("Runtime.Shutdown", "the function host is stopping"), "Runtime.Shutdown", "error")
            self.pending.clear()
            self.idle.clear()
            self.cond.notify_all()
        threads = []
        for inc in incs:
            for inv in (inc.assigned, inc.current):
                if inv is not None:
                    inv.finish(error_payload("Runtime.Shutdown", "the function host is stopping"), "Runtime.Shutdown", "error")
            thread = threading.Thread(target=inc.shutdown, daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def pids(self) -> list[int]:
        with self.cond:
            return [inc.proc.pid for inc in self.slots if inc is not None and inc.alive]

    # -- invocations -------------------------------------------------------------------
    def invoke(self, payload: bytes | str) -> Invocation:
        if isinstance(payload, str):
            payload = payload.encode()
        inv = Invocation(payload)
        with self.cond:
            if self.closed:
                inv.finish(error_payload("Runtime.Shutdown", "the function host is stopping"), "Runtime.Shutdown", "error")
                return inv
            self.pending.append(inv)
            self._dispatch()
        inv.assigned.wait()
        if not inv.done.is_set():
            remaining = (inv.deadline or time.time()) - time.time()
            if not inv.done.wait(max(0.0, remaining)):
                self._timed_out(inv)
        inv.done.wait()
        return inv

    def _dispatch(self) -> None:  # with self.cond held
        while self.pending and self.idle:
            inc = self.idle.popleft()
            if not inc.alive or inc.assigned is not None:
                continue
            inv = self.pending.popleft()
            inv.started = time.time()
            inv.deadline = inv.started + self.config.timeout
            inv.incarnation = inc
            inc.assigned = inv
            inv.assigned.set()
        self.cond.notify_all()

    def _timed_out(self, inv: Invocation) -> None:
        with self.cond:
            inc = inv.incarnation
            message = f"RequestId: {inv.request_id} Error: Task timed out after {self.config.timeout:.2f} seconds"
            if inv.done.is_set():
                return
            if inc is not None:
                self._retire(inc)
        # A response racing the timeout may still win here; the process is replaced either way.
        inv.finish(error_payload("Sandbox.Timedout", message), "Sandbox.Timedout", "timeout",
                   report=self._platform_report)
        if inc is not None:
            inc.shutdown(grace=0)  # Lambda does not wait for a timed-out sandbox
            self._spawn(inc.slot)

    def _retire(self, inc: Incarnation) -> None:  # with self.cond held
        inc.alive = False
        try:
            self.idle.remove(inc)
        except ValueError:
            pass
        self.cond.notify_all()

    def _on_exit(self, inc: Incarnation, code: int) -> None:
        failed: list[Invocation] = []
        with self.cond:
            if not inc.alive:  # retired on purpose (timeout, shutdown)
                return
            self._retire(inc)
            status = f"signal: {-code}" if code < 0 else f"exit status {code}"
            for inv in (inc.assigned, inc.current):
                if inv is not None:
                    msg = f"RequestId: {inv.request_id} Error: Runtime exited with error: {status}"
                    failed.append((inv, error_payload("Runtime.ExitError", msg), "Runtime.ExitError"))
            if not inc.ready:
                # Init failure: the oldest waiting invocation gets the init error, like Lambda.
                self.fail_streak += 1
                if self.pending:
                    inv = self.pending.popleft()
                    if inc.init_error is not None:
                        error_type, payload = inc.init_error
                    else:
                        error_type = "Runtime.ExitError"
                        payload = error_payload(error_type, f"RequestId: {inv.request_id} Error: Runtime exited during init: {status}")
                    failed.append((inv, payload, error_type))
            delay = min(5.0, 0.2 * (2 ** max(0, self.fail_streak - 1))) if self.fail_streak else 0.0
            closed = self.closed
        for inv, payload, error_type in failed:
            inv.finish(payload, error_type, "error", report=self._platform_report)
        inc.server.shutdown()
        inc.server.server_close()
        procs.kill(inc.proc)
        if not closed:
            if delay:
                timer = threading.Timer(delay, self._spawn, args=(inc.slot,))
                timer.daemon = True
                timer.start()
            else:
                self._spawn(inc.slot)

    # -- platform log records ------------------------------------------------------------
    def _log(self, line: str) -> None:
        try:
            os.write(self.log_fd, (line + "\n").encode())
        except OSError:
            pass

    def _platform_start(self, inv: Invocation) -> None:
        if self.config.log_format.upper() == "JSON":
            self._log(json.dumps({"time": _now_iso(), "type": "platform.start",
                                  "record": {"requestId": inv.request_id, "functionArn": self.config.arn, "version": "$LATEST"}}))
        else:
            self._log(f"START RequestId: {inv.request_id} Version: $LATEST")

    def _platform_report(self, inv: Invocation) -> None:
        counters.record_invocation(os.path.basename(self.config.command[-1]), inv.duration_ms, inv.errored,
                                   inv.payload)
        duration = round(inv.duration_ms, 2)
        if self.config.log_format.upper() == "JSON":
            record: dict[str, Any] = {
                "requestId": inv.request_id,
                "metrics": {"durationMs": duration, "billedDurationMs": int(duration) + 1,
                            "memorySizeMB": self.config.memory_size, "maxMemoryUsedMB": 0},
                "status": inv.status,
            }
            if inv.error_type:
                record["errorType"] = inv.error_type
            self._log(json.dumps({"time": _now_iso(), "type": "platform.report", "record": record}))
        else:
            if inv.status == "timeout":
                self._log(f"{_now_iso()} {inv.request_id} Task timed out after {self.config.timeout:.2f} seconds")
            self._log(f"END RequestId: {inv.request_id}")
            self._log(f"REPORT RequestId: {inv.request_id}\tDuration: {duration} ms\tMemory Size: {self.config.memory_size} MB")


class FunctionHost:
    """All pools, by FunctionName (and by ARN)."""

    def __init__(self) -> None:
        self.pools: dict[str, FunctionPool] = {}

    def add(self, config: FunctionConfig) -> FunctionPool:
        pool = FunctionPool(config)
        self.pools[config.name] = pool
        return pool

    def get(self, name_or_arn: str) -> FunctionPool | None:
        if name_or_arn in self.pools:
            return self.pools[name_or_arn]
        if name_or_arn.startswith("arn:"):
            # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
            parts = name_or_arn.split(":")
            if len(parts) >= 7:
                return self.pools.get(parts[6])
        return self.pools.get(name_or_arn.split(":")[0])

    def start(self) -> None:
        for pool in self.pools.values():
            pool.start()

    def close(self) -> None:
        threads = []
        for pool in self.pools.values():
            threads.extend(pool.begin_close())
        for thread in threads:
            thread.join()
        for pool in self.pools.values():
            pool.close_log()
