"""The fake's time: unix milliseconds, on the fake's own clock or following the wall,
and the one way a time given by a test becomes unix milliseconds (``to_ms``)."""

from __future__ import annotations

import datetime as _dt
import math
import time
from typing import Literal, Protocol

__all__ = ["DEFAULT_START_MS", "Clock", "ClockMode", "to_ms"]

DEFAULT_START_MS = 1_767_225_600_000
"""Where the fake's clock and the factories' "now" start unless told otherwise:
2026-01-01T00:00:00Z in unix ms. A fixed instant keeps generated data the same on every
run."""

#: ``fake``: the clock stands still until something moves it; ``wall``: it follows
#: ``time.time()`` (so time-machine and freezegun move it), plus whatever moved it on.
ClockMode = Literal["fake", "wall"]


class _Runner(Protocol):
    """What runs the events a move reaches: the fake's timeline."""

    def move_to(self, target: int) -> None: ...

    def run_all(self, horizon: int) -> int: ...


class Clock:
    """The fake's clock, in unix milliseconds.

    By default (``mode="fake"``) it starts at ``start`` (2026-01-01T00:00:00Z) and stands
    still until ``advance``, ``sleep`` or ``set`` moves it. With ``mode="wall"`` it reads
    ``time.time()`` on every request, so real time, time-machine and freezegun move it;
    ``advance``, ``sleep`` and ``set`` move it further on. Tasks the fake generates or
    stamps take their time from it.

    A move runs what falls due on the way, event by event in the order due, and while
    an event runs (a delivery attempt reaching a receiver) the clock reads that event's
    own instant: what a receiver publishes is due from there, and runs in the same move
    if it falls due by its end. With ``mode="wall"`` a background thread runs events on
    time, with no move or request needed.
    """

    def __init__(
        self, start: int | _dt.datetime | str = DEFAULT_START_MS, *, mode: ClockMode = "fake"
    ) -> None:
        if mode not in ("fake", "wall"):
            raise ValueError(f"clock must be 'fake' or 'wall', got {mode!r}")
        self.mode: ClockMode = mode
        #: In wall mode, how far the clock was moved on from ``time.time()``.
        self._offset = 0
        self._start = self._now = _wall_ms() if mode == "wall" else to_ms(start)
        #: What runs the events a move reaches (the fake's; a lone clock has none).
        self._timeline: _Runner | None = None

    @property
    def now(self) -> int:
        """The current time, unix ms."""
        if self.mode == "wall":
            return _wall_ms() + self._offset
        return self._now

    @property
    def start(self) -> int:
        """Where the clock started, unix ms."""
        return self._start

    def advance(self, delta: float | _dt.timedelta) -> int:
        """Move forward by ``delta`` (ms, rounded up to a whole one, or a ``timedelta``);
        returns the new time."""
        return self._move(_ms("advance", delta))

    def sleep(self, seconds: float) -> int:
        """Move forward by ``seconds`` (ms resolution, rounded up): a drop-in ``sleep``
        for code that takes one. Returns the new time."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"sleep() takes seconds (int or float), got {seconds!r}")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"sleep() takes a finite number of seconds >= 0, got {seconds!r}")
        return self._move(math.ceil(seconds * 1000))

    def set(self, when: int | _dt.datetime | str) -> int:
        """Jump to ``when`` (unix ms, an aware ``datetime`` or an ISO 8601 str); never back."""
        target, now = to_ms(when), self.now
        if target < now:
            raise ValueError(
                f"the clock only moves forward: it is at {now}, set({when!r}) goes back"
            )
        return self._move(target - now)

    def run_all(self, horizon: float | _dt.timedelta = _dt.timedelta(days=30)) -> int:
        """Move from event to event until nothing more is going to happen (every
        delivery attempt made, retries and chains included, and the last one over), or
        until ``horizon`` (ms or a ``timedelta``) from now has passed, whichever comes
        first. Returns how far the clock moved, in ms.

        The horizon keeps it finite when something never ends (a chain of receivers
        that keeps publishing stops at ``max_chained_events`` before it)."""
        limit = self.now + _ms("run_all", horizon)
        if self._timeline is None:
            return 0
        return self._timeline.run_all(limit)

    def _exact_now(self) -> float:
        """The current time, unix ms, not rounded (what the wall clock's thread waits on)."""
        if self.mode == "wall":
            return time.time() * 1000 + self._offset
        return float(self._now)

    def _move(self, step: int) -> int:
        target = self.now + step
        if self._timeline is None:
            self._reach(target)
        else:
            self._timeline.move_to(target)
        return self.now

    def _reach(self, instant: int) -> None:
        """Read ``instant`` from now on, unless the clock is past it already (never back)."""
        if self.mode == "wall":
            self._offset = max(self._offset, instant - _wall_ms())
        elif instant > self._now:
            self._now = instant

    def restart(self) -> None:
        """Go back to where the clock started, as the fake's ``reset()`` does (with every
        stored task gone, so that no task's time lies in the clock's future)."""
        self._now, self._offset = self._start, 0

    def __repr__(self) -> str:
        now = self.now
        when = _dt.datetime.fromtimestamp(now / 1000, tz=_dt.timezone.utc)
        wall = ", following the wall" if self.mode == "wall" else ""
        return f"<Clock {now} ({when.isoformat(timespec='milliseconds')}){wall}>"


def _ms(name: str, delta: float | _dt.timedelta) -> int:
    """A span forward in whole ms (rounded up), from ms or a ``timedelta``."""
    if isinstance(delta, _dt.timedelta):
        step = delta.total_seconds() * 1000
    elif isinstance(delta, (int, float)) and not isinstance(delta, bool):
        step = delta
    else:
        raise TypeError(f"{name}() takes ms (int or float) or a timedelta, got {delta!r}")
    if not math.isfinite(step):
        raise ValueError(f"{name}() takes a finite number of ms, got {delta!r}")
    if step < 0:
        raise ValueError(f"the clock only moves forward; {name}({delta!r}) goes back")
    return math.ceil(step)


def _wall_ms() -> int:
    # Through the module on every call: freezegun and time-machine replace time.time.
    return int(time.time() * 1000)


def to_ms(value: int | _dt.datetime | str) -> int:
    """Unix milliseconds from an int (taken as ms), an aware ``datetime``, or an
    ISO 8601 time with a zone (``"2026-01-01T00:00:00Z"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a timestamp must be >= 0 ms, got {value}")
        return value
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise ValueError("use an aware datetime (e.g. tzinfo=timezone.utc)")
        return to_ms(round(value.timestamp() * 1000))
    if isinstance(value, str):
        try:
            when = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO 8601 time, e.g. 2026-01-01T00:00:00Z"
            ) from None
        if when.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone: give one, e.g. 2026-01-01T00:00:00Z")
        return to_ms(when)
    raise TypeError(
        f"a timestamp must be unix milliseconds (int), a datetime or an ISO 8601 str, got {value!r}"
    )
