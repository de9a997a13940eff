"""``qstash_tasks.queues``: the queues the code under test made or enqueued to (qstash-py's
``client.queue``, seen from the test's side), and the messages each still holds."""

from __future__ import annotations

import builtins
import threading
from dataclasses import dataclass

from pytest_qstash_tasks._core.engine.clock import Clock
from pytest_qstash_tasks._core.engine.timeline import Timeline
from pytest_qstash_tasks._core.state.outbox import Outbox
from pytest_qstash_tasks._core.state.queues import Queue as _Stored

__all__ = ["Queue", "Queues"]


@dataclass(frozen=True)
class Queue:
    """One queue, as it was when read: its ``name``, ``parallelism`` and whether it is
    ``paused``; the ids of the messages under way (``active``: each holds a place until
    its delivery and its callbacks are over) and of those waiting their turn
    (``waiting``, first in line first); ``lag`` counts both, as QStash's does."""

    name: str
    parallelism: int
    paused: bool
    active: tuple[str, ...]
    waiting: tuple[str, ...]

    @property
    def lag(self) -> int:
        """The messages not yet processed: under way and waiting."""
        return len(self.active) + len(self.waiting)

    @classmethod
    def of(cls, queue: _Stored) -> Queue:
        """A snapshot of a stored queue."""
        return cls(
            queue.name, queue.parallelism, queue.paused, tuple(queue.active),
            tuple(message.message_id for message, _ in queue.waiting),
        )  # fmt: skip


class Queues:
    """The queues: ``qstash_tasks.queues``."""

    def __init__(
        self, outbox: Outbox, clock: Clock, timeline: Timeline, lock: threading.Lock
    ) -> None:
        self._outbox = outbox
        self._clock = clock
        self._timeline = timeline
        self._lock = lock

    def list(self) -> builtins.list[Queue]:
        """Every queue, in the order made (events due by the clock's time run first)."""
        self._timeline.run_due()
        with self._lock:
            return [Queue.of(queue) for queue in self._outbox.queues]

    def get(self, name: str) -> Queue:
        """The queue with that name; ``KeyError`` naming the queues there are if none."""
        queues = self.list()
        found = next((queue for queue in queues if queue.name == name), None)
        if found is None:
            known = ", ".join(queue.name for queue in queues) or "none"
            raise KeyError(f"no queue {name!r} (there are: {known})")
        return found

    def assert_drained(self, name: str) -> None:
        """Assert that the queue holds no message: each one enqueued was delivered or
        failed, its callbacks over. The failure lists what it holds, with each state."""
        __tracebackhide__ = True  # show the user's line, not ours
        queue = self.get(name)
        if not queue.lag:
            return
        now = self._clock.now
        lines = []
        with self._lock:
            for message_id in queue.active + queue.waiting:
                task = self._outbox.messages[message_id].delivery.task_at(now)
                state = getattr(task.state, "value", task.state)
                if message_id in queue.waiting:
                    lines.append(f"  - {message_id} (waiting: {state})")
                else:
                    lines.append(
                        f"  - {message_id} (under way: {state}, retried "
                        f"{task.retried} of {task.max_retry})"
                    )
        raise AssertionError(
            f"expected queue {name!r} to be drained; it holds {queue.lag} message(s):\n"
            + "\n".join(lines)
        )
