"""The fake: one class with the API a test uses (flat methods, as in pytest-httpx and
respx), its state in parts it owns: ``TaskStore``, ``Outbox`` (published messages and
URL groups), ``Destinations`` (what destinations answer), ``Courier`` (runs due
attempts, signed with the ``SigningKeys``), ``FaultQueue``, ``CallLog``, ``Clock``,
``Dispatcher`` (with the ``LoopGuard``) and ``RealHostGuard``. A transport is
a subclass: see docs/architecture.md.
"""

from __future__ import annotations

import abc
import datetime as _dt
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from .api.dispatch import Dispatcher
from .api.hosts import DEFAULT_BASE_URL, BaseURL, GuardedFake, RealHostGuard
from .api.messages import PublishConfig
from .api.tasks import EndpointConfig
from .args import (
    ANY,
    AnyCursor,
    check_cursor_filter,
    check_end_cursor,
    check_int,
    check_seconds,
    check_token,
)
from .engine.clock import DEFAULT_START_MS, Clock, ClockMode
from .engine.courier import Courier
from .engine.destinations import Destination, Destinations
from .engine.signing import SigningKeys, sign
from .engine.sleep_patch import SleepPatch
from .exchange import Reply, Request, UnservedReason
from .parts.url_groups import UrlGroups
from .report import (
    CHECKS,
    all_pages_fetched_problem,
    called_problem,
    delivered_problem,
    format_deliveries,
    format_problems,
    problems,
    published_problem,
    unreached_message,
)
from .seeding import Stream, current_stream
from .state import faults as _faults
from .state.calls import CallLog, ExpectedMiss, RecordedCall, filter_calls
from .state.faults import Fault, FaultQueue, FaultTarget
from .state.lifecycle import Outcome, SimulatedDelivery
from .state.outbox import Outbox, PublishedMessage
from .state.store import TaskStore

if TYPE_CHECKING:
    import re

    from .engine.receivers import DeliveryAttempt
    from .models import Task, TasksPage

__all__ = ["DEFAULT_TOKEN", "QStashTasksFake"]

#: What ``.token`` hands out when no token is configured (any non-empty one is accepted).
DEFAULT_TOKEN = "qstash-tasks-test-token"

_Self = TypeVar("_Self", bound="QStashTasksFake")


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


class QStashTasksFake(abc.ABC):
    """A stateful fake of QStash: a message's delivery tasks
    (``GET /v1/messages/{messageId}/tasks``), publishing (publish, enqueue, batch),
    messages, URL groups, and signed deliveries to the test's own receivers, on a clock
    the test moves.

    Use it through a transport: ``QStashTasksMock`` (httpx and requests, in-process) or
    ``QStashTasksServer`` (a real HTTP server on the loopback interface).

    Args:
        base_url: Where the fake listens: scheme, host, optional port and path prefix.
        token: The only bearer token accepted. ``None`` accepts any non-empty token.
        page_size: Most tasks in one page (QStash: 100).
        end_cursor: The cursor of the last page: ``0``, or ``None`` to leave it out.
        max_identical_requests: How many identical requests, with identical answers
            and nothing changed in between, pass before the next one is stopped as a
            likely infinite loop (``QStashTasksLoopError``).
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
            freezegun move simulated deliveries.
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

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        token: str | None = None,
        page_size: int = 100,
        end_cursor: Literal[0] | None = 0,
        max_identical_requests: int = 100,
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
        #: Who made the fake, for the advice its messages give: ``None`` a fixture (the
        #: marker and ini options), ``report.COMMAND`` the standalone command (its
        #: options and control endpoints), else the class (constructor arguments).
        self._owner_name: str | None = type(self).__name__
        # The one lock: transports call _dispatch from any thread. It guards the store, the
        # fault queue, the call log and the loop guard, which take no lock of their own.
        self._lock = threading.Lock()
        self._store = TaskStore()
        self._outbox = Outbox(self._store)
        self._destinations = Destinations(default_answer, self._lock)
        self._keys = SigningKeys(current_signing_key, next_signing_key)
        self._courier = Courier(
            self._outbox, self._destinations, self._keys, self.clock, self._lock,
            timeout=check_seconds("delivery_timeout", delivery_timeout),
        )  # fmt: skip
        self.clock._on_move.append(self._courier.run_due)
        self.url_groups = UrlGroups(self._outbox, self.clock, self._lock)
        """The URL groups the fake holds, as the SDK's ``client.url_group`` sees them."""
        self._faults = FaultQueue()
        self._calls = CallLog()
        self._guard = RealHostGuard(
            self._url,
            GuardedFake(
                name=lambda: repr(self),
                enabled=lambda: self.guard_real_qstash,
                owner=self._owner,
                clients_served=self._clients_served,
            ),
            answers_in_process=self._answers_in_process,
            calls=self._calls,
            lock=self._lock,
        )
        self._dispatcher = Dispatcher(
            self._store, self._outbox, self._courier, self._faults, self._calls,
            self.clock, self._config, self._publish_config, self._lock,
            max_identical_requests=limit, owner=self._owner,
            new_id=lambda prefix: self._stream_now().new_id(prefix),
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
    def current_signing_key(self) -> str:
        """The key deliveries are signed with now (``QSTASH_CURRENT_SIGNING_KEY``)."""
        return self._keys.current

    @property
    def next_signing_key(self) -> str:
        """The key that becomes current at the next rotation (``QSTASH_NEXT_SIGNING_KEY``)."""
        return self._keys.next

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

    # -- start, stop ----------------------------------------------------------------

    def start(self: _Self) -> _Self:
        """Start answering requests (each transport says how: see its class)."""
        if self._started:
            raise RuntimeError(f"this {type(self).__name__} is already started")
        self._guard.enter()
        try:
            self._open()
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
        return task_id

    def message_ids(self) -> list[str]:
        """The ids of the registered messages, in the order registered."""
        with self._lock:
            return self._store.known_ids()

    def tasks(self, message_id: str) -> list[Task]:
        """The tasks stored for ``message_id``, in serving order (newest first)."""
        self._courier.run_due()
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
            self._destinations.clear()
            self._courier.clear()
            self._keys.restart()
            self._faults.clear()
            self._calls.clear()
            self._dispatcher.loop_guard.reset()
            self.clock.restart()
            if self._seed is not None:
                self._stream = Stream(None, self._seed)

    def _stream_now(self) -> Stream:
        """Where generated data comes from: this fake's seed, else the running test's."""
        return self._stream or current_stream()

    # -- publishing -----------------------------------------------------------------

    def destination(self, target: str | re.Pattern[str]) -> Destination:
        """The script of what ``target`` answers to delivery attempts of published
        messages: ``fake.destination("https://app.example.com/hook").answers(500, 200)``.

        ``target`` is a URL (exact), a prefix ending in ``*``
        (``"https://app.example.com/*"``) or a compiled pattern (``re.search``). An
        attempt meets the next answer of the first script for its exact URL, else of
        the first prefix or pattern that matches, else ``default_answer``. The same
        ``target`` gives the same script back. A URL or prefix matches as written or
        percent-decoded (``café`` is the ``caf%C3%A9`` a client sends); a pattern
        searches the URL as sent.
        """
        with self._lock:
            return self._destinations.script(target)

    def _destinations_scripted(self) -> list[Destination]:
        """Every destination script, in the order made (for the control plane)."""
        with self._lock:
            return self._destinations.scripts()

    @property
    def published(self) -> list[PublishedMessage]:
        """Every publish the code sent (``/v2/publish``, ``/v2/enqueue``, each entry of
        ``/v2/batch``), in order: a copy."""
        with self._lock:
            return list(self._outbox.published)

    def assert_published(
        self,
        destination: str | None = None,
        *,
        times: int | None = None,
        json: Any = _UNSET,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> list[PublishedMessage]:
        """Assert that matching publishes reached the fake: at least one, or exactly
        ``times``; returns them.

        ``destination`` is the URL or URL group's name as published; ``json`` the body
        parsed as JSON, ``body`` the raw body; ``headers`` a subset of the publish's
        headers (any case, e.g. ``{"Upstash-Delay": "10s"}``). The failure lists every
        publish the fake received.
        """
        __tracebackhide__ = True  # show the user's line, not ours
        if times is not None:
            check_int("times", times)
        found, problem = published_problem(
            self.published, destination, times, json, body, headers, json_given=json is not _UNSET
        )
        if problem is not None:
            raise AssertionError(problem)
        return found

    # -- deliveries -----------------------------------------------------------------

    def sign(self, body: bytes | str, url: str) -> str:
        """A valid ``Upstash-Signature`` for a delivery of ``body`` to ``url``, signed
        with the current key: for a request to a receiver that the test builds itself.
        Its times come from ``time.time()``, as a verifier expects."""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes):
            raise TypeError(f"sign() takes the body as bytes or str, got {type(body).__name__}")
        if not isinstance(url, str) or not url:
            raise ValueError(f"sign() takes the destination URL, got {url!r}")
        return sign(self._keys.current, body, url)

    def rotate_signing_keys(self) -> None:
        """Rotate the keys as Upstash's console does: the next key becomes the current
        one and a new next key is made. Receivers that know the old next key still
        verify (they try the next key when the current one fails)."""
        with self._lock:
            self._keys.rotate()

    @property
    def deliveries(self) -> list[DeliveryAttempt]:
        """Every attempt that reached a receiver (``deliver_to``), in order: a copy."""
        self._courier.run_due()
        with self._lock:
            return list(self._courier.attempts)

    def assert_delivered(
        self,
        url: str | None = None,
        *,
        message_id: str | None = None,
        status: int | None = None,
        times: int | None = None,
    ) -> list[DeliveryAttempt]:
        """Assert that matching attempts reached a receiver: at least one, or exactly
        ``times``; returns them. ``status`` is what the receiver answered. The failure
        lists every attempt made."""
        __tracebackhide__ = True  # show the user's line, not ours
        if times is not None:
            check_int("times", times)
        found, problem = delivered_problem(self.deliveries, url, message_id, status, times)
        if problem is not None:
            raise AssertionError(problem)
        return found

    # -- faults ---------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        error: str | None = None,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
        cursor: int | AnyCursor | None = ANY,
        page: int | None = None,
        delay: float = 0,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``status``.

        The body is QStash-shaped: ``{"error": error}`` (by default the status's
        reason phrase); ``headers`` are added to the answer. Target one message with
        ``message_id``, one request with ``cursor`` (``None``: the first page's, which
        has none) or the ``page``-th page of a walk (1 is the first). Faults planned one
        after another form a sequence; used up, the endpoint serves normally again.
        ``delay`` (seconds) holds the answer back first. Returns the planned fault.
        """
        target = FaultTarget.checked(message_id, cursor, page)
        return self._plan(_faults.fail(status, times, error, headers, target, delay))

    def rate_limit_next(
        self,
        *,
        times: int = 1,
        daily: bool = False,
        limit: int | None = None,
        remaining: int = 0,
        reset: int | None = None,
        message_id: str | None = None,
        cursor: int | AnyCursor | None = ANY,
        page: int | None = None,
        delay: float = 0,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``429``, as QStash does.

        The burst limit (default) sends ``Burst-RateLimit-Limit``, ``-Remaining`` and
        ``-Reset``; ``daily=True`` sends ``RateLimit-Limit``, ``-Remaining`` and
        ``-Reset``, from which the official SDK raises ``RateLimitExceededError`` or
        ``DailyMessageLimitExceededError`` carrying these values. ``reset`` is a unix
        timestamp in seconds: by default the fake clock's next second (burst) or next
        UTC midnight (daily). ``limit`` defaults to 100 (burst, per second) or 1000
        (daily). Targets and ``delay`` as in ``fail_next``.
        """
        target = FaultTarget.checked(message_id, cursor, page)
        return self._plan(_faults.rate_limit(times, daily, limit, remaining, reset, target, delay))

    def raise_next(
        self,
        exception: BaseException | type[BaseException],
        *,
        times: int = 1,
        message_id: str | None = None,
        cursor: int | AnyCursor | None = ANY,
        page: int | None = None,
        delay: float = 0,
    ) -> Fault:
        """Make the next ``times`` matching requests fail in transport, with no answer.

        In-process (``qstash_tasks``) the client raises ``exception``: a transport
        error such as ``httpx.ConnectError``, ``httpx.ConnectTimeout``,
        ``httpx.ReadTimeout`` or ``httpx.RemoteProtocolError``, as a class (built with
        a message and the request) or an instance (copied for each raise). Over a
        socket (``qstash_tasks_server``) the server closes the connection without an
        answer, or, for a timeout, holds the answer until the client gives up. Targets
        and ``delay`` as in ``fail_next``.
        """
        target = FaultTarget.checked(message_id, cursor, page)
        return self._plan(_faults.raise_(exception, times, target, delay))

    def delay_next(
        self,
        seconds: float,
        *,
        times: int = 1,
        message_id: str | None = None,
        cursor: int | AnyCursor | None = ANY,
        page: int | None = None,
    ) -> Fault:
        """Hold back the normal answer to the next ``times`` matching requests.

        Async clients await the delay (the event loop keeps running); sync clients
        sleep. The fake's clock does not move. Targets as in ``fail_next``.
        """
        target = FaultTarget.checked(message_id, cursor, page)
        return self._plan(_faults.delay(seconds, times, target))

    @property
    def faults(self) -> list[Fault]:
        """Every fault planned, in order, used up or not (a copy)."""
        with self._lock:
            return self._faults.planned()

    def _plan(self, fault: Fault) -> Fault:
        with self._lock:
            return self._faults.plan(fault)

    # -- what reached the fake ------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        """Every request the fake answered, in order: a read-only copy (``reset()``
        forgets them)."""
        with self._lock:
            return self._calls.copy()

    def get_calls(
        self,
        message_id: str | None = None,
        *,
        cursor: int | AnyCursor | None = ANY,
        status: int | None = None,
        served: bool | None = None,
    ) -> list[RecordedCall]:
        """The recorded calls that match every filter given.

        ``cursor=None`` picks requests without a cursor (first pages); by default any
        cursor matches. ``served=True`` picks requests answered with a page of tasks.
        """
        check_cursor_filter(cursor)
        with self._lock:
            return filter_calls(
                self._calls.calls, message_id, cursor=cursor, status=status, served=served
            )

    def expect_unserved(
        self, reason: UnservedReason, *, message_id: str | None = None
    ) -> ExpectedMiss:
        """Say that requests the fake cannot serve for ``reason`` (and ``message_id``,
        if given) are what the test wants, so teardown does not report them; teardown
        reports the expectation instead if no such request came.

        ``reason`` is one of ``unknown_message``, ``unauthorized`` (a 401: give the fake
        a ``token``, since by default any non-empty token is accepted), ``bad_cursor``,
        ``unknown_cursor``, ``method_not_allowed`` and ``unknown_path``. Other misses
        are still reported.
        """
        expectation = ExpectedMiss.checked(reason, message_id)
        with self._lock:
            self._calls.expect(expectation)
        return expectation

    def assert_called(
        self,
        message_id: str | None = None,
        *,
        times: int | None = None,
        cursor: int | AnyCursor | None = ANY,
    ) -> None:
        """Assert that matching requests reached the fake: at least one, or exactly ``times``."""
        __tracebackhide__ = True  # show the user's line, not ours
        if times is not None:
            check_int("times", times)
        check_cursor_filter(cursor)
        problem = called_problem(self.calls, message_id, times, cursor)
        if problem is not None:
            raise AssertionError(problem)

    def assert_not_called(self, message_id: str | None = None) -> None:
        """Assert that no request (for ``message_id``, if given) reached the fake."""
        __tracebackhide__ = True  # show the user's line, not ours
        problem = called_problem(self.calls, message_id, None, ANY, none_wanted=True)
        if problem is not None:
            raise AssertionError(problem)

    def assert_all_pages_fetched(self, message_id: str) -> None:
        """Assert that the client walked ``message_id`` to the end.

        A page without a cursor was served, and for every page served with a cursor
        to follow, a request with that cursor was served too, up to a page that ended
        the list.
        """
        __tracebackhide__ = True  # show the user's line, not ours
        with self._lock:
            calls = list(self._calls.calls)
            known = self._store.known_ids()
        problem = all_pages_fetched_problem(calls, message_id, known)
        if problem is not None:
            raise AssertionError(problem)

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
        return problems(
            base_url=self.base_url,
            log=log,
            scripted=scripted,
            faults=planned,
            unused_answers=unused,
            receiver_errors=receiver_errors,
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
        sections = []
        found = self.problems()
        if found:
            sections.append(("qstash_tasks", format_problems(found)))
        hint = self._unreached_hint()
        if hint is not None:
            sections.append(("qstash_tasks: no request reached the fake", hint))
        with self._lock:
            attempts = list(self._courier.attempts)
        if attempts:
            sections.append(("qstash_tasks: delivery attempts", format_deliveries(attempts)))
        return sections

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
