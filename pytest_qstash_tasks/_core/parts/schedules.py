"""``qstash_tasks.schedules``: the schedules the code under test made (qstash-py's
``client.schedule``, seen from the test's side), and what each firing published."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from pytest_qstash_tasks._core.api import schedules as _api
from pytest_qstash_tasks._core.api.refusals import Refused
from pytest_qstash_tasks._core.args import check_int
from pytest_qstash_tasks._core.engine.clock import Clock
from pytest_qstash_tasks._core.engine.timeline import Timeline
from pytest_qstash_tasks._core.exchange import Request
from pytest_qstash_tasks._core.state.schedules import Schedule as _Stored
from pytest_qstash_tasks._core.state.schedules import ScheduleBook

__all__ = ["Schedule", "Schedules"]


@dataclass(frozen=True)
class Schedule:
    """One schedule, as it was when read: its id, where it publishes (``destination``: a
    URL or a URL group's name), its ``cron`` as given, whether it is ``paused``, when it
    fires next (``next_time``, unix ms; ``None`` while paused), and each firing so far
    (``fired_at``, unix ms, with the ids of the messages each made in ``message_ids``)."""

    schedule_id: str
    destination: str
    cron: str
    paused: bool
    next_time: int | None
    fired_at: tuple[int, ...]
    message_ids: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, schedule: _Stored) -> Schedule:
        """A snapshot of a stored schedule."""
        return cls(
            schedule.schedule_id, schedule.destination, schedule.plan.text, schedule.paused,
            schedule.next_time, tuple(at for at, _, _ in schedule.firings),
            tuple(made for _, made, _ in schedule.firings),
        )  # fmt: skip

    def describe(self) -> str:
        """One line: id, cron, destination, how often it fired, what comes next."""
        state = "paused" if self.paused else f"next at {self.next_time}"
        return (
            f"{self.schedule_id}: {self.cron!r} -> {self.destination}, fired "
            f"{len(self.fired_at)} time(s), {state}"
        )


class Schedules:
    """The schedules: ``qstash_tasks.schedules``."""

    def __init__(
        self,
        book: ScheduleBook,
        firings: _api.Firings,
        clock: Clock,
        timeline: Timeline,
        lock: threading.Lock,
    ) -> None:
        self._book = book
        self._firings = firings
        self._clock = clock
        self._timeline = timeline
        self._lock = lock

    def create(
        self,
        destination: str,
        cron: str,
        *,
        schedule_id: str | None = None,
        body: str | bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Make a schedule (or change the one with ``schedule_id``) as if the code had
        sent ``POST /v2/schedules/{destination}`` with ``Upstash-Cron: cron`` and
        ``headers`` (``Upstash-Retries``, ``Upstash-Queue-Name``, callbacks...): the
        same checks, the first firing after the clock's time. Returns its id; a
        ``ValueError`` says what QStash would refuse, and nothing is stored then."""
        if not isinstance(destination, str) or not isinstance(cron, str):
            raise TypeError("destination and cron are str")
        given = {str(name): str(value) for name, value in (headers or {}).items()}
        given["Upstash-Cron"] = cron
        if schedule_id is not None:
            given["Upstash-Schedule-Id"] = schedule_id
        path, _, query = destination.partition("?")
        request = Request(
            "POST", f"/v2/schedules/{destination}", f"/v2/schedules/{path}", query,
            tuple(given.items()), body.encode() if isinstance(body, str) else bytes(body),
        )  # fmt: skip
        self._timeline.run_due()
        with self._lock:
            try:
                _, made = _api.respond(
                    request, self._clock.now, self._book, self._firings, path.split("/")
                )
            except Refused as refused:
                raise ValueError(refused.text) from None
        return str(made["scheduleId"])

    def list(self) -> list[Schedule]:
        """Every schedule, in the order made (firings due by the clock's time made)."""
        self._timeline.run_due()
        with self._lock:
            return [Schedule.of(schedule) for schedule in self._book]

    def get(self, schedule_id: str) -> Schedule:
        """The schedule with that id; ``KeyError`` naming the ids there are if none."""
        for schedule in self.list():
            if schedule.schedule_id == schedule_id:
                return schedule
        known = ", ".join(s.schedule_id for s in self.list()) or "none"
        raise KeyError(f"no schedule {schedule_id!r} (there are: {known})")

    def assert_fired(self, schedule_id: str, *, times: int | None = None) -> builtins.list[int]:
        """Assert that the schedule fired: at least once, or exactly ``times``; returns
        when it fired (unix ms). The failure lists every schedule."""
        __tracebackhide__ = True  # show the user's line, not ours
        if times is not None:
            check_int("times", times)
        schedules = self.list()
        found = next((s for s in schedules if s.schedule_id == schedule_id), None)
        count = 0 if found is None else len(found.fired_at)
        if found is not None and (count == times or (times is None and count > 0)):
            return list(found.fired_at)
        wanted = "at least once" if times is None else f"{times} time(s)"
        held = "\n".join(f"  - {s.describe()}" for s in schedules) or "  (no schedule)"
        what = "does not exist" if found is None else f"fired {count} time(s)"
        raise AssertionError(
            f"expected schedule {schedule_id!r} to have fired {wanted}; it {what}. "
            f"The schedules:\n{held}"
        )
