"""What the standalone fake's data file and control endpoints take: JSON, camelCase.

One schema for both, so ``--data FILE`` and ``POST /_fake/messages`` accept the same
entries, validated the same way, with errors that name the bad entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from pytest_qstash_tasks._core.models import _FIELD_BY_ALIAS, Task

if TYPE_CHECKING:
    from pytest_qstash_tasks._core.fake import QStashTasksFake
    from pytest_qstash_tasks._core.parts.dlq import DlqEntry

__all__ = [
    "DataFile",
    "DeadLetterSpec",
    "DeliverySpec",
    "MessageSpec",
    "ScheduleSpec",
    "SpecError",
    "apply_data",
    "apply_dead_letter",
    "apply_message",
    "dead_letter_json",
    "describe_validation_error",
    "parse",
]


class SpecError(ValueError):
    """A data file or control request that cannot be applied; the text says where."""


class _Spec(BaseModel):
    # Built on first use: the command starts serving before it parses anything.
    model_config = ConfigDict(
        alias_generator=to_camel, extra="forbid", frozen=True, defer_build=True
    )


_NonNegative = Annotated[int, Field(strict=True, ge=0)]


class DeliverySpec(_Spec):
    """A simulated delivery: ``simulate_delivery`` of the fake (outcomes are HTTP
    statuses or error texts)."""

    url: str
    outcomes: list[Annotated[int, Field(strict=True)] | str] = Field(min_length=1)
    max_retry: _NonNegative = 3
    active_ms: _NonNegative = 500
    task_id: str | None = None


class MessageSpec(_Spec):
    """One message and what it holds: ``tasks`` (wire tasks), ``count`` (generated, with
    ``states`` and ``overrides``), ``pages`` (scripted, served verbatim), or none of
    them (a message with no tasks); plus any simulated ``deliveries``."""

    message_id: str = Field(min_length=1)
    tasks: list[dict[str, Any]] | None = None
    count: _NonNegative | None = None
    states: list[str] | dict[str, float] | None = None
    overrides: dict[str, Any] | None = None
    pages: list[dict[str, Any]] | None = None
    deliveries: list[DeliverySpec] = []

    @model_validator(mode="after")
    def _one_source(self) -> MessageSpec:
        given = [name for name in ("tasks", "count", "pages") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of tasks, count and pages, not {' and '.join(given)}")
        if self.count is None and (self.states is not None or self.overrides is not None):
            raise ValueError("states and overrides shape generated tasks: they need count")
        if self.pages is not None and self.deliveries:
            raise ValueError("a message served from scripted pages cannot also have deliveries")
        return self


class DeadLetterSpec(_Spec):
    """A message already in the DLQ: ``qstash_tasks.dlq.add`` of the fake."""

    url: str
    body: str = ""
    method: str = "POST"
    headers: dict[str, str] = {}
    retries: _NonNegative = 3
    response_status: Annotated[int, Field(strict=True)] = 500
    response_body: str = ""


class ScheduleSpec(_Spec):
    """A schedule the app made in an earlier run: ``qstash_tasks.schedules.create``
    (``headers`` as a publish's: ``Upstash-Retries``, ``Upstash-Queue-Name``...)."""

    destination: str
    cron: str
    schedule_id: str | None = None
    body: str = ""
    headers: dict[str, str] = {}


class DataFile(_Spec):
    """The ``--data`` file: ``{"messages": [...], "dlq": [...], "schedules": [...]}``
    (any may be left out)."""

    messages: list[MessageSpec] = []
    dlq: list[DeadLetterSpec] = []
    schedules: list[ScheduleSpec] = []


def apply_data(fake: QStashTasksFake, data: DataFile) -> None:
    """Store everything ``data`` holds; a ``SpecError`` naming the entry the fake refused."""
    for index, message in enumerate(data.messages):
        try:
            apply_message(fake, message)
        except ValueError as error:
            raise SpecError(f"messages[{index}] ({message.message_id!r}): {error}") from None
    for index, entry in enumerate(data.dlq):
        try:
            apply_dead_letter(fake, entry)
        except (ValueError, TypeError) as error:
            raise SpecError(f"dlq[{index}] ({entry.url!r}): {error}") from None
    for index, schedule in enumerate(data.schedules):
        try:
            fake.schedules.create(
                schedule.destination, schedule.cron, schedule_id=schedule.schedule_id,
                body=schedule.body, headers=schedule.headers,
            )  # fmt: skip
        except ValueError as error:
            raise SpecError(f"schedules[{index}] ({schedule.destination!r}): {error}") from None


def apply_dead_letter(fake: QStashTasksFake, spec: DeadLetterSpec) -> dict[str, Any]:
    """Put ``spec`` in the fake's DLQ; the entry as ``GET /_fake/dlq`` shows it."""
    entry = fake.dlq.add(
        spec.url, spec.body, method=spec.method, headers=spec.headers, retries=spec.retries,
        response_status=spec.response_status, response_body=spec.response_body,
    )  # fmt: skip
    return dead_letter_json(entry)


def dead_letter_json(entry: DlqEntry) -> dict[str, Any]:
    """One DLQ entry as the control endpoints show it (bodies as text)."""
    return {
        "dlqId": entry.dlq_id,
        "messageId": entry.message_id,
        "url": entry.url,
        "method": entry.method,
        "body": entry.body.decode(errors="replace"),
        "failedAt": entry.failed_at,
        "responseStatus": entry.response_status,
        "responseBody": entry.response_body.decode(errors="replace"),
        "description": entry.describe(),
    }


def parse(model: type[_Spec], data: object, where: str) -> Any:
    """``data`` validated as ``model``, or a ``SpecError`` naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise SpecError(describe_validation_error(error, where, data)) from None


def describe_validation_error(error: ValidationError, where: str, data: object) -> str:
    """``where.messages[1] ('msg_2').count: Input should be ...``, one line each."""
    lines = []
    for problem in error.errors():
        lines.append(f"{_path(where, problem['loc'], data)}: {problem['msg']}")
    return "\n".join(lines)


def apply_message(fake: QStashTasksFake, spec: MessageSpec) -> dict[str, Any]:
    """Store ``spec`` in ``fake``; what was stored, as JSON. Refusals raise ValueError."""
    task_ids: list[str] = []
    try:
        if spec.pages is not None:
            fake.add_pages(spec.message_id, spec.pages)
        elif spec.count is not None:
            overrides = {_FIELD_BY_ALIAS.get(k, k): v for k, v in (spec.overrides or {}).items()}
            added = fake.add(spec.message_id, count=spec.count, states=spec.states, **overrides)
            task_ids = [task.task_id for task in added]
        elif spec.tasks is not None:
            added = fake.add(spec.message_id, [Task.model_validate(t) for t in spec.tasks])
            task_ids = [task.task_id for task in added]
        elif not spec.deliveries:
            fake.add_message(spec.message_id)
        for delivery in spec.deliveries:
            task_ids.append(
                fake.simulate_delivery(
                    spec.message_id,
                    url=delivery.url,
                    outcomes=delivery.outcomes,
                    max_retry=delivery.max_retry,
                    active_ms=delivery.active_ms,
                    task_id=delivery.task_id,
                )
            )
    except ValidationError as error:
        raise ValueError(describe_validation_error(error, "task", None)) from None
    except TypeError as error:  # an argument the fake refuses by its type: its own words
        raise ValueError(str(error)) from None
    return {"messageId": spec.message_id, "taskIds": task_ids}


def _path(where: str, loc: Sequence[int | str], data: object) -> str:
    text, node = where, data
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) else None  # pydantic's own index
            if isinstance(node, dict) and isinstance(node.get("messageId"), str):
                text += f" ({node['messageId']!r})"
        else:
            text += f".{part}" if text else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return text
