"""The courier: makes the attempts of published messages, as the timeline reaches them.

An attempt meets a scripted answer (``destination(...).answers(...)``), or goes to the
destination's receiver (``deliver_to``) as a signed ``DeliveryRequest``, or meets the
fake's ``default_answer``. The courier is the timeline's kind of event for a published
message's delivery: a scripted or default answer is recorded at once, under the fake's
lock; a receiver is the test's own code, which may call the fake (read tasks, publish),
so it is handed over to run without the lock (``_Attempt``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from pytest_qstash_tasks._core.state.lifecycle import error_text
from pytest_qstash_tasks._core.state.outbox import (
    ACTIVE_MS,
    Message,
    Outbox,
    PublishedDelivery,
    forwarded_headers,
)

from .destinations import Destinations
from .signing import KeyRing, sign

if TYPE_CHECKING:
    # Loaded with the first receiver (deliver_to): the standalone command starts without.
    from .receivers import Answer, DeliveryAttempt, DeliveryRequest, Receiver

__all__ = ["Courier", "answer_error"]

#: The longest a receiver's answer is shown in a task's ``error``.
_MAX_ERROR_BODY = 200
# The framing of the delivery request is the delivery's own, as any HTTP client frames
# what it sends: a forwarded Content-Length, Transfer-Encoding or Host would make the
# receiver read a body that is not there (docs/fidelity.md, "Delivery"). And QStash's
# own headers are the delivery's: a forwarded Upstash-Signature or Upstash-Message-Id
# (workflow-py forwards the ones of the delivery it answers) never replaces them.
_OWN = frozenset(
    {
        "content-length", "transfer-encoding", "host", "user-agent", "upstash-message-id",
        "upstash-retried", "upstash-caller-ip", "upstash-topic-name", "upstash-schedule-id",
        "upstash-signature", "upstash-workflow-runid",
    }
)  # fmt: skip


def answer_error(answer: Answer) -> str | None:
    """The task's ``error`` for what a receiver answered (``None``: delivered), in the
    format of ``simulate_delivery``: ``HTTP status 500[: body]``, ``request timed out``,
    ``connection failed: ...``."""
    if answer.status is None:
        assert answer.exception is not None
        if answer.receiver_traceback is not None:
            return "HTTP status 500"  # a bug in the receiver: what a server would answer
        return error_text(answer.exception)
    if 200 <= answer.status <= 299:
        return None
    body = answer.body[:_MAX_ERROR_BODY].decode("utf-8", "replace").strip()
    return f"HTTP status {answer.status}" + (f": {body}" if body else "")


class Courier:
    """Makes due attempts (the timeline's kind of event for ``PublishedDelivery``); keeps
    what reached receivers (``attempts``) and the bugs the test's own receivers raised
    (``receiver_errors``). Called with the fake's lock held, but for ``_Attempt.run``."""

    def __init__(
        self, outbox: Outbox, destinations: Destinations, keys: KeyRing, *, timeout: float
    ) -> None:
        self.outbox = outbox
        self.destinations = destinations
        self.keys = keys
        self.timeout = timeout
        self.attempts: list[DeliveryAttempt] = []
        self.receiver_errors: list[str] = []
        #: Called once each attempt's outcome is recorded, with the delivery, the status
        #: it met (0: no answer), the answer's body and the attempt's instant: the fake's
        #: callbacks and DLQ (``api/callbacks.py``), which the engine does not know.
        self.after_attempt: Callable[[PublishedDelivery, int, bytes, int], None] | None = None

    def pending(self, delivery: PublishedDelivery) -> bool:
        """Whether the attempt is still to be made (not once the message is cancelled)."""
        return delivery.canceled_at is None

    def lasts_ms(self, delivery: PublishedDelivery) -> int:
        """How long an attempt shows ``active``."""
        return ACTIVE_MS

    def chain_entry(self, delivery: PublishedDelivery) -> tuple[str, str]:
        """The attempt's destination and message id."""
        return delivery.url, delivery.message_id

    def begin(self, due: int, delivery: PublishedDelivery) -> _Attempt | None:
        """Make the attempt due at ``due``: at once when a script or the default answers
        it, else the receiver's call, to run without the lock. An attempt its flow-control
        key has no room for waits (``state/flow_control.py``)."""
        message = delivery.message
        assert message is not None  # kept by Outbox.add
        if message.flow_key is not None and not self.outbox.flow.admit(
            message.flow_key, delivery, due
        ):
            return None
        self.outbox.starting(delivery)
        outcome, receiver = self.destinations.route(delivery.url, delivery.message_id, due)
        if receiver is None:
            assert outcome is not None  # route() gives one or the other
            self.outbox.attempted(delivery, error_text(outcome))
            if self.after_attempt is not None:
                status = outcome if isinstance(outcome, int) else 0  # error_text: no bool
                self.after_attempt(delivery, status, b"", due)
            self.outbox.release(delivery)
            return None
        request = self.request_for(message, delivery)
        return _Attempt(self, due, delivery, request, receiver, self._timeout_for(message))

    def request_for(self, message: Message, delivery: PublishedDelivery) -> DeliveryRequest:
        """The signed request of the next attempt, with QStash's headers."""
        from .receivers import DeliveryRequest

        headers = [
            (name, value)
            for name, value in forwarded_headers(message.headers).items()
            if name.lower() not in _OWN
        ]
        headers += [
            ("User-Agent", "Upstash-QStash"),
            ("Upstash-Message-Id", message.message_id),
            ("Upstash-Retried", str(len(delivery.errors))),
            ("Upstash-Caller-Ip", "127.0.0.1"),
        ]
        if message.url_group is not None:
            headers.append(("Upstash-Topic-Name", message.url_group))
        if message.schedule_id is not None:
            headers.append(("Upstash-Schedule-Id", message.schedule_id))
        body = message.body
        if message.run_id is not None:
            headers.append(("Upstash-Workflow-RunId", message.run_id))
            run = self.outbox.runs.get(message.run_id)
            if run is not None and message.call_type == "step":
                # A step's delivery carries the run so far: what the Workflow SDKs read.
                body = json.dumps(run.raw_steps(up_to=message.message_id)).encode()
        headers.append(("Upstash-Signature", sign(self.keys.current, body, message.url)))
        return DeliveryRequest(message.method, message.url, tuple(headers), body)

    def clear(self) -> None:
        """Forget the attempts and the receivers' errors."""
        self.attempts.clear()
        self.receiver_errors.clear()

    def _timeout_for(self, message: Message) -> float:
        if message.timeout_s is not None:
            return min(message.timeout_s, self.timeout)
        return self.timeout

    def record(
        self,
        due: int,
        delivery: PublishedDelivery,
        request: DeliveryRequest,
        receiver: Receiver,
        answer: Answer,
    ) -> None:
        from .receivers import DeliveryAttempt

        error = answer_error(answer)
        self.attempts.append(
            DeliveryAttempt(
                message_id=delivery.message_id,
                url=delivery.url,
                method=request.method,
                headers=request.headers,
                body=request.body,
                retried=len(delivery.errors),
                at=due,
                status=answer.status,
                answer_body=answer.body,
                duration_ms=answer.duration_ms,
                error=error,
                receiver=receiver.describe(),
                exception=answer.exception,
            )
        )
        if answer.receiver_traceback is not None:
            self.receiver_errors.append(
                f"{receiver.describe()} raised while receiving message "
                f"{delivery.message_id} (retried {len(delivery.errors)}), which counts as a "
                f"failed attempt (HTTP status 500):\n{answer.receiver_traceback.rstrip()}"
            )
        self.outbox.attempted(delivery, error)
        if self.after_attempt is not None:
            status = answer.status
            if status is None:  # a bug in the receiver answers 500, as a server would
                status = 500 if answer.receiver_traceback is not None else 0
            self.after_attempt(delivery, status, answer.body, due)
        self.outbox.release(delivery)


class _Attempt:
    """An attempt that goes to a receiver: its call runs without the fake's lock."""

    __slots__ = ("answer", "courier", "delivery", "due", "receiver", "request", "timeout")

    def __init__(
        self,
        courier: Courier,
        due: int,
        delivery: PublishedDelivery,
        request: DeliveryRequest,
        receiver: Receiver,
        timeout: float,
    ) -> None:
        self.courier = courier
        self.due = due
        self.delivery = delivery
        self.request = request
        self.receiver = receiver
        self.timeout = timeout
        self.answer: Answer | None = None

    def run(self) -> None:
        self.answer = self.receiver.deliver(self.request, self.timeout)

    def finish(self) -> None:
        assert self.answer is not None  # run() gave one, or raised (nothing to finish)
        self.courier.record(self.due, self.delivery, self.request, self.receiver, self.answer)
