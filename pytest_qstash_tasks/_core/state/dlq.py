"""The dead-letter queue: the messages whose retries ran out, with the last answer each
met, until the test (or the code under test) deletes or retries them. Pure data, no
HTTP; the fake holds its lock around every use.

Entries are kept in the order they failed, each with a sequence number that is its
cursor: a page after a cursor starts by bisection, not by a walk of every entry.
"""

from __future__ import annotations

import base64
import bisect
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .outbox import Message

__all__ = ["DeadLetter", "DeadLetterQueue"]


@dataclass
class DeadLetter:
    """One message in the DLQ: the message as it was published, and what its last attempt
    met (``response_status`` 0 when no answer came: a timeout or a connection failure)."""

    dlq_id: str
    message: Message
    failed_at: int
    response_status: int
    response_headers: tuple[tuple[str, str], ...]
    response_body: bytes
    #: The entry's place in the order of failing: its cursor.
    sequence: int
    #: The id of the message its failure callback made (the latest, once retried from
    #: the Workflow DLQ), if the message named one.
    failure_callback: str | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The entry as ``GET /v2/dlq/{dlqId}`` answers it: the message's fields, and the
        last response."""
        answer = self.message.to_json()
        header: dict[str, list[str]] = {}
        for name, value in self.response_headers:
            header.setdefault(name, []).append(value)
        answer.update(
            dlqId=self.dlq_id,
            responseStatus=self.response_status,
            responseHeader=header,
        )
        try:
            answer["responseBody"] = self.response_body.decode("utf-8")
        except UnicodeDecodeError:
            answer["responseBodyBase64"] = base64.b64encode(self.response_body).decode("ascii")
        return answer


class DeadLetterQueue:
    """The DLQ's entries, oldest first."""

    def __init__(self) -> None:
        self._entries: dict[str, DeadLetter] = {}
        #: The entries' sequence numbers, ascending, and the entries in the same order.
        self._sequences: list[int] = []
        self._ordered: list[DeadLetter] = []
        self._next = 0

    def add(
        self,
        message: Message,
        now: int,
        status: int,
        headers: Sequence[tuple[str, str]],
        body: bytes,
    ) -> DeadLetter:
        """Put a failed message in the DLQ; returns its entry (``dlqId``: the failing
        time in unix ms and a sequence number, as QStash's ids read)."""
        entry = DeadLetter(
            f"{now}-{self._next}", message, now, status, tuple(headers), body, self._next
        )
        self._next += 1
        self._entries[entry.dlq_id] = entry
        self._sequences.append(entry.sequence)
        self._ordered.append(entry)
        return entry

    def get(self, dlq_id: str) -> DeadLetter | None:
        """The entry with that id, if it is still there."""
        return self._entries.get(dlq_id)

    def remove(self, dlq_ids: Sequence[str]) -> list[DeadLetter]:
        """Take the entries with those ids out; returns those that were there."""
        known = [dlq_id for dlq_id in dict.fromkeys(dlq_ids) if dlq_id in self._entries]
        removed = [self._entries.pop(dlq_id) for dlq_id in known]
        for entry in removed:
            index = bisect.bisect_left(self._sequences, entry.sequence)
            del self._sequences[index]
            del self._ordered[index]
        return removed

    def page(
        self, after: int | None, count: int, keep: Callable[[DeadLetter], bool] | None = None
    ) -> tuple[list[DeadLetter], int | None]:
        """Up to ``count`` entries from the one after sequence ``after`` (``None``: the
        first) that ``keep`` accepts, and the cursor of the next page (``None``: no more)."""
        start = 0 if after is None else bisect.bisect_right(self._sequences, after)
        found: list[DeadLetter] = []
        stop = None if keep is not None else start + count + 1
        for entry in itertools.islice(self._ordered, start, stop):
            if keep is not None and not keep(entry):
                continue
            if len(found) == count:
                return found, found[-1].sequence
            found.append(entry)
        return found, None

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(list(self._ordered))

    def __len__(self) -> int:
        return len(self._ordered)

    def clear(self) -> None:
        """Forget every entry, and count ids from 0 again: a reset fake given the same
        entries gives them the same ids."""
        self._next = 0
        self._entries.clear()
        self._sequences.clear()
        self._ordered.clear()
