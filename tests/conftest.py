from __future__ import annotations

import json
import os
import resource
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
from qstash import AsyncQStash, QStash

# Loaded here, before any in-process pytester run: such a run takes the modules it loaded
# out of sys.modules when it ends, while the package keeps the names it resolved lazily;
# the next run would load a second copy of the models (TaskState.ERROR is not
# TaskState.ERROR). Users' runs load each module once.
import pytest_qstash_tasks._core.factories
import pytest_qstash_tasks._core.models  # noqa: F401
from pytest_qstash_tasks import QStashTasksFake
from tests.helpers import SEED_EXAMPLE

#: The fixtures of each transport: the behaviour tests run against every one.
TRANSPORTS = {"in_process": "qstash_tasks", "server": "qstash_tasks_server"}


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


@pytest.fixture
def workflow_env(any_fake: QStashTasksFake, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a deployed workflow reads: QStash's URL, token and signing keys."""
    for name, value in any_fake.env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def sync_workflow_client(any_fake: QStashTasksFake, sdk: Callable[..., QStash]) -> QStash:
    """The QStash client a sync workflow publishes its steps with, closed at teardown."""
    return sdk(any_fake.token, base_url=any_fake.base_url)


@pytest.fixture
def client(any_fake: QStashTasksFake, sdk: Callable[..., QStash]) -> QStash:
    """The official SDK's client, pointed at the fake of this test (any transport)."""
    return sdk(any_fake.token, base_url=any_fake.base_url)


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
