"""``qstash_tasks.flow_control``: the flow-control keys the code's messages used
(qstash-py's ``client.flow_control``, seen from the test's side)."""

from __future__ import annotations

import builtins
import threading
from dataclasses import dataclass

from pytest_qstash_tasks._core.engine.clock import Clock
from pytest_qstash_tasks._core.engine.timeline import Timeline
from pytest_qstash_tasks._core.state.flow_control import FlowControl as _Keys

__all__ = ["FlowControl", "FlowControlKey"]


@dataclass(frozen=True)
class FlowControlKey:
    """One key, as it was when read: its limits (``parallelism``, ``rate`` per
    ``period_s`` seconds; 0 is no limit), whether it is ``paused``, how many of its
    attempts are under way (``active``), how many started this period (``rate_count``),
    and how many wait their turn (``waiting``)."""

    key: str
    parallelism: int
    rate: int
    period_s: int
    paused: bool
    active: int
    rate_count: int
    waiting: int


class FlowControl:
    """The flow-control keys: ``qstash_tasks.flow_control``."""

    def __init__(self, keys: _Keys, clock: Clock, timeline: Timeline, lock: threading.Lock) -> None:
        self._keys = keys
        self._clock = clock
        self._timeline = timeline
        self._lock = lock

    def list(self) -> builtins.list[FlowControlKey]:
        """Every key a message used, in the order first used."""
        self._timeline.run_due()
        with self._lock:
            now = self._clock.now
            found = []
            for state in self._keys:
                state.catch_up(now)
                shown = FlowControlKey(
                    state.key, state.parallelism, state.rate, state.period_s, state.paused,
                    len(state.active_until), state.rate_count, state.waiting_count(),
                )  # fmt: skip
                found.append(shown)
            return found

    def get(self, key: str) -> FlowControlKey:
        """The key; ``KeyError`` naming the keys there are if no message used it."""
        keys = self.list()
        found = next((state for state in keys if state.key == key), None)
        if found is None:
            known = ", ".join(state.key for state in keys) or "none"
            raise KeyError(f"no flow-control key {key!r} (there are: {known})")
        return found
