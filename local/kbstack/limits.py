"""AWS's hard limits, which moto 5.2.5 does not enforce as AWS does, enforced in the local stack
so the service meets them here before it meets them in an account. Each is a setting (`up --limit
NAME=VALUE`, AWS's value by default, recorded in stack.json under `limits`) so a test can set it
low and reach it in seconds.

  sfn-history-events   25000  Step Functions Standard execution history (hard quota). Event N of
                              an execution is its last: ExecutionSucceeded if it is that, else
                              ExecutionFailed with States.Runtime "The execution reached the
                              maximum number of history events (N)." and the execution FAILED.
  sfn-payload-bytes   262144  State outputs and task results (UTF-8 JSON): a larger one fails
                              the state with States.DataLimitExceeded (which States.ALL does
                              not match, as in AWS); StartExecution with a larger input is a
                              ValidationException.
  dynamodb-item-bytes 409600  Item size by AWS's rules (names + values, 3 bytes per list/map, 1 per
                              element) after PutItem, UpdateItem, BatchWriteItem, TransactWriteItems:
                              ValidationException "Item size has exceeded the maximum allowed size"
                              (puts) or "Item size to update has exceeded the maximum allowed size"
                              (updates); in a transaction, TransactionCanceledException with the
                              reason ValidationError and that message. Nothing is written.
  sqs-message-bytes   262144  SendMessage (body + message attributes): InvalidParameterValue
                              "... Message must be shorter than N bytes."; SendMessageBatch (the
                              sum of its messages): BatchRequestTooLong.

What moto did instead: it checked the state payload with `<` (AWS allows exactly 256 KiB),
DynamoDB items at 405,000 bytes of its own measure and only for top-level attributes (a nested
update grew an item without bound, and an update that did fail stayed half applied), SQS bodies in
characters against 1 MiB without their attributes, and no history length at all.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import threading
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import StackError


@dataclasses.dataclass(frozen=True)
class Limits:
    sfn_history_events: int = 25_000
    sfn_payload_bytes: int = 262_144
    dynamodb_item_bytes: int = 409_600
    sqs_message_bytes: int = 262_144

    @classmethod
    def parse(cls, specs: list[str]) -> "Limits":
        """`NAME=VALUE` flags (NAME as in the module docstring) over AWS's values."""
        names = {field.name.replace("_", "-"): field.name for field in dataclasses.fields(cls)}
        values: dict[str, int] = {}
        for spec in specs or []:
            name, sep, raw = spec.partition("=")
            if name not in names or not sep:
                raise StackError(f"--limit {spec!r}: expected NAME=VALUE, NAME one of {', '.join(names)}")
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value < 1:
                raise StackError(f"--limit {spec!r}: the value must be a positive integer")
            values[names[name]] = value
        return cls(**values)

    def as_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


_current = Limits()


def current() -> Limits:
    return _current


def configure(limits: Limits) -> None:
    """The limits every later request is held to (an execution keeps the history limit in force when
    its interpreter started)."""
    global _current
    _current = limits


def install() -> None:
    """Apply the limit patches to moto (called once, by moto_patches.install)."""
    _sfn_history_limit()
    _sfn_payload_limit()
    _dynamodb_item_size_limit()
    _sqs_message_size_limit()


# -- Step Functions: execution history ------------------------------------------------------------
HISTORY_CAUSE = "The execution reached the maximum number of history events ({limit})."


def _sfn_history_limit() -> None:
    """AWS's guide: at 24,999 events an execution waits for the next one; if event 25,000 is
    ExecutionSucceeded the execution succeeds, otherwise ExecutionFailed is logged and it fails
    (error States.Runtime, the cause above, nothing after it). moto
    records every event of an execution in one EventManager (frames of Map/Parallel share it);
    the patched one counts them, writes that ExecutionFailed as event N, fails the execution (which
    wakes Wait states and stops every frame) and aborts the state that asked for event N+1 so it
    does nothing more (no task is scheduled past the limit)."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, ExecutionStatus, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    ends = {HistoryEventType.ExecutionSucceeded, HistoryEventType.ExecutionFailed,
            HistoryEventType.ExecutionAborted, HistoryEventType.ExecutionTimedOut}
    runtime = StatesErrorNameType.StatesRuntime

    class HistoryLimitedEventManager(EventManager):
        def __init__(self, env: Any, limit: int):
            super().__init__(cloud_watch_logging_session=env.cloud_watch_logging_session)
            self.env, self.limit = env, limit
            self.failure: Any = None  # the ExecutionFailedEventDetails once the limit is reached
            self._count_lock = threading.Lock()

        def add_event(self, context: Any, event_type: Any, event_details: Any = None, timestamp: Any = None,
                      update_source_event_id: bool = True) -> int:
            with self._count_lock:
                if self.failure is None and (len(self._history_event_list) + 1 < self.limit or event_type in ends):
                    return super().add_event(context, event_type, event_details, timestamp, update_source_event_id)
                if self.failure is None:
                    self.failure = ExecutionFailedEventDetails(error=runtime.to_name(),
                                                               cause=HISTORY_CAUSE.format(limit=self.limit))
                    super().add_event(context, HistoryEventType.ExecutionFailed,
                                      EventDetails(executionFailedEventDetails=self.failure))
                    self.env.set_error(self.failure)
                elif event_type in ends:  # the interpreter's own end of the execution: already written
                    return self.limit
            raise FailureEventException(FailureEvent(
                env=self.env, error_name=StatesErrorName(typ=runtime), event_type=HistoryEventType.ExecutionFailed,
                event_details=EventDetails(executionFailedEventDetails=self.failure)))

    original_environment = ExecutionWorker._get_evaluation_environment

    def environment_with_history_limit(self: Any) -> Any:
        env = original_environment(self)
        if env.is_standard_workflow():  # Express workflows keep no history
            env.event_manager = HistoryLimitedEventManager(env, current().sfn_history_events)
        return env

    ExecutionWorker._get_evaluation_environment = environment_with_history_limit

    original_reflect = BaseExecutionWorkerCommunication._reflect_execution_status

    def reflect_history_limit(self: Any) -> None:
        # However the interpreter unwound, the execution failed as its last event says.
        original_reflect(self)
        failure = getattr(self.execution.exec_worker.env.event_manager, "failure", None)
        if failure is not None:
            self.execution.exec_status = ExecutionStatus.FAILED
            self.execution.output = None
            self.execution.error, self.execution.cause = failure["error"], failure["cause"]

    BaseExecutionWorkerCommunication._reflect_execution_status = reflect_history_limit


# -- Step Functions: payloads -----------------------------------------------------------------------
def _sfn_payload_limit() -> None:
    """moto already fails a state whose output, or a task whose result, reaches 256 KiB with
    States.DataLimitExceeded, with AWS's cause ("The state/task '...' returned a result with a size
    exceeding the maximum number of bytes service limit."). Here: at the configured limit, and
    exactly the limit is allowed ("over 262,144 bytes" fails in AWS's words). AWS calls it a
    terminal error that States.ALL does not catch (a Retry/Catch must name it); moto's States.ALL
    matched it. StartExecution's input is at most 262,144 UTF-8 bytes in the API model; moto took
    any size."""
    import importlib

    from moto.stepfunctions.exceptions import ValidationException
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
    from moto.stepfunctions.responses import StepFunctionResponse

    def is_within_size_quota(value: Any) -> bool:
        text = value if isinstance(value, str) else to_json_str(value, separators=(",", ":"))
        return len(text.encode("utf-8")) <= current().sfn_payload_bytes

    # Each module imported the function by name.
    for name in ("quotas", "asl.component.state.state", "asl.component.state.exec.state_task.state_task_lambda",
                 "asl.component.state.exec.state_task.service.state_task_service"):
        module = importlib.import_module(f"moto.stepfunctions.parser.{name}")
        if not hasattr(module, "is_within_size_quota"):  # pragma: no cover
            raise StackError(f"moto internals changed (no is_within_size_quota in {module.__name__})")
        module.is_within_size_quota = is_within_size_quota

    data_limit = StatesErrorNameType.StatesStatesDataLimitExceeded.to_name()
    original_error_equals = ErrorEqualsDecl._eval_body

    def error_equals_without_terminal(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        if getattr(error_name, "error_name", None) == data_limit and not any(
                name.error_name == data_limit for name in self.error_names):
            env.stack.pop()
            env.stack.append(False)
            return
        original_error_equals(self, env)

    ErrorEqualsDecl._eval_body = error_equals_without_terminal

    original_start = StepFunctionResponse.start_execution

    def start_execution_within_limit(self: Any) -> Any:
        execution_input = self._get_param("input", if_none="{}")
        limit = current().sfn_payload_bytes
        if len(execution_input.encode("utf-8")) > limit:
            # The API model's length constraint on `input`, reported as AWS reports one (the value
            # is sensitive, so not repeated).
            raise ValidationException("1 validation error detected: Value at 'input' failed to satisfy constraint: "
                                      f"Member must have length less than or equal to {limit}")
        return original_start(self)

    StepFunctionResponse.start_execution = start_execution_within_limit


# -- DynamoDB: item size ----------------------------------------------------------------------------
def _number_size(text: str) -> int:
    try:
        digits = len(Decimal(text).normalize().as_tuple().digits)
    except InvalidOperation:
        digits = len(text)
    return (digits + 1) // 2 + 1


def _binary_size(value: Any) -> int:
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    try:
        return len(base64.b64decode(value, validate=True))
    except (ValueError, TypeError):
        return len(str(value).encode("utf-8"))


def attribute_size(value: dict[str, Any]) -> int:
    """The size of one DynamoDB JSON value ({"S": ...}, {"M": {...}}, ...) by AWS's published rules."""
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode("utf-8"))
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return _binary_size(v)
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in v)
    if kind == "NS":
        return sum(_number_size(n) for n in v)
    if kind == "BS":
        return sum(_binary_size(b) for b in v)
    if kind == "L":
        return 3 + sum(1 + attribute_size(e) for e in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + attribute_size(e) for k, e in v.items())
    return 1  # BOOL, NULL


def item_size(attributes: dict[str, Any]) -> int:
    """An item's size (DynamoDB JSON attributes): attribute names plus values."""
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in attributes.items())


class ValidationError(Exception):
    """Raised inside TransactWriteItems: moto's transaction names a cancellation reason after the
    class of the exception that cancelled it, and AWS's reason for an item that grows too large is
    ValidationError (TransactionCanceledException, not a ValidationException of the whole call)."""


_in_transaction = threading.local()


def _dynamodb_item_size_limit() -> None:
    """moto's own check (405,000 bytes by its own measure, top-level attributes only, and an
    update that fails it is left half applied) is replaced by a check of the whole item, by AWS's
    rules, before a put is stored and after an update is applied (undone when too large). Step
    Functions' dynamodb:updateItem/putItem tasks call moto's API, so they pass here too."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge, ItemSizeToUpdateTooLarge
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict
    from moto.dynamodb.responses import DynamoHandler

    LimitedSizeDict.__setitem__ = dict.__setitem__  # type: ignore[method-assign, assignment]

    def too_large(update: bool) -> Exception:
        error = ItemSizeToUpdateTooLarge() if update else ItemSizeTooLarge()
        if getattr(_in_transaction, "active", False):
            return ValidationError(error.message)
        return error

    original_put = DynamoDBBackend.put_item

    def put_item_within_limit(self: Any, table_name: str, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if item_size(item_attrs) > current().dynamodb_item_bytes:
            raise too_large(update=False)
        return original_put(self, table_name, item_attrs, *args, **kwargs)

    DynamoDBBackend.put_item = put_item_within_limit

    original_update = DynamoDBBackend.update_item

    def update_item_within_limit(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            table = self.get_table(table_name)
            hash_value, range_value = self.get_keys_value(table, key)
            before = copy.deepcopy(table.get_item(hash_value, range_value))
        except Exception:  # noqa: BLE001 - let moto report a bad table or key its own way
            return original_update(self, table_name, key, *args, **kwargs)
        item = original_update(self, table_name, key, *args, **kwargs)
        if item_size(item.to_json()["Attributes"]) <= current().dynamodb_item_bytes:
            return item
        # moto applied the update to the stored item: undo it, as AWS never applies it.
        if before is None:
            table.delete_item(hash_value, range_value)
        else:
            item.attrs = before.attrs
        raise too_large(update=True)

    DynamoDBBackend.update_item = update_item_within_limit

    original_batch = DynamoHandler.batch_write_item

    def batch_write_item_within_limit(self: Any) -> Any:
        # AWS rejects the whole batch when one item is too large; moto would store the ones before it.
        limit = current().dynamodb_item_bytes
        for requests in (self.body.get("RequestItems") or {}).values():
            for request in requests:
                item = (request.get("PutRequest") or {}).get("Item")
                if item is not None and item_size(item) > limit:
                    raise ItemSizeTooLarge()
        return original_batch(self)

    batch_write_item_within_limit.__wrapped__ = original_batch  # type: ignore[attr-defined]
    DynamoHandler.batch_write_item = batch_write_item_within_limit

    original_transact = DynamoDBBackend.transact_write_items

    def transact_write_items_within_limit(self: Any, *args: Any, **kwargs: Any) -> Any:
        _in_transaction.active = True
        try:
            return original_transact(self, *args, **kwargs)
        finally:
            _in_transaction.active = False

    DynamoDBBackend.transact_write_items = transact_write_items_within_limit


# -- SQS: message size ------------------------------------------------------------------------------
def message_size(body: str, attributes: dict[str, Any] | None) -> int:
    """AWS counts the body and every message attribute (name, type and value) in UTF-8 bytes."""
    size = len((body or "").encode("utf-8"))
    for name, attribute in (attributes or {}).items():
        size += len(name.encode("utf-8")) + len(str(attribute.get("DataType", "")).encode("utf-8"))
        if "StringValue" in attribute:
            size += len(str(attribute["StringValue"]).encode("utf-8"))
        elif "BinaryValue" in attribute:
            size += _binary_size(attribute["BinaryValue"])
    return size


def _sqs_message_size_limit() -> None:
    """moto compares the body's length in characters, without its attributes, with the queue's
    MaximumMessageSize (1 MiB unless set), and a batch's bodies with 1 MiB. Here a message may not
    exceed the configured limit (nor the queue's own MaximumMessageSize), and a batch not the
    configured limit in total. Only API calls are checked: deliveries from SNS and EventBridge
    have their own limits in AWS."""
    from moto.sqs.exceptions import InvalidParameterValue, SQSException
    from moto.sqs.responses import SQSResponse

    original_send = SQSResponse.send_message

    def send_message_within_limit(self: Any) -> Any:
        queue = self.sqs_backend.get_queue(self._get_queue_name())
        limit = min(current().sqs_message_bytes, int(queue.maximum_message_size))
        if message_size(self._get_param("MessageBody"), self._get_param("MessageAttributes", {})) > limit:
            raise InvalidParameterValue(
                f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes.")
        return original_send(self)

    SQSResponse.send_message = send_message_within_limit

    original_send_batch = SQSResponse.send_message_batch

    def send_message_batch_within_limit(self: Any) -> Any:
        limit = current().sqs_message_bytes
        total = sum(message_size(entry.get("MessageBody"), entry.get("MessageAttributes"))
                    for entry in self._get_param("Entries", []) or [])
        if total > limit:
            raise SQSException("BatchRequestTooLong",
                               f"Batch requests cannot be longer than {limit} bytes. You have sent {total} bytes.")
        return original_send_batch(self)

    SQSResponse.send_message_batch = send_message_batch_within_limit
