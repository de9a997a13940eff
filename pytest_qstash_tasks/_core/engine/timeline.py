"""The timeline: the clock moves event by event over the agenda.

Moving the clock to T runs every event due by T in order of (due time, order of
scheduling), and while one runs the clock reads that event's own instant: what a
receiver publishes is stamped then, and an event it makes that falls due by T runs in the
same move. Quick events (an attempt a script answers) run under the fake's lock; an
event that calls the test's own code (a receiver) hands that part over to run without
the lock, since the code may call the fake (read tasks, publish).

One run at a time: a move started while another runs (a receiver that sleeps under
``patch_sleep``, a request served on another thread) moves the clock at once and leaves
the events it made due to the run under way.

With ``clock="wall"`` one background thread sleeps until the first event is due, woken
early when an earlier one is scheduled or the clock is moved (a condition variable on the
fake's lock: nothing polls), and runs it on time.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from pytest_qstash_tasks._core.errors import QStashTasksRunawayError

if TYPE_CHECKING:
    from pytest_qstash_tasks._core.state.agenda import Agenda
    from pytest_qstash_tasks._core.state.lifecycle import SimulatedDelivery

    from .clock import Clock

__all__ = [
    "DEFAULT_MAX_CHAINED_EVENTS",
    "WALL_THREAD_NAME",
    "EventKind",
    "Handoff",
    "PlannedAttempts",
    "Timeline",
]

#: How many events one move may run that were scheduled during that same move.
DEFAULT_MAX_CHAINED_EVENTS = 5_000
#: The name of the wall clock's thread, as a receiver sees it (``threading.current_thread``).
WALL_THREAD_NAME = "qstash-tasks-clock"
#: How long ``stop()`` waits for a receiver the wall clock's thread is running, past the
#: delivery timeout, before leaving the (daemon) thread to finish by itself.
_STOP_GRACE_S = 1.0


class Handoff(Protocol):
    """The part of an event that runs the test's own code, without the fake's lock."""

    def run(self) -> None:
        """Call the test's code (without the lock). If it raises, the event is put back."""

    def finish(self) -> None:
        """Record what came of it (with the lock)."""


class EventKind(Protocol):
    """How the timeline runs one kind of event (every event of one type)."""

    def pending(self, event: Any) -> bool:
        """Whether the event is still to run (a cancelled message's attempt is not)."""

    def begin(self, due: int, event: Any) -> Handoff | None:
        """Run the event at ``due`` with the lock held; what must run without it, if any."""

    def lasts_ms(self, event: Any) -> int:
        """How long the event shows under way once run (an attempt stays ``active``)."""

    def chain_entry(self, event: Any) -> tuple[str, str]:
        """Where the event goes and what it is, for a runaway chain's report:
        (destination, message id)."""


class PlannedAttempts:
    """The kind of the attempts of ``simulate_delivery``: their outcomes are in the plan
    and the task is computed from it, so running one changes nothing; being on the
    agenda, they count as what is still to happen (``run_all`` waits for them)."""

    def pending(self, plan: SimulatedDelivery) -> bool:
        """Always: a simulated delivery is never cancelled."""
        return True

    def begin(self, due: int, plan: SimulatedDelivery) -> None:
        """Nothing to do: the task shows the attempt from its plan."""

    def lasts_ms(self, plan: SimulatedDelivery) -> int:
        """How long the plan's attempts show ``active``."""
        return plan.active_ms

    def chain_entry(self, plan: SimulatedDelivery) -> tuple[str, str]:
        """The plan's destination and message id."""
        return plan.url, plan.message_id


class Timeline:
    """Runs the agenda's events as the clock reaches them (see the module's docstring)."""

    def __init__(
        self,
        agenda: Agenda,
        clock: Clock,
        lock: threading.Lock,
        *,
        max_chained_events: int,
        runaway_message: Callable[[Sequence[tuple[str, str]], int, int], str],
    ) -> None:
        self.agenda = agenda
        self.clock = clock
        self.max_chained_events = max_chained_events
        self.kinds: dict[type, EventKind] = {}
        #: The words of a runaway's report: (chain, bound, where it stopped) -> text.
        self._runaway_message = runaway_message
        #: What went wrong running events, one report each (``verify()`` lists them): the
        #: runaway chains stopped, and errors the wall clock's thread met.
        self.problems: list[str] = []
        self._lock = lock
        self._wake = threading.Condition(lock)
        self._running = False
        #: When the last event run so far stops showing under way.
        self._quiet_at = 0
        self._thread: threading.Thread | None = None
        #: Counts the wall clock's threads: one ends when it is no longer the latest (a
        #: stop, even one that left it finishing a receiver, then a start again).
        self._generation = 0
        clock._timeline = self

    # -- moves ------------------------------------------------------------------------

    def move_to(self, target: int) -> None:
        """Move the clock to ``target``, running every event due by then in order; raises
        ``QStashTasksRunawayError`` when a chain passes ``max_chained_events``."""
        self._run(target)

    def run_due(self) -> None:
        """Run the events due by the clock's time now (a read, a request, the wall
        clock's thread): a runaway chain is reported at ``verify()``, never raised."""
        with self._lock:
            due = self.agenda.next_due()
            if due is None or due > self.clock.now or self._running:
                return
        self._run(None, strict=False)

    def run_all(self, horizon: int) -> int:
        """Move from event to event until nothing is left to run and the last event is
        over, or the clock reaches ``horizon`` (unix ms); returns the ms moved."""
        start = self.clock.now
        self._run(horizon, until_quiet=True)
        return self.clock.now - start

    def _run(self, target: int | None, *, until_quiet: bool = False, strict: bool = True) -> None:
        """Run events up to ``target`` (``None``: the clock's time, as it goes on); a
        runaway chain is kept in ``problems``, and raised when ``strict``."""
        clock, agenda, lock = self.clock, self.agenda, self._lock
        with lock:
            if self._running:
                # A move inside a run under way (a receiver's sleep) or beside it (another
                # thread): the clock moves now; the run under way runs what fell due.
                if target is not None and not until_quiet:
                    clock._reach(target)
                return
            self._running = True
        # The events the test's own code scheduled during this move (a receiver's
        # publish): ranges of the agenda's order, one per handoff. A retry, a callback or
        # a schedule's firing is the fake's own doing and never counts.
        by_code: list[tuple[int, int]] = []
        chain: list[tuple[str, str]] = []
        stopped_at: int | None = None
        try:
            while True:
                with lock:
                    handoff = None
                    while handoff is None:
                        limit = clock.now if target is None else max(target, clock.now)
                        popped = agenda.pop(limit)
                        if popped is None:
                            break
                        due, order, event = popped
                        kind = self.kinds[type(event)]
                        if not kind.pending(event):
                            continue
                        if by_code and _within(by_code, order):
                            if len(chain) >= self.max_chained_events:
                                agenda.put_back(due, order, event)
                                stopped_at = due
                                break
                            chain.append(kind.chain_entry(event))
                        clock._reach(due)
                        self._quiet_at = max(self._quiet_at, due + kind.lasts_ms(event))
                        handoff = kind.begin(due, event)
                    if handoff is None:
                        if stopped_at is None and target is not None:
                            end = target
                            if until_quiet and self._first_pending_due() is None:
                                end = min(target, max(clock.now, self._quiet_at))
                            clock._reach(end)
                        break
                with lock:
                    code_from = agenda.scheduled
                try:
                    handoff.run()
                except BaseException:
                    with lock:
                        agenda.put_back(due, order, event)
                    raise
                with lock:
                    if agenda.scheduled > code_from:
                        by_code.append((code_from, agenda.scheduled))
                    handoff.finish()
        finally:
            with lock:
                self._running = False
                self._wake.notify_all()
        if stopped_at is not None:
            report = self._runaway_message(chain, self.max_chained_events, clock.now)
            with lock:
                self.problems.append(report)
            if strict:
                raise QStashTasksRunawayError(report)

    # -- the wall clock's thread ------------------------------------------------------

    def start_wall_thread(self) -> None:
        """With ``clock="wall"``, start the thread that runs events on time."""
        if self.clock.mode != "wall" or self._thread is not None:
            return
        with self._lock:
            self._generation += 1
            self.agenda.on_earlier = self._wake.notify_all
        self._thread = threading.Thread(
            target=self._wall_loop, args=(self._generation,), name=WALL_THREAD_NAME, daemon=True
        )
        self._thread.start()

    def stop_wall_thread(self, timeout: float) -> None:
        """Stop the thread: at once when it waits; after the receiver it runs, if any
        (up to ``timeout`` seconds and a grace, then it is left to end by itself)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with self._lock:
            self._generation += 1
            self.agenda.on_earlier = None
            self._wake.notify_all()
        if thread is not threading.current_thread():
            thread.join(timeout + _STOP_GRACE_S)

    def _wall_loop(self, generation: int) -> None:
        wake = self._wake
        while True:
            with wake:
                while True:
                    if self._generation != generation:
                        return
                    due = None if self._running else self._first_pending_due()
                    if due is None:  # a run under way, or nothing to run
                        wake.wait()  # until an event is scheduled or a run ends
                        continue
                    wait_ms = due - self.clock._exact_now()
                    if wait_ms <= 0:
                        break
                    # At most a day at a time: a wait past threading.TIMEOUT_MAX would raise.
                    wake.wait(min(wait_ms / 1000, 86_400.0))
            try:
                self.run_due()
            except Exception:  # the thread must go on: say what happened at verify()
                import traceback

                with self._lock:
                    self.problems.append(
                        "An event raised on the wall clock's thread (a bug of the fake's: "
                        "please report it), which went on with the next:\n"
                        + traceback.format_exc().rstrip()
                    )

    def _first_pending_due(self) -> int | None:
        """When the first event still to run is due (events that will not run, such as a
        cancelled message's attempts, are dropped on the way)."""
        while True:
            first = self.agenda.first()
            if first is None:
                return None
            due, event = first
            if self.kinds[type(event)].pending(event):
                return due
            self.agenda.pop(due)

    @contextmanager
    def quiet(self, timeout: float) -> Iterator[None]:
        """Hold the fake's lock at a moment no run is under way (no event half done,
        none handed to a receiver): what a state file is taken and put back at. The
        wall clock's thread looks at the agenda again after. ``TimeoutError`` when runs
        go on for ``timeout`` seconds."""
        with self._wake:
            if not self._wake.wait_for(lambda: not self._running, timeout):
                raise TimeoutError(f"events were still running after {timeout:g} s")
            try:
                yield
            finally:
                self._wake.notify_all()

    def clear(self) -> None:
        """Forget every event and problem (the fake's ``reset()``)."""
        self.agenda.clear()
        self.problems.clear()
        self._quiet_at = 0
        self._wake.notify_all()


def _within(ranges: list[tuple[int, int]], order: int) -> bool:
    """Whether ``order`` falls in one of ``ranges`` (ascending, not overlapping)."""
    index = bisect.bisect_right(ranges, (order, _NO_END)) - 1
    return index >= 0 and order < ranges[index][1]


_NO_END = 1 << 62
