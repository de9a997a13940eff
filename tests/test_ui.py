"""The page at ``/_fake/ui`` and the control reads it makes. What it shows in a browser
is checked by ``examples/node/ui.test.mjs`` (headless chromium)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from importlib import resources

import pytest
import requests

from pytest_qstash_tasks import QStashTasksServer

TOKEN = {"Authorization": "Bearer secret"}


@pytest.fixture
def fake() -> Iterator[QStashTasksServer]:
    with QStashTasksServer(control=True, token="secret") as server:
        yield server


def page_source() -> str:
    return (resources.files("pytest_qstash_tasks._core.control") / "ui.html").read_text()


def test_the_page_is_served_without_the_token_with_a_policy_that_runs_only_its_script(
    fake: QStashTasksServer,
) -> None:
    answer = requests.get(fake.base_url + "/_fake/ui", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.text == page_source()
    policy = dict(
        part.strip().split(" ", 1) for part in answer.headers["content-security-policy"].split(";")
    )
    (script,) = re.findall(r"<script>(.*?)</script>", answer.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert policy["script-src"] == f"'sha256-{digest}'"  # no other script may run
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert answer.headers["x-content-type-options"] == "nosniff"
    # What it reads needs the token as any client's request does.
    assert requests.get(fake.base_url + "/_fake/messages?count=5", timeout=5).status_code == 401


def test_the_page_puts_nothing_in_as_markup() -> None:
    source = page_source()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, sink
    assert "http://" not in source  # nothing from the network
    assert "https://" not in source


def test_a_page_of_messages_is_newest_first_with_a_cursor(fake: QStashTasksServer) -> None:
    for number in range(5):
        fake.add(f"msg_{number}", count=2, states=["delivered"])
    url = fake.base_url + "/_fake/messages"
    first = requests.get(url, params={"count": 2}, headers=TOKEN, timeout=5).json()
    assert [m["messageId"] for m in first["messages"]] == ["msg_4", "msg_3"]
    assert (first["cursor"], first["total"]) == ("2", 5)
    assert first["messages"][0]["state"] == "delivered"
    assert first["messages"][0]["tasks"] == 2
    rest = []
    cursor = first["cursor"]
    while cursor is not None:
        page = requests.get(url, params={"count": 2, "cursor": cursor}, headers=TOKEN, timeout=5)
        rest += [m["messageId"] for m in page.json()["messages"]]
        cursor = page.json()["cursor"]
    assert rest == ["msg_2", "msg_1", "msg_0"]
    assert requests.get(url, headers=TOKEN, timeout=5).json() == {
        "messages": [f"msg_{n}" for n in range(5)]  # without count: as before
    }


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"count": "0"}, "count is a number 1-1000, got '0'"),
        ({"count": "x"}, "count is a number 1-1000, got 'x'"),
        ({"count": "1001"}, "count is a number 1-1000, got '1001'"),
        ({"count": "5", "cursor": "-1"}, "cursor is what the last page gave, got '-1'"),
    ],
)
def test_a_bad_page_is_refused(fake: QStashTasksServer, query: dict[str, str], error: str) -> None:
    answer = requests.get(fake.base_url + "/_fake/messages", params=query, headers=TOKEN, timeout=5)
    assert (answer.status_code, answer.json()) == (400, {"error": error})


def test_deliveries_of_one_message_latest_first(fake: QStashTasksServer) -> None:
    seen: list[str] = []
    fake.destination("https://app.example/hook").deliver_to(lambda d: seen.append("x") or 500)
    published = [
        requests.post(
            fake.base_url + "/v2/publish/https://app.example/hook", data=str(n),
            headers={**TOKEN, "Upstash-Retries": "1"}, timeout=5,
        ).json()["messageId"]
        for n in range(2)
    ]  # fmt: skip
    fake.clock.run_all()
    url = fake.base_url + "/_fake/deliveries"
    mine = requests.get(url, params={"messageId": published[0]}, headers=TOKEN, timeout=5).json()
    assert [(d["messageId"], d["retried"]) for d in mine["deliveries"]] == [
        (published[0], 0),
        (published[0], 1),
    ]
    latest = requests.get(url, params={"count": 1}, headers=TOKEN, timeout=5).json()
    assert [(d["messageId"], d["retried"]) for d in latest["deliveries"]] == [(published[1], 1)]
    assert len(seen) == 4


def test_without_the_control_endpoints_the_404_says_where_the_page_is() -> None:
    fake = QStashTasksServer().start()
    try:
        answer = requests.get(fake.base_url + "/_fake/ui", timeout=5)
    finally:
        fake.stop()
    assert answer.status_code == 404
    assert answer.json()["error"].endswith(
        "; the control endpoints and the page under /_fake/ answer with "
        "QStashTasksServer(control=True), and in qstash-tasks-fake serve"
    )
    (problem,) = fake.problems()
    assert problem.splitlines()[1].endswith("in qstash-tasks-fake serve")
