"""The logs: one entry per state change of every published message (QStash's "events",
renamed logs), written as the timeline makes each change. Pure data; the fake holds its
lock around every use.

An attempt's outcome is known when the attempt runs and takes effect when it ends (the
task shows ``active`` until then): its entry is written at once with the time it ends,
and a read leaves out what is later than the clock. Entries are kept sorted by (time,
order written), so a page is found by bisection, not by a walk of every entry.
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


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One state change of one message."""

    time: int
    message_id: str
    state: str
    url: str
    #: The rest of the entry as QStash's JSON has it (``error``, ``responseStatus``, ...).
    fields: dict[str, Any] = field(default_factory=dict, compare=False)
    order: int = 0

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
    """Every entry, sorted by (time, order written)."""

    def __init__(self) -> None:
        self._keys: list[tuple[int, int]] = []
        self._entries: list[LogEntry] = []
        self._by_message: dict[str, list[LogEntry]] = {}
        self._next = 0

    def write(self, time: int, message_id: str, state: str, url: str, **fields: Any) -> LogEntry:
        """Add an entry (``time`` may be in the clock's future: an attempt's end)."""
        entry = LogEntry(time, message_id, state, url, fields, self._next)
        key = (time, self._next)
        self._next += 1
        if not self._keys or key > self._keys[-1]:  # the common case: in time order
            self._keys.append(key)
            self._entries.append(entry)
        else:
            index = bisect.bisect_right(self._keys, key)
            self._keys.insert(index, key)
            self._entries.insert(index, entry)
        self._by_message.setdefault(message_id, []).append(entry)
        return entry

    def drop_after(self, message_id: str, time: int) -> None:
        """Take out the message's entries later than ``time`` (a cancel overtook them)."""
        kept = []
        for entry in self._by_message.get(message_id, []):
            if entry.time <= time:
                kept.append(entry)
                continue
            index = bisect.bisect_left(self._keys, (entry.time, entry.order))
            del self._keys[index]
            del self._entries[index]
        self._by_message[message_id] = kept

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
        end = bisect.bisect_right(self._keys, (now, self._next))
        if before is not None:
            end = min(end, bisect.bisect_left(self._keys, before))
        found: list[LogEntry] = []
        for index in range(end - 1, -1, -1):
            entry = self._entries[index]
            if keep is not None and not keep(entry):
                continue
            if len(found) == count:
                return found, (found[-1].time, found[-1].order)
            found.append(entry)
        return found, None

    def of(self, message_id: str, now: int) -> list[LogEntry]:
        """The message's entries up to ``now``, oldest first."""
        entries = [e for e in self._by_message.get(message_id, []) if e.time <= now]
        return sorted(entries, key=lambda entry: (entry.time, entry.order))

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(list(self._entries))

    def clear(self) -> None:
        """Forget every entry."""
        self._keys.clear()
        self._entries.clear()
        self._by_message.clear()
