"""Factories: valid, lifecycle-consistent tasks and the pages a server would send."""

from __future__ import annotations

import difflib
import gc
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from .args import check_end_cursor, check_int
from .engine.clock import DEFAULT_START_MS
from .ids import new_ids
from .models import Task, TasksPage, TaskState
from .seeding import Stream, current_stream, running_clock
from .state.lifecycle import BACKOFF_TABLE_MS, backoff_ms
from .state.pagination import page_bounds
from .state.store import newest_first, with_timeline

__all__ = ["generate", "make_pages", "make_task", "make_tasks", "tasks_to_add"]

#: How often each state turns up in a generated batch unless ``states`` says otherwise.
DEFAULT_STATE_WEIGHTS: Mapping[TaskState, float] = {
    TaskState.DELIVERED: 0.60,
    TaskState.ERROR: 0.10,
    TaskState.FAILED: 0.08,
    TaskState.PLANNED: 0.07,
    TaskState.ACTIVE: 0.05,
    TaskState.CREATED: 0.05,
    TaskState.CANCELED: 0.05,
}
_DEFAULT_MAX_RETRY = 3  # QStash's free tier
_ERROR_STATUSES = (500, 500, 500, 502, 503, 504, 429, 404, 400)
_WIRE_FIELDS = frozenset(Task.model_fields)
_TERMINAL = (TaskState.DELIVERED, TaskState.FAILED, TaskState.CANCELED)

Override = Any  # a value, or a callable of the task's index in its batch


def make_task(*, seed: int | None = None, now: int | None = None, **overrides: Any) -> Task:
    """One valid task, consistent with its ``state``.

    Every field can be overridden by name (``state``, ``retried``, ``timeline_at``, ...);
    the fields left to the factory agree with the overrides and with the v1 lifecycle:

    * ``created`` and ``planned``: no completion, no error, ``retried == 0``;
    * ``active``: an attempt in progress;
    * ``delivered``: ``completed_at`` set;
    * ``error``: an attempt failed and a retry waits: ``error``, ``last_error_at``
      and ``next_process_at = last_error_at + backoff(retried)``;
    * ``failed``: ``retried == max_retry``, with the last error;
    * ``canceled``: no completion.

    A task that was retried (``retried > 0``) carries the error of its last failed
    attempt whatever its state. Timestamps are unix ms and never later than ``now``
    (default: the fake's clock in a test that takes ``qstash_tasks``, else
    2026-01-01T00:00:00Z), except a scheduled
    ``next_process_at``. ``seed`` gives an independent, reproducible stream; by default
    the test's own stream is used (seeded from its node id).
    """
    stream = current_stream() if seed is None else Stream(None, seed)
    return generate(stream, 1, now=now, caller="make_task()", **overrides)[0]


def make_tasks(
    n: int,
    *,
    message_id: str | None = None,
    seed: int | None = None,
    now: int | None = None,
    states: Iterable[TaskState | str] | Mapping[TaskState | str, float] | None = None,
    **overrides: Override,
) -> list[Task]:
    """``n`` tasks of one message, newest first, as QStash would list them.

    Task ids are unique (``tsk_`` + 28 base58 characters); ``message_id`` defaults to a
    fresh ``msg_`` id shared by the batch. Timeline timestamps go back from ``now`` with
    a realistic spread, a few of them shared (a fan-out creates tasks in the same ms).
    States are a realistic mix unless ``states`` names the ones to draw from (a list,
    or a mapping of weights). Each override is a value, or a callable that takes the
    task's index in the batch: ``make_tasks(5, retried=lambda i: i % 2)``.
    """
    stream = current_stream() if seed is None else Stream(None, seed)
    return generate(stream, n, message_id=message_id, now=now, states=states, **overrides)


def generate(
    stream: Stream,
    n: int,
    *,
    message_id: str | None = None,
    now: int | None = None,
    states: Iterable[TaskState | str] | Mapping[TaskState | str, float] | None = None,
    caller: str = "make_tasks()",
    **overrides: Override,
) -> list[Task]:
    """``make_tasks`` drawing from a given stream; errors name ``caller``, the function
    the user called."""
    check_int("n", n)
    unknown = set(overrides) - _WIRE_FIELDS
    if unknown:
        raise TypeError(
            f"{caller} got unknown field(s) {sorted(unknown)}; "
            f"Task fields are {sorted(_WIRE_FIELDS)}"
        )
    state = overrides.get("state")
    if state is not None and not callable(state):  # refused even when no task is drawn
        _as_state(state, caller)
    stream.used = True
    # Inside a test that took the fixture, "now" is its fake clock: generated data never
    # lies in the clock's future.
    if now is None:
        clock = stream.clock or running_clock()
        now = DEFAULT_START_MS if clock is None else clock.now
    builder = _Builder(stream, now, states, caller)
    # The batch creates only acyclic objects, yet enough of them to set off the cyclic
    # collector over and over: pause it meanwhile (docs/benchmarks.md has the profile).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return builder.batch(n, message_id, overrides)
    finally:
        if collecting:
            gc.enable()


def tasks_to_add(
    stream: Stream,
    message_id: str,
    tasks: Iterable[Task | Mapping[str, Any]] | None,
    count: int | None,
    now: int,
    overrides: dict[str, Any],
) -> list[Task]:
    """The tasks the fake's ``add()`` stores: ``tasks`` as given (wire dicts validated),
    or ``count`` generated ones with ``overrides``; errors name ``add()``."""
    if tasks is not None and count is not None:
        raise TypeError("add() takes either tasks or count=, not both")
    if tasks is None and count is None:
        raise TypeError(
            "add() takes tasks or count=; to register a message with no tasks, use "
            f"add_message({message_id!r})"
        )
    if tasks is None:
        n = check_int("count", count)
        return generate(stream, n, message_id=message_id, now=now, caller="add()", **overrides)
    if overrides:
        raise TypeError(
            f"field overrides ({', '.join(sorted(overrides))}) apply to generated "
            "tasks (count=...); set them on the tasks you pass instead"
        )
    if isinstance(tasks, (Task, Mapping, str, bytes)):
        raise TypeError("tasks must be a list of tasks; wrap a single task in a list")
    return [task if isinstance(task, Task) else Task.model_validate(task) for task in tasks]


def make_pages(
    tasks: Iterable[Task],
    *,
    page_size: int = 100,
    end_cursor: Literal[0] | None = 0,
    now: int = DEFAULT_START_MS,
) -> list[TasksPage]:
    """The pages the fake (and, as far as it is known, QStash) answers for ``tasks``.

    Tasks are ordered newest first by timeline timestamp (ties keep their list order);
    each page's ``cursor`` fetches the next, the last carries ``end_cursor`` (``0``, or
    ``None`` to leave the field out). A page never splits tasks that share one
    millisecond, so it may be shorter, or, for a larger group, longer than
    ``page_size``. No tasks give one empty page. Untimed tasks: see ``with_timeline``.
    """
    check_int("page_size", page_size, 1)
    check_end_cursor(end_cursor)
    ordered = sorted(with_timeline(tasks, now), key=newest_first)
    neg = [-(task.timeline_at or 0) for task in ordered]
    pages: list[TasksPage] = []
    cursor: int | None = None
    while True:
        start, end, cursor = page_bounds(neg, cursor, page_size)
        pages.append(
            TasksPage(tasks=ordered[start:end], cursor=end_cursor if cursor is None else cursor)
        )
        if cursor is None:
            return pages


def _between(rng: random.Random, low: int, high: int) -> int:
    """A draw from ``[low, high)``, cheaper than ``randrange``."""
    return low + int(rng.random() * (high - low))


def _state_table(
    states: Iterable[TaskState | str] | Mapping[TaskState | str, float] | None,
    caller: str,
) -> tuple[list[TaskState | str], list[float]]:
    if states is None:
        return list(DEFAULT_STATE_WEIGHTS), list(DEFAULT_STATE_WEIGHTS.values())
    if isinstance(states, Mapping):
        pairs = list(states.items())
    elif isinstance(states, str):
        raise TypeError("states must be a list of states or a mapping of weights, not a str")
    else:
        pairs = [(state, 1.0) for state in states]
    if any(weight < 0 for _, weight in pairs):
        raise ValueError(f"states' weights cannot be negative: {states!r}")
    if not sum(weight for _, weight in pairs):  # no pairs, or every weight 0
        raise ValueError(f"states must name at least one state with a weight > 0: {states!r}")
    return [_as_state(state, caller) for state, _ in pairs], [float(weight) for _, weight in pairs]


def _as_state(value: object, caller: str) -> TaskState:
    """One of the seven states, or a clear error: generated tasks never hold another
    (odd states are for ``Task.unchecked`` and payloads given as they are)."""
    if isinstance(value, TaskState):
        return value
    try:
        return TaskState(value)
    except ValueError:
        known = [state.value for state in TaskState]
        close = difflib.get_close_matches(str(value), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"{caller}: {value!r} is not a task state{hint}; generated tasks take one of "
            f"{', '.join(known)}. For an odd state, build the task with "
            "Task.unchecked(state=...) or give it as a wire dict."
        ) from None


class _Builder:
    """Draws the fields of a batch from one random stream."""

    def __init__(
        self,
        stream: Stream,
        now: int,
        states: Iterable[TaskState | str] | Mapping[TaskState | str, float] | None,
        caller: str,
    ) -> None:
        check_int("now (unix ms)", now, 1)
        self.caller = caller
        self.rng: random.Random = stream.rng
        self.random = stream.rng.random
        self.taken = stream.taken_ids
        self.now = now
        self.states, self.weights = _state_table(states, caller)

    def batch(
        self, n: int, message_id: str | None, overrides: Mapping[str, Override]
    ) -> list[Task]:
        rng = self.rng
        random = rng.random
        if message_id is None:  # the callers pass message_id by name, never as an override
            message_id = new_ids("msg", 1, rng, self.taken)[0]
        task_ids = new_ids("tsk", n, rng, self.taken) if "task_id" not in overrides else None
        drawn_states = rng.choices(self.states, self.weights, k=n)
        fixed: dict[str, Override] = {}
        dynamic: dict[str, Callable[[int], Any]] = {}
        for name, value in overrides.items():
            if callable(value):
                dynamic[name] = value
            else:
                fixed[name] = value
        validate = Task.model_validate
        # A message's tasks joined its timeline a while ago, so the attempt histories
        # drawn below (minutes of backoff) fit before "now".
        timeline = self.now - _between(rng, 3_600_000, 7_200_000)
        tasks = []
        for index in range(n):
            given = (
                {**fixed, **{k: make(index) for k, make in dynamic.items()}} if dynamic else fixed
            )
            fields = self._draw(
                given.get("state", drawn_states[index]),
                max(1, timeline),
                given,
                message_id,
                task_ids[index] if task_ids is not None else None,
                _URLS[index % len(_URLS)],
            )
            if given:
                fields.update(given)
                tasks.append(validate(fields))
            else:
                tasks.append(_trusted(fields))
            # Newest first: the next task joined earlier; one in ten shares the ms.
            if random() >= 0.1:
                timeline -= 1 + int(random() * 5_000)
        return tasks

    def _draw(
        self,
        state: Any,
        timeline_at: int,
        given: Mapping[str, Any],
        message_id: str | None,
        task_id: str | None,
        url: str,
    ) -> dict[str, Any]:
        """The fields that follow from ``state`` and what the caller ``given``.

        Keys come in field order, so a task built from them reads like a validated one.
        """
        retried: Any = None
        if given:  # only what the caller gave needs checking
            if not isinstance(state, TaskState):
                state = _as_state(state, self.caller)
            max_retry = given.get("max_retry", _DEFAULT_MAX_RETRY)
            created = given.get("timeline_at", timeline_at)
            retried = given.get("retried")
            if (
                not isinstance(created, int)
                or not isinstance(max_retry, int)
                or max_retry < 0
                or (retried is not None and (not isinstance(retried, int) or retried < 0))
            ):
                # Let validation name the wrong value, and only it: the ids are drawn.
                return {
                    "max_retry": max_retry,
                    "message_id": message_id,
                    "retried": 0,
                    "state": state,
                    "task_id": task_id,
                    "url": url,
                    "timeline_at": created,
                }
        else:
            max_retry, created = _DEFAULT_MAX_RETRY, timeline_at
        if retried is None:
            retried = self._retried(state, max_retry)
        fields = self._times(state, created, retried, max_retry, given)
        fields.update(message_id=message_id, task_id=task_id, url=url, timeline_at=created)
        return fields

    def _retried(self, state: TaskState, max_retry: int) -> int:
        """How many times a task in ``state`` was retried, when the caller did not say."""
        random = self.random
        if state is _FAILED:
            return max_retry
        if state is _ERROR:
            if max_retry < 1:
                raise ValueError(
                    "state 'error' means a retry waits, which needs max_retry >= 1; "
                    "a task that fails with no retries left is 'failed'"
                )
            return 1 + int(random() * max_retry)
        if state is _DELIVERED and max_retry and random() < 0.15:
            return 1 + int(random() * max_retry)
        return 0

    def _times(
        self,
        state: TaskState,
        created: int,
        retried: int,
        max_retry: int,
        given: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The fields of a task's attempts so far: timestamps, the error, the counts (in
        field order, so a task built from them reads like a validated one)."""
        random, now = self.random, self.now
        # Walk the attempts: each failed one is followed by backoff(retries so far).
        attempt_at = created + int(random() * 50)
        last_error_at = 0
        for done in range(retried):
            last_error_at = attempt_at + 20 + int(random() * 3_000)
            attempt_at = last_error_at + BACKOFF_TABLE_MS[done + 1 if done < 6 else 6]
        failed_before = retried > 0 or state is _FAILED or state is _ERROR
        if state is _FAILED:
            last_error_at = attempt_at + 20 + int(random() * 3_000)
        elif state is _ERROR:
            # The retry still waits: it failed less than one backoff ago.
            waited = int(random() * backoff_ms(max(retried, 1)))
            last_error_at = max(last_error_at, now - 1 - waited)
        if last_error_at > now:
            last_error_at = now
        if given:
            last_error_at = given.get("last_error_at", last_error_at)

        completed_at = 0
        next_process_at = 0
        if state is _DELIVERED:
            completed_at = attempt_at + 20 + int(random() * 3_000)
            if completed_at > now:
                completed_at = now
        elif state is _ERROR:
            if isinstance(last_error_at, int):
                next_process_at = last_error_at + backoff_ms(retried)
        elif state is _ACTIVE:
            next_process_at = min(attempt_at, now)  # the attempt under way started then
        elif state is _CREATED or state is _PLANNED:
            # The attempt is scheduled, for now or a little later.
            next_process_at = max(attempt_at, now + int(random() * 60_000))
        return {
            "completed_at": completed_at,
            "error": _ERROR_TEXTS[int(random() * len(_ERROR_TEXTS))] if failed_before else "",
            "last_error_at": last_error_at if failed_before else 0,
            "max_retry": max_retry,
            "message_id": None,
            "next_process_at": next_process_at,
            "retried": retried,
            "state": state,
            "task_id": None,
            "url": None,
            "timeline_at": None,
        }


def _trusted(fields: dict[str, Any]) -> Task:
    """A task from fields this module drew itself, valid by construction.

    Skips validation, which would cost more than the drawing; a test re-validates a
    large generated batch to keep this honest. Same steps as ``model_construct``
    without its per-field loop.
    """
    task = _new_task(Task)
    object.__setattr__(task, "__dict__", fields)
    object.__setattr__(task, "__pydantic_fields_set__", _ALL_FIELDS.copy())
    object.__setattr__(task, "__pydantic_extra__", None)
    object.__setattr__(task, "__pydantic_private__", None)
    return task


_new_task = object.__new__
_ALL_FIELDS = set(Task.model_fields)
# Enum members as module constants: an attribute lookup on the enum costs far more
# than a global on the hot path (docs/benchmarks.md).
_CREATED, _PLANNED, _ACTIVE = TaskState.CREATED, TaskState.PLANNED, TaskState.ACTIVE
_DELIVERED, _ERROR, _FAILED = TaskState.DELIVERED, TaskState.ERROR, TaskState.FAILED
_URLS = tuple(f"https://api{k}.example.com/webhooks/qstash" for k in range(1, 4))
_ERROR_TEXTS = tuple(f"HTTP status {status}" for status in _ERROR_STATUSES)
