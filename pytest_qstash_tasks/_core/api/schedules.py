"""Schedules, as QStash serves them: ``POST /v2/schedules/{destination}`` (an upsert by
``Upstash-Schedule-Id``), ``GET /v2/schedules`` (a plain array), ``GET``/``DELETE
/v2/schedules/{scheduleId}``, and pause and resume by ``PATCH`` (what both SDKs send) or
``POST`` (QStash's OpenAPI). And the timeline's kind of event for a schedule's firing:
a publish QStash makes itself, checked as the schedule's own was, whose messages carry
the ``scheduleId``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote

from pytest_qstash_tasks._core.exchange import Request
from pytest_qstash_tasks._core.state.agenda import Agenda
from pytest_qstash_tasks._core.state.outbox import Outbox, forwarded_headers, publish_fields
from pytest_qstash_tasks._core.state.schedules import Firing, Schedule, ScheduleBook, parse_cron

from .publishing import PublishConfig, check_publish, store_messages
from .refusals import Refused, allow

__all__ = ["Firings", "is_schedules_path", "respond"]

_PREFIX = "/v2/schedules"
#: What QStash takes as a schedule's id.
_ID_RE = re.compile(r"[A-Za-z0-9._-]+")


def is_schedules_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is ``/v2/schedules`` or under it."""
    rest = raw_path[len(base_path) :]
    return rest == _PREFIX or rest.startswith(_PREFIX + "/")


class Firings:
    """The timeline's kind for a ``Firing``: at its time, the schedule publishes (with
    the fake's lock held), and its next firing goes on the agenda."""

    def __init__(
        self,
        book: ScheduleBook,
        agenda: Agenda,
        outbox: Outbox,
        publish_config: PublishConfig,
        new_id: Callable[[str], str],
    ) -> None:
        self.book = book
        self.agenda = agenda
        self.outbox = outbox
        self.publish_config = publish_config
        self.new_id = new_id

    def pending(self, firing: Firing) -> bool:
        """Whether the firing is still to be made (its schedule unchanged and running)."""
        return self.book.is_current(firing)

    def begin(self, due: int, firing: Firing) -> None:
        """Publish, as the schedule says, at ``due``; then wait for the next time."""
        schedule = firing.schedule
        try:
            publish = _checked(schedule, due, self.outbox, self.publish_config)
            publish.schedule_id = schedule.schedule_id
            made = tuple(store_messages(publish, due, self.outbox, self.new_id))
            schedule.firings.append((due, made, None))
        except Refused as refused:  # its URL group was deleted since: QStash's error
            schedule.firings.append((due, (), refused.text))
        self.agenda.push(schedule.advance(), Firing(schedule, schedule.generation))

    def lasts_ms(self, firing: Firing) -> int:
        """A firing is over as soon as made (its messages' attempts are events of their own)."""
        return 0

    def chain_entry(self, firing: Firing) -> tuple[str, str]:
        """The schedule's destination and id."""
        return firing.schedule.destination, firing.schedule.schedule_id

    def plan(self, schedule: Schedule, now: int) -> None:
        """Put the schedule's first firing after ``now`` on the agenda."""
        self.agenda.push(schedule.plan_from(now), Firing(schedule, schedule.generation))


def _checked(schedule: Schedule, now: int, outbox: Outbox, publish_config: PublishConfig) -> Any:
    """The schedule's publish as QStash would check it at ``now``."""
    return check_publish(
        schedule.destination, schedule.headers, schedule.body, now, outbox, publish_config,
        queue=schedule.header("upstash-queue-name"),
    )  # fmt: skip


def respond(
    request: Request,
    now: int,
    book: ScheduleBook,
    firings: Firings,
    rest: Sequence[str],
) -> tuple[int, Any]:
    """The status and JSON (``None``: an empty body) of one request under
    ``/v2/schedules``; ``rest`` is the path after it, split at ``/``. Raises ``Refused``."""
    if not rest:
        allow(request, "GET")
        return 200, [schedule_json(s, firings.outbox, now) for s in book]
    if len(rest) == 2 and rest[1] in ("pause", "resume"):
        allow(request, "PATCH", "POST")
        schedule = _known(book, rest[0])
        if rest[1] == "pause":
            schedule.paused = True
            schedule.generation += 1  # its firing on the agenda is stale
            schedule.next_time = None
        elif schedule.paused:
            schedule.paused = False
            firings.plan(schedule, now)
        return 200, None
    if request.method == "POST":
        return 200, _create(request, now, book, firings, "/".join(rest))
    if len(rest) != 1:
        raise Refused(404, f"no such schedule path {request.raw_path!r}", "unknown_path")
    allow(request, "GET", "DELETE", "POST")
    schedule = _known(book, rest[0])
    if request.method == "DELETE":
        book.remove(schedule.schedule_id)
        return 200, None
    return 200, schedule_json(schedule, firings.outbox, now)


def _known(book: ScheduleBook, raw_id: str) -> Schedule:
    schedule_id = unquote(raw_id)
    schedule = book.get(schedule_id)
    if schedule is None:
        known = ", ".join(repr(s.schedule_id) for s in book) or "none"
        raise Refused(404, f"schedule {schedule_id!r} not found (schedules: {known})")
    return schedule


def _create(
    request: Request, now: int, book: ScheduleBook, firings: Firings, destination: str
) -> dict[str, str]:
    # Kept as sent, as a publish's: the receiver sees the URL in that form.
    destination += f"?{request.query}" if request.query else ""
    headers = tuple((name.lower(), value) for name, value in request.headers)
    header = dict(headers)
    cron = header.get("upstash-cron")
    if cron is None or not cron.strip():
        raise Refused(400, "the Upstash-Cron header is required: a cron expression")
    try:
        plan = parse_cron(cron)
    except ValueError as error:
        raise Refused(400, str(error)) from None
    schedule_id = header.get("upstash-schedule-id")
    if schedule_id is not None and not _ID_RE.fullmatch(schedule_id):
        raise Refused(
            400, f"invalid schedule id {schedule_id!r}: use letters, digits, '.', '_', '-'"
        )
    kept = tuple((n, v) for n, v in headers if n not in ("upstash-cron", "upstash-schedule-id"))
    schedule = Schedule(
        schedule_id or firings.new_id("scd"), destination, plan,
        header.get("upstash-method", "POST").upper(), kept, request.body, now, 0,
    )  # fmt: skip
    checked = _checked(schedule, now, firings.outbox, firings.publish_config)  # or Refused
    schedule.retries = checked.retries
    if schedule.header("upstash-delay"):
        schedule.delay_s = (checked.not_before - now) // 1000
    schedule.timeout_s = checked.timeout_s
    old = book.get(schedule.schedule_id)
    if old is not None:
        schedule.created_at = old.created_at
        schedule.firings = old.firings
        schedule.paused = old.paused
    book.put(schedule)
    if not schedule.paused:
        firings.plan(schedule, now)
    return {"scheduleId": schedule.schedule_id}


def schedule_json(schedule: Schedule, outbox: Outbox, now: int) -> dict[str, Any]:
    """The schedule as ``GET /v2/schedules/{scheduleId}`` answers it."""
    header: dict[str, list[str]] = {}
    for name, value in forwarded_headers(schedule.headers).items():
        header.setdefault(name, []).append(value)
    answer: dict[str, Any] = {
        "scheduleId": schedule.schedule_id,
        "cron": schedule.plan.text,
        "destination": schedule.destination,
        "method": schedule.method,
        "header": header,
        "retries": schedule.retries,
        "createdAt": schedule.created_at,
        "isPaused": schedule.paused,
        "callerIP": "127.0.0.1",
    }
    try:
        answer["body"] = schedule.body.decode("utf-8")
    except UnicodeDecodeError:
        answer["bodyBase64"] = base64.b64encode(schedule.body).decode("ascii")
    for key, name in (
        ("queueName", "upstash-queue-name"),
        ("retryDelayExpression", "upstash-retry-delay"),
    ):
        given = schedule.header(name)
        if given:
            answer[key] = given
    if schedule.delay_s is not None:
        answer["delay"] = schedule.delay_s
    if schedule.timeout_s is not None:
        timeout = schedule.timeout_s
        answer["timeout"] = int(timeout) if timeout.is_integer() else timeout
    answer.update(publish_fields(schedule.headers))
    if schedule.next_time is not None:
        answer["nextScheduleTime"] = schedule.next_time
    if schedule.firings:
        at, made, error = schedule.firings[-1]
        answer["lastScheduleTime"] = at
        answer["lastScheduleStates"] = {m: _state(outbox, m, now) for m in made}
        if error is not None:
            answer["error"] = error
    return answer


def _state(outbox: Outbox, message_id: str, now: int) -> str:
    """A fired message's state as ``lastScheduleStates`` shows it."""
    message = outbox.messages.get(message_id)
    if message is None:  # forgotten since
        return "SUCCESS"
    delivery = message.delivery
    if not delivery.settled_by(now):
        return "IN_PROGRESS"
    return "SUCCESS" if delivery.errors and delivery.errors[-1] is None else "FAIL"
