"""The delivery report, tested offline against the qstash_tasks fake."""

from __future__ import annotations

import httpx
import pytest
from delivery_report import client_from_env, task_report

from pytest_qstash_tasks import QStashTasksMock, TaskState


@pytest.fixture
def client(qstash_tasks: QStashTasksMock, monkeypatch: pytest.MonkeyPatch) -> httpx.Client:
    monkeypatch.setenv("QSTASH_URL", qstash_tasks.base_url)
    monkeypatch.setenv("QSTASH_TOKEN", qstash_tasks.token)
    return client_from_env()


def test_report_counts_every_task(qstash_tasks: QStashTasksMock, client: httpx.Client) -> None:
    stored = qstash_tasks.add("msg_123", count=250)
    report = task_report(client, "msg_123")
    assert report.total == 250
    assert sum(report.by_state.values()) == 250
    assert report.by_state["failed"] == sum(t.state is TaskState.FAILED for t in stored)
    qstash_tasks.assert_all_pages_fetched("msg_123")
    qstash_tasks.assert_called("msg_123", times=3)  # 100 + 100 + 50


def test_report_retries_a_5xx_then_carries_on(
    qstash_tasks: QStashTasksMock, client: httpx.Client
) -> None:
    qstash_tasks.add("msg_1", count=250)
    qstash_tasks.fail_next(503, page=2)  # the second page fails once
    assert task_report(client, "msg_1").total == 250
    assert [call.status for call in qstash_tasks.calls] == [200, 503, 200, 200]
    qstash_tasks.assert_all_pages_fetched("msg_1")


def test_report_retries_the_rate_limit(qstash_tasks: QStashTasksMock, client: httpx.Client) -> None:
    qstash_tasks.add("msg_1", count=5)
    qstash_tasks.rate_limit_next(times=2)
    assert task_report(client, "msg_1", attempts=3).total == 5
    qstash_tasks.assert_called("msg_1", times=3)


def test_report_gives_up_after_its_attempts(
    qstash_tasks: QStashTasksMock, client: httpx.Client
) -> None:
    qstash_tasks.add("msg_1", count=5)
    qstash_tasks.fail_next(500, times=3)
    with pytest.raises(httpx.HTTPStatusError, match="500 Internal Server Error"):
        task_report(client, "msg_1", attempts=3)


def test_report_while_deliveries_are_under_way(
    qstash_tasks: QStashTasksMock, client: httpx.Client
) -> None:
    qstash_tasks.simulate_delivery("msg_1", url="https://a.example", outcomes=[200])
    qstash_tasks.simulate_delivery("msg_1", url="https://b.example", outcomes=[500, 500, 500, 500])
    qstash_tasks.clock.advance(1_000)  # a delivered, b waiting for its first retry
    assert task_report(client, "msg_1").by_state == {"delivered": 1, "error": 1}
    qstash_tasks.clock.advance(86_400_000)  # a day later b has used up its retries
    report = task_report(client, "msg_1")
    assert report.by_state == {"delivered": 1, "failed": 1}
    assert report.failures == [("https://b.example", "HTTP status 500")]


def test_report_lists_failures(qstash_tasks: QStashTasksMock, client: httpx.Client) -> None:
    qstash_tasks.add("msg_1", count=3, state="failed", url="https://shop.example/hook")
    report = task_report(client, "msg_1")
    assert report.delivered_ratio == 0.0
    assert [url for url, _ in report.failures] == ["https://shop.example/hook"] * 3
    assert all(error.startswith("HTTP status ") for _, error in report.failures)


def test_a_message_without_tasks(qstash_tasks: QStashTasksMock, client: httpx.Client) -> None:
    qstash_tasks.add_message("msg_new")
    assert task_report(client, "msg_new").total == 0


@pytest.mark.qstash_tasks(end_cursor=None, page_size=10)
def test_report_stops_when_the_cursor_is_left_out(
    qstash_tasks: QStashTasksMock, client: httpx.Client
) -> None:
    qstash_tasks.add("msg_1", count=35, timeline_at=lambda i: 1_000_000 - i)
    assert task_report(client, "msg_1").total == 35
    assert len(qstash_tasks.calls) == 4


@pytest.mark.qstash_tasks(assert_all_requests_served=False)
def test_an_unknown_message_raises(qstash_tasks: QStashTasksMock, client: httpx.Client) -> None:
    with pytest.raises(httpx.HTTPStatusError, match="404"):
        task_report(client, "msg_typo")
