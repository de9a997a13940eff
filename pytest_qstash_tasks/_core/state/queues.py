"""Queues: named lines of enqueued messages, delivered in order. Pure data, no HTTP.

A message enqueued (``/v2/enqueue/{queue}/...``, a batch entry's ``queue``, a schedule's
``Upstash-Queue-Name``) waits in its queue's line; its first attempt goes on the agenda
only when the queue lets it go: the queue is not paused and fewer than ``parallelism``
of its messages hold a place. A message holds its place until its delivery is over
(delivered, failed or cancelled: its retries included) and so do the callbacks it made
(QStash's queues page: "the next message will wait for callbacks or failure callbacks to
finish"). Then the next in line goes, at the instant the place was given back.

It takes no lock of its own: the fake holds its lock around every use.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .agenda import Agenda
from .lifecycle import QUEUED

__all__ = ["Queue", "QueueBook"]


class _Delivery(Protocol):
    starts: list[int]


class Message(Protocol):
    """What a queue reads and sets of a message (``outbox.Message``, which holds the
    queues: named here so that the two modules do not import each other)."""

    message_id: str
    queue: str | None
    created_at: int
    queue_place: tuple[str, str] | None

    @property
    def delivery(self) -> _Delivery: ...


@dataclass
class Queue:
    """One queue: its settings, the messages waiting in line and those holding a place
    (the id of each, with the ids of the messages still running for it: itself, and its
    callbacks)."""

    name: str
    created_at: int
    updated_at: int
    parallelism: int = 1
    paused: bool = False
    waiting: collections.deque[tuple[Message, int]] = field(
        default_factory=collections.deque, repr=False
    )
    active: dict[str, set[str]] = field(default_factory=dict, repr=False)

    @property
    def lag(self) -> int:
        """The messages not yet processed: waiting, and holding a place."""
        return len(self.waiting) + len(self.active)

    def to_json(self) -> dict[str, Any]:
        """The queue as ``GET /v2/queues/{queueName}`` answers it."""
        return {
            "name": self.name,
            "parallelism": self.parallelism,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "lag": self.lag,
            "paused": self.paused,
        }


class QueueBook:
    """The queues by name, in the order made; lets their messages go onto the agenda."""

    def __init__(self, agenda: Agenda) -> None:
        self._agenda = agenda
        self._queues: dict[str, Queue] = {}

    def __iter__(self) -> Iterator[Queue]:
        return iter(list(self._queues.values()))

    def __len__(self) -> int:
        return len(self._queues)

    def get(self, name: str) -> Queue | None:
        """The queue with that name, if there is one."""
        return self._queues.get(name)

    def upsert(self, name: str, parallelism: int, paused: bool, now: int) -> Queue:
        """Make the queue, or change its settings; messages go if it now lets them."""
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = Queue(name, now, now)
        queue.parallelism, queue.paused = parallelism, paused
        queue.updated_at = now
        self._release(queue, now)
        return queue

    def set_paused(self, queue: Queue, paused: bool, now: int) -> None:
        """Pause the queue (its messages wait), or resume it (the first in line goes)."""
        if queue.paused != paused:
            queue.paused = paused
            queue.updated_at = now
        self._release(queue, now)

    def remove(self, name: str) -> list[Message]:
        """Forget the queue; returns the messages still waiting in it (the caller cancels
        them). Those holding a place run on, in no queue."""
        queue = self._queues.pop(name)
        return [message for message, _ in queue.waiting]

    def enqueue(self, message: Message, now: int) -> None:
        """Put a new message in its queue's line (made, with the defaults, if there is no
        such queue), and let it go at once if the queue has room."""
        assert message.queue is not None
        queue = self._queues.get(message.queue)
        if queue is None:
            queue = self._queues[message.queue] = Queue(message.queue, now, now)
        delivery = message.delivery
        queue.waiting.append((message, delivery.starts[0]))
        delivery.starts[0] = QUEUED
        self._release(queue, now)

    def hold(self, source: Message, made: Message) -> None:
        """``made`` (a callback of ``source``) keeps ``source``'s place until it is over."""
        place = source.queue_place
        if place is None:
            return
        queue = self._queues.get(place[0])
        if queue is not None and place[1] in queue.active:
            queue.active[place[1]].add(made.message_id)
            made.queue_place = place

    def settled(self, message: Message, at: int) -> None:
        """``message``'s delivery is over at ``at``: the place it held is given back once
        nothing else runs for it, and the next in line goes then."""
        place = message.queue_place
        if place is None:
            return
        message.queue_place = None
        queue = self._queues.get(place[0])
        if queue is None:
            return
        running = queue.active.get(place[1])
        if running is None:
            return
        running.discard(message.message_id)
        if not running:
            del queue.active[place[1]]
            self._release(queue, at)

    def withdraw(self, message: Message) -> None:
        """A waiting message was cancelled: it leaves the line."""
        queue = self._queues.get(message.queue or "")
        if queue is not None:
            queue.waiting = collections.deque(
                (waiting, first) for waiting, first in queue.waiting if waiting is not message
            )

    def clear(self) -> None:
        """Forget every queue."""
        self._queues.clear()

    def _release(self, queue: Queue, at: int) -> None:
        while queue.waiting and not queue.paused and len(queue.active) < queue.parallelism:
            message, first = queue.waiting.popleft()
            queue.active[message.message_id] = {message.message_id}
            message.queue_place = (queue.name, message.message_id)
            delivery = message.delivery
            start = max(first, at)  # first: its own first attempt, after any delay
            delivery.starts[0] = start
            self._agenda.push(start, delivery)
