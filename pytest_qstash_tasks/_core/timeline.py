"""The timeline timestamp that orders a message's tasks (not a wire field)."""

from __future__ import annotations

from collections.abc import Iterable

from .models import Task

__all__ = ["newest_first", "with_timeline"]


def with_timeline(tasks: Iterable[Task], now: int) -> list[Task]:
    """The tasks, each with a timeline timestamp.

    A task that has none is stamped by its place in the list, taken as newest first:
    the i-th gets ``now - i``. A list parsed from a QStash answer keeps its order.
    """
    stamped = []
    for index, task in enumerate(tasks):
        if not isinstance(task, Task):
            raise TypeError(f"expected Task objects, got {type(task).__name__}: {task!r}")
        if task.timeline_at is None:
            task = task.model_copy(update={"timeline_at": max(1, now - index)})
        stamped.append(task)
    return stamped


def newest_first(task: Task) -> int:
    """Sort key: the newest timeline timestamp first."""
    return -(task.timeline_at or 0)
