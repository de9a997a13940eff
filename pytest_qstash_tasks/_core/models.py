"""Wire models of ``GET /v1/messages/{messageId}/tasks``.

Python attributes are snake_case; the wire (aliases) is camelCase, as QStash sends it.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = ["Task", "TaskState", "TasksPage"]

# Strict: a JSON string "3" is not a count, and True is not a timestamp.
_Count = Annotated[int, Field(strict=True, ge=0)]
_Millis = Annotated[int, Field(strict=True, ge=0)]
_NonEmpty = Annotated[str, Field(strict=True, min_length=1)]


class TaskState(str, enum.Enum):
    """The seven task states of QStash v1, as the v1 JS SDK types them.

    Lifecycle: ``created -> planned -> active -> delivered`` on a 2xx answer;
    ``active -> error`` on a failed attempt; ``error -> planned`` while retries remain,
    ``error -> failed`` when they are exhausted. ``canceled`` ends a task early.

    A ``Task`` whose ``state`` is not one of these (the API page's own example sends
    ``processing`` and ``retrying``) keeps it as a plain ``str``: it parses and dumps
    unchanged, and ``isinstance(task.state, TaskState)`` tells the two apart.
    """

    CREATED = "created"
    PLANNED = "planned"
    ACTIVE = "active"
    DELIVERED = "delivered"
    ERROR = "error"
    FAILED = "failed"
    CANCELED = "canceled"

    def __str__(self) -> str:
        return self.value


class _WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        # Validators and serializers are built on first use, not at import: the
        # standalone command answers before it has parsed or written a task.
        defer_build=True,
    )


class Task(_WireModel):
    """One delivery task of a message, as QStash sends it.

    ``max_retry``, ``message_id``, ``retried``, ``state``, ``task_id`` and ``url`` are
    required. The other wire fields are optional; QStash sends an unset one as ``0`` or
    ``""``, and so do these defaults. Tasks are immutable: derive a changed copy with
    ``task.model_copy(update={...})``.

    ``timeline_at`` is not a wire field. It is the unix-ms instant the task joined the
    message's timeline, which orders tasks (newest first) and drives the cursor. It is
    never dumped. A task without one gets one when it is stored (see ``make_pages``).
    """

    # Declared in wire-key order (alphabetical, as the API page shows them), so a dump
    # reads like QStash's own answer.
    completed_at: _Millis = 0
    error: Annotated[str, Field(strict=True)] = ""
    last_error_at: _Millis = 0
    max_retry: _Count
    message_id: _NonEmpty
    next_process_at: _Millis = 0
    retried: _Count
    # Left to right: a known value becomes the enum member, any other non-empty
    # string stays a str (validated in Rust, no Python hook on the hot path).
    state: Annotated[TaskState | _NonEmpty, Field(union_mode="left_to_right")]
    task_id: _NonEmpty
    url: _NonEmpty
    timeline_at: Annotated[int | None, Field(strict=True, ge=1, exclude=True, repr=False)] = None

    @model_validator(mode="after")
    def _retried_within_max(self) -> Task:
        if self.retried > self.max_retry:
            raise ValueError(
                f"retried ({self.retried}) exceeds max_retry ({self.max_retry}); "
                "build deliberately inconsistent tasks with Task.unchecked(...)"
            )
        return self

    @classmethod
    def unchecked(cls, **fields: Any) -> Task:
        """Build a task without any validation, for testing code against odd payloads.

        Takes snake_case names or camelCase wire names; unset optional fields take their
        defaults. Nothing is checked: ``retried > max_retry``, negative numbers or wrong
        types go through as given and are sent as given.
        """
        by_name: dict[str, Any] = {}
        for key, value in fields.items():
            name = _FIELD_BY_ALIAS.get(key, key)
            if name not in cls.model_fields:
                raise TypeError(f"Task has no field {key!r}")
            by_name[name] = value
        return cls.model_construct(**by_name)

    # Equality, hashing and repr mean the wire: a task read back from an answer equals
    # the one stored, although only the stored one knows its ``timeline_at``.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Task):
            return NotImplemented
        return _wire_values(self) == _wire_values(other)

    def __hash__(self) -> int:
        return hash(_wire_values(self))

    @property
    def is_known_state(self) -> bool:
        """Whether ``state`` is one of the seven ``TaskState`` values."""
        return isinstance(self.state, TaskState)


def _wire_values(task: Task) -> tuple[object, ...]:
    values = task.__dict__
    return tuple(values.get(name) for name in _WIRE_NAMES)


_WIRE_NAMES = tuple(name for name in Task.model_fields if name != "timeline_at")
# From the alias generator itself: with defer_build, older pydantic (2.7) fills the
# fields' aliases in only when the model is built.
_FIELD_BY_ALIAS = {to_camel(name): name for name in Task.model_fields}


class TasksPage(_WireModel):
    """The response body: one page of a message's tasks, newest first.

    ``cursor`` is what to send for the next page. QStash marks the last page with
    ``0`` or by leaving the field out; ``None`` here means "left out", and such a page
    dumps without a ``cursor`` key. ``has_more`` reads either end marker.
    """

    cursor: Annotated[int | None, Field(strict=True, ge=0)] = None
    tasks: list[Task]

    @model_serializer(mode="wrap")
    def _omit_missing_cursor(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.cursor is None:
            data.pop("cursor", None)
        return data

    @property
    def has_more(self) -> bool:
        """True when ``cursor`` points at a further page (neither ``0`` nor absent)."""
        return bool(self.cursor)
