"""The agenda: everything the fake will do at a time to come, in the order it is due.

An event is any object the engine knows how to run (a published message's next
attempt, a simulated delivery's attempt, and what later parts add: a schedule firing, a
queue releasing its next message). The agenda keeps them ordered by (due time, order of
scheduling) and knows nothing of what they do: the ``Timeline`` (engine) pops them and
runs them. Pure data: it takes no lock; the fake holds its lock around every use.
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Callable

__all__ = ["Agenda"]


class Agenda:
    """Events ordered by (due time, order of scheduling).

    A heap holds the distinct due times and a deque the events due at each, in the order
    scheduled: a burst scheduled for one instant costs a deque's append and popleft per
    event, not a heap's log n.
    """

    def __init__(self) -> None:
        self._due_times: list[int] = []
        self._due_at: dict[int, collections.deque[tuple[int, object]]] = {}
        #: How many events were ever scheduled: the next event's place in the order.
        self.scheduled = 0
        #: Called (with the fake's lock held) when an event is scheduled before every
        #: other: the wall clock's thread sleeps until the first one and must wake.
        self.on_earlier: Callable[[], None] | None = None

    def push(self, due: int, event: object) -> None:
        """Schedule ``event`` at ``due`` (unix ms), after every event already due then."""
        self._insert(due, self.scheduled, event, at_end=True)
        self.scheduled += 1

    def put_back(self, due: int, order: int, event: object) -> None:
        """Return an event just popped, in its place (first among those due at ``due``)."""
        self._insert(due, order, event, at_end=False)

    def pop(self, limit: int) -> tuple[int, int, object] | None:
        """The first event, if it is due by ``limit``: (due, order, event)."""
        due_times = self._due_times
        if not due_times or due_times[0] > limit:
            return None
        due = due_times[0]
        waiting = self._due_at[due]
        order, event = waiting.popleft()
        if not waiting:
            heapq.heappop(due_times)
            del self._due_at[due]
        return due, order, event

    def first(self) -> tuple[int, object] | None:
        """The first event and when it is due, left in place."""
        if not self._due_times:
            return None
        due = self._due_times[0]
        return due, self._due_at[due][0][1]

    def next_due(self) -> int | None:
        """When the first event is due, if any."""
        return self._due_times[0] if self._due_times else None

    def clear(self) -> None:
        """Forget every event (the order keeps counting)."""
        self._due_times.clear()
        self._due_at.clear()

    def _insert(self, due: int, order: int, event: object, *, at_end: bool) -> None:
        waiting = self._due_at.get(due)
        if waiting is None:
            waiting = self._due_at[due] = collections.deque()
            earlier = not self._due_times or due < self._due_times[0]
            heapq.heappush(self._due_times, due)
            if earlier and self.on_earlier is not None:
                self.on_earlier()
        if at_end:
            waiting.append((order, event))
        else:
            waiting.appendleft((order, event))
