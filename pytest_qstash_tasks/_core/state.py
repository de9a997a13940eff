"""What every part of the fake shares: the lock, the store, the clock, the calls."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base_url import BaseURL
    from .calls import RecordedCall
    from .clock import Clock
    from .endpoint import EndpointConfig
    from .expectations import ExpectedMiss
    from .faults import Fault
    from .loop_guard import LoopGuard
    from .seeding import Stream
    from .sleep_patch import SleepPatch
    from .store import TaskStore

__all__ = ["FakeState"]


class FakeState:
    """The attributes the fake's parts (state, faults, calls, dispatch) work on.

    Every read or write of the store, the faults or the calls happens under ``_lock``:
    transports call ``dispatch`` from any thread.
    """

    clock: Clock
    _lock: threading.Lock
    _store: TaskStore
    _config: EndpointConfig
    _faults: list[Fault]
    _calls: list[RecordedCall]
    _real_host_calls: list[RecordedCall]
    _loop_errors: list[RecordedCall]
    _loop_guard: LoopGuard
    _seed: int | None
    _sleep_patch: SleepPatch | None
    patch_sleep: bool
    _expected: list[ExpectedMiss]
    _url: BaseURL
    #: With a seed, one stream for the fake's whole life; else the test's own.
    _stream: Stream | None
