"""Flow control: deliveries limited per key (``Upstash-Flow-Control-Key`` and
``-Value: parallelism=N, rate=N, period=Ns``). Pure data, no HTTP.

Each attempt of a message with a key asks its key to start (``admit``). The key lets it
start when it is not paused, fewer than ``parallelism`` of its attempts are under way,
and fewer than ``rate`` started in the current period; else the attempt waits in the
key's wait list, and the key wakes (an event on the agenda: ``FlowWake``) when an
attempt ends or the period turns, and lets the first in line go then. A message's own
limits set its key's, the latest publish's winning, unless the key was pinned.

It takes no lock of its own: the fake holds its lock around every use.
"""

from __future__ import annotations

import collections
import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .agenda import Agenda
from .lifecycle import QUEUED

__all__ = ["FlowControl", "FlowKey", "FlowLimits", "FlowWake"]

_PART = re.compile(r"\s*(parallelism|rate|period)\s*=\s*([0-9a-z]+)\s*")
#: A period: seconds, or a duration such as 10s, 2m, 3d5h12m (what both SDKs send).
_PERIOD = re.compile(r"[0-9]{1,9}|(?:[0-9]{1,9}[smhd])+")
_PERIOD_PART = re.compile(r"([0-9]+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The longest period QStash takes (the SDKs' docs: "at most a week").
_MAX_PERIOD_S = 7 * 86400


@dataclass(frozen=True)
class FlowLimits:
    """What one ``Upstash-Flow-Control-Value`` asks: ``parallelism`` (attempts under way
    at once) and ``rate`` (attempts started per ``period_s`` seconds); 0 is no limit."""

    parallelism: int = 0
    rate: int = 0
    period_s: int = 1

    @classmethod
    def parse(cls, value: str) -> FlowLimits:
        """Read a header's value; ``ValueError`` says what is wrong."""
        given: dict[str, int] = {}
        for part in value.split(","):
            match = _PART.fullmatch(part)
            if match is None:
                raise ValueError(
                    f"{part.strip()!r} is not one of parallelism=N, rate=N, period=N[s|m|h|d]"
                )
            name, raw = match.groups()
            if name in given:
                raise ValueError(f"{name} is given twice")
            if name != "period":
                if not raw.isdigit() or len(raw) > 9:
                    raise ValueError(f"{name} is a whole number: {part.strip()!r}")
                given[name] = int(raw)
            elif not _PERIOD.fullmatch(raw):
                raise ValueError(f"period is seconds or a duration such as 10s, 2m, 1h: {raw!r}")
            elif raw.isdigit():
                given[name] = int(raw)
            else:
                given[name] = sum(int(n) * _SECONDS[u] for n, u in _PERIOD_PART.findall(raw))
            if given[name] < 1:
                raise ValueError(f"{name} must be 1 or more, not {raw}")
            if name == "period" and given[name] > _MAX_PERIOD_S:
                raise ValueError(f"period can be at most a week (7d), not {raw}")
        if "parallelism" not in given and "rate" not in given:
            raise ValueError("give parallelism=N or rate=N (or both)")
        if "period" in given and "rate" not in given:
            raise ValueError("period applies to a rate: give rate=N with it")
        return cls(given.get("parallelism", 0), given.get("rate", 0), given.get("period", 1))


class _Delivery(Protocol):
    starts: list[int]
    flow_admitted: bool

    @property
    def canceled_at(self) -> int | None: ...


@dataclass
class FlowKey:
    """One key: its limits, what is under way, and the attempts waiting their turn."""

    key: str
    #: The limits the messages last gave, which apply unless pinned.
    given: FlowLimits
    parallelism: int
    rate: int
    period_s: int
    paused: bool = False
    pinned_parallelism: bool = False
    pinned_rate: bool = False
    #: When each attempt under way ends (a heap).
    active_until: list[int] = field(default_factory=list, repr=False)
    period_start: int = 0
    rate_count: int = 0
    waiting: collections.deque[Any] = field(default_factory=collections.deque, repr=False)
    #: When the key's wake is due, if one is on the agenda.
    wake_at: int | None = None

    def take(self, given: FlowLimits) -> None:
        """A new message's limits: they apply, but for what is pinned."""
        self.given = given
        if not self.pinned_parallelism:
            self.parallelism = given.parallelism
        if not self.pinned_rate:
            self.rate, self.period_s = given.rate, given.period_s

    def catch_up(self, now: int) -> None:
        """Forget the attempts over by ``now``; a new period when the last one ended."""
        while self.active_until and self.active_until[0] <= now:
            heapq.heappop(self.active_until)
        if now >= self.period_start + self.period_s * 1000:
            self.period_start, self.rate_count = now, 0

    def has_room(self) -> bool:
        """Whether one more attempt may start now (``catch_up`` first)."""
        if self.paused:
            return False
        if self.parallelism and len(self.active_until) >= self.parallelism:
            return False
        return not (self.rate and self.rate_count >= self.rate)

    def start(self, now: int, lasts_ms: int) -> None:
        """An attempt starts now."""
        heapq.heappush(self.active_until, now + lasts_ms)
        self.rate_count += 1

    def next_room(self, now: int) -> int | None:
        """When there may be room again (``None``: only a resume makes some)."""
        if self.paused:
            return None
        at = now
        if self.parallelism and len(self.active_until) >= self.parallelism:
            at = max(at, self.active_until[0])
        if self.rate and self.rate_count >= self.rate:
            at = max(at, self.period_start + self.period_s * 1000)
        return at

    def waiting_count(self) -> int:
        """The attempts in the wait list (a cancelled message's do not count)."""
        return sum(1 for delivery in self.waiting if delivery.canceled_at is None)

    def to_json(self, now: int) -> dict[str, Any]:
        """The key as ``GET /v2/flowControl/{key}`` answers it (``ratePeriodStart`` in
        seconds, as QStash gives it)."""
        self.catch_up(now)
        return {
            "flowControlKey": self.key,
            "waitListSize": self.waiting_count(),
            "parallelismMax": self.parallelism,
            "parallelismCount": len(self.active_until),
            "rateMax": self.rate,
            "rateCount": self.rate_count,
            "ratePeriod": self.period_s,
            "ratePeriodStart": self.period_start // 1000,
            "isPaused": self.paused,
            "isPinnedParallelism": self.pinned_parallelism,
            "isPinnedRate": self.pinned_rate,
        }


@dataclass(frozen=True)
class FlowWake:
    """An event: ``key`` may have room for its waiting attempts."""

    key: FlowKey


class FlowControl:
    """The flow-control keys by name, in the order first used; the timeline's kind of
    event for ``FlowWake``."""

    def __init__(self, agenda: Agenda, lasts_ms: int) -> None:
        self._agenda = agenda
        self._lasts_ms = lasts_ms
        self._keys: dict[str, FlowKey] = {}

    def __iter__(self) -> Iterator[FlowKey]:
        return iter(list(self._keys.values()))

    def get(self, key: str) -> FlowKey | None:
        """The key's state, if a message used it."""
        return self._keys.get(key)

    def register(self, key: str, limits: FlowLimits) -> None:
        """A message with ``key`` and ``limits`` was published."""
        state = self._keys.get(key)
        if state is None:
            self._keys[key] = FlowKey(key, limits, limits.parallelism, limits.rate, limits.period_s)
        else:
            state.take(limits)

    def admit(self, key: str, delivery: _Delivery, now: int) -> bool:
        """Whether the attempt of ``delivery`` due ``now`` starts now; else it waits in
        the key's line (its task shows it not started yet) and the key wakes later."""
        if delivery.flow_admitted:  # let go by a wake, its place taken then
            delivery.flow_admitted = False
            return True
        state = self._keys[key]
        state.catch_up(now)
        if not state.waiting and state.has_room():
            state.start(now, self._lasts_ms)
            return True
        state.waiting.append(delivery)
        delivery.starts[-1] = QUEUED
        self._wake_later(state, now)
        return False

    def changed(self, state: FlowKey, now: int) -> None:
        """The key's settings changed (resume, pin, unpin, reset): let go what may."""
        self._let_go(state, now)

    def clear(self) -> None:
        """Forget every key."""
        self._keys.clear()

    def active_count(self, now: int) -> int:
        """Attempts under way now, over every key."""
        count = 0
        for state in self._keys.values():
            state.catch_up(now)
            count += len(state.active_until)
        return count

    # -- the timeline's kind of event for FlowWake --------------------------------------

    def pending(self, wake: FlowWake) -> bool:
        """Whether the wake still matters (its key kept, this wake the one it waits for)."""
        return self._keys.get(wake.key.key) is wake.key

    def begin(self, due: int, wake: FlowWake) -> None:
        """Let the attempts that now have room go, at ``due``."""
        wake.key.wake_at = None
        self._let_go(wake.key, due)

    def lasts_ms(self, wake: FlowWake) -> int:
        """Over as soon as made (the attempts let go are events of their own)."""
        return 0

    def chain_entry(self, wake: FlowWake) -> tuple[str, str]:
        """The key, for a runaway chain's report."""
        return "flow control", wake.key.key

    def _let_go(self, state: FlowKey, now: int) -> None:
        state.catch_up(now)
        while state.waiting and state.has_room():
            delivery = state.waiting.popleft()
            if delivery.canceled_at is not None:
                continue
            state.start(now, self._lasts_ms)
            delivery.flow_admitted = True
            delivery.starts[-1] = now
            self._agenda.push(now, delivery)
        if state.waiting:
            self._wake_later(state, now)

    def _wake_later(self, state: FlowKey, now: int) -> None:
        at = state.next_room(now)
        if at is None or (state.wake_at is not None and state.wake_at <= at):
            return
        state.wake_at = at
        self._agenda.push(at, FlowWake(state))
