"""Patches to moto 5.2.5, applied in-process.

1. `LambdaBackend.invoke` forwards to the function host (no Docker). A function error comes back
   as moto's Lambda API would return it from AWS: header `X-Amz-Function-Error: Unhandled` and
   the body `{"errorType": ..., "errorMessage": ...}`; moto's Step Functions interpreter takes
   `errorType` as the error name, so Retry/Catch on e.g. "ThrottlingException" match it.
   `InvocationType: Event` runs in the background (202), `DryRun` does nothing (204).
2. S3 -> EventBridge events: moto gives every event the same `id` and `sequencer`. The patched
   sender gives each event a fresh UUID `id` and a sequencer that increases strictly (one
   counter for the whole process, fixed-width upper-case hex, so it also increases per key when
   compared as strings, as AWS documents). Everything else is what moto emits (`eTag`,
   `version-id` "null", `request-id`, `reason`, ...).
3. GetBucketNotificationConfiguration: moto stores `EventBridgeConfiguration` but leaves it out of
   the response, and names the root of an empty answer wrongly; AWS returns
   `<NotificationConfiguration>` with `<EventBridgeConfiguration/>` when EventBridge delivery is on.
4. ListSubscriptionsByTopic: an e-mail subscription is unconfirmed until someone clicks the link
   in the mail, and AWS lists it with the SubscriptionArn "PendingConfirmation". moto lists it
   as confirmed; no mail is ever sent locally, so e-mail subscriptions stay pending here.
5. DynamoDB writes: moto evaluates a condition expression and applies the update without a lock,
   so two concurrent conditional writes can both succeed (two executions holding one job slot).
   AWS applies them one at a time; so does the patched handler (one lock over every write).
6. SQS sends and receives: moto reads the queue's ApproximateNumberOfMessages* counts (a walk over
   every message) inside each SendMessage and per received message; those counts read 0 there, so
   a backlog of thousands no longer slows every send and receive (GetQueueAttributes still counts).
7-10. AWS's hard limits, one setting each (`up --limit NAME=VALUE`; limits.py):
   7. sfn-history-events: a Standard execution ends at event N (25,000): ExecutionFailed, error
      States.Runtime, cause "The execution reached the maximum number of history events (N).",
      unless event N is ExecutionSucceeded.
   8. sfn-payload-bytes: state outputs and task results over N bytes (262,144) fail the state with
      States.DataLimitExceeded, which States.ALL does not catch; StartExecution input over N is a
      ValidationException.
   9. dynamodb-item-bytes: an item over N bytes (409,600, AWS's size rules) after PutItem, UpdateItem,
      BatchWriteItem or TransactWriteItems is rejected with AWS's ValidationException (in a
      transaction: TransactionCanceledException, reason ValidationError), nothing written.
   10. sqs-message-bytes: SendMessage over N bytes (body + attributes, 262,144) is
      InvalidParameterValue; SendMessageBatch over N in total is BatchRequestTooLong.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from typing import Any

from . import limits
from .errors import StackError
from .function_host import FunctionHost, error_payload

log = logging.getLogger("kbstack.moto_patches")

_host: FunctionHost | None = None
_installed = False
_seq_lock = threading.Lock()
_last_seq = 0


def set_host(host: FunctionHost | None) -> None:
    global _host
    _host = host


def next_sequencer() -> str:
    """Strictly increasing, 16 upper-case hex digits (AWS sequencers are hex strings)."""
    global _last_seq
    with _seq_lock:
        _last_seq = max(_last_seq + 1, time.time_ns())
        return f"{_last_seq:016X}"


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    if value is None and isinstance(headers, dict):
        lower = name.lower()
        for key, val in headers.items():
            if key.lower() == lower:
                return val
    return value


def _invoke(self, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any):
    fn = self.get_function(function_name, qualifier)  # raises ResourceNotFound like moto
    if isinstance(body, str):
        payload = body.encode()
    else:
        payload = body or b""
    if not payload:
        payload = b"{}"
    pool = _host.get(fn.function_name) if _host is not None else None
    invocation_type = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type == "DryRun":
        return b""
    if pool is None:
        result = error_payload(
            "Runtime.InvalidEntrypoint",
            f"function {fn.function_name} is not hosted by the local stack (its binary was not found)",
        )
        if invocation_type == "Event":
            return b""
        response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["Content-Length"] = str(len(result))
        return result
    if invocation_type == "Event":
        def run() -> None:
            inv = pool.invoke(payload)
            if inv.errored:
                log.warning("async invocation of %s failed: %s", fn.function_name, inv.result[:500])

        threading.Thread(target=run, daemon=True, name=f"async-{fn.function_name}").start()
        return b""
    inv = pool.invoke(payload)
    if inv.errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["x-amz-executed-version"] = "$LATEST"
    response_headers["Content-Length"] = str(len(inv.result))
    return inv.result


def _send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    # Same as moto.s3.notifications._send_event_bridge_message, with a unique id and sequencer.
    try:
        from moto.events.models import events_backends
        from moto.events.utils import _BASE_EVENT_MESSAGE
        from moto.core.utils import unix_time
        from moto.s3.notifications import _detail_type

        event = copy.deepcopy(_BASE_EVENT_MESSAGE)
        event["id"] = str(uuid.uuid4())
        event["detail-type"] = _detail_type(event_name)
        event["source"] = "aws.s3"
        event["account"] = account_id
        event["time"] = unix_time()
        event["region"] = bucket.region_name
        event["resources"] = [bucket.arn]
        event["detail"] = {
            "version": "0",
            "bucket": {"name": bucket.name},
            "object": {
                "key": key.name,
                "size": key.size,
                "eTag": key.etag.replace('"', ""),
                "version-id": key.version_id,
                "sequencer": next_sequencer(),
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": event_name.split(":")[1],
        }
        events_backend = events_backends[account_id][bucket.region_name]
        for event_bus in list(events_backend.event_buses.values()):
            for rule in list(event_bus.rules.values()):
                # A DISABLED rule delivers nothing in AWS; moto's send_to_targets ignores the state.
                if getattr(rule, "state", "ENABLED") != "ENABLED":
                    continue
                rule.send_to_targets(event, transform_input=False)
    except Exception:  # noqa: BLE001 - asynchronous in AWS: never fail the S3 call
        log.exception("S3 EventBridge notification failed")


_original_get_bucket_notification: Any = None


def _get_bucket_notification(self) -> Any:
    response = _original_get_bucket_notification(self)
    config = self.backend.get_bucket_notification_configuration(self.bucket_name)
    status, headers, body = response
    text = body.decode() if isinstance(body, bytes) else body
    # A bucket without notifications: moto answers with an empty <GetBucketNotificationResponse/>.
    text = text.replace("<GetBucketNotificationResponse", "<NotificationConfiguration")
    if config is None or getattr(config, "event_bridge", None) is None:
        return status, headers, text
    element = "<EventBridgeConfiguration/>"
    if "</NotificationConfiguration>" in text:
        text = text.replace("</NotificationConfiguration>", element + "</NotificationConfiguration>")
    else:
        start = text.index("<NotificationConfiguration")
        end = text.index("/>", start)
        text = text[:end] + ">" + element + "</NotificationConfiguration>" + text[end + 2:]
    return status, headers, text


_PENDING_PROTOCOLS = ("email", "email-json")


def _list_subscriptions_by_topic(self) -> Any:
    from moto.core.responses import ActionResult

    subscriptions, next_token = self.backend.list_subscriptions_by_topic(
        self._get_param("TopicArn"), next_token=self._get_param("NextToken"))
    rows = [{
        "SubscriptionArn": "PendingConfirmation" if sub.protocol in _PENDING_PROTOCOLS else sub.arn,
        "Owner": sub.owner, "Protocol": sub.protocol, "Endpoint": sub.endpoint, "TopicArn": sub.topic.arn,
    } for sub in subscriptions]
    return ActionResult({"Subscriptions": rows, "NextToken": next_token})


def install(host: FunctionHost | None = None) -> None:
    """Apply the patches (idempotent) and point Lambda Invoke at `host`."""
    global _installed
    import moto

    if moto.__version__ != "5.2.5":
        log.warning("moto %s: the local stack's patches were written for moto 5.2.5", moto.__version__)
    if host is not None:
        set_host(host)
    if _installed:
        return
    try:
        from moto.awslambda import models as lambda_models
        from moto.s3 import notifications
    except ImportError as exc:  # pragma: no cover
        raise StackError(f"moto internals changed ({exc}): install moto==5.2.5 (tools/requirements-stack.txt)") from None
    if not hasattr(lambda_models.LambdaBackend, "invoke") or not hasattr(notifications, "_send_event_bridge_message"):
        raise StackError("moto internals changed: install moto==5.2.5 (tools/requirements-stack.txt)")
    lambda_models.LambdaBackend.invoke = _invoke
    try:  # the backend moto uses when config lambda.use_docker is false
        from moto.awslambda_simple import models as simple_models

        simple_models.LambdaSimpleBackend.invoke = _invoke
    except ImportError:  # pragma: no cover
        pass
    notifications._send_event_bridge_message = _send_event_bridge_message
    global _original_get_bucket_notification
    from moto.s3.responses import S3Response

    _original_get_bucket_notification = S3Response.get_bucket_notification
    S3Response.get_bucket_notification = _get_bucket_notification
    from moto.sns.responses import SNSResponse

    SNSResponse.list_subscriptions_by_topic = _list_subscriptions_by_topic
    _serialise_dynamodb_writes()
    _sqs_without_queue_counts()
    limits.install()
    _installed = True


_dynamodb_write_lock = threading.Lock()
_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")


def _serialise_dynamodb_writes() -> None:
    from moto.dynamodb.responses import DynamoHandler

    def locked(method: Any) -> Any:
        def write(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _dynamodb_write_lock:
                return method(self, *args, **kwargs)

        write.__wrapped__ = method  # type: ignore[attr-defined]
        return write

    for name in _DYNAMODB_WRITES:
        setattr(DynamoHandler, name, locked(getattr(DynamoHandler, name)))


_in_send_or_receive = threading.local()
_QUEUE_COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)


def _sqs_without_queue_counts() -> None:
    """moto's SQSBackend.send_message reads `queue.attributes` for one flag
    (ContentBasedDeduplication), and receive_message reads it once per message received (for
    MessageRetentionPeriod); building that dict counts the queue's messages three times (the
    ApproximateNumberOfMessages* attributes), each message's visibility checked against the
    clock. A send or a receive on a backlog of N messages then costs O(N): a burst's backlog in
    the change events queue made every S3 event and every batch slower than the one before
    (10,000 uploads fell to 11 per second). While a message is sent or received, those counts
    read 0; neither operation uses them."""
    from moto.sqs import models as sqs_models

    def skipped_in_sends_and_receives(original: property) -> property:
        def count(self: Any) -> int:
            if getattr(_in_send_or_receive, "depth", 0):
                return 0
            return original.fget(self)  # type: ignore[misc]

        return property(count)

    for name in _QUEUE_COUNTS:
        setattr(sqs_models.Queue, name, skipped_in_sends_and_receives(getattr(sqs_models.Queue, name)))

    def without_counts(original: Any) -> Any:
        def operation(self: Any, *args: Any, **kwargs: Any) -> Any:
            _in_send_or_receive.depth = getattr(_in_send_or_receive, "depth", 0) + 1
            try:
                return original(self, *args, **kwargs)
            finally:
                _in_send_or_receive.depth -= 1

        operation.__wrapped__ = original  # type: ignore[attr-defined]
        return operation

    for name in ("send_message", "receive_message"):
        setattr(sqs_models.SQSBackend, name, without_counts(getattr(sqs_models.SQSBackend, name)))
