"""``qstash_tasks.logs``: every state change of every published message, as QStash's logs
show them (qstash-py's ``client.log``, seen from the test's side), up to the clock's time."""

from __future__ import annotations

import builtins
import threading
from dataclasses import dataclass

from pytest_qstash_tasks._core.engine.clock import Clock
from pytest_qstash_tasks._core.engine.timeline import Timeline
from pytest_qstash_tasks._core.state.logs import LogEntry, MessageLog

__all__ = ["Log", "Logs"]


@dataclass(frozen=True)
class Log:
    """One state change of one message: when (unix ms), which, what state it reached
    (``CREATED``, ``ACTIVE``, ``RETRY``, ``ERROR``, ``DELIVERED``, ``FAILED``,
    ``CANCEL_REQUESTED``, ``CANCELED``), and the attempt's ``error``, if any."""

    time: int
    message_id: str
    state: str
    url: str
    error: str | None = None

    @classmethod
    def of(cls, entry: LogEntry) -> Log:
        """A snapshot of a stored entry."""
        error = entry.fields.get("error")
        return cls(entry.time, entry.message_id, entry.state, entry.url, error)


class Logs:
    """The logs: ``qstash_tasks.logs``."""

    def __init__(
        self, log: MessageLog, clock: Clock, timeline: Timeline, lock: threading.Lock
    ) -> None:
        self._log = log
        self._clock = clock
        self._timeline = timeline
        self._lock = lock

    def list(self, message_id: str | None = None) -> list[Log]:
        """Every entry up to the clock's time (of one message, if given), oldest first."""
        self._timeline.run_due()
        with self._lock:
            now = self._clock.now
            if message_id is not None:
                return [Log.of(entry) for entry in self._log.of(message_id, now)]
            return [Log.of(entry) for entry in self._log if entry.time <= now]

    def states(self, message_id: str) -> builtins.list[str]:
        """The states one message went through so far, in order:
        ``["CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "DELIVERED"]``."""
        return [entry.state for entry in self.list(message_id)]
