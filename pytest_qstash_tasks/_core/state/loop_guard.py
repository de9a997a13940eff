"""The loop guard: stops a client that sends the same request, and gets the same
answer, over and over while nothing changes (a pager that never stops)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Hashable

__all__ = ["LoopGuard", "current_actor"]


def current_actor() -> tuple[int, int]:
    """The calling thread and asyncio task: a loop lives in one of them, so callers
    asking for the same page concurrently are not one client going round in circles."""
    return threading.get_ident(), _current_task_id()


class LoopGuard:
    """Counts identical requests in a row, per client (see ``current_actor``).

    The caller holds the fake's lock. ``key`` must capture the request, its answer and
    whatever could change the answer (the store's version, the clock).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._streaks: dict[Hashable, tuple[Hashable, int]] = {}

    def count(self, actor: Hashable, key: Hashable) -> int:
        """How many times in a row ``actor`` sent ``key`` (this request included)."""
        last, repeats = self._streaks.get(actor, (None, 0))
        repeats = repeats + 1 if key == last else 1
        self._streaks[actor] = (key, repeats)
        return repeats

    def reset(self) -> None:
        """Forget every streak."""
        self._streaks.clear()


def _current_task_id() -> int:
    """The running asyncio task's id, or 0 outside asyncio (sync code, trio)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return 0
    try:
        return id(asyncio.current_task())
    except RuntimeError:  # no running event loop in this thread
        return 0
