"""`up` and `sweep`: wire moto, the provisioned resources, the emulator, the function host and the
SQS pollers together, write DIR/stack.json, and stay up until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

from . import ACCOUNT_ID, REGION, limits, procs
from .emulator import LOCAL_DATA_SOURCE_ID, Emulator, generated_config_for_routes
from .errors import StackError
from .esm import SqsPoller
from .function_host import FunctionConfig, FunctionHost
from .limits import Limits
from .moto_server import MotoServer
from .provisioner import Provisioner
from .template import FUNCTION_TYPES, Template, default_binary_name

REPO = Path(__file__).resolve().parents[2]
log = logging.getLogger("kbstack.launcher")

# stack.json convenience keys: (key, logical ids to try, Globals environment variable to fall back on)
CONVENIENCE = (
    ("tracking_table", ("TrackingTable",), "TRACKING_TABLE_NAME"),
    ("metadata_table", ("MetadataTable",), "METADATA_TABLE_NAME"),
    ("sources_table", ("SourcesTable",), "SOURCES_TABLE_NAME"),
    ("change_events_queue_url", ("ChangeEventsQueue",), None),
    ("change_events_dlq_url", ("ChangeEventsDLQ", "ChangeEventsDeadLetterQueue"), None),
    ("sync_queue_url", ("SyncQueue",), "SYNC_QUEUE_URL"),
    ("sync_dlq_url", ("SyncDLQ", "SyncDeadLetterQueue"), None),
    ("topic_arn", ("NotificationTopic",), "NOTIFICATION_TOPIC_ARN"),
    ("state_machine_arn", ("SyncStateMachine",), "STATE_MACHINE_ARN"),
)


def template_routes(params: dict[str, Any]) -> list[dict]:
    """The routes the functions get: the Routes parameter, or the single route's parameters."""
    text = str(params.get("Routes") or "")
    if not text:
        if not params.get("S3BucketName"):
            return []
        return [{"bucket": params.get("S3BucketName"), "prefix": params.get("S3KeyPrefix", ""),
                 "knowledge_base_id": params.get("KnowledgeBaseId", ""), "data_source_id": params.get("DataSourceId", "")}]
    try:
        routes = json.loads(text)
    except ValueError as exc:
        raise StackError(f"template parameter Routes is not JSON ({exc}): {text}") from None
    if not isinstance(routes, list) or not all(
            isinstance(r, dict) and r.get("bucket") and r.get("knowledge_base_id") for r in routes):
        raise StackError("template parameter Routes must be a JSON array of objects with a bucket and a "
                         f"knowledge_base_id (and prefix, data_source_id): {text}")
    return routes


def routed_buckets(params: dict[str, Any]) -> list[str]:
    """The buckets the stack watches (created with EventBridge notifications on)."""
    if params.get("Routes"):
        return [name for name in params.get("RouteBuckets") or [] if name]
    return [params["S3BucketName"]] if params.get("S3BucketName") else []


def say(line: str) -> None:
    print(f"kb-autosync local stack: {line}", file=sys.stderr, flush=True)


def _kv(items: list[str], flag: str) -> list[tuple[str, str]]:
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise StackError(f"{flag} {item!r}: expected KEY=VALUE")
        out.append((key, value))
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stack.py", description="kb-autosync local stack (moto + function host + Bedrock emulator)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the stack and stay up until SIGINT/SIGTERM")
    up.add_argument("--state-dir", required=True, help="where stack.json and logs/ are written")
    up.add_argument("--template", default=str(REPO / "template.yaml"))
    up.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="template parameter (repeatable)")
    up.add_argument("--env", action="append", default=[], metavar="[FUNCTION:]KEY=VALUE",
                    help="environment override for every function, or for one (logical id or binary name before ':')")
    up.add_argument("--override", action="append", default=[], metavar="LOGICALID.PROP[.SUB]=VALUE",
                    help="set a resource property before provisioning (VALUE is YAML), e.g. SyncQueue.VisibilityTimeout=5")
    # KB_AUTOSYNC_BIN_DIR lets a caller that cannot pass flags (the benchmark) pick release builds.
    up.add_argument("--bin-dir", default=os.environ.get("KB_AUTOSYNC_BIN_DIR") or str(REPO / "target" / "debug"))
    up.add_argument("--emulator-bin", default=None, help="default: BIN_DIR/bedrock-emulator")
    up.add_argument("--emulator-config", default=None)
    up.add_argument("--no-emulator", action="store_true", help="do not start the Bedrock Agent emulator")
    up.add_argument("--time-scale", type=float, default=1.0)
    up.add_argument("--workers", type=int, default=2, help="processes per function (default 2)")
    up.add_argument("--port", type=int, default=0, help="moto port on 127.0.0.1 (0: a free one)")
    up.add_argument("--stack-name", default="kb-autosync")
    up.add_argument("--sweep-every", type=float, default=0.0, metavar="SECONDS",
                    help="send the sweep message periodically (stand-in for EventBridge Scheduler)")
    up.add_argument("--allow-missing", action="store_true",
                    help="skip functions (and the emulator) whose binary is missing instead of failing")
    up.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                    help="an AWS hard limit the stack enforces, lowered for tests (repeatable): sfn-history-events "
                         "(25000), sfn-payload-bytes (262144), dynamodb-item-bytes (409600), sqs-message-bytes (262144)")
    sweep = sub.add_parser("sweep", help="send {\"kind\":\"sweep\"} to the sync queue of a running stack")
    sweep.add_argument("--state-dir", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "up":
            return Launcher(args).run()
        return sweep_command(Path(args.state_dir))
    except StackError as exc:
        say(f"error: {exc}")
        return 1


# ---------------------------------------------------------------------------------------------
def _apply_override(template: Template, spec: str) -> None:
    target, sep, raw = spec.partition("=")
    if not sep or "." not in target:
        raise StackError(f"--override {spec!r}: expected LOGICALID.PROPERTY=VALUE")
    logical_id, *path = target.split(".")
    res = template.resources.get(logical_id)
    if res is None:
        raise StackError(f"--override {spec!r}: the template has no resource {logical_id}")
    node = res.properties
    for key in path[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise StackError(f"--override {spec!r}: {key} is not a mapping")
    try:
        node[path[-1]] = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        node[path[-1]] = raw


class Launcher:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.state_dir = Path(args.state_dir).resolve()
        self.logs_dir = self.state_dir / "logs"
        self.moto: MotoServer | None = None
        self.host = FunctionHost()
        self.pollers: list[SqsPoller] = []
        self.emulator: Emulator | None = None
        self._clients: dict[str, Any] = {}
        self._stop = threading.Event()

    # -- helpers -----------------------------------------------------------------------------
    def client(self, service: str):
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            self._clients[service] = boto3.session.Session().client(
                service, endpoint_url=self.moto.endpoint, region_name=REGION, aws_access_key_id="test",
                aws_secret_access_key="test", config=Config(retries={"max_attempts": 2}, read_timeout=70))
        return self._clients[service]

    def _signal(self, signum: int, frame: Any) -> None:
        raise SystemExit(0)

    def _prepare_dirs(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        for stale in [self.state_dir / "stack.json", *self.logs_dir.glob("*.log")]:
            try:
                stale.unlink()
            except FileNotFoundError:
                pass
        handler = logging.FileHandler(self.logs_dir / "stack.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root = logging.getLogger("kbstack")
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        root.propagate = False

    # -- up ----------------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._signal)
        signal.signal(signal.SIGINT, self._signal)
        try:
            self._prepare_dirs()
            self.start()
            say_ready = f"kb-autosync local stack ready: {self.state_dir / 'stack.json'}"
            print(say_ready, flush=True)
            while not self._stop.wait(1.0):
                pass
            return 0
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            self.shutdown()

    def start(self) -> None:
        args = self.args
        template = Template(args.template, dict(_kv(args.param, "--param")), args.stack_name)
        for spec in args.override:
            _apply_override(template, spec)
        env_overrides = _kv(args.env, "--env")
        self.limits = Limits.parse(args.limit)
        if args.workers < 1:
            raise StackError("--workers must be at least 1")

        # Binaries first: fail before anything is started.
        bin_dir = Path(args.bin_dir)
        functions = template.of_type(*FUNCTION_TYPES)
        binaries: dict[str, Path | None] = {}
        for res in functions:
            build = res.metadata.get("BuildProperties") or {}
            binary = str(build.get("Binary") or default_binary_name(res.logical_id))
            path = bin_dir / binary
            if path.is_file() and os.access(path, os.X_OK):
                binaries[res.logical_id] = path
            elif args.allow_missing:
                say(f"note: {path} not found: {res.logical_id} is not hosted (build it with `cargo build -p {binary}`)")
                binaries[res.logical_id] = None
            else:
                raise StackError(f"function binary {path} not found ({res.logical_id}): build it with "
                                 f"`cargo build -p {binary}` (or pass --bin-dir, or --allow-missing)")
        emulator_bin: Path | None = None
        if not args.no_emulator:
            emulator_bin = Path(args.emulator_bin) if args.emulator_bin else bin_dir / "bedrock-emulator"
            if not (emulator_bin.is_file() and os.access(emulator_bin, os.X_OK)):
                if args.allow_missing:
                    say(f"note: {emulator_bin} not found: no Bedrock Agent emulator "
                        "(build it with `cargo build -p bedrock-emulator`)")
                    emulator_bin = None
                else:
                    raise StackError(f"emulator binary {emulator_bin} not found: build it with "
                                     "`cargo build -p bedrock-emulator` (or pass --no-emulator / --allow-missing)")
        if args.emulator_config and not Path(args.emulator_config).is_file():
            raise StackError(f"emulator config {args.emulator_config} not found")

        # moto + patches + resources
        from . import moto_patches

        t0 = time.monotonic()

        self.moto = MotoServer("127.0.0.1", args.port, log_file=str(self.logs_dir / "moto.log")).start()
        moto_patches.install(self.host)
        limits.configure(self.limits)
        prov = Provisioner(template, self.moto.endpoint, self.client, note=lambda line: say(f"note: {line}"))
        params = template.parameters
        routes = template_routes(params)
        buckets = routed_buckets(params)
        bucket = buckets[0] if buckets else None
        for name in buckets:
            prov.ensure_bucket(name, eventbridge=True)

        # Bedrock Agent emulator: started now, waited for after provisioning
        emulator_endpoint = None
        emulator_config_path = None
        if emulator_bin is not None:
            if args.emulator_config:
                emulator_config_path = str(Path(args.emulator_config).resolve())
            else:
                emulator_config_path = str(self.state_dir / "emulator-config.json")
                cfg = generated_config_for_routes(routes)
                Path(emulator_config_path).write_text(json.dumps(cfg, indent=2))
            self.emulator = Emulator(str(emulator_bin), emulator_config_path, self.moto.endpoint, args.time_scale,
                                     self.state_dir, self.logs_dir / "bedrock-emulator.log")
            self.emulator.spawn()

        prov.provision(bucket_name=bucket)
        self.prov, self.template = prov, template
        log.info("moto up and resources provisioned in %.2f s", time.monotonic() - t0)
        if self.emulator is not None:
            emulator_endpoint = self.emulator.wait()
            log.info("emulator ready at %s after %.2f s", emulator_endpoint, time.monotonic() - t0)

        # Function host
        functions_info = {}
        for res in functions:
            phys = prov.physical[res.logical_id]
            spec = phys.extra["spec"]
            path = binaries.get(res.logical_id)
            env = self._function_env(spec, phys.ref, emulator_endpoint, env_overrides)
            log_path = self.logs_dir / f"{spec.binary}.log"
            functions_info[res.logical_id] = {"name": phys.ref, "arn": phys.attrs["Arn"], "binary": spec.binary,
                                              "hosted": path is not None, "log": str(log_path),
                                              "timeout": spec.timeout, "environment": env}
            self._publish_configuration(phys.ref, spec, env)
            if path is None:
                continue
            self.host.add(FunctionConfig(
                name=phys.ref, arn=phys.attrs["Arn"], command=[str(path.resolve())], environment=env,
                timeout=float(spec.timeout), memory_size=spec.memory_size, workers=args.workers,
                log_path=str(log_path), log_format=spec.log_format))
        try:
            self.host.start()
        except OSError as exc:
            raise StackError(f"cannot start a function binary from {bin_dir}: {exc.strerror} (build them for this "
                             "machine with `cargo build`, not `cargo lambda build --arm64`)") from None
        log.info("function host started after %.2f s", time.monotonic() - t0)

        # SQS event source mappings
        esms = []
        for esm in prov.esms:
            pool = self.host.get(esm.function_name)
            esms.append({"uuid": esm.uuid, "function": esm.function_name, "queue_url": esm.queue_url,
                         "batch_size": esm.batch_size, "window_seconds": esm.window_seconds,
                         "report_batch_item_failures": esm.report_batch_item_failures,
                         "enabled": pool is not None and esm.enabled})
            if pool is None:
                continue
            if esm.max_concurrency:
                esm.max_concurrency = min(esm.max_concurrency, args.workers)
            # one client for all pollers: botocore clients are thread-safe, and each costs ~0.2 s
            self.pollers.append(SqsPoller(esm, pool, self.client("sqs")).start())

        doc = self._stack_json(template, prov, emulator_endpoint, emulator_config_path, functions_info, esms)
        self._register_stack(template, doc["outputs"])
        tmp = self.state_dir / "stack.json.tmp"
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True))
        tmp.replace(self.state_dir / "stack.json")
        self.stack_doc = doc
        log.info("stack ready after %.2f s", time.monotonic() - t0)
        if args.sweep_every and args.sweep_every > 0:
            threading.Thread(target=self._sweeper, args=(args.sweep_every,), daemon=True, name="sweeper").start()

    def _function_env(self, spec, function_name: str, emulator_endpoint: str | None,
                      overrides: list[tuple[str, str]]) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8", "TZ": ":UTC"}
        env.update(spec.environment)
        env.update({
            "AWS_ENDPOINT_URL": self.moto.endpoint,
            "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
            "AWS_LAMBDA_LOG_FORMAT": "JSON" if spec.log_format.upper() == "JSON" else "Text",
            "AWS_LAMBDA_LOG_LEVEL": spec.log_level,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "_HANDLER": "bootstrap",
        })
        if emulator_endpoint:
            env["AWS_ENDPOINT_URL_BEDROCK_AGENT"] = emulator_endpoint
        for key, value in overrides:
            scope, sep, name = key.rpartition(":")
            if not sep:
                env[key] = value
            elif scope in (spec.logical_id, spec.binary, function_name):
                env[name] = value
        return env

    def _publish_configuration(self, function_name: str, spec, env: dict[str, str]) -> None:
        """The function's service configuration as Lambda would report it (GetFunctionConfiguration),
        without what the runtime injects: operators' tools read the routes from there."""
        variables = {k: v for k, v in env.items()
                     if k in spec.environment or not (k.startswith(("AWS_", "_")) or k in ("PATH", "LANG", "TZ"))}
        self.client("lambda").update_function_configuration(FunctionName=function_name,
                                                            Environment={"Variables": variables})

    def _register_stack(self, template: Template, outputs: dict[str, Any]) -> None:
        """A CloudFormation stack of the same name whose parameters and outputs are the local
        stack's, so tools that find a deployment by stack name (DescribeStacks) find this one. Its
        only resource is a placeholder: the resources themselves were provisioned above."""
        body = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": "kb-autosync local stack (resources provisioned by the local stack launcher)",
            "Parameters": {name: {"Type": "String"} for name in template.parameters},
            "Resources": {"LocalStackMarker": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {name: {"Value": str(value)} for name, value in outputs.items() if value not in (None, "")},
        }
        # moto warns that it does not model the placeholder's type; that is the point of it.
        warnings.filterwarnings("ignore", message=".*WaitConditionHandle.*")
        self.client("cloudformation").create_stack(
            StackName=template.stack_name, TemplateBody=json.dumps(body),
            Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in template.parameters.items()])

    def _stack_json(self, template: Template, prov: Provisioner, emulator_endpoint, emulator_config_path,
                    functions_info, esms) -> dict:
        params = template.parameters
        routes = template_routes(params)
        resources = {lid: phys.ref for lid, phys in prov.physical.items() if lid in template.resources}
        doc: dict[str, Any] = {
            "moto_endpoint": self.moto.endpoint,
            "emulator_endpoint": emulator_endpoint,
            "emulator_config": emulator_config_path,
            "region": REGION,
            "account_id": ACCOUNT_ID,
            "stack_name": template.stack_name,
            "pid": os.getpid(),
            "parameters": params,
            "resources": resources,
            "resource_details": prov.resources_map(),
            "functions": functions_info,
            "event_source_mappings": esms,
            # The first route's, for the tools written for one route; "buckets" and "routes" list all.
            "bucket": routes[0]["bucket"] if routes else None,
            "buckets": routed_buckets(params),
            "routes": routes,
            "key_prefix": routes[0].get("prefix", "") if routes else None,
            "knowledge_base_id": routes[0]["knowledge_base_id"] if routes else None,
            "data_source_id": (routes[0].get("data_source_id") if routes else "")
            or (LOCAL_DATA_SOURCE_ID if emulator_endpoint and not self.args.emulator_config else ""),
            "notifications_queue_url": prov.extra_queues.get(f"{template.stack_name}-notifications"),
            "logs_dir": str(self.logs_dir),
            "state_dir": str(self.state_dir),
            "schedules": self._schedules(template, prov),
            "limits": self.limits.as_json(),
        }
        global_env = {}
        for info in functions_info.values():
            global_env.update(info["environment"])
        for key, lids, env_name in CONVENIENCE:
            value = next((resources[lid] for lid in lids if lid in resources), None)
            if value is None and env_name:
                value = global_env.get(env_name)
            doc[key] = value
        outputs = {}
        for name, output in (template.doc.get("Outputs") or {}).items():
            try:
                outputs[name] = template.resolve(output.get("Value"))
            except StackError:
                continue
        doc["outputs"] = outputs
        return doc

    @staticmethod
    def _schedules(template: Template, prov: Provisioner) -> list[dict]:
        out = []
        for res in template.of_type("AWS::Scheduler::Schedule"):
            try:
                target = template.resolve((res.properties.get("Target") or {}))
            except StackError:
                continue
            queue = prov.queue_by_arn(str(target.get("Arn", "")))
            if queue is not None:
                out.append({"logical_id": res.logical_id, "queue_url": queue.ref, "input": target.get("Input", "{}"),
                            "schedule": template.resolve(res.properties.get("ScheduleExpression", ""))})
        return out

    def _sweeper(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                send_sweep(self.stack_doc, self.client("sqs"))
            except Exception as exc:  # noqa: BLE001
                log.warning("periodic sweep failed: %s", exc)

    def shutdown(self) -> None:
        self._stop.set()
        for poller in self.pollers:
            poller._stop.set()
        try:
            self.host.close()
        except Exception:  # noqa: BLE001
            log.exception("closing the function host")
        if self.emulator is not None:
            self.emulator.stop()
        procs.stop_all()
        if self.moto is not None:
            self.moto.stop()


# ---------------------------------------------------------------------------------------------
def send_sweep(doc: dict, sqs) -> list[str]:
    sent = []
    schedules = doc.get("schedules") or []
    if not schedules and doc.get("sync_queue_url"):
        schedules = [{"queue_url": doc["sync_queue_url"], "input": '{"kind":"sweep"}'}]
    for schedule in schedules:
        body = schedule["input"] if isinstance(schedule["input"], str) else json.dumps(schedule["input"])
        sqs.send_message(QueueUrl=schedule["queue_url"], MessageBody=body)
        sent.append(schedule["queue_url"])
    return sent


def sweep_command(state_dir: Path) -> int:
    path = state_dir / "stack.json"
    try:
        doc = json.loads(path.read_text())
    except OSError:
        raise StackError(f"{path} not found: is `stack.py up --state-dir {state_dir}` running?") from None
    import boto3

    sqs = boto3.client("sqs", endpoint_url=doc["moto_endpoint"], region_name=doc.get("region", REGION),
                       aws_access_key_id="test", aws_secret_access_key="test")
    try:
        sent = send_sweep(doc, sqs)
    except Exception as exc:  # noqa: BLE001
        raise StackError(f"cannot send the sweep to {doc.get('sync_queue_url')}: {exc}") from None
    if not sent:
        raise StackError("the stack has no sync queue to sweep")
    for url in sent:
        print(f"sweep sent to {url}")
    return 0
