"""What many test modules share: clients pointed at a fake, and walking a message's pages.

Fixtures live in conftest.py; plain functions and constants live here, imported by name.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_qstash_tasks import QStashTasksFake
from pytest_qstash_tasks._core.ids import BASE58, ID_LENGTH

#: The example response of the API page the project starts from.
SEED_EXAMPLE = Path(__file__).parent / "data" / "seed_example.json"

#: More pages than any test stores: a walk this long is a pager going round in circles
#: (a broken cursor), and failing it beats growing a list until memory runs out.
MAX_WALK_PAGES = 5_000

#: For a behaviour only an in-process transport has: raising in the client.
in_process_only = pytest.mark.parametrize("any_fake", ["in_process"], indirect=True)

Page = Mapping[str, Any]


def tasks_path(message_id: str) -> str:
    """The tasks endpoint's path for ``message_id``."""
    return f"/v1/messages/{message_id}/tasks"


def walk_pages(get_page: Callable[[int | None], Page]) -> list[Page]:
    """Follow the cursors like a careful client: ``get_page(cursor)`` fetches one page
    (``None``: the first); returns every page, up to the one whose cursor is 0 or missing."""
    pages: list[Page] = []
    cursor: int | None = None
    while len(pages) < MAX_WALK_PAGES:
        page = get_page(cursor)
        pages.append(page)
        cursor = page.get("cursor")
        if not cursor:
            return pages
    raise AssertionError(f"the walk never ended: {MAX_WALK_PAGES} pages")


async def awalk_pages(get_page: Callable[[int | None], Awaitable[Page]]) -> list[Page]:
    """``walk_pages`` for an async ``get_page``."""
    pages: list[Page] = []
    cursor: int | None = None
    while len(pages) < MAX_WALK_PAGES:
        page = await get_page(cursor)
        pages.append(page)
        cursor = page.get("cursor")
        if not cursor:
            return pages
    raise AssertionError(f"the walk never ended: {MAX_WALK_PAGES} pages")


def tasks_of(pages: list[Page]) -> list[dict[str, Any]]:
    """Every task of a walk, in the order served."""
    return [task for page in pages for task in page["tasks"]]


def walk(client: httpx.Client, message_id: str) -> tuple[list[dict[str, Any]], int]:
    """Walk ``message_id`` with an httpx client: (tasks seen, requests made)."""

    def get(cursor: int | None) -> Page:
        params = {"cursor": cursor} if cursor else {}
        response = client.get(tasks_path(message_id), params=params)
        response.raise_for_status()
        page: Page = response.json()
        return page

    pages = walk_pages(get)
    return tasks_of(pages), len(pages)


async def awalk(client: httpx.AsyncClient, message_id: str) -> list[dict[str, Any]]:
    """Walk ``message_id`` with an async httpx client: the tasks seen."""

    async def get(cursor: int | None) -> Page:
        params = {"cursor": cursor} if cursor else {}
        response = await client.get(tasks_path(message_id), params=params)
        response.raise_for_status()
        page: Page = response.json()
        return page

    return tasks_of(await awalk_pages(get))


def walk_with_requests(
    session: Any, base_url: str, message_id: str, headers: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Walk ``message_id`` with a ``requests`` session: the tasks seen."""

    def get(cursor: int | None) -> Page:
        params = {"cursor": cursor} if cursor else {}
        url = base_url + tasks_path(message_id)
        response = session.get(url, params=params, headers=headers, timeout=5)
        response.raise_for_status()
        page: Page = response.json()
        return page

    return tasks_of(walk_pages(get))


def client_for(fake: QStashTasksFake) -> httpx.Client:
    """An httpx client pointed at ``fake`` with the token it accepts."""
    return httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.token}"})


def async_client_for(fake: QStashTasksFake) -> httpx.AsyncClient:
    """An async httpx client pointed at ``fake`` with the token it accepts."""
    return httpx.AsyncClient(
        base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.token}"}
    )


def forget_stops(fake: QStashTasksFake) -> None:
    """Forget the requests the loop guard and the real-host guard stopped, for a test
    whose point was to be stopped (teardown would report them otherwise)."""
    fake._calls.loops.clear()
    fake._calls.real_host.clear()


def is_qstash_id(value: str, prefix: str) -> bool:
    """Whether ``value`` is ``prefix`` + ``_`` + 28 base58 characters, as QStash's ids are."""
    return re.fullmatch(rf"{prefix}_[{BASE58}]{{{ID_LENGTH}}}", value) is not None


def unserved(method: str, path: str) -> str:
    """The error a client reads for a path the fake does not serve (no base path)."""
    return (
        f"qstash_tasks does not serve {method} {path}: the fake serves GET "
        "/v1/messages/{messageId}/tasks and, of the v2 message API under /v2/: publish, "
        "enqueue, batch, messages, topics, dlq, logs, events, schedules, queues, flowControl, globalParallelism, keys, workflows, wait, notify, waiters and trigger. In-process, a mock of your own (respx_mock, "
        "a responses mock, pytest-httpx's httpx_mock) answers the paths the fake does not serve"
    )


def v2(fake: QStashTasksFake, method: str, path: str, **kw: Any) -> Any:
    """``requests.request`` to ``path`` on ``fake``, with its bearer token (``headers``
    given are added): the v2 API as any HTTP client calls it."""
    import requests

    headers = {"Authorization": f"Bearer {fake.token}", **kw.pop("headers", {})}
    return requests.request(method, f"{fake.base_url}{path}", headers=headers, timeout=5, **kw)
