"""The fake's calls API: what the code under test asked for, and assertions on it."""

from __future__ import annotations

from .args import ANY, AnyCursor, check_cursor_filter, check_int
from .calls import RecordedCall
from .endpoint import UnservedReason
from .expectations import CallList, ExpectedMiss
from .report import (
    all_pages_fetched_problem,
    describe_filter,
    filter_calls,
    format_calls,
    times_text,
    unreached_message,
)
from .state import FakeState

__all__ = ["CallsAPI"]


class CallsAPI(FakeState):
    """``calls``, ``get_calls`` and the ``assert_*`` methods."""

    @property
    def calls(self) -> list[RecordedCall]:
        """Every request the fake answered, in order: a read-only copy (``reset()``
        forgets them)."""
        with self._lock:
            return CallList(self._calls)

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
            self._expected.append(expectation)
        return expectation

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
                self._calls, message_id, cursor=cursor, status=status, served=served
            )

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
        calls = self.calls
        matched = filter_calls(calls, message_id, cursor=cursor)
        what = describe_filter(message_id, cursor)
        if times is None and not matched:
            expected = f"expected {what} to the fake, got none."
        elif times is not None and len(matched) != times:
            expected = f"expected {what} {times_text(times)}, got {times_text(len(matched))}."
        else:
            return
        raise AssertionError(f"qstash_tasks: {expected}\n{format_calls(calls, matched)}")

    def assert_not_called(self, message_id: str | None = None) -> None:
        """Assert that no request (for ``message_id``, if given) reached the fake."""
        __tracebackhide__ = True  # show the user's line, not ours
        calls = self.calls
        matched = filter_calls(calls, message_id)
        if matched:
            what = describe_filter(message_id, ANY)
            raise AssertionError(
                f"qstash_tasks: expected no {what}, got {len(matched)}.\n"
                f"{format_calls(calls, matched)}"
            )

    def assert_all_pages_fetched(self, message_id: str) -> None:
        """Assert that the client walked ``message_id`` to the end.

        A page without a cursor was served, and for every page served with a cursor
        to follow, a request with that cursor was served too, up to a page that ended
        the list.
        """
        __tracebackhide__ = True  # show the user's line, not ours
        with self._lock:
            calls = list(self._calls)
            known = self._store.known_ids()
        problem = all_pages_fetched_problem(calls, message_id, known)
        if problem is not None:
            mine = [call for call in calls if call.message_id == message_id]
            raise AssertionError(
                f"qstash_tasks: expected every page of {message_id!r} to be fetched: "
                f"{problem}.\n{format_calls(calls, mine)}"
            )

    #: Which clients reach this fake and how, for ``unreached_hint``.
    clients_served = "It answers clients pointed at its base URL."

    def unreached_hint(self) -> str | None:
        """Why a failed test may have read nothing from the fake: messages were
        registered, yet no request reached it (``None`` when that is not so)."""
        with self._lock:
            if self._calls or self._real_host_calls:
                return None
            known = self._store.known_ids()
        if not known:
            return None
        return unreached_message(known, str(self._url), self.clients_served)
