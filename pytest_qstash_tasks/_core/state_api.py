"""The fake's state API: what the test stores for the endpoint to serve."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .args import check_int
from .factories import generate
from .ids import new_ids
from .lifecycle import Outcome, SimulatedDelivery
from .models import Task, TasksPage
from .seeding import Stream, current_stream
from .sleep_patch import SleepPatch
from .state import FakeState
from .store import TaskStore

__all__ = ["StateAPI"]


class StateAPI(FakeState):
    """``add``, ``add_message``, ``add_pages``, ``tasks``, ``simulate_delivery`` and
    ``reset``; the process's sleeps on the clock (``patch_sleep``)."""

    def add(
        self,
        message_id: str,
        tasks: Iterable[Task | Mapping[str, Any]] | None = None,
        *,
        count: int | None = None,
        **task_overrides: Any,
    ) -> list[Task]:
        """Store tasks for ``message_id`` (registering the message); returns them.

        Give ``tasks`` (``Task`` objects or wire dicts; an empty list registers the
        message with no tasks), or ``count`` to generate that many with ``make_tasks``,
        where ``task_overrides`` apply (``add("msg_1", count=5, state="failed")``).
        A task with no ``timeline_at`` is stamped from the clock in list order, newest
        first. Tasks already stored stay; a task id the message already has is refused.
        """
        if tasks is not None and count is not None:
            raise TypeError("add() takes either tasks or count=, not both")
        if tasks is None and count is None:
            raise TypeError(
                "add() takes tasks or count=; to register a message with no tasks, use "
                f"add_message({message_id!r})"
            )
        if tasks is None:
            built = generate(
                self._stream_now(),
                check_int("count", count),
                message_id=message_id,
                now=self.clock.now,
                caller="add()",
                **task_overrides,
            )
        else:
            if task_overrides:
                raise TypeError(
                    f"field overrides ({', '.join(sorted(task_overrides))}) apply to generated "
                    "tasks (count=...); set them on the tasks you pass instead"
                )
            if isinstance(tasks, (Task, Mapping, str, bytes)):
                raise TypeError("tasks must be a list of tasks; wrap a single task in a list")
            built = [
                task if isinstance(task, Task) else Task.model_validate(task) for task in tasks
            ]
            if not built:
                self.add_message(message_id)
                return []
        with self._lock:
            return self._store.add(message_id, built, self.clock.now)

    def add_message(self, message_id: str) -> None:
        """Register ``message_id`` with no tasks: it answers ``200`` with ``tasks: []``."""
        with self._lock:
            self._store.add_message(message_id)

    def add_pages(self, message_id: str, pages: Iterable[TasksPage | Mapping[str, Any]]) -> None:
        """Serve ``pages`` verbatim for ``message_id``.

        A request without a cursor gets the first page; a request with a page's
        ``cursor`` gets the page after it. Each page but the last must hand out a
        cursor of its own, and the last must end the list (``0`` or no cursor).
        """
        with self._lock:
            self._store.add_pages(message_id, list(pages))

    def message_ids(self) -> list[str]:
        """The ids of the registered messages: those holding tasks, then those served
        from scripted pages."""
        with self._lock:
            return self._store.known_ids()

    def tasks(self, message_id: str) -> list[Task]:
        """The tasks stored for ``message_id``, in serving order (newest first)."""
        with self._lock:
            message = self._store.messages.get(message_id)
            if message is None:
                raise KeyError(f"message {message_id!r} holds no stored tasks")
            return message.tasks_at(self.clock.now)

    def simulate_delivery(
        self,
        message_id: str,
        *,
        url: str,
        outcomes: Sequence[Outcome],
        max_retry: int = 3,
        active_ms: int = 500,
        task_id: str | None = None,
    ) -> str:
        """Add a task that goes through QStash's delivery lifecycle as the clock moves.

        The task is created now (``clock.now``) and shows ``created``, ``planned``,
        then ``active`` for ``active_ms`` per attempt. Each attempt ends as its entry in
        ``outcomes`` says: an HTTP status of the destination (2xx delivers it), an
        exception type or instance for a timeout or connection failure, or the error
        text itself. After a failed attempt, while retries remain, the task shows
        ``error`` with ``retried`` counted up and waits ``backoff(retried)`` (QStash v1:
        ``min(86400, e ** (2 * retried))`` seconds), then ``planned`` and the next
        attempt; the failure with ``retried == max_retry`` leaves it ``failed``.
        ``outcomes`` must end the task: ``[500, 500, 200]`` is delivered with
        ``retried == 2``.

        Every response shows the state at the clock's time; ``clock.advance`` may jump
        any distance at once. Returns the task id. Call it again with another ``url``
        to model a message sent to several destinations.
        """
        with self._lock:
            if task_id is None:
                stream = self._stream_now()
                stream.used = True
                task_id = new_ids("tsk", 1, stream.rng, stream.taken_ids)[0]
            delivery = SimulatedDelivery.plan(
                task_id=task_id,
                message_id=message_id,
                url=url,
                outcomes=outcomes,
                max_retry=max_retry,
                created_at=self.clock.now,
                active_ms=active_ms,
            )
            self._store.add_simulated(delivery)
        return task_id

    def _stream_now(self) -> Stream:
        """Where generated data comes from: this fake's seed, else the running test's."""
        return self._stream or current_stream()

    def _start_driving_clock(self) -> None:
        """For transports' ``start``: the process's sleeps move the clock (patch_sleep)."""
        if self.patch_sleep and self._sleep_patch is None:
            patch = SleepPatch(self.clock)
            patch.start()
            self._sleep_patch = patch

    def _stop_driving_clock(self) -> None:
        """For transports' ``stop``."""
        patch, self._sleep_patch = self._sleep_patch, None
        if patch is not None:
            patch.stop()

    def reset(self) -> None:
        """Forget everything the fake learnt since it was made: stored tasks, scripted
        pages, simulated deliveries, recorded calls, planned faults and loop streaks;
        the clock goes back to its start and a seeded fake's data starts over. The
        settings stay."""
        with self._lock:
            self._store = TaskStore()
            self._faults.clear()
            self._calls.clear()
            self._loop_errors.clear()
            self._real_host_calls.clear()
            self._expected.clear()
            self._loop_guard.reset()
            self.clock._restart()
            if self._seed is not None:
                self._stream = Stream(None, self._seed)
