"""The fake's state: messages and their tasks. Pure data, no HTTP.

A message's tasks are ordered by a timeline timestamp (``Task.timeline_at``, not a wire
field), newest first: ``with_timeline`` stamps the tasks that have none.

Each message keeps its tasks sorted newest first, with each task's wire JSON
serialised once when it is stored, so serving a page is a slice and a join.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from pytest_qstash_tasks._core.args import check_message_id

from .lifecycle import Delivery
from .pagination import page_bounds

if TYPE_CHECKING:
    from pytest_qstash_tasks._core.models import Task, TasksPage

__all__ = ["MessageTasks", "ScriptedPages", "TaskStore", "newest_first", "with_timeline"]

_Body = bytes | Delivery


def with_timeline(tasks: Iterable[Task], now: int) -> list[Task]:
    """The tasks, each with a timeline timestamp.

    A task that has none is stamped by its place in the list, taken as newest first:
    the i-th gets ``now - i``. A list parsed from a QStash answer keeps its order.
    """
    from pytest_qstash_tasks._core.models import (
        Task,  # loaded on first use, as everywhere in the store
    )

    stamped = []
    for index, task in enumerate(tasks):
        if not isinstance(task, Task):
            raise TypeError(f"expected Task objects, got {type(task).__name__}: {task!r}")
        if task.timeline_at is None:
            task = task.model_copy(update={"timeline_at": max(1, now - index)})
        stamped.append(task)
    return stamped


def newest_first(task: Task) -> int:
    """Sort key of a task stamped by ``with_timeline``: the newest first."""
    assert task.timeline_at is not None  # stamped by with_timeline
    return -task.timeline_at


def _wire_json(task: Task) -> bytes:
    # warnings=False: a Task.unchecked(...) may hold values of the wrong type on
    # purpose; it is sent as given.
    return task.model_dump_json(by_alias=True, warnings=False).encode()


@dataclass
class MessageTasks:
    """A message's tasks in serving order (newest first; ties in the order added).

    An entry is a stored ``Task`` (its wire JSON made once) or a
    ``Delivery``, whose task depends on the time it is asked at.
    """

    message_id: str
    _entries: list[Task | Delivery] = field(default_factory=list)
    _neg_timestamps: list[int] = field(default_factory=list)
    _bodies: list[bytes | Delivery] = field(default_factory=list)
    _ids: set[str] = field(default_factory=set)
    _has_simulated: bool = False

    def add(self, tasks: Sequence[Task]) -> None:
        """Store timed tasks; refuses a task id the message already has."""
        entries: list[tuple[int, Task | Delivery, _Body]] = [
            (newest_first(task), task, _wire_json(task)) for task in tasks
        ]
        self._check_new_ids([task.task_id for task in tasks])
        self._insert(entries)

    def add_simulated(self, delivery: Delivery) -> None:
        """Store a delivery (its task changes with the clock)."""
        if delivery.task_id in self._ids:  # one id: no need for _check_new_ids' set
            self._check_new_ids([delivery.task_id])
        self._ids.add(delivery.task_id)
        self._insert([(-delivery.timeline_at, delivery, delivery)])
        self._has_simulated = True

    def tasks_at(self, now: int) -> list[Task]:
        """The tasks as served at ``now``, newest first."""
        return [
            entry.task_at(now) if isinstance(entry, Delivery) else entry for entry in self._entries
        ]

    def page(self, cursor: int | None, page_size: int, now: int) -> tuple[list[bytes], int | None]:
        """The wire JSON of one page's tasks at ``now``, and the next cursor (None at the end)."""
        start, end, next_cursor = page_bounds(self._neg_timestamps, cursor, page_size)
        bodies = self._bodies[start:end]
        if self._has_simulated:
            bodies = [
                _wire_json(body.task_at(now)) if isinstance(body, Delivery) else body
                for body in bodies
            ]
        return bodies, next_cursor  # type: ignore[return-value]

    def unsettled(self, now: int) -> list[int]:
        """When each simulated delivery not yet delivered or failed at ``now`` will be."""
        if not self._has_simulated:
            return []
        ends = (e.finished_at() for e in self._entries if isinstance(e, Delivery))
        return sorted(end for end in ends if end is not None and end > now)

    def page_number(self, cursor: int | None, page_size: int) -> int | None:
        """Which page (1 for the first) a request with ``cursor`` gets, following the
        cursors from the top; ``None`` when the cursor is not one a page hands out."""
        number, at = 1, None
        while True:
            if at == cursor:
                return number
            _, _, at = page_bounds(self._neg_timestamps, at, page_size)
            if at is None:
                return None
            number += 1

    def _check_new_ids(self, task_ids: list[str]) -> None:
        seen: set[str] = set()
        for task_id in task_ids:
            if task_id in self._ids or task_id in seen:
                raise ValueError(
                    f"message {self.message_id!r} already has a task {task_id!r}; "
                    "task ids are unique within a message"
                )
            seen.add(task_id)
        self._ids.update(seen)

    def _insert(self, added: list[tuple[int, Task | Delivery, _Body]]) -> None:
        added.sort(key=itemgetter(0))  # stable: ties keep the order given
        if added and self._neg_timestamps and added[0][0] < self._neg_timestamps[-1]:
            # Some land among the stored ones: merge (stable, so stored ties come first).
            stored = zip(self._neg_timestamps, self._entries, self._bodies, strict=True)
            added = sorted([*stored, *added], key=itemgetter(0))
            self._neg_timestamps, self._entries, self._bodies = [], [], []
        for key, entry, body in added:
            self._neg_timestamps.append(key)
            self._entries.append(entry)
            self._bodies.append(body)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class ScriptedPages:
    """Pages served verbatim: no cursor gives the first, each page's cursor the next."""

    message_id: str
    pages: list[TasksPage]
    bodies: list[bytes]
    by_cursor: dict[int, int]
    requested: list[int] = field(default_factory=list)

    @classmethod
    def build(
        cls, message_id: str, pages: Iterable[TasksPage | Mapping[str, Any]]
    ) -> ScriptedPages:
        from pytest_qstash_tasks._core.models import TasksPage

        # A TasksPage comes back as it is (pydantic does not revalidate instances).
        validated = [TasksPage.model_validate(page) for page in pages]
        if not validated:
            raise ValueError(f"add_pages({message_id!r}, ...) needs at least one page")
        by_cursor: dict[int, int] = {}
        for number, page in enumerate(validated[:-1]):
            if not page.has_more:
                raise ValueError(
                    f"page {number + 1} of {message_id!r} ends the list (cursor {page.cursor!r}), "
                    f"so the {len(validated) - number - 1} page(s) after it could never be "
                    "requested"
                )
            assert page.cursor is not None
            if page.cursor in by_cursor:
                raise ValueError(
                    f"pages {by_cursor[page.cursor]} and {number + 1} of {message_id!r} both "
                    f"hand out cursor {page.cursor}; each must lead to one page"
                )
            by_cursor[page.cursor] = number + 1
        if validated[-1].has_more:
            raise ValueError(
                f"the last page of {message_id!r} hands out cursor {validated[-1].cursor}, "
                "which leads nowhere; end it with cursor=0 or cursor=None"
            )
        bodies = [
            page.model_dump_json(by_alias=True, warnings=False).encode() for page in validated
        ]
        return cls(message_id, validated, bodies, by_cursor)

    def page_number(self, cursor: int | None) -> int | None:
        """Which page a request with ``cursor`` gets, or None if no page hands it out."""
        if cursor is None:
            return 0
        return self.by_cursor.get(cursor)


class TaskStore:
    """All messages the fake knows, by id."""

    def __init__(self) -> None:
        self.messages: dict[str, MessageTasks] = {}
        self.scripted: dict[str, ScriptedPages] = {}
        #: A new token on every change, so callers can tell "nothing changed since".
        self.version = object()
        self._registered: dict[str, None] = {}

    def clear(self) -> None:
        """Forget every message."""
        self.messages.clear()
        self.scripted.clear()
        self._registered.clear()
        self.version = object()

    def add(self, message_id: str, tasks: Iterable[Task], now: int) -> list[Task]:
        """Store tasks (stamping untimed ones, see ``with_timeline``); returns them."""
        self._check_unscripted(message_id)
        stamped = with_timeline(tasks, now)
        for task in stamped:
            if task.message_id != message_id:
                raise ValueError(
                    f"task {task.task_id!r} belongs to message {task.message_id!r}, "
                    f"not {message_id!r}"
                )
        message = self.messages.get(message_id) or MessageTasks(message_id)
        message.add(stamped)
        self.messages[message_id] = message
        self._changed(message_id)
        return stamped

    def add_simulated(self, delivery: Delivery) -> None:
        """Store a delivery (simulated or published) in its message (registering the
        message)."""
        message_id = delivery.message_id
        self._check_unscripted(message_id)
        message = self.messages.get(message_id) or MessageTasks(message_id)
        message.add_simulated(delivery)
        self.messages[message_id] = message
        self._changed(message_id)

    def add_message(self, message_id: str) -> None:
        """Register a message with no tasks (it answers 200 with an empty list)."""
        self._check_unscripted(message_id)
        self.messages.setdefault(message_id, MessageTasks(message_id))
        self._changed(message_id)

    def add_pages(self, message_id: str, pages: Iterable[TasksPage | Mapping[str, Any]]) -> None:
        """Serve ``pages`` verbatim for ``message_id``."""
        check_message_id(message_id, "a message id")
        if message_id in self.messages:
            raise ValueError(
                f"message {message_id!r} already holds stored tasks; scripted pages would hide them"
            )
        if message_id in self.scripted:
            raise ValueError(f"message {message_id!r} already has scripted pages")
        self.scripted[message_id] = ScriptedPages.build(message_id, pages)
        self._changed(message_id)

    def tasks_at(self, message_id: str, now: int) -> list[Task]:
        """``message_id``'s tasks as served at ``now``; ``KeyError`` if it holds none."""
        message = self.messages.get(message_id)
        if message is None:
            raise KeyError(f"message {message_id!r} holds no stored tasks")
        return message.tasks_at(now)

    def unsettled(self, message_id: str | None, now: int) -> list[int]:
        """When each of ``message_id``'s unsettled simulated deliveries settles."""
        message = self.messages.get(message_id) if message_id is not None else None
        return [] if message is None else message.unsettled(now)

    def known_ids(self) -> list[str]:
        """Every registered message id, in the order registered."""
        return list(self._registered)

    def _check_unscripted(self, message_id: str) -> None:
        """Refuse a bad id, or tasks for a message that scripted pages serve."""
        check_message_id(message_id, "a message id")
        if message_id in self.scripted:
            raise ValueError(
                f"message {message_id!r} is served from scripted pages; "
                "it cannot also hold stored tasks"
            )

    def _changed(self, message_id: str) -> None:
        self._registered.setdefault(message_id)
        self.version = object()
