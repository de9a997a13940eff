"""``patch_sleep``: the code under test sleeps on the fake's clock, not on the wall.

While a ``SleepPatch`` is on, ``time.sleep``, ``asyncio.sleep``, ``anyio.sleep`` and
``trio.sleep`` move the fake's clock by the time asked for and return at once. They
still yield: ``time.sleep`` to other threads, the async ones to the event loop (the
other tasks run, and a zero sleep is a checkpoint as before). The functions are
replaced in their modules and wherever a module holds them under a name of its own
(``from time import sleep``), as freezegun does for ``time``; the fake's own modules
keep the real ones, so a planned ``delay_next`` still takes real time.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clock import Clock

__all__ = ["SleepPatch", "real_async_sleep", "real_sleep"]

#: Captured at import: what ``real_sleep`` calls whatever is patched later.
_TIME_SLEEP = time.sleep
_OWN_PACKAGE = __name__.split(".", 1)[0]
_lock = threading.Lock()


def real_sleep(seconds: float) -> None:
    """``time.sleep`` as it was before any patch (for the fake's own delays)."""
    _TIME_SLEEP(seconds)


def real_async_sleep() -> Callable[[float], Any]:
    """The running event loop's own sleep (``asyncio.sleep``, else ``trio.sleep``) as it
    was before any patch: a library above them (anyio) would reach the patched one."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # not under asyncio: trio
        else:
            return _unpatched(asyncio)
    return _unpatched(sys.modules["trio"])


def _unpatched(module: Any) -> Callable[[float], Any]:
    patch = SleepPatch._active
    if patch is not None:
        for holder, attribute, value in patch._replaced:
            if holder is module and attribute == "sleep":
                return value  # type: ignore[return-value]
    return module.sleep  # type: ignore[no-any-return]


class SleepPatch:
    """Replaces the sleeps of every loaded sleeping library with the clock's, until
    ``stop``. One at a time in a process."""

    _active: SleepPatch | None = None

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._replaced: list[tuple[object, str, object]] = []

    def start(self) -> None:
        """Patch every sleep function loaded now, in every module that holds one."""
        with _lock:
            if SleepPatch._active is not None:
                raise RuntimeError(
                    "patch_sleep is already on for another fake: one fake at a time "
                    "can take the process's sleeps"
                )
            SleepPatch._active = self
        fakes = self._fakes()
        for module in list(sys.modules.values()):
            name = getattr(module, "__name__", None)
            if not isinstance(name, str) or name.split(".", 1)[0] == _OWN_PACKAGE:
                continue
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for attribute, value in list(namespace.items()):
                fake = _lookup(fakes, value)
                if fake is None:
                    continue
                try:
                    setattr(module, attribute, fake)
                except (AttributeError, TypeError):  # a module that takes no new values
                    continue
                self._replaced.append((module, attribute, value))

    def stop(self) -> None:
        """Put every replaced function back."""
        while self._replaced:
            module, attribute, value = self._replaced.pop()
            setattr(module, attribute, value)
        with _lock:
            if SleepPatch._active is self:
                SleepPatch._active = None

    def _fakes(self) -> dict[int, tuple[object, Callable[..., Any]]]:
        """id(real function) -> (real function, its stand-in), for the libraries loaded."""
        clock = self.clock
        fakes: dict[int, tuple[object, Callable[..., Any]]] = {}

        def on_time(seconds: float) -> None:
            clock.sleep(seconds)
            _TIME_SLEEP(0)  # still a point where other threads may run

        fakes[id(time.sleep)] = (time.sleep, on_time)
        asyncio = sys.modules.get("asyncio")
        if asyncio is not None:
            real_asyncio_sleep = asyncio.sleep

            async def on_asyncio(delay: float, result: Any = None) -> Any:
                clock.sleep(delay)
                return await real_asyncio_sleep(0, result)

            fakes[id(real_asyncio_sleep)] = (real_asyncio_sleep, on_asyncio)
        for library in ("anyio", "trio"):
            module = sys.modules.get(library)
            if module is not None:
                real = module.sleep
                fakes[id(real)] = (real, _async_sleep(clock, module))
        return fakes


def _async_sleep(clock: Clock, library: Any) -> Callable[..., Any]:
    checkpoint = library.lowlevel.checkpoint

    async def on_library(delay: float) -> None:
        clock.sleep(delay)
        await checkpoint()  # a zero sleep's checkpoint: cancellation and scheduling

    return on_library


def _lookup(
    fakes: dict[int, tuple[object, Callable[..., Any]]], value: object
) -> Callable[..., Any] | None:
    found = fakes.get(id(value))
    if found is not None and found[0] is value:
        return found[1]
    return None
