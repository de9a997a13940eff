"""What reached the fake, and the assertions on it (``calls``, ``get_calls``,
``expect_unserved``, ``assert_called``, ``assert_not_called``,
``assert_all_pages_fetched``), reached flat on the fake. A fake's own capability."""

from __future__ import annotations

import threading

from pytest_qstash_tasks._core.args import ANY, AnyCursor, check_cursor_filter, check_int
from pytest_qstash_tasks._core.exchange import UnservedReason
from pytest_qstash_tasks._core.report import all_pages_fetched_problem, called_problem
from pytest_qstash_tasks._core.state.calls import CallLog, ExpectedMiss, RecordedCall, filter_calls
from pytest_qstash_tasks._core.state.store import TaskStore

__all__ = ["Calls"]


class Calls:
    """The fake's ``CallLog``, read and asserted on."""

    def __init__(self, log: CallLog, store: TaskStore, lock: threading.Lock) -> None:
        self._calls = log
        self._store = store
        self._lock = lock

    def copy(self) -> list[RecordedCall]:
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
        problem = called_problem(self.copy(), message_id, times, cursor)
        if problem is not None:
            raise AssertionError(problem)

    def assert_not_called(self, message_id: str | None = None) -> None:
        """Assert that no request (for ``message_id``, if given) reached the fake."""
        __tracebackhide__ = True  # show the user's line, not ours
        problem = called_problem(self.copy(), message_id, None, ANY, none_wanted=True)
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
