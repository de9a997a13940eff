"""Publishing through the fake: what the official SDK sends for a message's life
(publish, enqueue, batch, get, cancel, URL groups), what the tasks endpoint then reports
as the clock moves, and how bad input is refused. Every test runs through each transport
(in-process and the loopback server) unless it says otherwise."""

from __future__ import annotations

import collections
import itertools
import json
import random
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from qstash import AsyncQStash, QStash
from qstash.errors import QStashError

from pytest_qstash_tasks import QStashTasksFake, QStashTasksLoopError, QStashTasksMock
from tests.helpers import client_for, in_process_only, is_qstash_id, unserved

HOOK = "https://app.example.com/hook"
Sdk = Callable[..., QStash]


def tasks(client: QStash, message_id: str) -> list[dict[str, Any]]:
    """The message's tasks, read through the tasks endpoint as the SDK's HTTP layer does."""
    page = client.http.request(path=f"/v1/messages/{message_id}/tasks", method="GET")
    return page["tasks"]  # type: ignore[no-any-return]


def one_task(client: QStash, message_id: str) -> dict[str, Any]:
    (task,) = tasks(client, message_id)
    return task


@pytest.fixture
def client(any_fake: QStashTasksFake, sdk: Sdk) -> QStash:
    return sdk(any_fake.token, base_url=any_fake.base_url)


# -- publish, then the tasks endpoint reports the delivery -----------------------------


def test_a_published_message_is_what_the_tasks_endpoint_reports(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    published = client.message.publish_json(url=HOOK, body={"order": 7}, retries=2)
    assert is_qstash_id(published.message_id, "msg")
    assert not published.deduplicated
    task = one_task(client, published.message_id)
    assert is_qstash_id(task["taskId"], "tsk")
    assert (task["messageId"], task["url"], task["maxRetry"]) == (published.message_id, HOOK, 2)
    assert (task["state"], task["retried"]) == ("created", 0)
    any_fake.clock.advance(150)
    assert one_task(client, published.message_id)["state"] == "planned"
    any_fake.clock.advance(100)
    assert one_task(client, published.message_id)["state"] == "active"
    any_fake.clock.advance(500)
    task = one_task(client, published.message_id)
    assert (task["state"], task["completedAt"]) == ("delivered", any_fake.clock.start + 700)
    assert any_fake.message_ids() == [published.message_id]


def test_scripted_answers_drive_retries_with_qstash_backoff(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination(HOOK).answers(500, httpx.ConnectError("refused"), 200)
    message_id = client.message.publish(url=HOOK, body="hi").message_id
    start = any_fake.clock.start
    any_fake.clock.advance(700)  # the first attempt ended at +700 with a 500
    task = one_task(client, message_id)
    first_retry = start + 700 + 12_182  # e ** 2.5 s, QStash's v2 backoff after 1 retry
    assert (task["state"], task["retried"], task["error"]) == ("error", 1, "HTTP status 500")
    assert (task["lastErrorAt"], task["nextProcessAt"]) == (start + 700, first_retry)
    any_fake.clock.set(first_retry + 500)
    task = one_task(client, message_id)
    assert (task["state"], task["retried"]) == ("error", 2)
    assert task["error"] == "connection failed: refused"
    assert task["nextProcessAt"] == first_retry + 500 + 148_413  # e ** 5 s
    any_fake.clock.advance(10 * 60_000)
    task = one_task(client, message_id)
    assert (task["state"], task["retried"]) == ("delivered", 2)
    assert any_fake.destination(HOOK).remaining == []
    used = any_fake.destination(HOOK).used
    assert (used[0].url, used[0].message_id, used[0].at) == (HOOK, message_id, start + 200)
    assert [type(u.outcome).__name__ for u in used] == ["int", "ConnectError", "int"]


def test_the_backoff_grows_to_a_day_and_stays_there(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination(HOOK).answers(*[500] * 7)
    client.message.publish(url=HOOK, body="x", retries=6)
    any_fake.clock.advance(3 * 86_400_000)
    starts = [used.at for used in any_fake.destination(HOOK).used]
    # Each attempt is active 500 ms before it fails; the backoff runs from its end.
    waits = [later - earlier - 500 for earlier, later in itertools.pairwise(starts)]
    # e ** 2.5, e ** 5, e ** 7.5, e ** 10 s, then a day: e ** 12.5 s would be three.
    assert waits == [12_182, 148_413, 1_808_042, 22_026_465, 86_400_000, 86_400_000]


def test_an_attempt_runs_when_the_clock_reaches_its_time_exactly(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[int] = []
    any_fake.destination(HOOK).deliver_to(lambda delivery: received.append(1) or 200)
    client.message.publish(url=HOOK, body="x")
    any_fake.clock.advance(199)
    assert received == []
    any_fake.clock.advance(1)  # the first attempt is due 200 ms after the publish
    assert received == [1]


def test_used_up_retries_leave_the_task_failed(any_fake: QStashTasksFake, client: QStash) -> None:
    any_fake.destination("https://app.example.com/*").answers(503, 503)
    message_id = client.message.publish(url=HOOK, body="x", retries=1).message_id
    any_fake.clock.advance(60_000)
    task = one_task(client, message_id)
    assert (task["state"], task["retried"], task["maxRetry"]) == ("failed", 1, 1)
    assert task["error"] == "HTTP status 503"


def test_the_retry_delay_expression_replaces_the_backoff(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination(HOOK).answers(500, 500, 200)
    message_id = client.message.publish(
        url=HOOK, body="x", retry_delay="pow(2, retried) * 1000 + 250"
    ).message_id
    assert client.message.get(message_id).retry_delay_expression == "pow(2, retried) * 1000 + 250"
    start = any_fake.clock.start
    any_fake.clock.advance(700)
    assert one_task(client, message_id)["nextProcessAt"] == start + 700 + 1_250  # retried=0
    any_fake.clock.set(start + 700 + 1_250 + 500)
    assert one_task(client, message_id)["nextProcessAt"] == start + 2_450 + 2_250  # retried=1
    any_fake.clock.advance(10_000)
    assert one_task(client, message_id)["state"] == "delivered"


def test_delay_and_not_before_hold_the_first_attempt(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    start = any_fake.clock.start
    delayed = client.message.publish(url=HOOK, body="x", delay="1h30m").message_id
    later = client.message.publish(url=HOOK, body="y", not_before=start // 1000 + 86_400).message_id
    assert one_task(client, delayed)["nextProcessAt"] == start + 5_400_000
    assert client.message.get(delayed).not_before == start + 5_400_000
    assert client.message.get(later).not_before == start + 86_400_000
    any_fake.clock.advance(5_400_000 + 500)
    assert one_task(client, delayed)["state"] == "delivered"
    assert one_task(client, later)["state"] == "planned"


def test_the_message_api_shows_what_was_published(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    message_id = client.message.publish_json(
        url=HOOK, body={"a": 1}, method="PUT", headers={"X-Tenant": "t1"}, label="billing"
    ).message_id
    message = client.message.get(message_id)
    assert (message.message_id, message.url, message.method) == (message_id, HOOK, "PUT")
    assert message.body == '{"a": 1}'
    assert message.headers == {"Content-Type": ["application/json"], "X-Tenant": ["t1"]}
    assert (message.max_retries, message.created_at) == (3, any_fake.clock.start)
    assert message.label == "billing"
    any_fake.clock.advance(1_000)  # delivered: QStash keeps a message only until then
    with pytest.raises(QStashError, match="404"):
        client.message.get(message_id)
    any_fake.expect_unserved("unknown_message", message_id=message_id)


def test_get_message_answers_every_field_qstash_shows(any_fake: QStashTasksFake) -> None:
    import requests

    auth = {"Authorization": f"Bearer {any_fake.token}"}
    requests.post(
        f"{any_fake.base_url}/v2/topics/orders/endpoints",
        json={"endpoints": [{"url": HOOK, "name": "shop"}, {"url": HOOK + "2"}]},
        headers=auth,
        timeout=5,
    )
    published = requests.post(
        f"{any_fake.base_url}/v2/publish/orders",
        data=b"\xff\x00",
        headers={
            **auth,
            "Upstash-Callback": "https://app.example.com/cb",
            "Upstash-Failure-Callback": "https://app.example.com/failed",
            "Upstash-Label": "billing",
            "Upstash-Retry-Delay": "1000 * retried",
            "Upstash-Forward-X-Tenant": "t1",
            "Upstash-Forward-": "a header with no name is not forwarded",
            "Upstash-Not-Before": "1893456000",
        },
        timeout=5,
    ).json()
    named, unnamed = (answer["messageId"] for answer in published)
    message = requests.get(f"{any_fake.base_url}/v2/messages/{named}", headers=auth, timeout=5)
    assert message.json() == {
        "messageId": named,
        "url": HOOK,
        "method": "POST",
        "header": {"X-Tenant": ["t1"]},
        "maxRetries": 3,
        "notBefore": 1893456000000,
        "createdAt": any_fake.clock.start,
        "callerIP": "127.0.0.1",
        "bodyBase64": "/wA=",
        "topicName": "orders",
        "endpointName": "shop",
        "retryDelayExpression": "1000 * retried",
        "label": "billing",
        "labels": ["billing"],
        "callback": "https://app.example.com/cb",
        "failureCallback": "https://app.example.com/failed",
    }
    other = requests.get(f"{any_fake.base_url}/v2/messages/{unnamed}", headers=auth, timeout=5)
    assert "endpointName" not in other.json()
    group = requests.get(f"{any_fake.base_url}/v2/topics/orders", headers=auth, timeout=5)
    assert group.json()["endpoints"] == [{"url": HOOK, "name": "shop"}, {"url": HOOK + "2"}]


def test_an_endpoint_upserted_again_is_replaced_by_url_or_by_name(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    a, b = "https://a.example.com/in", "https://b.example.com/in"
    client.url_group.upsert_endpoints("g", [{"url": a, "name": "first"}, {"url": b}])
    any_fake.clock.advance(1_000)
    client.url_group.upsert_endpoints("g", [{"url": a, "name": "renamed"}])  # same URL
    group = client.url_group.get("g")
    assert (group.created_at, group.updated_at) == (any_fake.clock.now - 1_000, any_fake.clock.now)
    client.url_group.upsert_endpoints("g", [{"url": b + "/v2", "name": "renamed"}])  # same name
    group = client.url_group.get("g")
    # Replaced where it stood: the first endpoint, by its URL, then by its new name.
    assert [(e.url, e.name) for e in group.endpoints] == [(b + "/v2", "renamed"), (b, None)]
    client.url_group.remove_endpoints("g", [{"url": a}])  # gone already: nothing removed
    client.url_group.remove_endpoints("g", [{"name": "renamed"}])
    assert [(e.url, e.name) for e in client.url_group.get("g").endpoints] == [(b, None)]


def test_a_poller_waiting_on_a_published_message_is_told_when_it_settles() -> None:
    fake = QStashTasksMock(max_identical_requests=2).start()
    try:
        fake.destination(HOOK).answers(500, 500)
        client = QStash(fake.token, base_url=fake.base_url)
        message_id = client.message.publish(url=HOOK, body="x").message_id

        def poll() -> str:
            with pytest.raises(QStashTasksLoopError) as raised:  # noqa: PT012
                for _ in range(3):
                    httpx.get(
                        f"{fake.base_url}/v1/messages/{message_id}/tasks",
                        headers={"Authorization": f"Bearer {fake.token}"},
                    )
            return str(raised.value)

        fake.clock.advance(500)
        assert (
            f"while the fake's clock stood still at 2026-01-01T00:00:00.500Z and 1 delivery of "
            f"{message_id!r} was still under way (the next settles at 2026-01-01T00:00:13.382Z, "
            "12.882 s later)."
        ) in poll()
        fake.clock.advance(13_500)  # past the second attempt: the third is the next
        assert (
            "at 2026-01-01T00:00:14.000Z and 1 delivery of "
            f"{message_id!r} was still under way (the next settles at 2026-01-01T00:02:42.295Z, "
            "148.295 s later)."
        ) in poll()
        fake.clock.advance(200_000)
        assert fake.tasks(message_id)[0].state == "delivered"
    finally:
        fake.stop()


def test_published_records_what_the_code_sent(any_fake: QStashTasksFake, client: QStash) -> None:
    message_id = client.message.publish_json(
        url=HOOK, body={"a": 1}, headers={"X-Tenant": "t1"}, delay="10s"
    ).message_id
    (record,) = any_fake.published
    assert (record.destination, record.method, record.message_id) == (HOOK, "POST", message_id)
    assert record.json() == {"a": 1}
    assert record.header("Upstash-Delay") == "10s"
    assert record.header("Upstash-Retries") is None  # not sent
    assert record.forwarded_headers == {"Content-Type": "application/json", "X-Tenant": "t1"}
    assert record.published_at == any_fake.clock.start
    found = any_fake.assert_published(HOOK, json={"a": 1}, headers={"upstash-delay": "10s"})
    assert found == [record]
    any_fake.assert_published(times=1)


REPLACED = "\ufffd\ufffd"  # bytes that are not UTF-8, as the failure shows them


def test_assert_published_shows_each_publish_in_one_line(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    client.message.publish(url=HOOK, body="x" * 60)
    client.message.publish(url=HOOK, body="y" * 61)
    client.message.publish(url=HOOK, body=b"\xff\xfe")  # type: ignore[arg-type]
    client.message.publish(url=HOOK, body="d", deduplication_id="one")
    client.message.publish(url=HOOK, body="d", deduplication_id="one")
    client.url_group.upsert_endpoints("g", [{"url": HOOK}, {"url": HOOK + "2"}])
    both = client.message.publish(url_group="g", body="z")
    ids = [record.message_ids for record in any_fake.published]
    with pytest.raises(AssertionError) as raised:
        any_fake.assert_published("https://elsewhere.example.com/")
    assert str(raised.value).splitlines()[1:] == [
        f"  - POST {HOOK} body={'x' * 60!r} -> {ids[0][0]}",
        f"  - POST {HOOK} body={'y' * 60 + '...'!r} -> {ids[1][0]}",
        f"  - POST {HOOK} body={REPLACED!r} -> {ids[2][0]}",
        f"  - POST {HOOK} body='d' -> {ids[3][0]}",
        f"  - POST {HOOK} body='d' -> {ids[4][0]} (deduplicated)",
        f"  - POST g body='z' -> {', '.join(answer.message_id for answer in both)}",  # type: ignore[union-attr]
    ]


def test_assert_published_filters_by_body_headers_and_count(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    first = client.message.publish(url=HOOK, body="one", headers={"X-Tenant": "t1"})
    client.message.publish(url=HOOK, body="two", headers={"X-Tenant": "t2"})
    (record,) = any_fake.assert_published(body="one")
    assert record.message_id == first.message_id
    assert any_fake.assert_published(body=b"one") == [record]
    assert any_fake.assert_published(headers={"UPSTASH-FORWARD-X-TENANT": "t1"}) == [record]
    assert len(any_fake.assert_published(HOOK, times=2)) == 2
    assert any_fake.assert_published("https://elsewhere.example.com/", times=0) == []
    with pytest.raises(AssertionError) as raised:
        any_fake.assert_published(HOOK, times=1)
    assert str(raised.value).splitlines()[0] == (
        f"expected a publish with destination={HOOK!r} once, got 2 times; the fake received "
        "2 publish(es):"
    )
    with pytest.raises(AssertionError) as raised:
        any_fake.assert_published(body="three", headers={"Upstash-Forward-X-Tenant": "t1"})
    assert str(raised.value).splitlines()[0] == (
        "expected a publish with body=b'three', headers={'upstash-forward-x-tenant': 't1'} "
        "at least once, got 0 times; the fake received 2 publish(es):"
    )
    with pytest.raises(AssertionError) as raised:
        any_fake.assert_published(json={"a": 1})  # the bodies are no JSON
    assert str(raised.value).splitlines()[0] == (
        "expected a publish with json={'a': 1} at least once, got 0 times; the fake received "
        "2 publish(es):"
    )


def test_assert_published_lists_what_came_when_nothing_matches(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    with pytest.raises(AssertionError) as raised:
        any_fake.assert_published(HOOK)
    assert str(raised.value) == (
        f"expected a publish with destination={HOOK!r} at least once, got 0 times; "
        "no publish reached the fake"
    )
    message_id = client.message.publish_json(url=HOOK, body={"a": 1}).message_id
    with pytest.raises(AssertionError) as raised:
        any_fake.assert_published(HOOK, json={"a": 2}, times=1)
    assert str(raised.value) == (
        f"expected a publish with destination={HOOK!r}, json={{'a': 2}} once, got 0 times; "
        "the fake received 1 publish(es):\n"
        f"  - POST {HOOK} body='{{\"a\": 1}}' -> {message_id}"
    )


@pytest.mark.asyncio
async def test_the_async_sdk_publishes_gets_and_cancels(
    any_fake: QStashTasksFake, async_sdk: Callable[..., AsyncQStash]
) -> None:
    client = async_sdk(any_fake.token, base_url=any_fake.base_url)
    published = await client.message.publish_json(url=HOOK, body=[1], delay="1m")
    message = await client.message.get(published.message_id)
    assert message.url == HOOK
    await client.message.cancel(published.message_id)
    (task,) = any_fake.tasks(published.message_id)
    assert task.state == "canceled"
    any_fake.clock.advance(120_000)  # no attempt runs after cancelling
    assert any_fake.tasks(published.message_id)[0].state == "canceled"
    enqueued = await client.message.enqueue_json(queue="emails", url=HOOK, body={"to": "a"})
    assert (await client.message.get(enqueued.message_id)).queue == "emails"
    batch = await client.message.batch_json([{"url": HOOK, "body": 1}, {"url": HOOK, "body": 2}])
    assert len(batch) == 2
    assert await client.message.cancel_many([batch[0].message_id, "msg_unknown"]) == 1  # type: ignore[union-attr]
    assert await client.message.cancel_all() == 2
    await client.url_group.upsert_endpoints(url_group="g", endpoints=[{"url": HOOK}])
    assert [group.name for group in await client.url_group.list()] == ["g"]
    await client.url_group.delete("g")


# -- URL groups ------------------------------------------------------------------------


def test_url_groups_through_the_sdk(any_fake: QStashTasksFake, client: QStash) -> None:
    a, b = "https://a.example.com/in", "https://b.example.com/in"
    client.url_group.upsert_endpoints(url_group="orders", endpoints=[{"url": a}])
    client.url_group.upsert_endpoints(url_group="orders", endpoints=[{"url": b, "name": "b"}])
    group = client.url_group.get("orders")
    assert [(e.url, e.name) for e in group.endpoints] == [(a, None), (b, "b")]
    assert group.created_at == any_fake.clock.start
    assert [g.name for g in client.url_group.list()] == ["orders"]
    answers = client.message.publish_json(url_group="orders", body={"n": 1})
    assert [answer.url for answer in answers] == [a, b]  # type: ignore[union-attr]
    for answer in answers:  # type: ignore[union-attr]
        task = one_task(client, answer.message_id)
        assert task["url"] == answer.url
        assert client.message.get(answer.message_id).url_group == "orders"
    (record,) = any_fake.published
    assert (record.url_group, record.urls) == ("orders", (a, b))
    client.url_group.remove_endpoints(url_group="orders", endpoints=[{"name": "b"}])
    assert [e.url for e in client.url_group.get("orders").endpoints] == [a]
    client.url_group.remove_endpoints(url_group="orders", endpoints=[{"url": a}])
    assert client.url_group.list() == []  # a group left with no endpoint is deleted
    client.url_group.upsert_endpoints(url_group="gone", endpoints=[{"url": a}])
    client.url_group.delete("gone")
    with pytest.raises(QStashError, match="URL group 'gone' not found"):
        client.url_group.get("gone")
    any_fake.expect_unserved("unknown_url_group")


# -- batches, cancelling, deduplication -----------------------------------------------


def test_enqueue_records_the_queue(any_fake: QStashTasksFake, client: QStash) -> None:
    enqueued = client.message.enqueue(queue="emails", url=HOOK, body="hi")
    assert client.message.get(enqueued.message_id).queue == "emails"  # type: ignore[union-attr]
    (record,) = any_fake.published
    assert (record.queue, record.destination, record.body) == ("emails", HOOK, b"hi")
    any_fake.expect_unserved("bad_request")
    with pytest.raises(QStashError) as raised:
        client.message.enqueue(queue="bad name", url=HOOK, body="hi")
    error = "invalid queue name 'bad name': use letters, digits, '.', '_', '-'"
    body = json.dumps({"error": error})
    assert str(raised.value) == f"Request failed with status: 400, body: {body}"


def test_a_batch_answers_each_entry_in_order(any_fake: QStashTasksFake, client: QStash) -> None:
    client.url_group.upsert_endpoints(url_group="g", endpoints=[{"url": "https://x.example/1"}])
    answers = client.message.batch_json(
        [{"url": HOOK, "body": {"i": 0}}, {"url_group": "g", "body": {"i": 1}, "queue": "q"}]
    )
    assert isinstance(answers[1], list)
    ids = [answers[0].message_id, answers[1][0].message_id]  # type: ignore[union-attr]
    assert [r.message_ids[0] for r in any_fake.published] == ids
    assert [r.json() for r in any_fake.published] == [{"i": 0}, {"i": 1}]
    assert any_fake.published[1].queue == "q"


def test_cancelling_stops_attempts_and_counts(any_fake: QStashTasksFake, client: QStash) -> None:
    any_fake.destination(HOOK).answers(500)
    first = client.message.publish(url=HOOK, body="1").message_id
    second = client.message.publish(url=HOOK, body="2", delay="1d").message_id
    third = client.message.publish(url=HOOK, body="3", delay="1d").message_id
    any_fake.clock.advance(1_000)  # the first failed once and waits for its retry
    assert client.message.cancel_many([first, "msg_not_there"]) == 1
    task = one_task(client, first)
    assert (task["state"], task["retried"], task["error"]) == ("canceled", 1, "HTTP status 500")
    assert task["nextProcessAt"] == 0  # no next attempt, as every finished state shows
    assert client.message.cancel_all() == 2
    assert [one_task(client, m)["state"] for m in (second, third)] == ["canceled"] * 2
    assert client.message.cancel_all() == 0
    with pytest.raises(QStashError, match="404"):
        client.message.cancel(first)
    any_fake.expect_unserved("unknown_message", message_id=first)


def test_each_cancel_is_a_change_the_loop_guard_sees() -> None:
    # A poller of a third message, polling around two cancels: the same answer each time,
    # but the fake changed in between, so the repeats start over after each cancel.
    with QStashTasksMock(max_identical_requests=2) as fake:
        fake.add("watched", count=1)
        client = QStash(fake.token, base_url=fake.base_url)
        ids = [client.message.publish(url=HOOK, body=b, delay="1d").message_id for b in "12"]
        for message_id in ids:
            for _ in range(2):
                client.http.request(path="/v1/messages/watched/tasks", method="GET")
            client.message.cancel(message_id)
        client.http.request(path="/v1/messages/watched/tasks", method="GET")
        assert fake.problems() == []


def test_a_deduplication_id_publishes_once(any_fake: QStashTasksFake, client: QStash) -> None:
    first = client.message.publish(url=HOOK, body="a", deduplication_id="order-7")
    again = client.message.publish(url=HOOK, body="b", deduplication_id="order-7")
    assert (again.message_id, again.deduplicated) == (first.message_id, True)
    by_content = client.message.publish(url=HOOK, body="c", content_based_deduplication=True)
    same = client.message.publish(url=HOOK, body="c", content_based_deduplication=True)
    other = client.message.publish(url=HOOK, body="d", content_based_deduplication=True)
    assert (same.message_id, same.deduplicated) == (by_content.message_id, True)
    assert other.message_id != by_content.message_id
    assert len(any_fake.message_ids()) == 3
    assert [r.deduplicated for r in any_fake.published] == [False, True, False, True, False]


def test_a_deduplicated_publish_is_recorded_as_sent_and_answered_202(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    client.url_group.upsert_endpoints("orders", [{"url": HOOK}])
    first = client.message.enqueue(queue="q", url_group="orders", body="a", deduplication_id="7")
    again = httpx.post(
        any_fake.base_url + "/v2/enqueue/q/orders",
        content="b",
        headers={"Authorization": f"Bearer {any_fake.token}", "Upstash-Deduplication-Id": "7"},
    )
    assert again.status_code == 202  # QStash's answer to a duplicate
    assert again.json() == [
        {"messageId": first[0].message_id, "url": HOOK, "deduplicated": True}  # type: ignore[index]
    ]
    record = any_fake.published[1]
    assert (record.deduplicated, record.url_group, record.queue, record.body) == (
        True,
        "orders",
        "q",
        b"b",
    )


def test_a_deduplication_id_holds_ten_minutes_on_the_fake_s_clock(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    first = client.message.publish(url=HOOK, body="a", deduplication_id="d").message_id
    any_fake.clock.advance(10 * 60_000 - 1)
    again = client.message.publish(url=HOOK, body="b", deduplication_id="d")
    assert (again.message_id, again.deduplicated) == (first, True)
    any_fake.clock.advance(1)  # ten minutes after the first publish: a new message
    later = client.message.publish(url=HOOK, body="c", deduplication_id="d")
    assert (later.deduplicated, later.message_id != first) == (False, True)
    # ...which holds the id for ten minutes of its own.
    any_fake.clock.advance(10 * 60_000 - 1)
    assert client.message.publish(url=HOOK, body="d", deduplication_id="d").deduplicated
    assert any_fake.message_ids() == [first, later.message_id]


def test_reset_forgets_deduplication_ids(any_fake: QStashTasksFake, client: QStash) -> None:
    client.message.publish(
        url=HOOK, body="a", deduplication_id="d", content_based_deduplication=False
    )
    client.message.publish(url=HOOK, body="same", content_based_deduplication=True)
    any_fake.reset()
    again = client.message.publish(url=HOOK, body="a", deduplication_id="d")
    same = client.message.publish(url=HOOK, body="same", content_based_deduplication=True)
    assert (again.deduplicated, same.deduplicated) == (False, False)
    assert any_fake.message_ids() == [again.message_id, same.message_id]


# -- refusals: a 4xx naming what was wrong, nothing stored -----------------------------

REFUSALS: dict[str, tuple[dict[str, Any], int, str]] = {
    "an unknown URL group": (
        {"url_group": "nope", "body": "x"},
        404,
        "destination 'nope' is neither a URL nor a known URL group (URL groups: none)",
    ),
    "a destination that is no http URL": (
        {"url": "ftp://files.example.com/x", "body": "x"},
        400,
        "invalid destination 'ftp://files.example.com/x': want an http:// or https:// URL "
        "with a host, or a URL group's name",
    ),
    "a URL without slashes": (
        {"url": "http:app.example.com/hook", "body": "x"},
        400,
        "invalid destination 'http:app.example.com/hook': want an http:// or https:// URL "
        "with a host, or a URL group's name",
    ),
    "an https URL without slashes": (
        {"url": "https:app.example.com", "body": "x"},
        400,
        "invalid destination 'https:app.example.com': want an http:// or https:// URL "
        "with a host, or a URL group's name",
    ),
    "a malformed delay": (
        {"url": HOOK, "body": "x", "delay": "soon"},
        400,
        "invalid Upstash-Delay 'soon': want a number and a unit, e.g. 10s, 5m, 2h, 1d",
    ),
    "a malformed timeout": (
        {"url": HOOK, "body": "x", "timeout": "soon"},
        400,
        "invalid Upstash-Timeout 'soon': want a number and a unit, e.g. 10s, 5m, 2h, 1d",
    ),
    "a bare timeout of ten digits": (  # seconds without a unit: up to nine digits
        {"url": HOOK, "body": "x", "timeout": "1234567890"},
        400,
        "invalid Upstash-Timeout '1234567890': want a number and a unit, e.g. 10s, 5m, 2h, 1d",
    ),
    "an unknown method": (
        {"url": HOOK, "body": "x", "method": "fetch"},
        400,
        "invalid Upstash-Method 'fetch': want one of DELETE, GET, PATCH, POST, PUT",
    ),
    "more than 100 retries": (
        {"url": HOOK, "body": "x", "retries": 101},
        400,
        "invalid Upstash-Retries '101': want an integer 0-100",
    ),
    "a not-before of thirteen digits": (
        {"url": HOOK, "body": "x", "not_before": 10**12},
        400,
        "invalid Upstash-Not-Before '1000000000000': want unix seconds",
    ),
    "a negative retries": (
        {"url": HOOK, "body": "x", "retries": -1},
        400,
        "invalid Upstash-Retries '-1': want an integer 0-100",
    ),
    "a malformed not-before": (
        {"url": HOOK, "body": "x", "not_before": -5},
        400,
        "invalid Upstash-Not-Before '-5': want unix seconds",
    ),
    "a retry delay that is not an expression": (
        {"url": HOOK, "body": "x", "retry_delay": "__import__('os')"},
        400,
        "invalid Upstash-Retry-Delay: unknown name (the variable is retried; functions: "
        "pow, sqrt, abs, exp, floor, ceil, round, min, max): '__import__' at position 0 of "
        "\"__import__('os')\"",
    ),
    "a body over the message limit": (
        {"url": HOOK, "body": "x" * 1_048_577},
        413,
        "message size 1048577 bytes exceeds the limit of 1048576 bytes",
    ),
}


@pytest.mark.parametrize(("kwargs", "status", "error"), REFUSALS.values(), ids=REFUSALS.keys())
def test_bad_publishes_are_refused_and_store_nothing(
    any_fake: QStashTasksFake, client: QStash, kwargs: dict[str, Any], status: int, error: str
) -> None:
    any_fake.expect_unserved("unknown_url_group" if status == 404 else "bad_request")
    with pytest.raises(QStashError) as raised:
        client.message.publish(**kwargs)
    body = json.dumps({"error": error})
    assert str(raised.value) == f"Request failed with status: {status}, body: {body}"
    assert (any_fake.published, any_fake.message_ids()) == ([], [])
    (call,) = any_fake.calls
    assert (call.status, call.unserved_reason, call.detail) == (status, call.unserved_reason, error)


def test_the_largest_retries_and_not_before_and_a_bare_timeout_are_taken(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    far = client.message.publish(url=HOOK, body="x", retries=100, not_before=10**12 - 1)
    assert client.message.get(far.message_id).not_before == (10**12 - 1) * 1000
    assert one_task(client, far.message_id)["maxRetry"] == 100
    slow = "https://slow.example.com/hook"
    any_fake.destination(slow).deliver_to(lambda delivery: time.sleep(0.01) or 200)
    # A timeout without a unit is seconds (the SDK sends an int as "0s", a str as it is).
    bare = client.message.publish(url=slow, body="x", timeout="0", retries=0).message_id
    any_fake.clock.advance(1_000)
    assert one_task(client, bare)["error"].endswith("past 0 s")


def test_content_based_deduplication_weighs_destination_body_and_forwarded_headers(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    def publish(**kwargs: Any) -> str:
        sent = {"url": HOOK, "body": "x", "content_based_deduplication": True, **kwargs}
        return client.message.publish(**sent).message_id

    first = publish(headers={"X-Tenant": "t1"}, content_type="text/plain")
    # What the destination would receive differs: a new message each.
    assert publish(headers={"X-Tenant": "t2"}, content_type="text/plain") != first
    assert publish(headers={"X-Tenant": "t1"}, content_type="text/csv") != first
    assert publish(url=HOOK + "2", headers={"X-Tenant": "t1"}, content_type="text/plain") != first
    # Headers QStash acts on, but does not deliver, do not count.
    same = publish(headers={"X-Tenant": "t1"}, content_type="text/plain", label="other", retries=1)
    assert same == first
    assert len(any_fake.message_ids()) == 4


def test_wrong_paths_and_methods_of_the_message_api(any_fake: QStashTasksFake) -> None:
    any_fake.expect_unserved("unknown_path")
    any_fake.expect_unserved("method_not_allowed")
    auth = {"Authorization": f"Bearer {any_fake.token}"}
    answers = [
        httpx.request(method, any_fake.base_url + path, headers=auth, content="x")
        for method, path in [
            ("POST", "/v2/publish"),  # no destination
            ("POST", "/v2/enqueue/emails"),  # a queue, no destination
            ("GET", "/v2/batch"),
        ]
    ]
    assert [(a.status_code, a.json()) for a in answers] == [
        (404, {"error": unserved("POST", "/v2/publish")}),
        (404, {"error": unserved("POST", "/v2/enqueue/emails")}),
        (405, {"error": "method GET not allowed"}),
    ]
    assert [c.unserved_reason for c in any_fake.calls] == [
        "unknown_path",
        "unknown_path",
        "method_not_allowed",
    ]
    assert (any_fake.published, any_fake.message_ids()) == ([], [])


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v2/batch", "POST"),
        ("GET", f"/v2/publish/{HOOK}", "POST"),
        ("PUT", "/v2/enqueue/q/" + HOOK, "POST"),
        ("POST", "/v2/messages", "DELETE"),
        ("POST", "/v2/messages/msg_1", "GET, DELETE"),
        ("PUT", "/v2/topics", "GET"),
        ("POST", "/v2/topics/g", "GET, DELETE"),
        ("GET", "/v2/topics/g/endpoints", "POST, DELETE"),
    ],
)
def test_a_405_says_which_methods_the_path_allows(
    any_fake: QStashTasksFake, method: str, path: str, allow: str
) -> None:
    any_fake.expect_unserved("method_not_allowed")
    auth = {"Authorization": f"Bearer {any_fake.token}"}
    answer = httpx.request(method, any_fake.base_url + path, headers=auth)
    assert (answer.status_code, answer.headers.get("allow")) == (405, allow)
    assert answer.json() == {"error": f"method {method} not allowed"}


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("wrong", "invalid token"),
        ("", "malformed Authorization header: want 'Bearer <token>'"),
    ],
    ids=["wrong", "empty"],
)
def test_the_message_api_checks_the_token_as_the_tasks_endpoint_does(
    sdk: Sdk, token: str, error: str
) -> None:
    with QStashTasksMock(token="s3cret") as fake:
        fake.expect_unserved("unauthorized")
        with pytest.raises(QStashError) as raised:
            sdk(token, base_url=fake.base_url).message.publish(url=HOOK, body="x")
        assert str(raised.value) == (
            f"Request failed with status: 401, body: {json.dumps({'error': error})}"
        )
        (call,) = fake.calls
        assert (call.unserved_reason, call.token) == ("unauthorized", token or None)
        assert fake.published == []
        sdk("s3cret", base_url=fake.base_url).message.publish(url=HOOK, body="x")
        assert len(fake.published) == 1


def test_with_no_token_set_a_request_without_authorization_is_refused_everywhere(
    any_fake: QStashTasksFake,
) -> None:
    # Any non-empty token passes when none is set; no token at all never does.
    any_fake.add("msg_1", count=1)
    any_fake.expect_unserved("unauthorized")
    answers = [
        httpx.request(method, any_fake.base_url + path, content=b"x")
        for method, path in [
            ("GET", "/v1/messages/msg_1/tasks"),
            ("POST", f"/v2/publish/{HOOK}"),
            ("POST", "/v2/batch"),
            ("DELETE", "/v2/messages"),
            ("GET", "/v2/topics"),
        ]
    ]
    assert [a.status_code for a in answers] == [401] * 5
    assert len({a.json()["error"] for a in answers}) == 1  # in the same words
    assert (any_fake.published, any_fake.message_ids()) == ([], ["msg_1"])


def test_a_delay_in_milliseconds_is_milliseconds(any_fake: QStashTasksFake, client: QStash) -> None:
    seen: list[int] = []
    any_fake.destination(HOOK).deliver_to(lambda delivery: seen.append(any_fake.clock.now) or 200)
    start = any_fake.clock.start
    short = client.message.publish(url=HOOK, body="x", delay="500ms").message_id
    assert client.message.get(short).not_before == start + 500
    any_fake.clock.advance(10_000)
    assert [d.at for d in any_fake.deliveries] == [start + 500]
    mixed = client.message.publish(url=HOOK, body="y", delay="1s250ms").message_id
    assert client.message.get(mixed).not_before == any_fake.clock.now + 1_250


def test_an_unknown_url_group_is_named_beside_the_known_ones(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    for name in ("orders", "emails"):
        client.url_group.upsert_endpoints(name, [{"url": HOOK}])
    any_fake.expect_unserved("unknown_url_group")
    with pytest.raises(QStashError) as raised:
        client.message.publish(url_group="order", body="x")
    error = (
        "destination 'order' is neither a URL nor a known URL group "
        "(URL groups: 'orders', 'emails')"
    )
    assert (
        str(raised.value)
        == f"Request failed with status: 404, body: {json.dumps({'error': error})}"
    )


@pytest.mark.qstash_tasks(seed=7)
def test_published_ids_come_from_the_test_s_seed(qstash_tasks: QStashTasksFake, sdk: Sdk) -> None:
    client = sdk(qstash_tasks.token, base_url=qstash_tasks.base_url)
    ids = [client.message.publish(url=HOOK, body=body).message_id for body in "ab"]
    tasks = [qstash_tasks.tasks(message_id)[0].task_id for message_id in ids]
    # The ids seed 7 gives on every machine (make_tasks(seed=7) starts with the same).
    assert ids == ["msg_y7yRwLtBxEjfFgLkPqpsbCbDtpQK", "msg_EMzEX2FwjPeAZp1PZn4vgTErUCuJ"]
    assert tasks == ["tsk_d96dkVpNJ1RRHUiccdra25kFZcu1", "tsk_dQh4kGyQZuJSfHzs9paG2ZyeaXLV"]


def test_a_failing_test_that_only_published_shows_its_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from qstash import QStash

        def test_it(qstash_tasks):
            client = QStash(qstash_tasks.token, base_url=qstash_tasks.base_url)
            client.message.publish(url="https://app.example.com/hook", body="x")
            assert False, "the app's own check"
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*- qstash_tasks seed -*", "generated tasks were seeded with *"])


def test_the_default_seed_is_the_whole_node_id_s(pytester: pytest.Pytester) -> None:
    from pytest_qstash_tasks._core.seeding import seed_for

    pytester.makepyfile(
        """
        import pytest
        from pytest_qstash_tasks import make_tasks

        @pytest.mark.parametrize("case", ["a (b) c"])
        def test_it(case):  # no fixture: the factories seed themselves
            make_tasks(1)
            assert False
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    node_id = "test_the_default_seed_is_the_whole_node_id_s.py::test_it[a (b) c]"
    result.stdout.fnmatch_lines([f"generated tasks were seeded with {seed_for(node_id)} *"])


def test_a_batch_with_one_bad_entry_publishes_none(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.expect_unserved("bad_request")
    with pytest.raises(QStashError) as raised:
        client.message.batch_json(
            [{"url": HOOK, "body": 1}, {"url": HOOK, "body": 2, "delay": "5 minutes"}]
        )
    assert "batch entry 1: invalid Upstash-Delay '5 minutes'" in str(raised.value)
    assert "(no entry of the batch was published)" in str(raised.value)
    assert (any_fake.published, any_fake.message_ids()) == ([], [])


def test_a_refused_batch_entry_keeps_its_reason_and_answers_json(
    any_fake: QStashTasksFake,
) -> None:
    any_fake.expect_unserved("unknown_url_group")
    answer = httpx.post(
        any_fake.base_url + "/v2/batch",
        json=[{"destination": GOOD}, {"destination": "no-such-group"}],
        headers={"Authorization": f"Bearer {any_fake.token}"},
    )
    assert (answer.status_code, answer.headers["content-type"]) == (404, "application/json")
    assert answer.json() == {
        "error": "batch entry 1: destination 'no-such-group' is neither a URL nor a known URL "
        "group (URL groups: none)" + BATCH_TAIL
    }
    assert any_fake.calls[0].unserved_reason == "unknown_url_group"


def test_the_url_group_list_answers_with_a_trailing_slash_too(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    client.url_group.upsert_endpoints("g", [{"url": HOOK}])
    auth = {"Authorization": f"Bearer {any_fake.token}"}
    listed = [
        httpx.get(any_fake.base_url + path, headers=auth).json()
        for path in ("/v2/topics", "/v2/topics/")
    ]
    assert listed[0] == listed[1]
    assert [group["name"] for group in listed[0]] == ["g"]


BATCH_TAIL = " (no entry of the batch was published)"
ENDPOINTS_WANTED = 'want {"endpoints": [{"url": ..., "name": ...}, ...]}'
GOOD = "https://a.example.com/"

#: Requests the SDK never sends, as other clients might: (method, path, body) -> answer.
BAD_REQUESTS: list[tuple[str, str, str, int, str]] = [
    ("POST", "/v2/batch", '{"a": 1}', 400, "a batch is a non-empty JSON array of messages"),
    ("POST", "/v2/batch", "[]", 400, "a batch is a non-empty JSON array of messages"),
    (
        "POST",
        "/v2/batch",
        "not json",
        400,
        "the body is not valid JSON: Expecting value: line 1 column 1 (char 0)",
    ),
    (
        "POST",
        "/v2/batch",
        "[1]",
        400,
        "batch entry 0: each entry is a JSON object with a destination" + BATCH_TAIL,
    ),
    (
        "POST",
        "/v2/batch",
        '[{"body": "x"}]',
        400,
        "batch entry 0: destination is missing" + BATCH_TAIL,
    ),
    (
        "POST",
        "/v2/batch",
        '[{"destination": ""}]',
        400,
        "batch entry 0: destination is missing" + BATCH_TAIL,
    ),
    (
        "POST",
        "/v2/batch",
        f'[{{"destination": "{GOOD}"}}, {{"destination": "{GOOD}", "headers": {{"a": 1}}}}]',
        400,
        "batch entry 1: headers must be an object of strings" + BATCH_TAIL,
    ),
    (
        "POST",
        "/v2/batch",
        f'[{{"destination": "{GOOD}", "headers": []}}]',
        400,
        "batch entry 0: headers must be an object of strings" + BATCH_TAIL,
    ),
    (
        "POST",
        "/v2/batch",
        f'[{{"destination": "{GOOD}", "body": 5}}]',
        400,
        "batch entry 0: body must be a string" + BATCH_TAIL,
    ),
    (
        "POST",
        "/v2/batch",
        f'[{{"destination": "{GOOD}", "queue": "bad name"}}]',
        400,
        "batch entry 0: invalid queue name 'bad name'" + BATCH_TAIL,
    ),
    (
        "POST",
        "/v2/batch",
        f'[{{"destination": "{GOOD}", "queue": 5}}]',
        400,
        "batch entry 0: invalid queue name 5" + BATCH_TAIL,
    ),
    (
        "DELETE",
        "/v2/messages",
        '{"messageIds": "msg_1"}',
        400,
        "messageIds must be an array of strings, got 'msg_1'",
    ),
    (
        "DELETE",
        "/v2/messages",
        "[1]",
        400,
        "the body must be a JSON object of messageIds or filters",
    ),
    ("GET", "/v2/messages/msg_nope", "", 404, "message not found"),
    (
        "POST",
        "/v2/topics/bad name/endpoints",
        f'{{"endpoints": [{{"url": "{GOOD}"}}]}}',
        400,
        "invalid URL group name 'bad name': use letters, digits, '.', '_', '-'",
    ),
    ("POST", "/v2/topics/g/endpoints", '{"endpoints": []}', 400, ENDPOINTS_WANTED),
    ("POST", "/v2/topics/g/endpoints", "[]", 400, ENDPOINTS_WANTED),
    ("POST", "/v2/topics/g/endpoints", '{"endpoints": [5]}', 400, "each endpoint needs a url"),
    (
        "POST",
        "/v2/topics/g/endpoints",
        '{"endpoints": [{"name": "n"}]}',
        400,
        "each endpoint needs a url",
    ),
    (
        "DELETE",
        "/v2/topics/g/endpoints",
        '{"endpoints": [{}]}',
        400,
        "each endpoint needs a url or a name",
    ),
    (
        "POST",
        "/v2/topics/g/endpoints",
        f'{{"endpoints": [{{"name": 5, "url": "{GOOD}"}}]}}',
        400,
        "an endpoint's name must be a string, got 5",
    ),
    (
        "POST",
        "/v2/topics/g/endpoints",
        '{"endpoints": [{"url": "ftp://a"}]}',
        400,
        "invalid endpoint url 'ftp://a': want an http:// or https:// URL with a host",
    ),
    (
        "POST",
        "/v2/topics/g/endpoints",
        '{"endpoints": [{"url": 5}]}',
        400,
        "invalid endpoint url 5: want an http(s) URL",
    ),
    ("GET", "/v2/topics/nope", "", 404, "URL group 'nope' not found"),
    (
        "DELETE",
        "/v2/topics/nope/endpoints",
        f'{{"endpoints": [{{"url": "{GOOD}"}}]}}',
        404,
        "URL group 'nope' not found",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    BAD_REQUESTS,
    ids=[f"{method} {path} {body[:40]}" for method, path, body, *_ in BAD_REQUESTS],
)
def test_bad_message_api_requests_get_a_4xx_naming_what_is_wrong(
    any_fake: QStashTasksFake, method: str, path: str, body: str, status: int, error: str
) -> None:
    import requests

    any_fake.assert_all_requests_served = False
    answer = requests.request(
        method,
        any_fake.base_url + path,
        data=body.encode(),
        headers={"Authorization": f"Bearer {any_fake.token}"},
        timeout=5,
    )
    assert (answer.status_code, answer.json()) == (status, {"error": error})
    assert (any_fake.published, any_fake.message_ids()) == ([], [])
    (call,) = any_fake.calls
    detail = "no message 'msg_nope' was published" if path == "/v2/messages/msg_nope" else error
    reason = "bad_request"
    if status == 404:
        reason = "unknown_url_group" if error.startswith("URL group") else "unknown_message"
    assert (call.status, call.unserved_reason, call.detail) == (status, reason, detail)
    assert call.token == any_fake.token


def test_a_timeout_with_a_unit_is_that_long(any_fake: QStashTasksFake, client: QStash) -> None:
    any_fake.destination(HOOK).deliver_to(lambda delivery: time.sleep(0.3) or 200)
    message_id = client.message.publish(url=HOOK, body="x", timeout="250ms", retries=0).message_id
    any_fake.clock.advance(1_000)
    error = one_task(client, message_id)["error"]  # the time taken is the machine's
    assert re.fullmatch(r"request timed out: the receiver took \d+\.\d+ s, past 0\.25 s", error)


def test_a_delivered_message_is_gone_from_the_message_api_but_not_its_tasks(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    message_id = client.message.publish(url=HOOK, body="x").message_id
    any_fake.clock.advance(1_000)
    any_fake.expect_unserved("unknown_message", message_id=message_id)
    with pytest.raises(QStashError, match="404"):
        client.message.get(message_id)
    assert any_fake.calls[-1].detail == (
        f"message {message_id!r} was delivered, and QStash keeps a message only until its "
        "delivery is over (its tasks stay readable)"
    )
    assert one_task(client, message_id)["state"] == "delivered"


@pytest.mark.parametrize("end", ["failed", "cancelled"])
def test_a_failed_or_cancelled_message_is_gone_from_the_message_api_and_says_why(
    any_fake: QStashTasksFake, client: QStash, end: str
) -> None:
    any_fake.destination(HOOK).answers(500, 500)
    message_id = client.message.publish(url=HOOK, body="x", retries=1).message_id
    other = client.message.publish(url=HOOK, body="y", delay="1d").message_id
    if end == "cancelled":
        client.message.cancel(message_id)
        any_fake.assert_all_destination_answers_used = False  # no attempt met them
    any_fake.clock.advance(60_000)  # a failure's retry ran out by then
    any_fake.expect_unserved("unknown_message", message_id=message_id)
    with pytest.raises(QStashError, match="404"):
        client.message.get(message_id)
    how = "failed: its retries ran out" if end == "failed" else "was cancelled"
    assert any_fake.calls[-1].detail == (
        f"message {message_id!r} {how}, and QStash keeps a message only until its delivery "
        "is over (its tasks stay readable)"
    )
    assert one_task(client, message_id)["state"] == ("failed" if end == "failed" else "canceled")
    # Over, it is not cancelled again: only the pending one counts.
    assert client.message.cancel_many([message_id, other]) == 1


def test_a_message_delivered_after_a_retry_is_said_to_be_delivered(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination(HOOK).answers(500, 200)
    message_id = client.message.publish(url=HOOK, body="x").message_id
    any_fake.clock.advance(60_000)
    any_fake.expect_unserved("unknown_message", message_id=message_id)
    with pytest.raises(QStashError, match="404"):
        client.message.get(message_id)
    assert any_fake.calls[-1].detail.startswith(f"message {message_id!r} was delivered, ")


def test_a_message_is_kept_between_attempts_and_gone_the_ms_its_last_one_ends(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination(HOOK).answers(500)
    message_id = client.message.publish(url=HOOK, body="x").message_id
    any_fake.clock.advance(5_000)  # the first attempt failed; the retry waits
    assert one_task(client, message_id)["state"] == "error"
    assert client.message.get(message_id).message_id == message_id
    any_fake.clock.advance(60_000)
    ended = one_task(client, message_id)["completedAt"]
    # The same publish on a fake at the same start: kept until the very ms it ends.
    with QStashTasksMock(base_url="https://qstash.again.test") as again:
        again.destination(HOOK).answers(500)
        same = QStash(again.token, base_url=again.base_url)
        second_id = same.message.publish(url=HOOK, body="x").message_id
        again.clock.advance(ended - 1 - again.clock.now)
        assert same.message.get(second_id).message_id == second_id
        again.clock.advance(1)
        again.expect_unserved("unknown_message", message_id=second_id)
        with pytest.raises(QStashError, match="404"):
            same.message.get(second_id)


def test_every_message_api_call_is_recorded_with_its_status_and_token(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    message_id = client.message.publish(url=HOOK, body="x").message_id
    client.message.batch_json([{"url": HOOK, "body": 1}])
    client.message.get(message_id)
    client.url_group.upsert_endpoints("g", [{"url": HOOK}])
    client.url_group.get("g")
    client.url_group.list()
    client.url_group.remove_endpoints("g", [{"url": HOOK}])
    client.url_group.upsert_endpoints("g", [{"url": HOOK}])
    client.url_group.delete("g")
    client.message.cancel(message_id)
    client.message.cancel_many([message_id])
    paths = [
        (call.method, call.url.removeprefix(any_fake.base_url), call.status, call.unserved_reason)
        for call in any_fake.calls
    ]
    assert paths == [
        ("POST", f"/v2/publish/{HOOK}", 200, None),
        ("POST", "/v2/batch", 200, None),
        ("GET", f"/v2/messages/{message_id}", 200, None),
        ("POST", "/v2/topics/g/endpoints", 200, None),
        ("GET", "/v2/topics/g", 200, None),
        ("GET", "/v2/topics", 200, None),
        ("DELETE", "/v2/topics/g/endpoints", 200, None),
        ("POST", "/v2/topics/g/endpoints", 200, None),
        ("DELETE", "/v2/topics/g", 200, None),
        ("DELETE", f"/v2/messages/{message_id}", 200, None),
        ("DELETE", "/v2/messages", 200, None),
    ]
    assert {call.token for call in any_fake.calls} == {any_fake.token}
    # The calls about one message say which; an empty answer is empty, with no type.
    assert [call.message_id for call in any_fake.calls if message_id in call.url] == [
        message_id
    ] * 2
    empty = [any_fake.calls[i] for i in (3, 6, 7, 8)]  # endpoints, group
    assert [(c.response_body, dict(c.response_headers)) for c in empty] == [(b"", {})] * 4
    assert any_fake.calls[9].response_body == b'{"cancelled":1}'
    assert dict(any_fake.calls[2].response_headers) == {"content-type": "application/json"}


def test_a_refused_publish_fails_the_test_unless_expected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from qstash import QStash

        def test_it(qstash_tasks):
            client = QStash(qstash_tasks.token, base_url=qstash_tasks.base_url)
            try:
                client.message.publish(url="https://app.example.com/", body="x", delay="soon")
            except Exception:
                pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "E*1. 1 request(s) to https://qstash.upstash.io could not be served:",
            "E*  - POST https://qstash.upstash.io/v2/publish/https://app.example.com/ -> 400: "
            "invalid Upstash-Delay 'soon': want a number and a unit, e.g. 10s, 5m, 2h, 1d",
        ]
    )


def test_scripted_answers_never_met_fail_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import re

        def test_it(qstash_tasks):
            qstash_tasks.destination("https://app.example.com/hook").answers(500, 200)
            qstash_tasks.destination(re.compile(r"/other$")).answers(TimeoutError)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "E*1. 2 destination(s) kept scripted answers no delivery attempt met:",
            "E*  - destination('https://app.example.com/hook'): [[]500, 200] left",
            "E*  - destination(re.compile('/other$')): [[]<class 'TimeoutError'>] left",
            "E*  (if that is what the test wants, turn this check off with "
            "@pytest.mark.qstash_tasks(assert_all_destination_answers_used=False) or the ini "
            "option qstash_tasks_assert_all_destination_answers_used = false)",
        ]
    )


def test_a_hand_made_fake_checks_its_scripted_answers_too() -> None:
    fake = QStashTasksMock()
    with fake:
        fake.destination("https://app.example.com/hook").answers(500)
        with pytest.raises(AssertionError) as caught:
            fake.verify()
        fake.assert_all_destination_answers_used = False
    assert str(caught.value).endswith(
        "(if that is what the test wants, turn this check off with "
        "QStashTasksMock(assert_all_destination_answers_used=False) or "
        "fake.assert_all_destination_answers_used = False)"
    )


# -- settings and scripts --------------------------------------------------------------


def test_settings_change_the_defaults(sdk: Sdk) -> None:
    with QStashTasksMock(default_retries=5, default_answer=502, max_message_size=10) as fake:
        client = sdk(fake.token, base_url=fake.base_url)
        message_id = client.message.publish(url=HOOK, body="0123456789").message_id
        fake.clock.advance(86_400_000 * 3)
        (task,) = fake.tasks(message_id)
        assert (task.state, task.retried, task.max_retry) == ("failed", 5, 5)
        assert task.error == "HTTP status 502"
        fake.expect_unserved("bad_request")
        with pytest.raises(QStashError, match="413"):
            client.message.publish(url=HOOK, body="0123456789A")


def test_a_script_covers_its_exact_url_or_what_starts_with_its_prefix(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination("https://app.example.com/ho*").answers(503)
    any_fake.destination(HOOK + "/exact").answers(500)
    urls = [
        HOOK + "/exact",
        HOOK + "/exact/more",  # not the exact URL: the prefix's
        "https://app.example.com/other",  # neither
        "https://app.example.com/hx",  # nor this: the prefix is /ho
    ]
    ids = [client.message.publish(url=url, body="x", retries=0).message_id for url in urls]
    any_fake.clock.advance(1_000)
    assert [(t.state, t.error) for t in (any_fake.tasks(i)[0] for i in ids)] == [
        ("failed", "HTTP status 500"),
        ("failed", "HTTP status 503"),
        ("delivered", ""),
        ("delivered", ""),
    ]


def test_a_destination_is_kept_as_sent_and_scripts_match_either_form(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    cafe = "https://app.example.com/café"  # the SDK's httpx sends it percent-encoded
    slash = "https://app.example.com/a%2Fb"  # an escaped slash: not a path separator
    any_fake.destination(cafe).answers(503)
    any_fake.destination("https://app.example.com/a/*").answers(502)  # no script of it
    any_fake.destination("https://app.example.com/café/*").answers(504)  # a prefix, decoded
    received: list[str] = []
    any_fake.destination(slash).deliver_to(lambda delivery: received.append(delivery.url) or 200)
    urls = (cafe, slash, cafe + "/menu")
    ids = [client.message.publish(url=url, body="x", retries=0).message_id for url in urls]
    assert [m.destination for m in any_fake.published] == [
        "https://app.example.com/caf%C3%A9",
        slash,
        "https://app.example.com/caf%C3%A9/menu",
    ]
    any_fake.assert_published(cafe)  # either form matches
    any_fake.assert_published("https://app.example.com/caf%C3%A9")
    any_fake.clock.advance(1_000)
    assert [any_fake.tasks(i)[0].error for i in ids] == ["HTTP status 503", "", "HTTP status 504"]
    assert received == [slash]
    any_fake.assert_delivered(slash)
    any_fake.assert_all_destination_answers_used = False  # the /a/* script: never met


def test_exact_scripts_come_before_prefixes_and_patterns() -> None:
    fake = QStashTasksMock()
    pattern = fake.destination(re.compile(r"example\.com"))
    prefix = fake.destination("https://app.example.com/*").answers(503)
    exact = fake.destination(HOOK).answers(500)
    assert fake.destination(HOOK) is exact
    assert fake._destinations.route(HOOK, "m", 0)[0] == 500
    assert fake._destinations.route(HOOK, "m", 0)[0] == 503  # the prefix, next in line
    assert fake._destinations.route(HOOK, "m", 0)[0] == 200  # the default
    flagged = fake.destination(re.compile("shop", re.IGNORECASE))
    assert flagged.describe() == "destination(re.compile('shop', re.IGNORECASE))"
    pattern.answers(404, 200)
    assert repr(pattern) == (
        "<Destination destination(re.compile('example\\\\.com')) remaining=[404, 200]>"
    )
    assert fake._destinations.route("https://example.com/x", "m", 0)[0] == 404
    assert (
        repr(pattern) == "<Destination destination(re.compile('example\\\\.com')) remaining=[200]>"
    )
    assert prefix.remaining == []
    with pytest.raises(ValueError) as raised:  # noqa: PT011 (the whole text, below)
        prefix.answers()
    assert str(raised.value) == "answers() needs at least one outcome, e.g. answers(500, 200)"


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("", "destination() takes a URL, a prefix ending in '*'"),
        ("*", "destination() takes a URL, a prefix ending in '*' (e.g. "),
        (42, "destination() takes a URL, a prefix ending in '*' or a compiled pattern, not int"),
    ],
)
def test_a_bad_destination_target_is_refused(target: Any, error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=re.escape(error)):
        QStashTasksMock().destination(target)


def test_a_bad_default_answer_is_refused() -> None:
    with pytest.raises(ValueError, match="default_answer: an outcome status must be 100-599"):
        QStashTasksMock(default_answer=42)


def test_a_bad_scripted_answer_is_refused_and_nothing_is_queued() -> None:
    destination = QStashTasksMock().destination(HOOK)
    with pytest.raises(ValueError, match="an outcome status must be 100-599, got 99"):
        destination.answers(500, 99)
    assert destination.remaining == []


def test_reset_forgets_messages_groups_and_scripts(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination(HOOK).answers(500)
    client.url_group.upsert_endpoints(url_group="g", endpoints=[{"url": HOOK}])
    client.message.publish(url=HOOK, body="x")
    any_fake.reset()
    assert (any_fake.published, any_fake.message_ids(), client.url_group.list()) == ([], [], [])
    assert any_fake.problems() == []


def test_requests_publishes_too(any_fake: QStashTasksFake) -> None:
    import requests

    answer = requests.post(
        f"{any_fake.base_url}/v2/publish/{HOOK}?tenant=7",
        data=b"raw",
        headers={"Authorization": f"Bearer {any_fake.token}", "Upstash-Retries": "0"},
        timeout=5,
    )
    assert answer.status_code == 200
    message_id = answer.json()["messageId"]
    (task,) = any_fake.tasks(message_id)
    assert (task.url, task.max_retry) == (f"{HOOK}?tenant=7", 0)
    assert any_fake.published[0].body == b"raw"


def test_the_marker_and_ini_options_configure_publishing(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        qstash_tasks_default_retries = 1
        qstash_tasks_max_message_size = 5
        qstash_tasks_assert_all_destination_answers_used = false
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.qstash_tasks(default_answer=503)
        def test_it(qstash_tasks):
            assert (qstash_tasks.default_retries, qstash_tasks.max_message_size) == (1, 5)
            assert qstash_tasks.default_answer == 503
            assert not qstash_tasks.assert_all_destination_answers_used
            qstash_tasks.destination("https://never.example/").answers(500)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


# -- the retry-delay expression: parsed, never evaluated as code ------------------------


@pytest.mark.parametrize(
    ("text", "delays"),
    [
        ("1000", [1000, 1000, 1000]),
        ("1000 * (1 + retried)", [1000, 2000, 3000]),
        ("pow(2, retried) * 1000", [1000, 2000, 4000]),
        ("max(1000, pow(2, retried) * 100)", [1000, 1000, 1000]),
        ("min(500, 100 * retried) + -5 % 3", [-2, 98, 198]),
        ("sqrt(16) + abs(-1) + floor(1.7) + ceil(1.2) + round(2.5) + exp(0)", [12] * 3),
        ("10 / 4 * 1000", [2500] * 3),
        ("1e3", None),
        ("86400000 * 2", [86_400_000] * 3),
        ("1000 - retried", [1000, 999, 998]),
        ("10000 - 2000 - 3000", [5000] * 3),  # from the left, not 10000 - (2000 - 3000)
        ("8000 / 4 / 2", [1000] * 3),
        ("9000 % 5000 % 3000", [1000] * 3),
        ("-retried * 10 + 100", [100, 90, 80]),
        ("+5000", [5000] * 3),
        ("1000 ", [1000] * 3),  # blanks at the end
        ("9 % 4 * 1000 / 2", [500] * 3),
        ("(" * 50 + "retried" + ")" * 50, [0, 1, 2]),  # as deep as it may go
        ("-" * 50 + "7", [7] * 3),
        ("abs(" * 50 + "7" + ")" * 50, [7] * 3),
        ("min(" * 49 + "max(1, 2)" + ")" * 49, [2] * 3),  # one argument: itself
        ("1" * 1000, [86_400_000] * 3),  # the longest text: no delay is over a day
    ],
)
def test_retry_delay_expressions(text: str, delays: list[int] | None) -> None:
    from pytest_qstash_tasks._core.engine.retry_delay import RetryDelay

    if delays is None:
        with pytest.raises(ValueError, match=r"unexpected 'e3' at position 1"):
            RetryDelay.parse(text)
        return
    expected = [max(0, delay) for delay in delays]  # a delay below 0 ms waits 0 ms
    assert [RetryDelay.parse(text).ms(retried) for retried in range(3)] == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "'' ends too early"),
        ("1000 +", "'1000 +' ends too early"),
        ("pow(2)", "pow() takes 2 argument(s), got 1 in 'pow(2)'"),
        ("(1", "'(1' ends too early: want ')'"),
        ("1)", "unexpected ')' at position 1 of '1)'"),
        ("2 ** 3", "unexpected '*' at position 3 of '2 ** 3'"),
        ("retried.__class__", "unexpected '.' at position 7"),
        ("open('x')", "unknown name (the variable is retried; functions: pow, sqrt, abs"),
        ("1/0", "'1/0' cannot be computed for retried=0: float division by zero"),
        ("sqrt(-1)", "'sqrt(-1)' cannot be computed for retried=0: math domain error"),
        ("(" * 51 + "1" + ")" * 51, "nests deeper than 50 levels"),
        ("-" * 51 + "1", f"{'-' * 51 + '1'!r} nests deeper than 50 levels"),
        ("abs(" * 51 + "1" + ")" * 51, "nests deeper than 50 levels"),
        ("max(1, " * 51 + "1" + ")" * 51, "nests deeper than 50 levels"),  # a later argument
        ("1" * 1001, "the expression is over 1000 characters"),
        ("abs(", "'abs(' ends too early"),
        ("pow(2, 3", "'pow(2, 3' ends too early: want ')'"),
        ("sqrt 4", "want '(', got '4' at position 5 of 'sqrt 4'"),
        ("exp(1000)", "'exp(1000)' cannot be computed for retried=0: math range error"),
        ("9" * 400 + " - " + "9" * 400, "is not a number for retried=0"),
    ],
)
def test_retry_delay_refuses_what_it_cannot_read(text: str, error: str) -> None:
    from pytest_qstash_tasks._core.engine.retry_delay import RetryDelay

    with pytest.raises(ValueError, match=re.escape(error)):
        RetryDelay.parse(text)


@pytest.mark.parametrize(
    ("text", "retries", "error"),
    [
        ("1000/(retried-1)", 3, "cannot be computed for retried=1: float division by zero"),
        ("sqrt(1-retried)*1000", 3, "cannot be computed for retried=2: math domain error"),
        ("exp(retried*800)", 3, "cannot be computed for retried=1: math range error"),
        ("1000 * (9 - retried) % (9 - retried)", 100, "for retried=9: math domain error"),
    ],
)
def test_a_retry_delay_that_fails_at_a_later_retry_is_refused_at_publish(
    any_fake: QStashTasksFake, client: QStash, text: str, retries: int, error: str
) -> None:
    with pytest.raises(QStashError, match=re.escape(error)):
        client.message.publish(url=HOOK, body="x", retries=retries, retry_delay=text)
    assert (any_fake.published, any_fake.message_ids()) == ([], [])
    any_fake.expect_unserved("bad_request")


def test_a_retry_delay_is_computed_only_for_the_retries_a_message_can_make(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    # Fails at retried=1 (a division by zero), which a message with one retry never asks.
    any_fake.destination(HOOK).answers(500, 500)
    message_id = client.message.publish(
        url=HOOK, body="x", retries=1, retry_delay="1000/(retried-1) + 3000"
    ).message_id
    any_fake.clock.advance(60_000)
    (first, second) = any_fake.destination(HOOK).used
    assert second.at - first.at == 500 + 2000  # active 500 ms, then 1000/(0-1) + 3000
    assert one_task(client, message_id)["state"] == "failed"


def _random_expression(rng: random.Random, depth: int = 0) -> str:
    """One of QStash's retry-delay expressions, or something near one: numbers of every
    size, ``retried``, signs, the four operators and ``%``, the nine functions with the
    right number of arguments or not, and now and then a character of no grammar."""
    roll = rng.random()
    if depth > 4 or roll < 0.3:
        return rng.choice(
            ["retried", "0", "1", "2.5", "1000", "0.001", "9" * rng.randint(1, 400), ".5"]
        )
    if roll < 0.4:
        return rng.choice("+-") + _random_expression(rng, depth + 1)
    if roll < 0.65:
        operator = rng.choice(["+", "-", "*", "/", "%"])
        left, right = (_random_expression(rng, depth + 1) for _ in range(2))
        return f"{left} {operator} {right}"
    if roll < 0.75:
        return f"({_random_expression(rng, depth + 1)})"
    if roll < 0.98:
        name = rng.choice(["pow", "sqrt", "abs", "exp", "floor", "ceil", "round", "min", "max"])
        count = rng.choice([1, 1, 2, 2, 3]) if name != "pow" else rng.choice([2, 2, 2, 1, 3])
        arguments = ", ".join(_random_expression(rng, depth + 1) for _ in range(count))
        return f"{name}({arguments})"
    return rng.choice(["**", "x", "retried()", "1e3", "(", "__import__", "1,2"])


@in_process_only
@pytest.mark.qstash_tasks(default_answer=500)
def test_a_thousand_random_retry_delays_are_refused_at_publish_or_run_through_every_retry(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    rng = random.Random(20261206)
    accepted: list[tuple[str, int, str]] = []
    statuses: collections.Counter[int] = collections.Counter()
    with client_for(any_fake) as http:
        for _ in range(1000):
            text, retries = _random_expression(rng), rng.randint(0, 6)
            answer = http.post(
                f"/v2/publish/{HOOK}",
                content=b"x",
                headers={"Upstash-Retry-Delay": text, "Upstash-Retries": str(retries)},
            )
            statuses[answer.status_code] += 1
            if answer.status_code == 200:
                accepted.append((text, retries, answer.json()["messageId"]))
            else:
                assert answer.status_code == 400, (text, answer.text)
                assert answer.json()["error"].startswith("invalid Upstash-Retry-Delay: ")
    assert set(statuses) == {200, 400}
    assert min(statuses.values()) > 100  # both kinds met, often
    any_fake.clock.advance(8 * 86_400_000)  # six retries, each at most a day apart
    for text, retries, message_id in accepted:
        (task,) = any_fake.tasks(message_id)
        assert (task.state, task.retried) == ("failed", retries), text
    any_fake.expect_unserved("bad_request")


def test_a_function_given_the_wrong_number_of_arguments_is_a_400_through_the_sdk(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    # In-process it must not raise TypeError in the client, nor be a 500 over a socket.
    with pytest.raises(QStashError) as raised:
        client.message.publish(url=HOOK, body="x", retry_delay="pow(2, 3, 4)")
    error = {"error": "invalid Upstash-Retry-Delay: pow() takes 2 argument(s), got 3 in "
             "'pow(2, 3, 4)'"}  # fmt: skip
    assert str(raised.value) == f"Request failed with status: 400, body: {json.dumps(error)}"
    assert any_fake.published == []
    any_fake.expect_unserved("bad_request")
