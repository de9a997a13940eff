"""Hypothesis strategies for QStash tasks and pages, valid by construction.

Install with the ``hypothesis`` extra (``pip install "pytest-qstash-tasks[hypothesis]"``)
and use them to test your own parsers and paging loops::

    from hypothesis import given
    from pytest_qstash_tasks import strategies as qst

    @given(qst.tasks_pages(page_size=10))
    def test_my_parser_reads_every_page(pages):
        ...

Every task these draw passes ``Task`` validation and follows the v1 lifecycle rules the
factories follow (see the Factories page). Draws shrink towards fewer tasks, fewer
shared milliseconds and the first state listed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

try:
    from hypothesis import strategies as st
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pytest_qstash_tasks.strategies needs hypothesis: "
        'pip install "pytest-qstash-tasks[hypothesis]"'
    ) from error

from ._core.engine.clock import DEFAULT_START_MS
from ._core.factories import make_pages, make_task, make_tasks
from ._core.ids import BASE58, ID_LENGTH
from ._core.models import Task, TasksPage, TaskState

__all__ = ["message_ids", "message_tasks", "task_ids", "tasks", "tasks_page", "tasks_pages"]

_SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
_DAY_MS = 86_400_000


def _ids(prefix: str) -> st.SearchStrategy[str]:
    return st.text(alphabet=BASE58, min_size=ID_LENGTH, max_size=ID_LENGTH).map(
        lambda chars: f"{prefix}_{chars}"
    )


def message_ids() -> st.SearchStrategy[str]:
    """QStash message ids: ``msg_`` and 28 base58 characters."""
    return _ids("msg")


def task_ids() -> st.SearchStrategy[str]:
    """QStash task ids: ``tsk_`` and 28 base58 characters."""
    return _ids("tsk")


def _states(states: Sequence[TaskState | str] | None) -> list[TaskState]:
    if states is None:
        return list(TaskState)
    chosen = [TaskState(state) for state in states]
    if not chosen:
        raise ValueError("states cannot be empty")
    return chosen


@st.composite
def tasks(
    draw: st.DrawFn,
    *,
    states: Sequence[TaskState | str] | None = None,
    message_id: str | None = None,
    max_retry: int | None = None,
    timeline_at: int | None = None,
    now: int = DEFAULT_START_MS,
) -> Task:
    """One valid task, consistent with its state.

    Args:
        states: The states to draw from (default: all seven).
        message_id: The task's message (default: a drawn id).
        max_retry: Fixed ``maxRetry`` (default: drawn from 0 to 5; at least 1 for
            ``error``, which needs a retry left).
        timeline_at: Fixed timeline timestamp (default: within the 30 days before ``now``).
        now: The instant no timestamp passes, but a scheduled ``nextProcessAt``.
    """
    state = draw(st.sampled_from(_states(states)))
    low = 1 if state is TaskState.ERROR else 0
    if max_retry is None:
        max_retry = draw(st.integers(min_value=low, max_value=5))
    elif max_retry < low:
        raise ValueError(f"an error task needs max_retry >= 1, got {max_retry}")
    if state in (TaskState.CREATED, TaskState.PLANNED):
        retried = 0
    elif state is TaskState.FAILED:
        retried = max_retry
    else:
        retried = draw(st.integers(min_value=low, max_value=max_retry))
    if timeline_at is None:
        timeline_at = draw(st.integers(min_value=max(0, now - 30 * _DAY_MS), max_value=now))
    return make_task(
        seed=draw(_SEEDS),
        now=now,
        state=state,
        max_retry=max_retry,
        retried=retried,
        message_id=message_id if message_id is not None else draw(message_ids()),
        task_id=draw(task_ids()),
        timeline_at=timeline_at,
    )


@st.composite
def message_tasks(
    draw: st.DrawFn,
    *,
    message_id: str | None = None,
    min_size: int = 0,
    max_size: int = 300,
    states: Sequence[TaskState | str] | None = None,
    now: int = DEFAULT_START_MS,
) -> list[Task]:
    """The tasks of one message, newest first, each with its timeline timestamp.

    Many tasks share a millisecond (a fan-out creates several in the same one): the
    share of ties is drawn too, from none to all of them. Sizes up to thousands are
    cheap: the tasks come from ``make_tasks`` with a drawn seed.
    """
    if not 0 <= min_size <= max_size:
        raise ValueError(f"want 0 <= min_size <= max_size, got {min_size} and {max_size}")
    count = draw(st.integers(min_value=min_size, max_value=max_size))
    tie_percent = draw(st.integers(min_value=0, max_value=100))
    seed = draw(_SEEDS)
    rng = random.Random(seed)
    stamps: list[int] = []
    at = now
    for index in range(count):
        if index and rng.randrange(100) >= tie_percent:
            at -= 1 + rng.randrange(5_000)
        stamps.append(max(at, 0))
    return make_tasks(
        count,
        message_id=message_id if message_id is not None else draw(message_ids()),
        seed=seed,
        now=now,
        states=_states(states),
        timeline_at=lambda i: stamps[i],
    )


@st.composite
def tasks_pages(
    draw: st.DrawFn,
    *,
    page_size: int | None = None,
    end_cursor: Literal[0] | Literal["any"] | None = "any",
    message_id: str | None = None,
    min_size: int = 0,
    max_size: int = 300,
    states: Sequence[TaskState | str] | None = None,
) -> list[TasksPage]:
    """Every page of one message, linked by cursors, as the fake (and QStash) sends them.

    ``page_size`` defaults to a drawn size from 1 to 100; ``end_cursor`` to either end
    marker (``0`` or the field left out).
    """
    size = page_size if page_size is not None else draw(st.integers(1, 100))
    ends: list[Literal[0] | None] = [0, None]
    end = draw(st.sampled_from(ends)) if end_cursor == "any" else end_cursor
    message = draw(
        message_tasks(message_id=message_id, min_size=min_size, max_size=max_size, states=states)
    )
    return make_pages(message, page_size=size, end_cursor=end)


@st.composite
def tasks_page(
    draw: st.DrawFn,
    *,
    page_size: int | None = None,
    states: Sequence[TaskState | str] | None = None,
) -> TasksPage:
    """One page of a walk: the first, one in the middle or the last."""
    pages = draw(tasks_pages(page_size=page_size, states=states))
    return pages[draw(st.integers(min_value=0, max_value=len(pages) - 1))]
