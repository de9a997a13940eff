"""Schedules: a publish QStash makes by itself at each time a cron expression names. Pure
data, no HTTP; the fake holds its lock around every use.

The cron expression is read by cronsim (imported on the first schedule, not before): five
fields, one-minute resolution, in UTC or in the zone a ``CRON_TZ=<zone>`` prefix names,
with cron's own rules on a daylight-saving change (a time skipped is not made up, a time
repeated fires once). Each schedule's next firing waits on the fake's ``Agenda`` as a
``Firing``; changing the schedule (an upsert, a pause, a delete) makes the firing already
there stale, and the engine drops it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from datetime import tzinfo

__all__ = ["CronPlan", "Firing", "Schedule", "ScheduleBook", "parse_cron"]


@dataclass(frozen=True)
class CronPlan:
    """A checked cron expression: its five fields and its zone."""

    text: str
    fields: str
    zone: tzinfo

    def times_after(self, after_ms: int) -> Iterator[int]:
        """The times it names after ``after_ms`` (unix ms), each in unix ms, in order."""
        from cronsim import CronSim

        start = datetime.fromtimestamp(after_ms / 1000, self.zone)
        for moment in CronSim(self.fields, start):
            yield int(moment.timestamp()) * 1000


def parse_cron(text: str) -> CronPlan:
    """``text`` checked as QStash takes ``Upstash-Cron``; a ``ValueError`` that says what
    is wrong (the field, the zone) otherwise."""
    fields, zone = text.strip(), cast("tzinfo", timezone.utc)
    if fields.startswith("CRON_TZ="):
        prefix, _, fields = fields.partition(" ")
        zone = _zone(prefix[len("CRON_TZ=") :], text)
        fields = fields.strip()
    count = len(fields.split())
    if count != 5:
        raise ValueError(
            f"invalid cron {text!r}: want five fields (minute hour day-of-month month "
            f"day-of-week), optionally after CRON_TZ=<zone>; got {count}"
        )
    from cronsim import CronSim, CronSimError

    try:
        CronSim(fields, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except CronSimError as error:
        raise ValueError(f"invalid cron {text!r}: {error}") from None
    return CronPlan(text, fields, zone)


def _zone(name: str, text: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"invalid cron {text!r}: unknown time zone {name!r} (an IANA name, such as "
            "Europe/Berlin; a machine without zone data needs `pip install tzdata`)"
        ) from None


@dataclass
class Schedule:
    """One schedule: where it publishes, what, when, and what its firings made."""

    schedule_id: str
    destination: str
    plan: CronPlan
    method: str
    #: The publish's headers (names lowercase), as sent; each firing publishes with them.
    headers: tuple[tuple[str, str], ...]
    body: bytes
    created_at: int
    retries: int
    paused: bool = False
    #: ``Upstash-Delay`` and ``Upstash-Timeout`` as checked at its making, in seconds.
    delay_s: int | None = None
    timeout_s: float | None = None
    #: When it fires next (unix ms); ``None`` while paused.
    next_time: int | None = None
    #: Each firing so far: (time, the ids of the messages it made, or the error it met).
    firings: list[tuple[int, tuple[str, ...], str | None]] = field(default_factory=list)
    #: Counts the changes that make a firing already on the agenda stale.
    generation: int = 0
    _times: Iterator[int] | None = field(default=None, repr=False)

    def plan_from(self, now: int) -> int:
        """Start counting firings after ``now`` again; returns the first one."""
        self.generation += 1
        self._times = self.plan.times_after(now)
        self.next_time = next(self._times)
        return self.next_time

    def advance(self) -> int:
        """The firing due now is made: move on to the next; returns when it is due."""
        assert self._times is not None  # planned when made or resumed
        self.next_time = next(self._times)
        return self.next_time

    @property
    def last_time(self) -> int | None:
        """When it last fired, if it did."""
        return self.firings[-1][0] if self.firings else None

    def header(self, name: str) -> str | None:
        """The publish's header ``name`` (lowercase), if sent."""
        return next((value for key, value in self.headers if key == name), None)


@dataclass(frozen=True)
class Firing:
    """A schedule's next firing, as it waits on the agenda: stale once the schedule
    changed (its ``generation`` moved on)."""

    schedule: Schedule
    generation: int


class ScheduleBook:
    """The schedules, in the order made."""

    def __init__(self) -> None:
        self._schedules: dict[str, Schedule] = {}

    def get(self, schedule_id: str) -> Schedule | None:
        """The schedule with that id, if there is one."""
        return self._schedules.get(schedule_id)

    def put(self, schedule: Schedule) -> Schedule | None:
        """Keep ``schedule``, in place of the one with its id; returns that one, if any."""
        old = self._schedules.get(schedule.schedule_id)
        if old is not None:
            old.generation += 1  # its firing on the agenda is stale
        self._schedules[schedule.schedule_id] = schedule
        return old

    def remove(self, schedule_id: str) -> Schedule | None:
        """Take the schedule out; returns it, if it was there."""
        schedule = self._schedules.pop(schedule_id, None)
        if schedule is not None:
            schedule.generation += 1
        return schedule

    def is_current(self, firing: Firing) -> bool:
        """Whether ``firing`` is still to be made (its schedule unchanged and kept)."""
        schedule = firing.schedule
        return (
            self._schedules.get(schedule.schedule_id) is schedule
            and schedule.generation == firing.generation
            and not schedule.paused
        )

    def __iter__(self) -> Iterator[Schedule]:
        return iter(list(self._schedules.values()))

    def __len__(self) -> int:
        return len(self._schedules)

    def clear(self) -> None:
        """Forget every schedule (a firing on the agenda goes stale)."""
        for schedule in self._schedules.values():
            schedule.generation += 1
        self._schedules.clear()
