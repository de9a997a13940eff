"""``qstash_tasks.messages``: what the code under test published, what each delivery
attempt met, and the scripts of the destinations (qstash-py's ``client.message``, seen
from the test's side). The fake reaches the same flat: ``published``,
``assert_published``, ``deliveries``, ``assert_delivered``, ``destination``."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_qstash_tasks._core.args import check_int
from pytest_qstash_tasks._core.engine.courier import Courier
from pytest_qstash_tasks._core.engine.destinations import Destination, Destinations
from pytest_qstash_tasks._core.engine.timeline import Timeline
from pytest_qstash_tasks._core.report import delivered_problem, published_problem
from pytest_qstash_tasks._core.state.outbox import Outbox, PublishedMessage

if TYPE_CHECKING:
    from pytest_qstash_tasks._core.engine.receivers import DeliveryAttempt

__all__ = ["UNSET", "Messages"]


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


#: ``assert_published(json=...)``'s default: "no JSON asked for" (``None`` is JSON null).
UNSET: Any = _Unset()


class Messages:
    """The published messages and their deliveries: ``qstash_tasks.messages``."""

    def __init__(
        self,
        outbox: Outbox,
        destinations: Destinations,
        courier: Courier,
        timeline: Timeline,
        lock: threading.Lock,
    ) -> None:
        self._outbox = outbox
        self._destinations = destinations
        self._courier = courier
        self._timeline = timeline
        self._lock = lock

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

    def scripts(self) -> list[Destination]:
        """Every destination script, in the order made."""
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
        json: Any = UNSET,
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
            self.published, destination, times, json, body, headers, json_given=json is not UNSET
        )
        if problem is not None:
            raise AssertionError(problem)
        return found

    @property
    def deliveries(self) -> list[DeliveryAttempt]:
        """Every attempt that reached a receiver (``deliver_to``), in order: a copy."""
        self._timeline.run_due()
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
