"""Time on the QStash wire: unix milliseconds, and the v1 retry backoff."""

from __future__ import annotations

import datetime as _dt
import math

from .args import check_int

__all__ = ["BACKOFF_TABLE_MS", "DEFAULT_START_MS", "backoff_ms", "to_ms"]

#: Where the fake's clock and the factories' "now" start unless told otherwise:
#: 2026-01-01T00:00:00Z. A fixed instant keeps generated data the same on every run.
DEFAULT_START_MS = 1_767_225_600_000

_MAX_BACKOFF_S = 86_400
#: ``backoff_ms(n)`` for n = 0..6: e ** (2 * n) passes a day at n = 6, so the last entry
#: covers every larger retry count.
BACKOFF_TABLE_MS = [int(min(_MAX_BACKOFF_S, math.exp(2 * n)) * 1000) for n in range(7)]


def backoff_ms(retried: int) -> int:
    """The v1 delay before the next attempt, in ms, after ``retried`` retries.

    ``min(86400, e ** (2 * retried))`` seconds, truncated to whole milliseconds.
    """
    if type(retried) is not int or retried < 0:  # on the factories' hot path: no call
        check_int("retried", retried)
    return BACKOFF_TABLE_MS[min(retried, len(BACKOFF_TABLE_MS) - 1)]


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
