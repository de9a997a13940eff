"""The fake: one class with the API a test uses most, flat (as in pytest-httpx and
respx), composed of the state it keeps, the engine that moves it and the parts a test
reaches (``parts/``). A transport is a subclass: see docs/architecture.md."""

from __future__ import annotations

import abc
import datetime as _dt
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Literal, ParamSpec, TypeVar

from .api.callbacks import AfterAttempt
from .api.dispatch import Dispatcher
from .api.hosts import DEFAULT_BASE_URL, BaseURL, GuardedFake, RealHostGuard
from .api.publishing import PublishConfig
from .api.schedules import Firings
from .api.tasks import EndpointConfig
from .api.workflow_events import WaitTimeout, WaitTimeouts
from .args import (
    check_end_cursor,
    check_int,
    check_seconds,
    check_token,
)
from .engine.clock import DEFAULT_START_MS, Clock, ClockMode
from .engine.courier import Courier
from .engine.destinations import Destinations
from .engine.signing import KeyRing
from .engine.sleep_patch import SleepPatch
from .engine.timeline import DEFAULT_MAX_CHAINED_EVENTS, PlannedAttempts, Timeline
from .exchange import Reply, Request
from .parts.calls import Calls
from .parts.dlq import Dlq
from .parts.faults import Faults
from .parts.flow_control import FlowControl
from .parts.logs import Logs
from .parts.messages import Messages
from .parts.queues import Queues
from .parts.schedules import Schedules
from .parts.signing_keys import SigningKeys
from .parts.url_groups import UrlGroups
from .parts.workflows import Workflows
from .report import (
    CHECKS,
    failure_sections,
    format_problems,
    problems,
    runaway_message,
    unreached_message,
)
from .seeding import Stream, current_stream
from .state.agenda import Agenda
from .state.calls import CallLog, RecordedCall
from .state.dlq import DeadLetterQueue
from .state.faults import Fault, FaultQueue
from .state.flow_control import FlowWake
from .state.lifecycle import Outcome, SimulatedDelivery
from .state.logs import MessageLog
from .state.outbox import Outbox, PublishedDelivery, PublishedMessage
from .state.schedules import Firing, ScheduleBook
from .state.store import TaskStore

if TYPE_CHECKING:
    from .engine.receivers import DeliveryAttempt
    from .models import Task, TasksPage

__all__ = ["DEFAULT_TOKEN", "QStashTasksFake"]

#: What ``.token`` hands out when no token is configured (any non-empty one is accepted).
DEFAULT_TOKEN = "qstash-tasks-test-token"

_Self = TypeVar("_Self", bound="QStashTasksFake")


_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")


def _forward(
    part: str, method: Callable[Concatenate[_T, _P], _R]
) -> Callable[Concatenate[Any, _P], _R]:
    """A method of the fake that is ``method`` of its part ``part``: the same signature
    and docstring, so that the fake keeps its flat names while the parts own the code."""

    def forward(self: Any, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        __tracebackhide__ = True  # show the user's line, not this one
        return method(getattr(self, part), *args, **kwargs)

    forward.__name__, forward.__qualname__ = method.__name__, method.__qualname__
    forward.__doc__, forward.__wrapped__ = method.__doc__, method  # type: ignore[attr-defined]
    return forward


class QStashTasksFake(abc.ABC):
    """A stateful fake of QStash: a message's delivery tasks
    (``GET /v1/messages/{messageId}/tasks``), publishing (publish, enqueue, batch),
    messages, URL groups, and signed deliveries to the test's own receivers, on a clock
    the test moves.

    Use it through a transport: ``QStashTasksMock`` (httpx and requests, in-process) or
    ``QStashTasksServer`` (a real HTTP server on the loopback interface). Its parts, one
    per SDK resource: ``url_groups``, ``messages``, ``signing_keys``, ``dlq``, ``logs``,
    ``schedules``, ``queues``, ``flow_control``, ``workflows``.

    Args:
        base_url: Where the fake listens: scheme, host, optional port and path prefix.
        token: The only bearer token accepted. ``None`` accepts any non-empty token.
        page_size: Most tasks in one page (QStash: 100).
        end_cursor: The cursor of the last page: ``0``, or ``None`` to leave it out.
        max_identical_requests: How many identical requests, with identical answers
            and nothing changed in between, pass before the next one is stopped as a
            likely infinite loop (``QStashTasksLoopError``).
        max_chained_events: How many events one move of the clock may run that were
            scheduled during that same move (a chain of receivers publishing) before
            the move stops as a runaway chain (``QStashTasksRunawayError``).
        assert_all_requests_served: Whether ``verify()`` fails on requests the fake
            could not serve (other paths, unknown messages, bad auth, ...).
        assert_all_scripted_pages_requested: Whether ``verify()`` fails on pages of
            ``add_pages`` that no request asked for.
        assert_all_faults_triggered: Whether ``verify()`` fails on faults
            (``fail_next`` and its siblings) that did not fire as often as planned.
        assert_all_destination_answers_used: Whether ``verify()`` fails on answers
            scripted with ``destination(...).answers(...)`` that no delivery attempt met.
        default_retries: The retries of a published message that sends no
            ``Upstash-Retries`` (QStash: the plan's maximum, 3 on the free plan).
        default_answer: What a delivery attempt meets at a destination no script
            covers: an HTTP status (200: delivered), an exception or an error text.
        max_message_size: The largest body a publish may send, in bytes (QStash's free
            plan: 1 MB); a larger one is refused with 413.
        current_signing_key: The key deliveries are signed with (``sig_...``); by
            default a fixed one, the same for every fake and every run.
        next_signing_key: The key that becomes current when the keys rotate
            (``rotate_signing_keys``); receivers try it when the current one fails.
        delivery_timeout: How long a receiver may take to answer a delivery, in
            seconds (less if the publish sent ``Upstash-Timeout``); slower is a failed
            attempt.
        guard_real_qstash: Whether a request from this process to the real QStash
            (``qstash.upstash.io``, ``qstash-<region>.upstash.io``) is stopped with
            ``QStashTasksRealHostError`` and fails ``verify()`` while the fake is active.
        start: Where the clock starts: unix ms, an aware datetime or an ISO 8601 str.
        clock: ``"fake"`` (default): the clock moves only when the test moves it;
            ``"wall"``: it follows ``time.time()``, so real time, time-machine and
            freezegun move it, and a thread of the fake's makes each delivery attempt
            when it is due.
        patch_sleep: While the fake is started, ``time.sleep``, ``asyncio.sleep``,
            ``anyio.sleep`` and ``trio.sleep`` move the fake's clock instead of waiting.
        seed: Seed of the tasks ``add(count=...)`` generates: ``0`` by default, so a
            fake made by hand (say, for a whole module) holds the same data whichever
            test uses it first; ``None`` draws from the running test's own stream, as
            the fixtures' fakes do (seeded from the node id, or the marker's ``seed``).
    """

    #: Whether the transport answers requests of this process to the fake's origin
    #: (in-process), rather than letting them go to a real socket (a server).
    _answers_in_process: ClassVar[bool] = False
    #: Who made the fake, for the advice its messages give: ``None`` a fixture (the
    #: marker and ini options), ``report.COMMAND`` the standalone command (its options
    #: and control endpoints), else the class (constructor arguments).
    _owner_name: str | None

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        token: str | None = None,
        page_size: int = 100,
        end_cursor: Literal[0] | None = 0,
        max_identical_requests: int = 100,
        max_chained_events: int = DEFAULT_MAX_CHAINED_EVENTS,
        assert_all_requests_served: bool = True,
        assert_all_scripted_pages_requested: bool = True,
        assert_all_faults_triggered: bool = True,
        assert_all_destination_answers_used: bool = True,
        default_retries: int = 3,
        default_answer: Outcome = 200,
        max_message_size: int = 1_048_576,
        current_signing_key: str | None = None,
        next_signing_key: str | None = None,
        delivery_timeout: float = 10.0,
        guard_real_qstash: bool = True,
        start: int | _dt.datetime | str = DEFAULT_START_MS,
        clock: ClockMode = "fake",
        patch_sleep: bool = False,
        seed: int | None = 0,
    ) -> None:
        self._url = BaseURL.parse(base_url)
        self._config = EndpointConfig(
            base_path=self._url.path,
            token=check_token(token),
            page_size=check_int("page_size", page_size, 1),
            end_cursor=check_end_cursor(end_cursor),
        )
        limit = check_int("max_identical_requests", max_identical_requests, 1)
        self.assert_all_requests_served = assert_all_requests_served
        """Whether ``verify()`` fails on requests the fake could not serve."""
        self.assert_all_scripted_pages_requested = assert_all_scripted_pages_requested
        """Whether ``verify()`` fails on scripted pages no request asked for."""
        self.assert_all_faults_triggered = assert_all_faults_triggered
        """Whether ``verify()`` fails on faults that did not fire as often as planned."""
        self.assert_all_destination_answers_used = assert_all_destination_answers_used
        """Whether ``verify()`` fails on scripted destination answers no attempt met."""
        self._publish_config = PublishConfig(
            default_retries=check_int("default_retries", default_retries),
            max_message_size=check_int("max_message_size", max_message_size, 1),
        )
        self.guard_real_qstash = guard_real_qstash
        """Whether requests of this process to the real QStash are stopped."""
        self._seed = None if seed is None else check_int("seed", seed)
        #: With a seed, one stream for the fake's whole life; else the running test's.
        self._stream = None if self._seed is None else Stream(None, self._seed)
        self.clock = Clock(start, mode=clock)
        """The fake's clock: move it with ``advance``, ``sleep`` or ``set``."""
        self.patch_sleep = patch_sleep
        """Whether the process's sleeps move the clock while the fake is started."""
        self._sleep_patch: SleepPatch | None = None
        self._started = False
        self._owner_name = type(self).__name__
        keys = (current_signing_key, next_signing_key)
        chained = check_int("max_chained_events", max_chained_events, 1)
        self._assemble(default_answer, keys, delivery_timeout, (limit, chained))

    def _assemble(
        self,
        default_answer: Outcome,
        keys: tuple[str | None, str | None],
        timeout: float,
        limits: tuple[int, int],
    ) -> None:
        """The state, the engine and the parts, each given what it needs of the others.
        The one lock: transports call _dispatch from any thread. It guards the state,
        which takes no lock of its own; the parts and the engine take it."""
        self._lock = threading.Lock()
        self._store = TaskStore()
        self._agenda = Agenda()
        self._timeline = Timeline(
            self._agenda, self.clock, self._lock, max_chained_events=limits[1],
            runaway_message=lambda chain, bound, at: runaway_message(
                chain, bound, at, self._owner()
            ),
        )  # fmt: skip
        self._outbox = Outbox(self._store, self._agenda, MessageLog())
        self._destinations = Destinations(default_answer, self._lock)
        self._keys = KeyRing(*keys)
        self._courier = Courier(
            self._outbox, self._destinations, self._keys,
            timeout=check_seconds("delivery_timeout", timeout),
        )  # fmt: skip
        self._dlq = DeadLetterQueue()
        new_id = self._new_id
        self._courier.after_attempt = AfterAttempt(
            self._outbox, self._dlq, self._publish_config, new_id
        )
        self._timeline.kinds.update({PublishedDelivery: self._courier})
        self._timeline.kinds.update({SimulatedDelivery: PlannedAttempts()})
        self._schedules = ScheduleBook()
        firings = Firings(self._schedules, self._agenda, self._outbox, self._publish_config, new_id)
        waits = WaitTimeouts(self._outbox, self._agenda, self._publish_config, new_id)
        self._timeline.kinds.update(
            {Firing: firings, FlowWake: self._outbox.flow, WaitTimeout: waits}
        )
        self.url_groups = UrlGroups(self._outbox, self.clock, self._lock)
        """The URL groups the fake holds, as the SDK's ``client.url_group`` sees them."""
        self.messages = Messages(
            self._outbox, self._destinations, self._courier, self._timeline, self._lock
        )
        """What the code published and what each delivery met (``client.message``)."""
        self.signing_keys = SigningKeys(self._keys, self._lock)
        """The keys deliveries are signed with (``client.signing_key``)."""
        self.dlq = Dlq(self._dlq, self._outbox, self.clock, new_id, self._lock)
        """The messages whose retries ran out (``client.dlq``)."""
        self.logs = Logs(self._outbox.log, self.clock, self._timeline, self._lock)
        """Every state change of every published message (``client.log``)."""
        self.schedules = Schedules(self._schedules, firings, self.clock, self._timeline, self._lock)
        """The schedules the code made, and their firings (``client.schedule``)."""
        self.queues = Queues(self._outbox, self.clock, self._timeline, self._lock)
        """The queues, and the messages each holds (``client.queue``)."""
        self.flow_control = FlowControl(self._outbox.flow, self.clock, self._timeline, self._lock)
        """The flow-control keys the messages used (``client.flow_control``)."""
        self.workflows = Workflows(
            self._outbox, self._publish_config, new_id, self.clock, self._timeline, self._lock
        )
        """The Upstash Workflow runs, their steps and results."""
        self._faults = FaultQueue()
        self._fault_plans = Faults(self._faults, self._lock)
        self._calls = CallLog()
        self._recorded = Calls(self._calls, self._store, self._lock)
        guarded = GuardedFake(
            name=lambda: repr(self), enabled=lambda: self.guard_real_qstash,
            owner=self._owner, clients_served=self._clients_served,
        )  # fmt: skip
        self._guard = RealHostGuard(
            self._url, guarded, answers_in_process=self._answers_in_process,
            calls=self._calls, lock=self._lock,
        )  # fmt: skip
        self._dispatcher = Dispatcher(
            self._store, self._outbox, self._timeline, self._faults, self._calls,
            self.clock, self._config, self._publish_config, self._lock,
            dlq=self._dlq, schedules=self._schedules, firings=firings, waits=waits,
            keys=self._keys,
            max_identical_requests=limits[0], owner=self._owner,
            new_id=new_id,
        )  # fmt: skip

    # -- settings -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The base URL the fake answers on, e.g. ``https://qstash.upstash.io``."""
        return str(self._url)

    @property
    def token(self) -> str:
        """A bearer token the fake accepts: give it to the client under test."""
        return self._config.token or DEFAULT_TOKEN

    @property
    def page_size(self) -> int:
        """Most tasks in one page."""
        return self._config.page_size

    @property
    def end_cursor(self) -> Literal[0] | None:
        """The last page's cursor: ``0``, or ``None`` when the field is left out."""
        return self._config.end_cursor

    @property
    def default_retries(self) -> int:
        """The retries of a published message that sends no ``Upstash-Retries``."""
        return self._publish_config.default_retries

    @property
    def default_answer(self) -> Outcome:
        """What an attempt meets at a destination no script covers."""
        return self._destinations.default

    @property
    def max_message_size(self) -> int:
        """The largest body a publish may send, in bytes."""
        return self._publish_config.max_message_size

    @property
    def env(self) -> dict[str, str]:
        """What the code under test reads from its environment: ``QSTASH_URL``,
        ``QSTASH_TOKEN``, ``QSTASH_CURRENT_SIGNING_KEY`` and
        ``QSTASH_NEXT_SIGNING_KEY``, for a subprocess or ``monkeypatch.setenv``."""
        return {
            "QSTASH_URL": self.base_url,
            "QSTASH_TOKEN": self.token,
            "QSTASH_CURRENT_SIGNING_KEY": self._keys.current,
            "QSTASH_NEXT_SIGNING_KEY": self._keys.next,
        }

    @property
    def max_identical_requests(self) -> int:
        """Identical requests in a row the loop guard lets through."""
        return self._dispatcher.loop_guard.limit

    @max_identical_requests.setter
    def max_identical_requests(self, value: int) -> None:
        self._dispatcher.loop_guard.limit = check_int("max_identical_requests", value, 1)

    @property
    def max_chained_events(self) -> int:
        """Events scheduled during one move that the move may run (a runaway's bound)."""
        return self._timeline.max_chained_events

    @max_chained_events.setter
    def max_chained_events(self, value: int) -> None:
        self._timeline.max_chained_events = check_int("max_chained_events", value, 1)

    # -- start, stop ----------------------------------------------------------------

    def start(self: _Self) -> _Self:
        """Start answering requests (each transport says how: see its class)."""
        if self._started:
            raise RuntimeError(f"this {type(self).__name__} is already started")
        self._guard.enter()
        try:
            self._open()
            self._timeline.start_wall_thread()
            if self.patch_sleep:
                self._sleep_patch = SleepPatch(self.clock)
                self._sleep_patch.start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        """Stop answering requests. Recorded calls and stored tasks stay readable."""
        self._started = False
        patch, self._sleep_patch = self._sleep_patch, None
        if patch is not None:
            patch.stop()
        self._timeline.stop_wall_thread(self._courier.timeout)
        try:
            self._close()
        finally:
            self._guard.leave()

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.stop()
        if exc_type is None:
            self.verify()

    async def __aenter__(self: _Self) -> _Self:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.__exit__(exc_type)

    def __repr__(self) -> str:
        with self._lock:
            messages, calls = len(self._store.known_ids()), len(self._calls.calls)
        state = "started" if self._started else "stopped"
        return (
            f"<{type(self).__name__} {self.base_url} {state}, "
            f"{messages} message(s), {calls} call(s)>"
        )

    # -- what the endpoint serves ---------------------------------------------------

    def add(
        self,
        message_id: str,
        tasks: Iterable[Task | Mapping[str, Any]] | None = None,
        *,
        count: int | None = None,
        **task_overrides: Any,
    ) -> list[Task]:
        """Store tasks for ``message_id`` (registering the message); returns them.

        Give ``tasks`` (``Task`` objects or wire dicts; an empty list registers the
        message with no tasks), or ``count`` to generate that many with ``make_tasks``,
        where ``task_overrides`` apply (``add("msg_1", count=5, state="failed")``).
        A task with no ``timeline_at`` is stamped from the clock in list order, newest
        first. Tasks already stored stay; a task id the message already has is refused.
        """
        from .factories import tasks_to_add  # pydantic's models, on first use

        built = tasks_to_add(
            self._stream_now(), message_id, tasks, count, self.clock.now, task_overrides
        )
        with self._lock:
            return self._store.add(message_id, built, self.clock.now)

    def add_message(self, message_id: str) -> None:
        """Register ``message_id`` with no tasks: it answers ``200`` with ``tasks: []``."""
        with self._lock:
            self._store.add_message(message_id)

    def add_pages(self, message_id: str, pages: Iterable[TasksPage | Mapping[str, Any]]) -> None:
        """Serve ``pages`` verbatim for ``message_id``.

        A request without a cursor gets the first page; a request with a page's
        ``cursor`` gets the page after it. Each page but the last must hand out a
        cursor of its own, and the last must end the list (``0`` or no cursor).
        """
        with self._lock:
            self._store.add_pages(message_id, list(pages))

    def simulate_delivery(
        self,
        message_id: str,
        *,
        url: str,
        outcomes: Sequence[Outcome],
        max_retry: int = 3,
        active_ms: int = 500,
        task_id: str | None = None,
    ) -> str:
        """Add a task that goes through QStash's delivery lifecycle as the clock moves.

        The task is created now (``clock.now``) and shows ``created``, ``planned``,
        then ``active`` for ``active_ms`` per attempt. Each attempt ends as its entry in
        ``outcomes`` says: an HTTP status of the destination (2xx delivers it), an
        exception type or instance for a timeout or connection failure, or the error
        text itself. After a failed attempt, while retries remain, the task shows
        ``error`` with ``retried`` counted up and waits ``backoff(retried)`` (QStash v1:
        ``min(86400, e ** (2 * retried))`` seconds), then ``planned`` and the next
        attempt; the failure with ``retried == max_retry`` leaves it ``failed``.
        ``outcomes`` must end the task: ``[500, 500, 200]`` is delivered with
        ``retried == 2``.

        Every response shows the state at the clock's time; ``clock.advance`` may jump
        any distance at once. Returns the task id. Call it again with another ``url``
        to model a message sent to several destinations.
        """
        with self._lock:
            if task_id is None:
                task_id = self._stream_now().new_id("tsk")
            now = self.clock.now
            plan = SimulatedDelivery.plan(
                task_id, message_id, url, outcomes, max_retry, now, active_ms
            )
            self._store.add_simulated(plan)
            for start in plan.attempt_starts():
                self._agenda.push(start, plan)
        return task_id

    def message_ids(self) -> list[str]:
        """The ids of the registered messages, in the order registered."""
        with self._lock:
            return self._store.known_ids()

    def tasks(self, message_id: str) -> list[Task]:
        """The tasks stored for ``message_id``, in serving order (newest first)."""
        self._timeline.run_due()
        with self._lock:
            return self._store.tasks_at(message_id, self.clock.now)

    def reset(self) -> None:
        """Forget everything the fake learnt since it was made: stored tasks, scripted
        pages, simulated deliveries, published messages, URL groups, destination
        scripts, delivery attempts, recorded calls, planned faults and loop streaks;
        rotated signing keys go back to the first ones;
        the clock goes back to its start and a seeded fake's data starts over. The
        settings stay."""
        with self._lock:
            self._store.clear()
            self._outbox.clear()
            self._timeline.clear()
            self._dlq.clear()
            self._schedules.clear()
            self._outbox.log.clear()
            self._destinations.clear()
            self._courier.clear()
            self._keys.restart()
            self._faults.clear()
            self._calls.clear()
            self._dispatcher.loop_guard.reset()
            self.clock.restart()
            if self._seed is not None:
                self._stream = Stream(None, self._seed)

    def _new_id(self, prefix: str) -> str:
        """A fresh id (``msg_...``, ``tsk_...``) from the fake's stream."""
        return self._stream_now().new_id(prefix)

    def _stream_now(self) -> Stream:
        """Where generated data comes from: this fake's seed, else the running test's."""
        return self._stream or current_stream()

    # -- the parts' flat names: what a test does most, and today's names ------------
    # Each is its part's method (its signature and docstring): see parts/.

    destination = _forward("messages", Messages.destination)
    assert_published = _forward("messages", Messages.assert_published)
    assert_delivered = _forward("messages", Messages.assert_delivered)
    sign = _forward("signing_keys", SigningKeys.sign)
    rotate_signing_keys = _forward("signing_keys", SigningKeys.rotate)
    fail_next = _forward("_fault_plans", Faults.fail_next)
    rate_limit_next = _forward("_fault_plans", Faults.rate_limit_next)
    raise_next = _forward("_fault_plans", Faults.raise_next)
    delay_next = _forward("_fault_plans", Faults.delay_next)
    get_calls = _forward("_recorded", Calls.get_calls)
    expect_unserved = _forward("_recorded", Calls.expect_unserved)
    assert_called = _forward("_recorded", Calls.assert_called)
    assert_not_called = _forward("_recorded", Calls.assert_not_called)
    assert_all_pages_fetched = _forward("_recorded", Calls.assert_all_pages_fetched)

    @property
    def published(self) -> list[PublishedMessage]:
        """Every publish the code sent (``/v2/publish``, ``/v2/enqueue``, each entry of
        ``/v2/batch``), in order: a copy."""
        return self.messages.published

    @property
    def deliveries(self) -> list[DeliveryAttempt]:
        """Every attempt that reached a receiver (``deliver_to``), in order: a copy."""
        return self.messages.deliveries

    @property
    def faults(self) -> list[Fault]:
        """Every fault planned, in order, used up or not (a copy)."""
        return self._fault_plans.planned()

    @property
    def calls(self) -> list[RecordedCall]:
        """Every request the fake answered, in order: a read-only copy (``reset()``
        forgets them)."""
        return self._recorded.copy()

    @property
    def current_signing_key(self) -> str:
        """The key deliveries are signed with now (``QSTASH_CURRENT_SIGNING_KEY``)."""
        return self._keys.current

    @property
    def next_signing_key(self) -> str:
        """The key that becomes current at the next rotation (``QSTASH_NEXT_SIGNING_KEY``)."""
        return self._keys.next

    # -- teardown checks ------------------------------------------------------------

    def verify(self) -> None:
        """Raise ``AssertionError`` listing what went wrong during the test.

        Checks that no request hit a likely infinite loop and, unless switched off,
        that the fake could serve every request to its host
        (``assert_all_requests_served``), that every scripted page was requested
        (``assert_all_scripted_pages_requested``) and that every fault fired as often
        as planned (``assert_all_faults_triggered``) and that every scripted
        destination answer was met (``assert_all_destination_answers_used``). The
        fixtures call this at teardown.
        """
        __tracebackhide__ = True  # show the user's line, not ours
        found = self.problems()
        if found:
            raise AssertionError(format_problems(found))

    def problems(self) -> list[str]:
        """What ``verify()`` would report, one paragraph each."""
        with self._lock:
            log = self._calls.snapshot()
            scripted, planned = list(self._store.scripted.values()), self._faults.planned()
            unused = [(d.describe(), list(d._answers)) for d in self._destinations.unused()]
            receiver_errors = list(self._courier.receiver_errors)
            timeline_problems = list(self._timeline.problems)
        return problems(
            base_url=self.base_url,
            log=log,
            scripted=scripted,
            faults=planned,
            unused_answers=unused,
            receiver_errors=receiver_errors,
            timeline_problems=timeline_problems,
            owner=self._owner(),
            checks={check: getattr(self, check) for check in CHECKS},
        )

    # -- the transports' side: how a request reaches the fake -----------------------

    # An in-process transport also asks the guard (``_guard``) which requests of the
    # process are the fake's to answer, or to stop.

    @abc.abstractmethod
    def _open(self) -> None:
        """Start carrying requests to ``_dispatch`` (``start`` calls it)."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Stop carrying requests; called by every ``stop``, started or not."""

    @abc.abstractmethod
    def _clients_served(self) -> str:
        """Which clients reach this fake and how, for a failed test's hint."""

    def _dispatch(self, request: Request) -> Reply:
        """Answer one request (see ``Dispatcher``)."""
        return self._dispatcher.dispatch(request)

    # -- the plugin's side ----------------------------------------------------------

    def _owner(self) -> str | None:
        """Who made the fake, for the advice of its messages (see ``_owner_name``)."""
        return self._owner_name

    def _failure_report(self) -> list[tuple[str, str]]:
        """What a failed test's report shows of this fake, as (title, text) sections: its
        problems, why no request may have reached it, and the delivery attempts made so
        far (none is run for the report: a receiver is the test's own code)."""
        with self._lock:
            attempts = list(self._courier.attempts)
        return failure_sections(self.problems(), self._unreached_hint(), attempts)

    def _unreached_hint(self) -> str | None:
        """Why a failed test may have read nothing from the fake: messages were
        registered, yet no request reached it (``None`` when that is not so)."""
        with self._lock:
            if self._calls.reached():
                return None
            known = self._store.known_ids()
        if not known:
            return None
        return unreached_message(known, self.base_url, self._clients_served())
