"""SQS event source mappings with Lambda's semantics (moto 5.2.5's own ESM does not have them).

What moto 5.2.5 does (awslambda/models.py `_send_sqs_message`, sqs/models.py `add_message`): it
invokes the function synchronously inside SendMessage, once per message (batch of 1), with fake
attributes (ApproximateReceiveCount "1", constant SentTimestamp / md5OfBody), ignores the
response (no ReportBatchItemFailures), deletes the message on success and makes it visible at
once on error; messages that become visible again are never retried until another send.

What this poller does, like Lambda: ReceiveMessage (up to 10 per call, AttributeNames /
MessageAttributeNames All, the queue's own visibility timeout) until BatchSize messages or
MaximumBatchingWindowInSeconds has passed since the first one; builds the Lambda SQS event
(messageId, receiptHandle, body, attributes, messageAttributes, md5OfBody,
[md5OfMessageAttributes], eventSource "aws:sqs", eventSourceARN, awsRegion); invokes the
function; then
  * invocation error (function error, timeout, crash): deletes nothing; the messages come back
    after the visibility timeout;
  * ReportBatchItemFailures: deletes every message not listed in batchItemFailures; a null /
    empty response or list deletes all; an invalid response (not a JSON object, an item without
    itemIdentifier, an empty one, or an id not in the batch) deletes none;
  * otherwise: deletes all.
Redrive to the DLQ after maxReceiveCount is moto's: ReceiveMessage moves a visible message
whose receive count reached maxReceiveCount to the queue's DLQ instead of returning it.
Up to ScalingConfig.MaximumConcurrency (default: the function's worker count) batches run at
once; FIFO queues run one batch at a time.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass

from .function_host import FunctionPool

log = logging.getLogger("kbstack.esm")

ALL = object()  # "the whole batch failed"


@dataclass
class EsmConfig:
    uuid: str
    function_name: str
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    window_seconds: float = 0.0
    report_batch_item_failures: bool = False
    enabled: bool = True
    max_concurrency: int | None = None
    region: str = "us-east-1"


def lambda_message_attributes(attrs: dict) -> dict:
    out = {}
    for name, value in (attrs or {}).items():
        item: dict = {"stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType", "String")}
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            item["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, (bytes, bytearray)) else raw
        out[name] = item
    return out


def lambda_record(message: dict, queue_arn: str, region: str) -> dict:
    attributes = {k: str(v) for k, v in (message.get("Attributes") or {}).items()}
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": lambda_message_attributes(message.get("MessageAttributes") or {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(payload: bytes, batch_ids: list[str]):
    """The ids a ReportBatchItemFailures response marks failed; ALL for an invalid response."""
    try:
        doc = json.loads(payload) if payload and payload.strip() else None
    except ValueError:
        return ALL
    if doc is None:
        return set()
    if not isinstance(doc, dict):
        return ALL
    items = doc.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        return ALL
    known = set(batch_ids)
    failed = set()
    for item in items:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return ALL
        ident = item["itemIdentifier"]
        if not isinstance(ident, str) or not ident or ident not in known:
            return ALL
        failed.add(ident)
    return failed


class SqsPoller:
    def __init__(self, config: EsmConfig, pool: FunctionPool, sqs_client):
        self.config = config
        self.pool = pool
        self.sqs = sqs_client
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        concurrency = config.max_concurrency or len(pool.slots)
        if config.queue_arn.endswith(".fifo"):
            concurrency = 1
        self._slots = threading.BoundedSemaphore(max(1, concurrency))
        self.batches = 0  # batches started
        self.completed = 0  # batches whose deletes are done

    def start(self) -> "SqsPoller":
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"esm-{self.config.queue_arn.rsplit(':', 1)[-1]}")
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and timeout > 0:
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.config.enabled:
                self._stop.wait(1.0)
                continue
            if not self._slots.acquire(timeout=0.5):
                continue
            try:
                batch = self._collect()
            except Exception as exc:  # noqa: BLE001 - moto restarting, etc.
                self._slots.release()
                if not self._stop.is_set():
                    log.warning("%s: ReceiveMessage failed: %s", self.config.queue_arn, exc)
                    self._stop.wait(1.0)
                continue
            if not batch:
                self._slots.release()
                continue
            threading.Thread(target=self._process_and_release, args=(batch,), daemon=True,
                             name=f"esm-batch-{self.config.function_name}").start()

    def _receive(self, max_messages: int, wait_seconds: int) -> list[dict]:
        resp = self.sqs.receive_message(
            QueueUrl=self.config.queue_url,
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return resp.get("Messages") or []

    def _collect(self) -> list[dict]:
        cfg = self.config
        messages = self._receive(cfg.batch_size, 1)
        if not messages:
            return []
        first = time.monotonic()
        while len(messages) < cfg.batch_size and not self._stop.is_set():
            remaining = cfg.window_seconds - (time.monotonic() - first)
            if remaining <= 0:
                break
            wait = 1 if remaining >= 1.0 else 0
            more = self._receive(cfg.batch_size - len(messages), wait)
            for message in more:
                # A window longer than the visibility timeout can receive a message again: keep
                # one record per message, with the newest receipt handle.
                same = [i for i, m in enumerate(messages) if m["MessageId"] == message["MessageId"]]
                if same:
                    messages[same[0]] = message
                else:
                    messages.append(message)
            if not more and wait == 0:
                time.sleep(min(remaining, 0.1))
        return messages

    def _process_and_release(self, messages: list[dict]) -> None:
        try:
            self.process(messages)
        except Exception:  # noqa: BLE001
            log.exception("%s: batch processing failed", self.config.queue_arn)
        finally:
            self.completed += 1
            self._slots.release()

    def process(self, messages: list[dict]) -> None:
        cfg = self.config
        self.batches += 1
        records = [lambda_record(m, cfg.queue_arn, cfg.region) for m in messages]
        event = json.dumps({"Records": records}).encode()
        inv = self.pool.invoke(event)
        ids = [m["MessageId"] for m in messages]
        if inv.errored:
            log.info("%s -> %s: %d messages, invocation failed (%s): none deleted",
                     cfg.queue_arn, cfg.function_name, len(ids), inv.error_type)
            return
        if cfg.report_batch_item_failures:
            failed = failed_message_ids(inv.result, ids)
            if failed is ALL:
                log.warning("%s -> %s: invalid batch response %r: none deleted",
                            cfg.queue_arn, cfg.function_name, inv.result[:300])
                return
        else:
            failed = set()
        to_delete = [m for m in messages if m["MessageId"] not in failed]
        log.info("%s -> %s: %d messages, %d reported failed, %d deleted",
                 cfg.queue_arn, cfg.function_name, len(ids), len(failed), len(to_delete))
        for start in range(0, len(to_delete), 10):
            chunk = to_delete[start:start + 10]
            resp = self.sqs.delete_message_batch(
                QueueUrl=cfg.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in resp.get("Failed") or []:
                log.warning("%s: delete failed: %s", cfg.queue_arn, failure)
