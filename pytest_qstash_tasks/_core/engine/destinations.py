"""What destinations answer: the test scripts each delivery attempt's outcome, or names
the receiver that answers it (``deliver_to``).

``fake.destination("https://app.example.com/hook").answers(500, 500, 200)``: the next
three attempts to that URL meet a 500, a 500, then a 200. Outcomes are the words of
``simulate_delivery``: an HTTP status, an exception (type or instance) for a timeout
or connection failure, or the error text itself. An attempt no script covers meets
the fake's ``default_answer`` (a 200 unless configured).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from pytest_qstash_tasks._core.state.lifecycle import Outcome, error_text

if TYPE_CHECKING:
    from .receivers import Receiver

__all__ = ["Destination", "Destinations", "UsedAnswer", "same_url"]


def same_url(url: str, given: str) -> bool:
    """Whether a message's ``url`` is the URL a test gave: as written, or once both are
    percent-decoded (``caf%C3%A9`` is ``café``: an HTTP client sends the one for the
    other, and the fake keeps a destination as it was sent)."""
    return url == given or _decoded(url) == _decoded(given)


def _decoded(url: str) -> str:
    """``url`` percent-decoded but for escaped slashes: ``a%2Fb`` is one path segment,
    not the two of ``a/b``."""
    return "%2F".join(unquote(part) for part in _ESCAPED_SLASH.split(url))


_ESCAPED_SLASH = re.compile("%2F", re.IGNORECASE)


@dataclass(frozen=True)
class UsedAnswer:
    """One scripted answer an attempt met: to which URL, for which message, when."""

    url: str
    message_id: str
    outcome: Outcome
    at: int


class Destination:
    """The answers one destination (or many: a prefix ending in ``*`` or a compiled
    pattern) gives to delivery attempts, in order. Made by ``fake.destination()``."""

    def __init__(self, target: str | re.Pattern[str], lock: threading.Lock) -> None:
        self.target = target
        """The URL, ``prefix*`` or pattern this script answers for."""
        self._lock = lock
        self._answers: list[Outcome] = []
        self._used: list[UsedAnswer] = []
        self._receiver: Receiver | None = None

    def answers(self, *outcomes: Outcome) -> Destination:
        """Queue what the next attempts meet, in order: ``answers(500, 500, 200)``.

        Each outcome is an HTTP status (2xx delivers), an exception type or instance
        (a timeout or connection failure) or an error text. Returns the destination,
        so calls chain; queued answers add up.
        """
        if not outcomes:
            raise ValueError("answers() needs at least one outcome, e.g. answers(500, 200)")
        for outcome in outcomes:
            error_text(outcome)  # refuses a bad outcome now, in the test's own line
        with self._lock:
            self._answers.extend(outcomes)
        return self

    def deliver_to(self, target: object, *, allow_remote: bool = False) -> Destination:
        """Deliver attempts to ``target``, whose answer decides each one's outcome.

        ``target`` is a handler (a callable taking the ``DeliveryRequest``, returning a
        status or ``(status, body)``; sync or async), a WSGI app (Flask, Django) or an
        ASGI app (FastAPI, Starlette), called in the test's process; ``"http"``, real
        HTTP to the message's URL; or a base URL (``"http://127.0.0.1:8000"``), real
        HTTP to that origin with the message URL's path and query. Real HTTP goes to
        loopback addresses only, unless ``allow_remote=True``. Answers queued with
        ``answers()`` come first. Returns the destination.
        """
        from .receivers import receiver_for  # on first use

        receiver = receiver_for(target, allow_remote=allow_remote)
        with self._lock:
            self._receiver = receiver
        return self

    @property
    def receiver(self) -> str | None:
        """Where attempts are delivered (see ``deliver_to``), or ``None``."""
        with self._lock:
            return None if self._receiver is None else self._receiver.describe()

    @property
    def remaining(self) -> list[Outcome]:
        """The scripted answers no attempt has met yet (a copy)."""
        with self._lock:
            return list(self._answers)

    @property
    def used(self) -> list[UsedAnswer]:
        """The scripted answers attempts met, in order (a copy)."""
        with self._lock:
            return list(self._used)

    def matches(self, url: str) -> bool:
        """Whether an attempt to ``url`` is this script's to answer."""
        target = self.target
        if isinstance(target, re.Pattern):
            return target.search(url) is not None
        if target.endswith("*"):
            prefix = target[:-1]
            return url.startswith(prefix) or _decoded(url).startswith(_decoded(prefix))
        return same_url(url, target)

    def describe(self) -> str:
        """``destination('https://app.example.com/hook')``."""
        return f"destination({self.target!r})"  # a pattern's repr shows its flags too

    def __repr__(self) -> str:
        with self._lock:
            remaining = list(self._answers)
        return f"<Destination {self.describe()} remaining={remaining!r}>"

    def _take(self, url: str, message_id: str, now: int) -> Outcome:
        """The next answer, recorded as used (under the fake's lock)."""
        outcome = self._answers.pop(0)
        self._used.append(UsedAnswer(url, message_id, outcome, now))
        return outcome


class Destinations:
    """Every script, exact URLs first, then prefixes and patterns in the order made.

    It takes no lock of its own: the fake holds its lock around every use.
    """

    def __init__(self, default: Outcome, lock: threading.Lock) -> None:
        try:
            error_text(default)
        except (TypeError, ValueError) as error:
            raise type(error)(f"default_answer: {error}") from None
        self.default = default
        self._lock = lock
        self._scripts: list[Destination] = []

    def script(self, target: object) -> Destination:
        """The script for ``target``: the one made before for it, else a new one."""
        if isinstance(target, str):
            if not target or target == "*":
                raise ValueError(
                    "destination() takes a URL, a prefix ending in '*' (e.g. "
                    f"'https://app.example.com/*') or a compiled pattern; got {target!r}"
                )
        elif not isinstance(target, re.Pattern):
            raise TypeError(
                "destination() takes a URL, a prefix ending in '*' or a compiled pattern, "
                f"not {type(target).__name__}"
            )
        for script in self._scripts:
            if script.target == target:
                return script
        script = Destination(target, self._lock)
        self._scripts.append(script)
        return script

    def route(
        self, url: str, message_id: str, now: int, *, receivers: bool = True
    ) -> tuple[Outcome | None, Receiver | None]:
        """Where an attempt to ``url`` goes: a scripted answer (exact URL first, then
        prefixes and patterns), else the receiver of the first script that matches
        (exact first), else the default answer."""
        scripts = self._scripts
        if not scripts:
            return self.default, None
        for script in scripts:
            if script._answers and script.target == url:
                return script._take(url, message_id, now), None
        for script in scripts:
            if script._answers and script.matches(url):
                return script._take(url, message_id, now), None
        if receivers:
            for script in scripts:
                if script._receiver is not None and script.target == url:
                    return None, script._receiver
            for script in scripts:
                if script._receiver is not None and script.matches(url):
                    return None, script._receiver
        return self.default, None

    def scripts(self) -> list[Destination]:
        """Every script, in the order made."""
        return list(self._scripts)

    def unused(self) -> list[Destination]:
        """The scripts with answers no attempt met."""
        return [script for script in self._scripts if script._answers]

    def clear(self) -> None:
        """Forget every script."""
        self._scripts.clear()
