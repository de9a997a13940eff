"""The pytest plugin: the ``qstash_tasks`` and ``qstash_tasks_server`` fixtures, their
marker and ini options.

Loaded through the ``pytest11`` entry point in every pytest run of a project that
installs the package, so it imports nothing heavy until a test asks for a fixture.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pytest

if TYPE_CHECKING:
    from ._core.fake import QStashTasksFake
    from ._transports.http_server import LoopbackServer
    from ._transports.in_process import QStashTasksMock
    from ._transports.server import QStashTasksServer

_FAKES_KEY = pytest.StashKey["list[QStashTasksFake]"]()
_CALL_FAILED_KEY = pytest.StashKey[bool]()
_F = TypeVar("_F", bound="QStashTasksFake")


def pytest_addoption(parser: pytest.Parser) -> None:
    from ._config import INI_OPTIONS

    for name, (help_text, kind) in INI_OPTIONS.items():
        if kind in ("bool", "off"):
            parser.addini(name, help_text, type="bool", default=kind == "bool")
        else:
            parser.addini(name, help_text)  # a string, "" when not set


def pytest_configure(config: pytest.Config) -> None:
    from ._config import MARKER_HELP

    config.addinivalue_line("markers", MARKER_HELP)


@pytest.fixture
def qstash_tasks(request: pytest.FixtureRequest) -> Generator[QStashTasksMock, None, None]:
    """A fake of QStash's ``GET /v1/messages/{messageId}/tasks`` for httpx in this process.

    Configured by ``@pytest.mark.qstash_tasks(...)``, the ``qstash_tasks_*`` ini
    options and ``QSTASH_URL`` (read when the fixture starts). At teardown it fails
    the test on requests it could not serve, scripted pages never requested, faults
    that did not fire and clients it stopped as infinite loops (see ``verify``).
    """
    from ._transports.in_process import QStashTasksMock

    def build(**settings: Any) -> QStashTasksMock:
        return QStashTasksMock(intercept_httpx_at=_httpx_level(request), **settings)

    yield from _fake_for_test(request, build)


@pytest.fixture(scope="session")
def qstash_tasks_loopback(request: pytest.FixtureRequest) -> Generator[LoopbackServer, None, None]:
    """The HTTP server behind ``qstash_tasks_server``: one per session (per xdist worker),
    started the first time a test asks for it."""
    from ._config import server_host
    from ._transports.http_server import LoopbackServer

    server = LoopbackServer(server_host(request.config)).start()
    try:
        yield server
    finally:
        stray = server.take_stray()
        server.stop()
        if stray:
            warnings.warn(
                pytest.PytestWarning(
                    f"qstash_tasks_server: {len(stray)} request(s) reached {server.base_url} "
                    "after the last test that held it, and got 503: " + "; ".join(stray)
                ),
                stacklevel=1,
            )


@pytest.fixture
def qstash_tasks_server(
    request: pytest.FixtureRequest, qstash_tasks_loopback: LoopbackServer
) -> Generator[QStashTasksServer, None, None]:
    """The same fake as ``qstash_tasks``, served over HTTP at ``base_url``
    (``http://127.0.0.1:<port>``) for any client: ``requests``, ``aiohttp``, the
    official SDK, a subprocess (``env`` holds ``QSTASH_URL`` and ``QSTASH_TOKEN``).
    While the test runs, the server's address is in ``NO_PROXY``, so a proxy set for
    the machine does not stand between the test's clients and the server.

    Takes the same marker and ini settings, except the base URL, which is where the
    server listens. Teardown waits for requests still being answered, then checks
    what ``qstash_tasks`` checks.
    """
    from ._transports.server import QStashTasksServer, no_proxy_with

    def build(**settings: Any) -> QStashTasksServer:
        settings.pop("base_url", None)
        return QStashTasksServer(server=qstash_tasks_loopback, **settings)

    # Clients made in the test go to the server directly, whatever proxy the machine
    # sets (HTTP_PROXY, ALL_PROXY: common on CI runners and corporate machines).
    with pytest.MonkeyPatch.context() as patch:
        bypass = no_proxy_with(qstash_tasks_loopback.host)
        patch.setenv("NO_PROXY", bypass)
        patch.setenv("no_proxy", bypass)
        yield from _fake_for_test(request, build)


def _httpx_level(request: pytest.FixtureRequest) -> Literal["transport", "client"]:
    # pytest-httpx answers every request at httpx's transports: above them, the fake
    # takes its own requests first, in whichever order the fixtures start.
    return "client" if "httpx_mock" in request.fixturenames else "transport"


def _fake_for_test(
    request: pytest.FixtureRequest, build: Callable[..., _F]
) -> Generator[_F, None, None]:
    """Build a fake from the test's settings, start it, and check it at teardown."""
    from ._config import settings_for
    from ._core.seeding import start_stream

    settings = settings_for(request.node, request.config)
    seed = settings.pop("seed", None)
    stream = start_stream(request.node.nodeid, seed)
    fake = build(**settings, seed=None)  # None: the test's own stream, seeded above
    fake._owner_name = None
    stream.clock = fake.clock
    fakes = request.node.stash.setdefault(_FAKES_KEY, [])
    fakes.append(fake)
    try:
        fake.start()
        yield fake
    finally:
        fake.stop()
        # Items live for the whole session: keep no fake (its tasks and calls) past
        # its test. The failed-call report has read it by now.
        fakes.remove(fake)
        stream.clock = None
    if not request.node.stash.get(_CALL_FAILED_KEY, False):
        fake.verify()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # An xfailed test failed as expected: its fake's problems are part of that failure,
    # not a second error at teardown. (An xpass under strict xfail is a plain failure.)
    xfailed = report.skipped and hasattr(report, "wasxfail")
    if report.when != "call" or not (report.failed or xfailed):
        return report
    # A failed test: say what the fake saw, instead of a second failure at teardown.
    item.stash[_CALL_FAILED_KEY] = True
    for fake in item.stash.get(_FAKES_KEY, []):
        report.sections.extend(fake._failure_report())
    seeding = sys.modules.get("pytest_qstash_tasks._core.seeding")
    if seeding is not None:
        stream = seeding.peek_stream(item.nodeid)
        if stream is not None:
            report.sections.append(
                (
                    "qstash_tasks seed",
                    f"generated tasks were seeded with {stream.seed} "
                    f"(reproduce with @pytest.mark.qstash_tasks(seed={stream.seed}) "
                    f"or make_tasks(..., seed={stream.seed}))",
                )
            )
    return report
