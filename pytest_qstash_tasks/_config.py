"""The fixture's settings: marker, then ini option, then the environment (``QSTASH_URL``
and the signing keys, as the SDK reads them), then default."""

from __future__ import annotations

import os
from typing import Any

import pytest

__all__ = ["INI_OPTIONS", "MARKER_KEYS", "server_host", "settings_for"]

#: ini options that configure the server, not the fake.
_SERVER_OPTIONS = frozenset({"qstash_tasks_server_host"})

#: ini option -> (help, type)
INI_OPTIONS: dict[str, tuple[str, str]] = {  # "bool" defaults to true, "off" is a false bool
    "qstash_tasks_base_url": (
        "Base URL the qstash_tasks fake answers on (default: $QSTASH_URL, else "
        "https://qstash.upstash.io).",
        "string",
    ),
    "qstash_tasks_token": (
        "The only bearer token the fake accepts (default: any non-empty token).",
        "string",
    ),
    "qstash_tasks_page_size": ("Most tasks in one page (default: 100).", "string"),
    "qstash_tasks_end_cursor": (
        "Cursor of the last page: 0 (default) or 'omit' to leave the field out.",
        "string",
    ),
    "qstash_tasks_max_identical_requests": (
        "Identical requests with identical answers allowed in a row before the fake "
        "stops the client as a likely infinite loop (default: 100).",
        "string",
    ),
    "qstash_tasks_max_chained_events": (
        "Events scheduled during one move of the clock that the move may run before it "
        "stops as a runaway chain (default: 5000).",
        "string",
    ),
    "qstash_tasks_assert_all_requests_served": (
        "Fail at teardown when the fake could not serve a request (default: true).",
        "bool",
    ),
    "qstash_tasks_assert_all_scripted_pages_requested": (
        "Fail at teardown when a page of add_pages() was never requested (default: true).",
        "bool",
    ),
    "qstash_tasks_assert_all_faults_triggered": (
        "Fail at teardown when a fault (fail_next, rate_limit_next, raise_next, delay_next) "
        "fired fewer times than planned (default: true).",
        "bool",
    ),
    "qstash_tasks_assert_all_destination_answers_used": (
        "Fail at teardown when an answer scripted with destination(...).answers(...) was "
        "met by no delivery attempt (default: true).",
        "bool",
    ),
    "qstash_tasks_default_retries": (
        "Retries of a published message that sends no Upstash-Retries (default: 3).",
        "string",
    ),
    "qstash_tasks_default_answer": (
        "The HTTP status a delivery attempt meets at a destination no script covers "
        "(default: 200, delivered).",
        "string",
    ),
    "qstash_tasks_max_message_size": (
        "The largest body a publish may send, in bytes (default: 1048576).",
        "string",
    ),
    "qstash_tasks_current_signing_key": (
        "The key deliveries are signed with (default: $QSTASH_CURRENT_SIGNING_KEY, else a "
        "fixed sig_... key, the same on every run).",
        "string",
    ),
    "qstash_tasks_next_signing_key": (
        "The next signing key (default: $QSTASH_NEXT_SIGNING_KEY, else a fixed sig_... key).",
        "string",
    ),
    "qstash_tasks_delivery_timeout": (
        "Seconds a receiver may take to answer a delivery (default: 10).",
        "string",
    ),
    "qstash_tasks_guard_real_qstash": (
        "Stop requests to the real QStash (qstash.upstash.io, qstash-<region>.upstash.io) "
        "at once and fail the test, while a fake is active (default: true).",
        "bool",
    ),
    "qstash_tasks_clock": (
        "The fake's clock: fake (default; it moves when the test moves it) or wall "
        "(it follows time.time(), so time-machine and freezegun move it).",
        "string",
    ),
    "qstash_tasks_patch_sleep": (
        "time.sleep, asyncio.sleep, anyio.sleep and trio.sleep move the fake's clock "
        "instead of waiting, while the fixture is active (default: false).",
        "off",
    ),
    "qstash_tasks_server_host": (
        "The IP address qstash_tasks_server listens on: 127.0.0.1 (default) or ::1.",
        "string",
    ),
    "qstash_tasks_start": (
        "Where the fake's clock starts: unix ms or an ISO 8601 time with a zone "
        "(default: 2026-01-01T00:00:00Z).",
        "string",
    ),
}

#: Marker keyword -> what it takes (for messages and `pytest --markers`).
MARKER_KEYS = {
    "base_url": "str",
    "token": "str | None",
    "page_size": "int",
    "end_cursor": "0 | None",
    "max_identical_requests": "int",
    "max_chained_events": "int",
    "assert_all_requests_served": "bool",
    "assert_all_scripted_pages_requested": "bool",
    "assert_all_faults_triggered": "bool",
    "assert_all_destination_answers_used": "bool",
    "default_retries": "int",
    "default_answer": "int (HTTP status) | exception | str",
    "max_message_size": "int",
    "current_signing_key": "str",
    "next_signing_key": "str",
    "delivery_timeout": "float (seconds)",
    "guard_real_qstash": "bool",
    "start": "int (unix ms) | datetime | ISO 8601 str",
    "clock": "'fake' | 'wall'",
    "patch_sleep": "bool",
    "seed": "int",
}

MARKER_HELP = (
    "qstash_tasks("
    + ", ".join(f"{key}=..." for key in MARKER_KEYS)
    + "): configure the qstash_tasks fixture (closest marker wins per key). "
    "See the pytest-qstash-tasks docs."
)


def settings_for(node: pytest.Item, config: pytest.Config) -> dict[str, Any]:
    """Keyword arguments for ``QStashTasksMock`` (plus ``seed``) for one test."""
    settings: dict[str, Any] = {}
    base_url = os.environ.get("QSTASH_URL")
    if base_url:
        settings["base_url"] = base_url
    settings.update(_signing_keys_from_env())
    settings.update(_from_ini(config))
    settings.update(_from_markers(node))
    return settings


#: The environment variables the SDK's ``Receiver`` is commonly built from.
_KEY_VARIABLES = {
    "current_signing_key": "QSTASH_CURRENT_SIGNING_KEY",
    "next_signing_key": "QSTASH_NEXT_SIGNING_KEY",
}


def _signing_keys_from_env() -> dict[str, str]:
    """The signing keys an app would read from the environment, checked here so that a
    bad one is named by its variable. An app that builds its ``Receiver`` at import from
    them verifies what the fake signs."""
    from ._core.engine.signing import check_key  # at fixture time only

    keys = {}
    for key, variable in _KEY_VARIABLES.items():
        value = os.environ.get(variable)
        if value:
            try:
                keys[key] = check_key(f"${variable}", value)
            except ValueError as error:
                raise pytest.UsageError(str(error)) from None
    return keys


def _from_markers(node: pytest.Item) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    # iter_markers yields the closest first: apply the farthest first.
    for marker in reversed(list(node.iter_markers("qstash_tasks"))):
        if marker.args:
            raise pytest.UsageError(
                f"{node.nodeid}: @pytest.mark.qstash_tasks takes keyword arguments only, "
                f"got positional {marker.args!r}"
            )
        unknown = sorted(set(marker.kwargs) - set(MARKER_KEYS))
        if unknown:
            raise pytest.UsageError(
                f"{node.nodeid}: @pytest.mark.qstash_tasks got unknown argument(s) "
                f"{', '.join(unknown)}; it takes {', '.join(MARKER_KEYS)}"
            )
        merged.update(marker.kwargs)
    return merged


def _from_ini(config: pytest.Config) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, (_, kind) in INI_OPTIONS.items():
        if name in _SERVER_OPTIONS:
            continue
        raw = config.getini(name)
        key = name.removeprefix("qstash_tasks_")
        if kind in ("bool", "off"):
            values[key] = bool(raw)  # registered with its default, so always set
            continue
        text = str(raw).strip()
        if not text:
            continue
        try:
            values[key] = _parse_ini_value(key, text)
        except ValueError as error:
            raise pytest.UsageError(f"ini option {name} = {text!r}: {error}") from None
    return values


def _parse_ini_value(key: str, text: str) -> Any:
    if key in (
        "page_size",
        "max_identical_requests",
        "max_chained_events",
        "default_retries",
        "default_answer",
        "max_message_size",
    ):
        return int(text)
    if key == "delivery_timeout":
        return float(text)
    if key == "end_cursor":
        if text == "0":
            return 0
        if text.lower() in ("omit", "none"):
            return None
        raise ValueError("want 0 or omit")
    if key == "start":
        # At fixture time only: keep plugin start-up light.
        from ._core.engine.clock import to_ms
        from ._core.exchange import ascii_int

        number = ascii_int(text)
        return to_ms(text if number is None else number)
    return text


def server_host(config: pytest.Config) -> str:
    """The address ``qstash_tasks_server`` listens on."""
    return str(config.getini("qstash_tasks_server_host")).strip() or "127.0.0.1"
