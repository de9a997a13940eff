"""``qstash_tasks.dlq``: the messages whose retries ran out (qstash-py's ``client.dlq``,
seen from the test's side): read them, assert on them, delete them."""

from __future__ import annotations

import builtins
import threading
from dataclasses import dataclass

from pytest_qstash_tasks._core.args import check_int
from pytest_qstash_tasks._core.report import dead_lettered_problem
from pytest_qstash_tasks._core.state.dlq import DeadLetter, DeadLetterQueue

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

    def __init__(self, queue: DeadLetterQueue, lock: threading.Lock) -> None:
        self._queue = queue
        self._lock = lock

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
