"""The random stream the factories draw from.

Inside a pytest test the stream is seeded from the test's node id (read from
``PYTEST_CURRENT_TEST``), never from the global ``random`` state, so data stays the
same under pytest-xdist and pytest-randomly. Outside pytest the seed is 0.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .ids import new_ids

if TYPE_CHECKING:
    from .engine.clock import Clock

__all__ = [
    "Stream",
    "current_stream",
    "peek_stream",
    "running_clock",
    "seed_for",
    "start_stream",
]


def seed_for(node_id: str | None) -> int:
    """The default seed of a test: a stable 32-bit hash of its node id."""
    if not node_id:
        return 0
    import hashlib  # in a test only: the standalone command starts without it

    return int.from_bytes(hashlib.blake2b(node_id.encode(), digest_size=4).digest(), "big")


@dataclass
class Stream:
    """One test's random source and the ids it has handed out."""

    node_id: str | None
    seed: int
    rng: random.Random = field(init=False)
    taken_ids: set[str] = field(default_factory=set)
    used: bool = False
    #: The running test's fake clock, when the test took a fixture: generated
    #: tasks take their "now" from it, so nothing lies in the clock's future.
    clock: Clock | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def new_id(self, prefix: str) -> str:
        """A fresh QStash-shaped id (``tsk_...``) drawn from the stream."""
        self.used = True
        return new_ids(prefix, 1, self.rng, self.taken_ids)[0]


_current: Stream | None = None


def _current_node_id() -> str | None:
    value = os.environ.get("PYTEST_CURRENT_TEST")
    if not value:
        return None
    # "path::test_name[param] (call)": drop the phase.
    return value.rsplit(" (", 1)[0]


def current_stream() -> Stream:
    """The stream of the running test, started on first use in that test."""
    global _current
    node_id = _current_node_id()
    if _current is None or _current.node_id != node_id:
        _current = Stream(node_id, seed_for(node_id))
    return _current


def start_stream(node_id: str | None, seed: int | None = None) -> Stream:
    """Start a fresh stream for ``node_id`` (the fixture calls this at setup)."""
    global _current
    _current = Stream(node_id, seed_for(node_id) if seed is None else seed)
    return _current


def running_clock() -> Clock | None:
    """The fake clock of the running test, if it took a fixture."""
    if _current is not None and _current.node_id == _current_node_id():
        return _current.clock
    return None


def peek_stream(node_id: str) -> Stream | None:
    """The stream of ``node_id`` if that test drew from one."""
    if _current is not None and _current.node_id == node_id and _current.used:
        return _current
    return None
