"""The courier: runs the attempts of published messages that are due, in order.

An attempt meets a scripted answer (``destination(...).answers(...)``), or goes to the
destination's receiver (``deliver_to``) as a signed ``DeliveryRequest``, or meets the
fake's ``default_answer``. Attempts run when the clock reaches them: the thread that
moves the clock runs them (``advance``, ``sleep``, ``set``, the process's sleeps under
``patch_sleep``), and with ``clock="wall"`` the next request or read does.

A receiver is the test's own code, and it may call the fake (read tasks, publish): so
the courier never holds the fake's lock while a receiver runs, and one run at a time
delivers (a run started meanwhile, from the receiver itself or another thread, leaves
the due attempts to the run under way).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pytest_qstash_tasks._core.state.lifecycle import error_text
from pytest_qstash_tasks._core.state.outbox import (
    Message,
    Outbox,
    PublishedDelivery,
    forwarded_headers,
)

from .clock import Clock
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
# receiver read a body that is not there (docs/fidelity.md, "Delivery").
_FRAMING = frozenset({"content-length", "transfer-encoding", "host"})


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
    """Runs due attempts; keeps what reached receivers (``attempts``) and the bugs the
    test's own receivers raised (``receiver_errors``). Its state is guarded by the
    fake's lock, which it takes itself."""

    def __init__(
        self,
        outbox: Outbox,
        destinations: Destinations,
        keys: KeyRing,
        clock: Clock,
        lock: threading.Lock,
        *,
        timeout: float,
    ) -> None:
        self.outbox = outbox
        self.destinations = destinations
        self.keys = keys
        self.clock = clock
        self.lock = lock
        self.timeout = timeout
        self.attempts: list[DeliveryAttempt] = []
        self.receiver_errors: list[str] = []
        self._running = False

    def run_due(self) -> None:
        """Run every attempt due by the clock's time (takes the lock itself)."""
        while True:
            with self.lock:
                if self._running or not self.outbox.pending():
                    return
                now = self.clock.now
                # Attempts no receiver takes run here, under one hold of the lock.
                while True:
                    popped = self.outbox.pop_due(now)
                    if popped is None:
                        return
                    due, delivery = popped
                    outcome, receiver = self.destinations.route(
                        delivery.url, delivery.message_id, due
                    )
                    if receiver is not None:
                        break
                    assert outcome is not None  # route() gives one or the other
                    self.outbox.attempted(delivery, error_text(outcome))
                message = self.outbox.messages[delivery.message_id]
                request = self.request_for(message, delivery)
                self._running = True
            answer: Answer | None = None
            try:
                answer = receiver.deliver(request, self._timeout_for(message))
            finally:
                with self.lock:
                    self._running = False
                    if answer is None:  # interrupted: the attempt is due again
                        self.outbox.reschedule(due, delivery)
                    else:
                        self._record(due, delivery, request, receiver, answer)

    def request_for(self, message: Message, delivery: PublishedDelivery) -> DeliveryRequest:
        """The signed request of the next attempt, with QStash's headers."""
        from .receivers import DeliveryRequest

        headers = [
            (name, value)
            for name, value in forwarded_headers(message.headers).items()
            if name.lower() not in _FRAMING
        ]
        headers += [
            ("User-Agent", "Upstash-QStash"),
            ("Upstash-Message-Id", message.message_id),
            ("Upstash-Retried", str(len(delivery.errors))),
            ("Upstash-Caller-Ip", "127.0.0.1"),
        ]
        if message.url_group is not None:
            headers.append(("Upstash-Topic-Name", message.url_group))
        headers.append(("Upstash-Signature", sign(self.keys.current, message.body, message.url)))
        return DeliveryRequest(message.method, message.url, tuple(headers), message.body)

    def clear(self) -> None:
        """Forget the attempts and the receivers' errors."""
        self.attempts.clear()
        self.receiver_errors.clear()

    def _timeout_for(self, message: Message) -> float:
        if message.timeout_s is not None:
            return min(message.timeout_s, self.timeout)
        return self.timeout

    def _record(
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
