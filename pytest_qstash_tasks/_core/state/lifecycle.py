"""Simulated deliveries: a task whose state follows the fake's clock.

A ``SimulatedDelivery`` is a plan (when it was created, what each attempt's outcome
is), and ``task_at(t)`` computes the task QStash would show at time ``t`` directly,
from the plan: a jump of days costs the same as a jump of a millisecond.

The timeline of one delivery (all durations in ms; see the docs' fidelity page)::

    created   [t0, t0 + 100)
    planned   [t0 + 100, a0)                    a0 = t0 + 200, the first attempt
    active    [a_k, a_k + active_ms)            attempt k
    then, at f_k = a_k + active_ms, by the outcome of attempt k:
      2xx                      -> delivered (completedAt = f_k)
      failure, k == max_retry  -> failed
      failure, k <  max_retry  -> error     [f_k, a_k+1 - 100)
                                  planned   [a_k+1 - 100, a_k+1)
                                  with a_k+1 = f_k + backoff(k + 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_qstash_tasks._core.args import check_int

if TYPE_CHECKING:
    from pytest_qstash_tasks._core.models import Task

__all__ = [
    "BACKOFF_TABLE_MS",
    "QUEUED",
    "STEP_MS",
    "Delivery",
    "Outcome",
    "SimulatedDelivery",
    "backoff_ms",
    "error_text",
    "is_timeout",
]

#: What one delivery attempt meets: the destination's HTTP status, an exception
#: (type or instance) for a timeout or connection failure, or the error text itself.
Outcome = int | str | BaseException | type[BaseException]

#: How long a new task stays ``created``, and ``planned`` before each attempt.
STEP_MS = 100
#: The first attempt of a message waiting in a queue's line (``queues``): not known yet;
#: its task shows ``created`` until the queue lets it go.
QUEUED = 1 << 62

_MAX_BACKOFF_S = 86_400
#: ``backoff_ms(n)`` for n = 0..6: e ** (2 * n) passes a day at n = 6, so the last entry
#: covers every larger retry count.
BACKOFF_TABLE_MS = [int(min(_MAX_BACKOFF_S, math.exp(2 * n)) * 1000) for n in range(7)]


def backoff_ms(retried: int) -> int:
    """The v1 delay before the next attempt, in ms, after ``retried`` retries.

    ``min(86400, e ** (2 * retried))`` seconds, truncated to whole milliseconds.
    """
    if type(retried) is not int or retried < 0:  # on the factories' hot path: no call
        check_int("retried", retried)
    return BACKOFF_TABLE_MS[min(retried, len(BACKOFF_TABLE_MS) - 1)]


def error_text(outcome: Outcome) -> str | None:
    """The ``error`` a failed attempt leaves, or ``None`` for a 2xx (delivered)."""
    if isinstance(outcome, bool):
        raise TypeError(f"an outcome is an HTTP status, an exception or a str, not {outcome!r}")
    if isinstance(outcome, int):
        if not 100 <= outcome <= 599:
            raise ValueError(f"an outcome status must be 100-599, got {outcome}")
        return None if 200 <= outcome <= 299 else f"HTTP status {outcome}"
    if isinstance(outcome, str):
        if not outcome:
            raise ValueError("an outcome's error text cannot be empty")
        return outcome
    if isinstance(outcome, type) and issubclass(outcome, BaseException):
        kind, message = outcome, ""
    elif isinstance(outcome, BaseException):
        kind, message = type(outcome), str(outcome)
    else:
        raise TypeError(f"an outcome is an HTTP status, an exception or a str, not {outcome!r}")
    if is_timeout(kind):
        return "request timed out" + (f": {message}" if message else "")
    return "connection failed: " + (message or kind.__name__)


def is_timeout(kind: type[BaseException]) -> bool:
    """Whether an exception class stands for a timeout (``TimeoutError``, or httpx's
    ``TimeoutException``, matched by name so the core needs no httpx)."""
    return issubclass(kind, TimeoutError) or any(
        base.__name__ == "TimeoutException" for base in kind.__mro__
    )


class Delivery:
    """A task whose state follows the fake's clock: ``task_at(t)`` is the task QStash
    would show at time ``t``, from when each attempt starts and what it met.

    Two kinds: a ``SimulatedDelivery`` knows every attempt's outcome from the start;
    a published message's delivery (``outbox``) learns each when the attempt is due.
    Both keep the timeline of the module's docstring.
    """

    task_id: str
    message_id: str
    url: str
    max_retry: int
    created_at: int
    active_ms: int

    @property
    def timeline_at(self) -> int:
        """When the task joined the message's timeline: its creation."""
        return self.created_at

    def attempt_starts(self) -> list[int]:
        """When each attempt starts (unix ms): those made and the next one due."""
        raise NotImplementedError  # pragma: no cover - both kinds define it

    def outcome_errors(self) -> Sequence[str | None]:
        """The ``error`` of each attempt made (``None``: delivered), in order."""
        raise NotImplementedError  # pragma: no cover - both kinds define it

    def finished_at(self) -> int | None:
        """When the task reaches its last state (delivered, failed), if known."""
        raise NotImplementedError  # pragma: no cover - both kinds define it

    @property
    def canceled_at(self) -> int | None:
        """When the message was cancelled (unix ms), if it was."""
        return None

    def task_at(self, now: int) -> Task:
        """The task as QStash shows it at ``now`` (unix ms; before creation: created)."""
        canceled_at = self.canceled_at
        if canceled_at is not None and now >= canceled_at:
            from pytest_qstash_tasks._core.models import TaskState

            task = self._uncanceled_at(canceled_at)
            if task.state in (TaskState.DELIVERED, TaskState.FAILED):
                return self._uncanceled_at(now)
            # No next attempt: 0, as every other finished state shows it (and the model
            # takes: model_copy does not validate).
            return task.model_copy(update={"state": TaskState.CANCELED, "next_process_at": 0})
        return self._uncanceled_at(now)

    def _uncanceled_at(self, now: int) -> Task:
        # pydantic's models load on first use: the standalone command serves without them.
        from pytest_qstash_tasks._core.models import Task, TaskState

        fields: dict[str, Any] = {
            "task_id": self.task_id,
            "message_id": self.message_id,
            "url": self.url,
            "max_retry": self.max_retry,
            "timeline_at": self.created_at,
        }
        starts = self.attempt_starts()
        errors = self.outcome_errors()
        if now < starts[0]:
            if starts[0] == QUEUED:
                return Task(**fields, state=TaskState.CREATED, retried=0, next_process_at=0)
            state = TaskState.CREATED if now < self.created_at + STEP_MS else TaskState.PLANNED
            return Task(**fields, state=state, retried=0, next_process_at=starts[0])
        # The last attempt started by now; earlier ones have all failed.
        number = max(k for k, start in enumerate(starts) if start <= now)
        last_error, last_error_at = "", 0
        if number:
            last_error = errors[number - 1] or ""
            last_error_at = starts[number - 1] + self.active_ms
        fields.update(retried=number, error=last_error, last_error_at=last_error_at)
        finish = starts[number] + self.active_ms
        if now < finish or number >= len(errors):  # (the latter: a receiver has it now)
            return Task(**fields, state=TaskState.ACTIVE, next_process_at=starts[number])
        error = errors[number]
        if error is None:
            return Task(**fields, state=TaskState.DELIVERED, completed_at=finish)
        fields.update(error=error, last_error_at=finish)
        if number == self.max_retry:
            return Task(**fields, state=TaskState.FAILED)
        # A retry waits: error, then planned just before the next attempt.
        next_start = starts[number + 1]
        if next_start == QUEUED:  # waiting for room under its flow-control key
            fields["retried"] = number + 1
            return Task(**fields, state=TaskState.ERROR, next_process_at=0)
        state = TaskState.PLANNED if now >= next_start - STEP_MS else TaskState.ERROR
        fields["retried"] = number + 1
        return Task(**fields, state=state, next_process_at=next_start)


@dataclass(frozen=True)
class SimulatedDelivery(Delivery):
    """One task's delivery plan, every outcome known up front (``simulate_delivery``)."""

    task_id: str
    message_id: str
    url: str
    max_retry: int
    created_at: int
    active_ms: int
    #: The ``error`` of each attempt (``None``: delivered), validated to end the task.
    errors: tuple[str | None, ...]

    @classmethod
    def plan(
        cls,
        task_id: str,
        message_id: str,
        url: str,
        outcomes: Sequence[Outcome],
        max_retry: int,
        created_at: int,
        active_ms: int,
    ) -> SimulatedDelivery:
        """Check the plan and build it; refuses outcomes that don't end the task."""
        if not isinstance(url, str) or not url:
            raise ValueError(f"url must be a non-empty str, got {url!r}")
        check_int("max_retry", max_retry)
        check_int("active_ms", active_ms, 1)
        if isinstance(outcomes, (str, bytes, int)) or not isinstance(outcomes, Sequence):
            raise TypeError(f"outcomes must be a list, e.g. [500, 500, 200]; got {outcomes!r}")
        errors = tuple(error_text(outcome) for outcome in outcomes)
        if not errors:
            raise ValueError("outcomes cannot be empty: give at least one, e.g. [200]")
        for number, error in enumerate(errors):
            ends = error is None or number == max_retry
            if ends and number != len(errors) - 1:
                how = "is delivered" if error is None else f"fails (max_retry={max_retry})"
                raise ValueError(
                    f"outcomes {list(outcomes)!r}: the task {how} at attempt {number + 1}, "
                    f"so the {len(errors) - number - 1} outcome(s) after it would never be used"
                )
            if not ends and number == len(errors) - 1:
                raise ValueError(
                    f"outcomes {list(outcomes)!r} run out while a retry is still due "
                    f"(attempt {number + 1} failed, max_retry={max_retry}): end them with "
                    f"a 2xx, or give {max_retry + 1} attempts in all for a failed task"
                )
        return cls(task_id, message_id, url, max_retry, created_at, active_ms, errors)

    def attempt_starts(self) -> list[int]:
        """When each attempt starts (unix ms)."""
        start = self.created_at + 2 * STEP_MS
        starts = [start]
        for number in range(1, len(self.errors)):
            start = start + self.active_ms + backoff_ms(number)
            starts.append(start)
        return starts

    def outcome_errors(self) -> Sequence[str | None]:
        return self.errors

    def finished_at(self) -> int:
        """When the task reaches its last state (delivered or failed)."""
        return self.attempt_starts()[-1] + self.active_ms
