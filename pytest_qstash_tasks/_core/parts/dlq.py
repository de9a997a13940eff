"""``qstash_tasks.dlq``: the messages whose retries ran out (qstash-py's ``client.dlq``,
seen from the test's side): read them, assert on them, delete them."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pytest_qstash_tasks._core.args import check_int
from pytest_qstash_tasks._core.engine.clock import Clock
from pytest_qstash_tasks._core.engine.courier import answer_error
from pytest_qstash_tasks._core.report import dead_lettered_problem
from pytest_qstash_tasks._core.state.dlq import DeadLetter, DeadLetterQueue
from pytest_qstash_tasks._core.state.outbox import Message, Outbox, PublishedDelivery

__all__ = ["Dlq", "DlqEntry"]


@dataclass(frozen=True)
class DlqEntry:
    """One message in the DLQ, as it was when read: the message (``message_id``, ``url``,
    ``method``, ``body``), when its last attempt failed (``failed_at``, unix ms), and what
    that attempt met (``response_status``: 0 when no answer came, ``response_body``)."""

    dlq_id: str
    message_id: str
    url: str
    method: str
    body: bytes
    failed_at: int
    response_status: int
    response_body: bytes

    @classmethod
    def of(cls, entry: DeadLetter) -> DlqEntry:
        """A snapshot of a stored entry."""
        message = entry.message
        return cls(
            entry.dlq_id, message.message_id, message.url, message.method, message.body,
            entry.failed_at, entry.response_status, entry.response_body,
        )  # fmt: skip

    def describe(self) -> str:
        """One line: the entry's id, the message and what its last attempt met."""
        met = f"status {self.response_status}" if self.response_status else "no answer"
        return f"{self.dlq_id}: {self.method} {self.url} (message {self.message_id}) -> {met}"


class Dlq:
    """The dead-letter queue: ``qstash_tasks.dlq``."""

    def __init__(
        self,
        queue: DeadLetterQueue,
        outbox: Outbox,
        clock: Clock,
        new_id: Callable[[str], str],
        lock: threading.Lock,
    ) -> None:
        self._queue = queue
        self._outbox = outbox
        self._clock = clock
        self._new_id = new_id
        self._lock = lock

    def add(
        self,
        url: str,
        body: bytes | str = b"",
        *,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        retries: int = 3,
        response_status: int = 500,
        response_body: bytes | str = b"",
    ) -> DlqEntry:
        """Put a message in the DLQ as if it had been published to ``url`` before now and
        every one of its ``retries + 1`` attempts had met ``response_status`` (0: no
        answer came) with ``response_body``: for a test of the code that reads, retries
        or clears the DLQ. Its last attempt ended at the clock's time; its tasks and logs
        tell the same story, and no callback is called. ``headers`` are those the
        receiver would have been given (``Upstash-Forward-*`` of the publish)."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"a DLQ entry's url is an http(s) URL, got {url!r}")
        if not isinstance(method, str) or not method.isalpha():
            raise ValueError(f"a DLQ entry's method is an HTTP method, got {method!r}")
        check_int("retries", retries)
        status = check_int("response_status", response_status)
        if (status != 0 and not (100 <= status <= 599)) or 200 <= status <= 299:
            raise ValueError(
                "response_status is what the last attempt met: 0 (no answer) or a "
                f"status of 100-599 that is not 2xx, got {status}"
            )
        answer = _bytes("response_body", response_body)
        forwarded = [
            (f"upstash-forward-{name.lower()}", value) for name, value in (headers or {}).items()
        ]
        if not all(isinstance(v, str) for _, v in forwarded):
            raise TypeError("a DLQ entry's headers map names to str values")
        # Loaded here, with the first entry: the standalone command starts without it.
        from pytest_qstash_tasks._core.engine.receivers import Answer

        error = answer_error(Answer(status, answer)) if status else "connection failed: no answer"
        assert error is not None  # not a 2xx: checked above
        with self._lock:
            now = self._clock.now
            # The attempts' times end at now: measure them from 0 first, then place them.
            trial = PublishedDelivery("", "", url, retries, 0, 0, None, None)
            while not trial.settled:
                trial.attempt(error)
            created = now - (trial.starts[-1] + trial.active_ms)
            message_id = self._new_id("msg")
            delivery = PublishedDelivery(
                self._new_id("tsk"), message_id, url, retries, created, created, None, None
            )
            message = Message(
                message_id, url, method.upper(), tuple(forwarded), _bytes("body", body),
                created, created, delivery,
            )  # fmt: skip
            self._outbox.add_failed(message, error)
            return DlqEntry.of(self._queue.add(message, now, status, (), answer))

    def list(self) -> list[DlqEntry]:
        """Every entry, oldest first."""
        with self._lock:
            return [DlqEntry.of(entry) for entry in self._queue]

    def get(self, dlq_id: str) -> DlqEntry:
        """The entry with that id; ``KeyError`` naming the ids there are if none."""
        with self._lock:
            entry = self._queue.get(dlq_id)
            if entry is None:
                known = ", ".join(e.dlq_id for e in self._queue) or "none"
                raise KeyError(f"no DLQ entry {dlq_id!r} (there are: {known})")
            return DlqEntry.of(entry)

    def delete(self, dlq_id: str) -> None:
        """Take one entry out, as ``client.dlq.delete`` does; ``KeyError`` if it is not there."""
        self.get(dlq_id)
        with self._lock:
            self._queue.remove([dlq_id])

    def assert_dead_lettered(
        self, url: str | None = None, *, message_id: str | None = None, times: int | None = None
    ) -> builtins.list[DlqEntry]:
        """Assert that messages to ``url`` (or with ``message_id``) are in the DLQ: at
        least one, or exactly ``times``; returns them. The failure lists every entry."""
        __tracebackhide__ = True  # show the user's line, not ours
        if times is not None:
            check_int("times", times)
        found, problem = dead_lettered_problem(self.list(), url, message_id, times)
        if problem is not None:
            raise AssertionError(problem)
        return found


def _bytes(name: str, value: object) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    raise TypeError(f"{name} is bytes or str, not {type(value).__name__}")
