from __future__ import annotations

import json
import os
import resource
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from qstash import AsyncQStash, QStash

from pytest_qstash_tasks import QStashTasksFake

SEED_EXAMPLE = Path(__file__).parent / "data" / "seed_example.json"

#: More pages than any test stores: a walk this long is a pager going round in circles
#: (a broken cursor), and failing it beats growing a list until memory runs out.
MAX_WALK_PAGES = 5_000

#: The fixtures of each transport: the behaviour tests run against every one.
TRANSPORTS = {"in_process": "qstash_tasks", "server": "qstash_tasks_server"}


#: For a behaviour only an in-process transport has: raising in the client.
in_process_only = pytest.mark.parametrize("any_fake", ["in_process"], indirect=True)


#: Under mutmut, the most memory a mutant's test run may take before it counts as killed.
MUTANT_MAX_RSS_KB = 4 * 1024**2


def pytest_configure(config: pytest.Config) -> None:
    # Under mutmut (make mutation) a mutant can make a test loop while it collects
    # answers, and two such mutants can run the machine out of memory before their CPU
    # limit ends them. A watchdog ends the run as a failure (exit 1, a kill) instead. Not
    # an rlimit: subprocesses would inherit it, and Node reserves more address space.
    if "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", ""):
        threading.Thread(target=_end_a_runaway_mutant, daemon=True).start()


def _end_a_runaway_mutant() -> None:
    tick = threading.Event()  # its wait() is not time.sleep, which patch_sleep takes over
    per_kb = 1024 if sys.platform == "darwin" else 1  # ru_maxrss: bytes there, KB here
    while resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / per_kb < MUTANT_MAX_RSS_KB:
        tick.wait(0.5)
    os._exit(1)


@pytest.fixture(params=list(TRANSPORTS))
def any_fake(request: pytest.FixtureRequest) -> QStashTasksFake:
    """The fake of this test, once through each transport."""
    fake: QStashTasksFake = request.getfixturevalue(TRANSPORTS[request.param])
    return fake


@pytest.fixture
def seed_example() -> dict[str, Any]:
    """The example response of the API page the project starts from."""
    data: dict[str, Any] = json.loads(SEED_EXAMPLE.read_text())
    return data


def walk(client: httpx.Client, message_id: str) -> tuple[list[dict[str, Any]], int]:
    """Follow the cursors like a careful client: (tasks seen, requests made)."""
    seen: list[dict[str, Any]] = []
    cursor: int | None = None
    requests = 0
    while True:
        params = {"cursor": cursor} if cursor else {}
        response = client.get(f"/v1/messages/{message_id}/tasks", params=params)
        requests += 1
        response.raise_for_status()
        body = response.json()
        seen.extend(body["tasks"])
        cursor = body.get("cursor")
        if not cursor:
            return seen, requests
        assert requests < MAX_WALK_PAGES, f"{message_id!r} never ended: {requests} pages"


async def awalk(client: httpx.AsyncClient, message_id: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor: int | None = None
    for _ in range(MAX_WALK_PAGES):
        params = {"cursor": cursor} if cursor else {}
        response = await client.get(f"/v1/messages/{message_id}/tasks", params=params)
        response.raise_for_status()
        body = response.json()
        seen.extend(body["tasks"])
        cursor = body.get("cursor")
        if not cursor:
            return seen
    raise AssertionError(f"{message_id!r} never ended: {MAX_WALK_PAGES} pages")


def client_for(fake: Any) -> httpx.Client:
    """An httpx client pointed at ``fake`` with the token it accepts."""
    return httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.token}"})


def async_client_for(fake: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.token}"}
    )


# The official SDK has no close(): over a real socket its httpx client holds a
# connection that the gc would report as unclosed, so these close it at teardown.
@pytest.fixture
def sdk() -> Iterator[Callable[..., QStash]]:
    """Build official SDK clients, closed at teardown."""
    made: list[QStash] = []

    def make(*args: Any, **kwargs: Any) -> QStash:
        made.append(QStash(*args, **kwargs))
        return made[-1]

    yield make
    for client in made:
        client.http._client.close()


@pytest_asyncio.fixture
async def async_sdk() -> AsyncIterator[Callable[..., AsyncQStash]]:
    """Build official async SDK clients, closed at teardown."""
    made: list[AsyncQStash] = []

    def make(*args: Any, **kwargs: Any) -> AsyncQStash:
        made.append(AsyncQStash(*args, **kwargs))
        return made[-1]

    yield make
    for client in made:
        await client.http._client.aclose()


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester, with the inner runs configured as this suite is (no pytest-asyncio
    loop-scope deprecation warning in every inner run)."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-o asyncio_default_fixture_loop_scope=function")
    return pytester
