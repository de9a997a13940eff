"""The logs: one entry per state change of every published message (QStash's "events",
renamed logs), written as the timeline makes each change. Pure data; the fake holds its
lock around every use.

An attempt's outcome is known when the attempt runs and takes effect when it ends (the
task shows ``active`` until then): its entry is written at once with the time it ends,
and a read leaves out what is later than the clock. Entries are kept by time, then by
the order written, so a page is found by bisection, not by a walk of every entry.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LogEntry", "MessageLog"]

#: The states, spelt as both SDKs parse them (qstash-py's ``LogState``; the OpenAPI spells
#: the last one ``CANCELLED``).
STATES = (
    "CREATED", "ACTIVE", "RETRY", "ERROR", "DELIVERED", "FAILED", "CANCEL_REQUESTED", "CANCELED",
)  # fmt: skip


@dataclass(slots=True)
class LogEntry:
    """One state change of one message. Never changed once written (not frozen: a frozen
    dataclass's ``__init__`` costs twice as much, and a move writes two a message)."""

    time: int
    message_id: str
    state: str
    url: str
    #: The rest of the entry as QStash's JSON has it (``error``, ``responseStatus``, ...).
    fields: dict[str, Any] = field(compare=False)
    order: int
    #: The message's flow-control key: what the ``flowControlKey`` filter reads (QStash's
    #: log entries do not show it).
    flow_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as ``GET /v2/logs`` answers it."""
        return {
            "time": self.time,
            "messageId": self.message_id,
            "state": self.state,
            "url": self.url,
            **self.fields,
        }


class MessageLog:
    """Every entry, by time: a sorted list of the distinct times and the entries at each
    in the order written. A burst's entries share a few times (its publish, its attempts'
    starts and ends), so an entry written among later ones costs an append to its time's
    list, not a move of every entry after it."""

    def __init__(self) -> None:
        self._times: list[int] = []
        self._at: dict[int, list[LogEntry]] = {}
        self._next = 0

    def write(
        self,
        time: int,
        message_id: str,
        state: str,
        url: str,
        fields: dict[str, Any],
        flow_key: str | None = None,
    ) -> LogEntry:
        """Add an entry (``time`` may be in the clock's future: an attempt's end);
        ``fields`` is kept as given (shared by a message's entries: never changed)."""
        entry = LogEntry(time, message_id, state, url, fields, self._next, flow_key)
        self._next += 1
        bucket = self._at.get(time)
        if bucket is None:
            if not self._times or time > self._times[-1]:
                self._times.append(time)
            else:
                bisect.insort(self._times, time)
            bucket = self._at[time] = []
        bucket.append(entry)
        return entry

    def drop_after(self, message_id: str, time: int) -> None:
        """Take out the message's entries later than ``time`` (a cancel overtook them):
        a walk of the times after ``time`` only, an attempt's end at most."""
        for later in self._times[bisect.bisect_right(self._times, time) :]:
            bucket = self._at[later]
            bucket[:] = [entry for entry in bucket if entry.message_id != message_id]
            if not bucket:
                del self._at[later]
                del self._times[bisect.bisect_left(self._times, later)]

    def page(
        self,
        now: int,
        before: tuple[int, int] | None,
        count: int,
        keep: Callable[[LogEntry], bool] | None = None,
    ) -> tuple[list[LogEntry], tuple[int, int] | None]:
        """Up to ``count`` entries, newest first, from those at or before ``now`` and
        before the key ``before`` (``None``: from the newest), that ``keep`` accepts;
        and the key of the next page (``None``: no more)."""
        last = bisect.bisect_right(self._times, now)
        if before is not None:
            last = min(last, bisect.bisect_right(self._times, before[0]))
        found: list[LogEntry] = []
        for index in range(last - 1, -1, -1):
            bucket = self._at[self._times[index]]
            end = len(bucket)
            if before is not None and bucket[0].time == before[0]:
                end = bisect.bisect_left(bucket, before[1], key=lambda entry: entry.order)
            for position in range(end - 1, -1, -1):
                entry = bucket[position]
                if keep is not None and not keep(entry):
                    continue
                if len(found) == count:
                    return found, (found[-1].time, found[-1].order)
                found.append(entry)
        return found, None

    def of(self, message_id: str, now: int) -> list[LogEntry]:
        """The message's entries up to ``now``, oldest first (a walk of every entry: for a
        test's reads, not for the API's pages)."""
        return [entry for entry in self if entry.message_id == message_id and entry.time <= now]

    def __iter__(self) -> Iterator[LogEntry]:
        return iter([entry for time in self._times for entry in self._at[time]])

    def clear(self) -> None:
        """Forget every entry."""
        self._times.clear()
        self._at.clear()
