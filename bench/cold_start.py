#!/usr/bin/env python3
"""Cold start benchmark of the five kb-autosync Lambda binaries (Python 3 standard library only).

For each function binary it measures
  (a) the binary's size,
  (b) the cold start: time from spawning the process until its first
      GET /2018-06-01/runtime/invocation/next arrives at a fake Lambda Runtime API that this
      script serves on 127.0.0.1 (random port),
  (c) the peak RSS of the process up to that request (GNU time, `/usr/bin/time -f %M`).
The process is stopped (SIGTERM, then SIGKILL) as soon as its first /next request arrives; the
request is never answered.

AWS endpoints: by default AWS_ENDPOINT_URL points at the same local server, which records every
AWS request a binary makes before /next and answers the two Bedrock Agent calls event-processor
makes at cold start (ListDataSources, GetDataSource: it checks the scope of every route, even of
routes that name their data_source_id). The numbers then contain no network latency. With
--real-aws no endpoint is overridden (the calls go to AWS with fake credentials and fail).

Examples:
  python3 bench/cold_start.py --bin-dir target/release
  python3 bench/cold_start.py --bin-dir target/release --runs 50 --json > cold_start.json
  python3 bench/cold_start.py --sizes-only --bin-dir target/lambda   # target/lambda/NAME/bootstrap
"""

import argparse
import http
import http.server
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

FUNCTIONS = ["event-processor", "sync-processor", "check-quota", "start-sync", "monitor-sync"]
GNU_TIME = "/usr/bin/time"
NEXT_PATH = "/2018-06-01/runtime/invocation/next"

KB = "KB12345678"
DS = "DS12345678"
ROUTES = json.dumps(
    [{"bucket": "b", "prefix": "docs/", "knowledge_base_id": KB, "data_source_id": DS}],
    separators=(",", ":"),
)

ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64", 0x03: "i386", 0x28: "arm", 0xF3: "riscv64"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(msg):
    log(f"error: {msg}")
    sys.exit(1)


# --------------------------------------------------------------------------------------------
# Fake Lambda Runtime API (and AWS endpoint stub) on one port.
# --------------------------------------------------------------------------------------------


class Run:
    """One process start. Filled in by the server threads."""

    def __init__(self):
        self.next_at = None  # perf_counter() when the first /next request was read
        self.reached_next = threading.Event()
        self.done = threading.Event()  # set when the process is gone; releases held /next
        self.aws_calls = []  # "METHOD path" of every non-Runtime-API request


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    current = None  # the Run in progress (runs are strictly sequential)


def _data_source_summary():
    return {
        "knowledgeBaseId": KB,
        "dataSourceId": DS,
        "name": "docs",
        "status": "AVAILABLE",
        "updatedAt": "2024-01-01T00:00:00.000Z",
    }


def _data_source():
    return {
        "knowledgeBaseId": KB,
        "dataSourceId": DS,
        "name": "docs",
        "status": "AVAILABLE",
        "dataSourceConfiguration": {
            "type": "S3",
            "s3Configuration": {"bucketArn": "arn:aws:s3:::b", "inclusionPrefixes": ["docs/"]},
        },
        "dataDeletionPolicy": "DELETE",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "updatedAt": "2024-01-01T00:00:00.000Z",
    }


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, and each reply in one write: otherwise Nagle + the client's delayed ACK add
    # ~40 ms to every stubbed AWS call.
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _reply(self, status, obj):
        data = json.dumps(obj).encode()
        head = (f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
        self.wfile.write(head.encode() + data)  # headers and body in one write

    def _handle(self, method):
        now = time.perf_counter()
        run = self.server.current
        path = self.path.split("?", 1)[0]
        if method == "GET" and path == NEXT_PATH:
            if run is None:
                self.close_connection = True
                return
            if run.next_at is None:
                run.next_at = now
                run.reached_next.set()
            # Hold the connection, never answer: the measurement ends at the request.
            run.done.wait(60)
            self.close_connection = True
            return
        self._body()
        if path.startswith("/2018-06-01/runtime/"):
            # init/error or anything else of the Runtime API: acknowledge.
            if run is not None:
                run.aws_calls.append(f"RUNTIME {method} {path}")
            self._reply(202, {"status": "OK"})
            return
        if run is not None:
            run.aws_calls.append(f"{method} {path}")
        # Bedrock Agent (restJson1): the scope check event-processor does at cold start.
        parts = [p for p in path.split("/") if p]
        if len(parts) == 3 and parts[0] == "knowledgebases" and parts[2] == "datasources":
            self._reply(200, {"dataSourceSummaries": [_data_source_summary()]})
        elif len(parts) == 4 and parts[0] == "knowledgebases" and parts[2] == "datasources":
            self._reply(200, {"dataSource": _data_source()})
        else:
            # Not expected before /next: a non-retryable error, recorded in aws_calls.
            self._reply(400, {"__type": "ValidationException", "message": "cold_start.py stub"})

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")


# --------------------------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------------------------


def find_binary(bin_dir, name):
    """target/release/NAME or target/lambda/NAME/bootstrap."""
    for path in (os.path.join(bin_dir, name, "bootstrap"), os.path.join(bin_dir, name)):
        if os.path.isfile(path):
            return path
    return None


def elf_arch(path):
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return "?"
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return "not ELF"
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return ELF_MACHINES.get(machine, f"e_machine={machine:#x}")


def host_arch():
    m = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m.lower(), m)


def function_env(name, port, real_aws):
    env = {
        "ROUTES": ROUTES,
        "TRACKING_TABLE_NAME": "t",
        "METADATA_TABLE_NAME": "m",
        "SOURCES_TABLE_NAME": "s",
        "SYNC_QUEUE_URL": "http://127.0.0.1:1/q",
        "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:sm",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
    }
    if not real_aws:
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    return env


def child_pids(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        pass
    kids = []  # fallback: scan /proc for the parent pid
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def read_text(path, limit=20000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-limit:]
    except OSError:
        return ""


class RunFailed(Exception):
    pass


def run_once(server, name, path, env, timeout, workdir):
    """Starts the binary under GNU time; returns (cold_start_ms, peak_rss_kib, aws_calls, hwm)."""
    run = Run()
    server.current = run
    out_path = os.path.join(workdir, "stdout")
    err_path = os.path.join(workdir, "stderr")
    rss_path = os.path.join(workdir, "rss")
    for p in (out_path, err_path, rss_path):
        if os.path.exists(p):
            os.unlink(p)
    cmd = [GNU_TIME, "-f", "%M", "-o", rss_path, path]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    hwm = None
    try:
        deadline = t0 + timeout
        while not run.reached_next.wait(0.002):
            if proc.poll() is not None:
                raise RunFailed(f"{name} exited (status {proc.returncode}) before polling /next")
            if time.perf_counter() > deadline:
                raise RunFailed(f"{name} did not poll /next within {timeout:.0f} s")
        # Stop the binary itself (GNU time must survive to report %M).
        kids = child_pids(proc.pid)
        for kid in kids:
            hwm = vm_hwm_kib(kid)
            os.kill(kid, signal.SIGTERM)
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            for kid in child_pids(proc.pid):
                os.kill(kid, signal.SIGKILL)
            proc.wait(5)
    except RunFailed as e:
        if proc.poll() is None:
            for kid in child_pids(proc.pid):
                os.kill(kid, signal.SIGKILL)
            proc.wait(5)
        run.done.set()
        detail = [str(e)]
        if run.aws_calls:
            detail.append("requests it made to the local server: " + ", ".join(run.aws_calls))
        detail.append("--- stdout ---\n" + read_text(out_path))
        detail.append("--- stderr ---\n" + read_text(err_path))
        detail.append("--- GNU time ---\n" + read_text(rss_path))
        raise RunFailed("\n".join(detail)) from None
    finally:
        run.done.set()
        server.current = None
    lines = [l.strip() for l in read_text(rss_path).splitlines() if l.strip()]
    try:
        rss = int(lines[-1])
    except (IndexError, ValueError):
        raise RunFailed(f"{name}: cannot read GNU time output: {lines!r}") from None
    return (run.next_at - t0) * 1000.0, rss, list(run.aws_calls), hwm


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def p95(values):
    """Nearest-rank 95th percentile (for 20 runs: the 19th smallest)."""
    s = sorted(values)
    return s[max(0, math.ceil(0.95 * len(s)) - 1)]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def fmt_size(n):
    return f"{n / 1048576:.2f} MiB"


def print_table(results, meta, sizes_only, file):
    p = lambda s="": print(s, file=file)
    if sizes_only:
        p(f"{'function':<16} {'arch':<8} {'size (bytes)':>13} {'size':>10}  path")
        for r in results:
            p(f"{r['name']:<16} {r['arch']:<8} {r['size_bytes']:>13,} {fmt_size(r['size_bytes']):>10}  {r['path']}")
        return
    p(f"cold start to first /next: {meta['runs']} runs per function (+1 unmeasured check run), "
      f"AWS endpoints: {meta['aws_endpoints']}")
    p(f"CPU: {meta['cpu_model']} ({meta['cpus']} CPUs), load avg before/after: "
      f"{meta['loadavg_before']} / {meta['loadavg_after']}")
    p()
    p(f"{'function':<16} {'size':>10} {'min ms':>8} {'median ms':>10} {'p95 ms':>8} "
      f"{'max RSS KiB':>12}  AWS calls before /next")
    for r in results:
        c = r["cold_start_ms"]
        calls = ", ".join(r["aws_calls_before_next"]) or "none"
        p(f"{r['name']:<16} {fmt_size(r['size_bytes']):>10} {c['min']:>8.2f} {c['median']:>10.2f} "
          f"{c['p95']:>8.2f} {r['peak_rss_kib']['max']:>12,}  {calls}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default="target/release",
                    help="directory holding NAME or NAME/bootstrap (default: target/release)")
    ap.add_argument("--runs", type=int, default=20, help="measured runs per function (default 20)")
    ap.add_argument("--timeout", type=float, default=15.0,
                    help="seconds a run may take to reach /next (default 15)")
    ap.add_argument("--json", action="store_true",
                    help="print the results as JSON on stdout (the table then goes to stderr)")
    ap.add_argument("--sizes-only", action="store_true",
                    help="only report binary sizes (works for binaries of another architecture)")
    ap.add_argument("--real-aws", action="store_true",
                    help="do not point AWS_ENDPOINT_URL at the local stub (cold-start AWS calls "
                         "then go to AWS with fake credentials and include network latency)")
    ap.add_argument("--function", action="append", choices=FUNCTIONS, dest="functions",
                    help="measure only this function (repeatable)")
    args = ap.parse_args()
    if args.runs < 1:
        die("--runs must be at least 1")

    names = args.functions or FUNCTIONS
    binaries = []
    missing = []
    for name in names:
        path = find_binary(args.bin_dir, name)
        if path is None:
            missing.append(name)
        else:
            binaries.append((name, path))
    if missing:
        die(f"no binary for {', '.join(missing)} in {args.bin_dir} (looked for NAME and "
            f"NAME/bootstrap); build them with: cargo build --release "
            + " ".join(f"-p {n}" for n in missing))

    results = [{"name": n, "path": p, "arch": elf_arch(p), "size_bytes": os.path.getsize(p)}
               for n, p in binaries]
    meta = {"bin_dir": args.bin_dir, "cpu_model": cpu_model(), "cpus": os.cpu_count(),
            "kernel": platform.release(), "host_arch": host_arch()}

    if args.sizes_only:
        doc = {**meta, "functions": results}
        if args.json:
            print(json.dumps(doc, indent=2))
        print_table(results, meta, True, sys.stderr if args.json else sys.stdout)
        return

    if not os.path.exists(GNU_TIME):
        die(f"{GNU_TIME} (GNU time) is missing; install it with: apt-get update && apt-get install -y time")
    foreign = [f"{r['name']} ({r['arch']})" for r in results if r["arch"] != meta["host_arch"]]
    if foreign:
        die(f"cannot run binaries built for another architecture than this {meta['host_arch']} "
            f"host: {', '.join(foreign)}; use --sizes-only for their sizes")

    server = Server(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    envs = {n: function_env(n, port, args.real_aws) for n, _ in binaries}
    samples = {n: {"ms": [], "rss": [], "hwm": [], "calls": set()} for n, _ in binaries}

    meta.update({"runs": args.runs, "aws_endpoints": "real AWS" if args.real_aws else
                 "local stub (AWS_ENDPOINT_URL)", "runtime_api": f"127.0.0.1:{port}",
                 "loadavg_before": loadavg()})
    with tempfile.TemporaryDirectory(prefix="cold_start.") as workdir:
        try:
            # Check run (also warms the page cache): every binary must reach /next.
            for name, path in binaries:
                ms, rss, calls, _ = run_once(server, name, path, envs[name], args.timeout, workdir)
                log(f"check: {name} reached /next after {ms:.1f} ms, peak RSS {rss} KiB"
                    + (f", AWS calls before /next: {', '.join(calls)}" if calls else ""))
            # Measured runs, round-robin so background load hits every function alike.
            for i in range(args.runs):
                for name, path in binaries:
                    ms, rss, calls, hwm = run_once(server, name, path, envs[name], args.timeout, workdir)
                    s = samples[name]
                    s["ms"].append(ms)
                    s["rss"].append(rss)
                    if hwm is not None:
                        s["hwm"].append(hwm)
                    s["calls"].update(calls)
                log(f"run {i + 1}/{args.runs} done")
        except RunFailed as e:
            die(str(e))
        finally:
            server.shutdown()
    meta["loadavg_after"] = loadavg()

    for r in results:
        s = samples[r["name"]]
        r["cold_start_ms"] = {"min": round(min(s["ms"]), 3), "median": round(statistics.median(s["ms"]), 3),
                              "p95": round(p95(s["ms"]), 3), "samples": [round(x, 3) for x in s["ms"]]}
        r["peak_rss_kib"] = {"max": max(s["rss"]), "median": statistics.median(s["rss"]),
                             "samples": s["rss"]}
        if s["hwm"]:
            r["vm_hwm_kib_at_stop_max"] = max(s["hwm"])  # /proc VmHWM just before SIGTERM: cross-check
        r["aws_calls_before_next"] = sorted(s["calls"])
    if args.json:
        print(json.dumps({**meta, "functions": results}, indent=2))
    print_table(results, meta, False, sys.stderr if args.json else sys.stdout)


if __name__ == "__main__":
    main()
