"""What QStash publishes itself after an attempt: the callback, called after every
attempt of a message that names ``Upstash-Callback``; and once a message's retries run
out, its entry in the DLQ and the failure callback (``Upstash-Failure-Callback``), which
carries the entry's ``dlqId``. Each callback is a message of its own, configured by the
prefix rule (``Upstash-Callback-Retries`` as ``Upstash-Retries`` would), delivered,
signed and retried like any other.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from pytest_qstash_tasks._core.state.dlq import DeadLetterQueue
from pytest_qstash_tasks._core.state.outbox import (
    Message,
    Outbox,
    PublishedDelivery,
    forwarded_headers,
)

from .publishing import PublishConfig, callback_publish, store_messages
from .workflows import end_run

__all__ = ["AfterAttempt"]


class AfterAttempt:
    """Called (with the fake's lock held, at the attempt's instant) once an attempt's
    outcome is recorded: publishes the callbacks and fills the DLQ."""

    def __init__(
        self,
        outbox: Outbox,
        dlq: DeadLetterQueue,
        publish_config: PublishConfig,
        new_id: Callable[[str], str],
    ) -> None:
        self.outbox = outbox
        self.dlq = dlq
        self.publish_config = publish_config
        self.new_id = new_id

    def __call__(self, delivery: PublishedDelivery, status: int, body: bytes, now: int) -> None:
        """``status`` is what the attempt met (0: no answer), ``body`` the answer's body."""
        message = delivery.message
        assert message is not None  # every published delivery has its message
        plans = message.callbacks
        if "upstash-callback" in plans:
            body_of = _callback_body(message, status, body)
            self._publish(message, plans["upstash-callback"], body_of, now)
        if delivery.errors[-1] is not None and len(delivery.errors) == delivery.max_retry + 1:
            entry = self.dlq.add(message, now, status, (), body)
            run = self.outbox.runs.of_delivery(message.run_id, message.url, message.call_type)
            if run is not None:
                # A step the workflow could not take: the run has failed (a call's third
                # party failing is the workflow's to handle, from the call's callback).
                run.error = delivery.errors[-1]
                ends = delivery.starts[-1] + delivery.active_ms
                end_run(run, "RUN_FAILED", ends, self.outbox, self.publish_config, self.new_id)
            if "upstash-failure-callback" in plans:
                failure = _callback_body(message, status, body) | {"dlqId": entry.dlq_id}
                if run is not None:  # what the Workflow SDKs' failure functions read
                    failure |= {"workflowRunId": run.run_id, "workflowCreatedAt": run.created_at}
                plan = plans["upstash-failure-callback"]
                entry.failure_callback = self._publish(message, plan, failure, now)

    def _publish(self, source: Message, plan: object, body: dict[str, Any], now: int) -> str:
        """Publish a callback of ``source``; its message's id."""
        # Checked at the message's publish (api/messages.py): only the body and time are new.
        publish = callback_publish(plan, json.dumps(body).encode(), now)
        (message_id,) = store_messages(publish, now, self.outbox, self.new_id)
        # A queue's next message waits for its callbacks too (QStash's queues page).
        self.outbox.queues.hold(source, self.outbox.messages[message_id])
        return message_id


def _callback_body(message: Message, status: int, body: bytes) -> dict[str, Any]:
    """The JSON a callback receives about one attempt of ``message`` (QStash's callback
    docs: times as strings, bodies in base64)."""
    delivery = message.delivery
    source_header: dict[str, list[str]] = {}
    for name, value in forwarded_headers(message.headers).items():
        source_header.setdefault(name, []).append(value)
    answer: dict[str, Any] = {
        "status": status,
        "header": {},
        "body": base64.b64encode(body).decode("ascii"),
        "retried": len(delivery.errors) - 1,
        "maxRetries": delivery.max_retry,
        "sourceMessageId": message.message_id,
        "url": message.url,
        "method": message.method,
        "sourceHeader": source_header,
        "sourceBody": base64.b64encode(message.body).decode("ascii"),
        "notBefore": str(message.not_before),
        "createdAt": str(message.created_at),
        "callerIP": "127.0.0.1",
    }
    if message.url_group is not None:
        answer["topicName"] = message.url_group
    if message.endpoint_name is not None:
        answer["endpointName"] = message.endpoint_name
    if message.schedule_id is not None:
        answer["scheduleId"] = message.schedule_id
    return answer
