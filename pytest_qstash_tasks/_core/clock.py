"""The fake's time: unix milliseconds that move only when a test moves them."""

from __future__ import annotations

import datetime as _dt

from .timing import DEFAULT_START_MS, to_ms

__all__ = ["Clock"]


class Clock:
    """The fake's clock, in unix milliseconds.

    It starts at ``start`` (by default 2026-01-01T00:00:00Z) and stands still until
    ``advance`` or ``set`` moves it. Tasks the fake generates or stamps take their
    time from it.
    """

    def __init__(self, start: int | _dt.datetime | str = DEFAULT_START_MS) -> None:
        self._start = self._now = to_ms(start)

    @property
    def start(self) -> int:
        """Where the clock started, unix ms."""
        return self._start

    @property
    def now(self) -> int:
        """The current time, unix ms."""
        return self._now

    def advance(self, delta: int | _dt.timedelta) -> int:
        """Move forward by ``delta`` (ms, or a ``timedelta``); returns the new time."""
        if isinstance(delta, _dt.timedelta):
            step = round(delta.total_seconds() * 1000)
        elif isinstance(delta, int) and not isinstance(delta, bool):
            step = delta
        else:
            raise TypeError(f"advance() takes ms (int) or a timedelta, got {delta!r}")
        if step < 0:
            raise ValueError(f"the clock only moves forward; advance({delta!r}) goes back")
        self._now += step
        return self._now

    def set(self, when: int | _dt.datetime | str) -> int:
        """Jump to ``when`` (unix ms, an aware ``datetime`` or an ISO 8601 str); never back."""
        target = to_ms(when)
        if target < self._now:
            raise ValueError(
                f"the clock only moves forward: it is at {self._now}, set({when!r}) goes back"
            )
        self._now = target
        return self._now

    def _restart(self) -> None:
        # Only with every stored task gone (the fake's reset): nothing is left whose
        # timeline could end up in the clock's future.
        self._now = self._start

    def __repr__(self) -> str:
        when = _dt.datetime.fromtimestamp(self._now / 1000, tz=_dt.timezone.utc)
        return f"<Clock {self._now} ({when.isoformat(timespec='milliseconds')})>"
