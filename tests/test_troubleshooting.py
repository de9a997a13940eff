"""The troubleshooting page quotes the fake's real messages: each is produced here from
its scenario and must appear on the page as it is (line breaks aside)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from pytest_qstash_tasks import (
    DeliveryRequest,
    QStashTasksLoopError,
    QStashTasksMock,
    QStashTasksRealHostError,
    QStashTasksRunawayError,
)
from pytest_qstash_tasks._core.report import format_problems

AUTH = {"Authorization": "Bearer t"}


def fixture_fake(**settings: object) -> QStashTasksMock:
    fake = QStashTasksMock(seed=None, **settings)  # type: ignore[arg-type]
    fake._owner_name = None  # worded as the qstash_tasks fixture words it
    return fake


def raised(fake: QStashTasksMock, kind: type[BaseException], action: Callable[[], object]) -> str:
    """What ``action`` raises with ``fake`` started (and stopped, unverified, after)."""
    fake.start()
    try:
        with pytest.raises(kind) as caught:
            action()
    finally:
        fake.stop()
    return f"{type(caught.value).__name__}: {caught.value}"


def real_host() -> str:
    url = "https://qstash-us-east-1.upstash.io/v2/messages/msg_1"
    return raised(fixture_fake(), QStashTasksRealHostError, lambda: httpx.get(url, headers=AUTH))


def unseen_client() -> str:
    import urllib.request

    url = "https://qstash.upstash.io/v1/messages/msg_1/tasks"
    return raised(
        fixture_fake(), QStashTasksRealHostError, lambda: urllib.request.urlopen(url, timeout=5)
    )


def endless_paging() -> str:
    fake = fixture_fake(max_identical_requests=3)
    fake.add("msg_1", count=3)

    def loop() -> None:
        for _ in range(10):
            httpx.get(f"{fake.base_url}/v1/messages/msg_1/tasks?cursor=0", headers=AUTH)

    return raised(fake, QStashTasksLoopError, loop)


def clock_stood_still() -> str:
    fake = fixture_fake(max_identical_requests=3)
    fake.simulate_delivery("msg_1", url="https://example.com/hook", outcomes=[500, 200])

    def poll() -> None:
        for _ in range(10):
            httpx.get(f"{fake.base_url}/v1/messages/msg_1/tasks", headers=AUTH)

    return raised(fake, QStashTasksLoopError, poll)


def runaway_chain() -> str:
    fake = fixture_fake(max_chained_events=3)
    hook = "https://app.example.com/again"
    publish = f"{fake.base_url}/v2/publish/{hook}"

    def again(delivery: DeliveryRequest) -> int:
        httpx.post(publish, headers=AUTH, content=b"x")  # publishes again, every time
        return 200

    fake.destination(hook).deliver_to(again)

    def chain() -> None:
        httpx.post(publish, headers=AUTH, content=b"x")
        fake.clock.advance(60_000)

    return raised(fake, QStashTasksRunawayError, chain)


def teardown_problems() -> str:
    fake = fixture_fake()
    fake.add("msg_1", count=3)
    fake.add_pages("msg_2", [{"cursor": 5, "tasks": []}, {"tasks": []}])
    fake.fail_next(503, message_id="msg_1", page=2)
    fake.expect_unserved("bad_cursor")
    fake.start()
    httpx.get(f"{fake.base_url}/v1/messages/msg_1/tasks", headers=AUTH)
    httpx.get(f"{fake.base_url}/v1/messages/msg_9/tasks", headers=AUTH)
    fake.stop()  # what the fixture's teardown says, without raising it
    return f"AssertionError: {format_problems(fake.problems())}"


def second_fake() -> str:
    with QStashTasksMock() as first, pytest.raises(RuntimeError) as caught:
        QStashTasksMock().start()
    del first
    return f"RuntimeError: {caught.value}"


def state_typo() -> str:
    with pytest.raises(ValueError, match="not a task state") as caught:
        QStashTasksMock().add("msg_1", count=3, state="delivred")
    return f"ValueError: {caught.value}"


def no_request() -> str:
    fake = fixture_fake()
    fake.add("msg_1", count=3)
    hint = fake._unreached_hint()
    assert hint is not None
    return hint


MESSAGES = {
    "no-request": no_request,
    "real-host": real_host,
    "unseen-client": unseen_client,
    "endless-paging": endless_paging,
    "clock-stood-still": clock_stood_still,
    "runaway-chain": runaway_chain,
    "teardown": teardown_problems,
    "second-fake": second_fake,
    "state-typo": state_typo,
}


PAGE = Path(__file__).parent.parent / "docs" / "troubleshooting.md"
QUOTED = re.compile(r"<!-- message: ([\w-]+) -->\n```text\n(.*?)```", re.DOTALL)


def quoted() -> dict[str, str]:
    return dict(QUOTED.findall(PAGE.read_text()))


def test_the_page_quotes_every_message_once() -> None:
    found = QUOTED.findall(PAGE.read_text())
    assert sorted(name for name, _ in found) == sorted(MESSAGES)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_the_page_quotes_the_message_as_the_fake_says_it(name: str) -> None:
    said = MESSAGES[name]()
    shown = quoted()[name]
    assert shown.split() == said.split(), f"docs/troubleshooting.md, {name}: now it reads\n{said}"
