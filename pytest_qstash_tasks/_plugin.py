"""The pytest plugin: the ``qstash_tasks`` fixture, its marker and ini options.

Loaded through the ``pytest11`` entry point in every pytest run of a project that
installs the package, so it imports nothing heavy until a test asks for the fixture.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._mock import QStashTasksMock

_MOCK_KEY = pytest.StashKey["QStashTasksMock"]()
_CALL_FAILED_KEY = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    from ._config import INI_OPTIONS

    for name, (help_text, kind) in INI_OPTIONS.items():
        if kind == "bool":
            parser.addini(name, help_text, type="bool", default=True)
        else:
            parser.addini(name, help_text, type="string", default="")


def pytest_configure(config: pytest.Config) -> None:
    from ._config import MARKER_HELP

    config.addinivalue_line("markers", MARKER_HELP)


@pytest.fixture
def qstash_tasks(request: pytest.FixtureRequest) -> Generator[QStashTasksMock, None, None]:
    """A fake of QStash's ``GET /v1/messages/{messageId}/tasks`` for this test.

    Configured by ``@pytest.mark.qstash_tasks(...)``, the ``qstash_tasks_*`` ini
    options and ``QSTASH_URL``. At teardown it fails the test on requests it could
    not serve, scripted pages never requested, faults that did not fire and clients
    it stopped as infinite loops (see ``QStashTasksMock.verify``).
    """
    from ._config import settings_for
    from ._mock import QStashTasksMock
    from ._seeding import start_stream

    settings = settings_for(request.node, request.config)
    seed = settings.pop("seed", None)
    stream = start_stream(request.node.nodeid, seed)
    mock = QStashTasksMock(**settings)
    stream.clock = lambda: mock.clock.now
    request.node.stash[_MOCK_KEY] = mock
    mock.start()
    try:
        yield mock
    finally:
        mock.stop()
        # Items live for the whole session: keep no fake (its tasks and calls) past
        # its test. The failed-call report has read it by now.
        del request.node.stash[_MOCK_KEY]
        stream.clock = None
    if not request.node.stash.get(_CALL_FAILED_KEY, False):
        mock.verify()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    # A failed test: say what the fake saw, instead of a second failure at teardown.
    item.stash[_CALL_FAILED_KEY] = True
    mock = item.stash.get(_MOCK_KEY, None)
    if mock is not None:
        problems = mock.problems()
        if problems:
            from ._mock import format_problems

            report.sections.append(("qstash_tasks", format_problems(problems)))
    seeding = sys.modules.get("pytest_qstash_tasks._seeding")
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
