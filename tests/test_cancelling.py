"""Cancelling messages: one by id, many by ids in the query (what the Node SDK sends) or
the JSON body (qstash-py), by QStash's filters, or all. A bulk cancel never cancels a
message it was not asked to: what it cannot read is refused with nothing changed. Every
test runs through each transport."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from qstash import AsyncQStash, QStash

from pytest_qstash_tasks import QStashTasksFake
from tests.helpers import client_for

HOOK = "https://app.example.com/hook"
OTHER = "https://other.example.org/in/bound"


@pytest.fixture
def client(any_fake: QStashTasksFake, sdk: Callable[..., QStash]) -> QStash:
    return sdk(any_fake.token, base_url=any_fake.base_url)


@pytest.fixture
def http(any_fake: QStashTasksFake) -> Iterator[httpx.Client]:
    with client_for(any_fake) as client:
        yield client


def publish(client: QStash, count: int, url: str = HOOK, **options: Any) -> list[str]:
    """``count`` messages a day away, so each is still pending when cancelled."""
    return [
        client.message.publish(url=url, body=str(i), delay="1d", **options).message_id
        for i in range(count)
    ]


def states(any_fake: QStashTasksFake, ids: list[str]) -> list[str]:
    return [any_fake.tasks(message_id)[0].state for message_id in ids]


def bulk_cancel(http: httpx.Client, query: str = "", body: Any = None) -> httpx.Response:
    content = None if body is None else json.dumps(body)
    return http.request("DELETE", f"/v2/messages{query}", content=content)


def test_ids_in_the_query_cancel_only_those(
    any_fake: QStashTasksFake, client: QStash, http: httpx.Client
) -> None:
    ids = publish(client, 4)
    answer = bulk_cancel(http, f"?messageIds={ids[0]}&messageIds={ids[2]}&messageIds=msg_gone")
    assert (answer.status_code, answer.json()) == (200, {"cancelled": 2})
    assert states(any_fake, ids) == ["canceled", "created", "canceled", "created"]
    assert bulk_cancel(http, f"?messageIds={ids[1]},{ids[3]}").json() == {"cancelled": 2}
    assert states(any_fake, ids) == ["canceled"] * 4


def test_the_sdk_cancels_the_ids_it_names_and_then_all(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    ids = publish(client, 3)
    assert client.message.cancel_many([ids[1], "msg_gone"]) == 1
    assert states(any_fake, ids) == ["created", "canceled", "created"]
    assert client.message.cancel_all() == 2
    assert states(any_fake, ids) == ["canceled"] * 3


@pytest.mark.asyncio
async def test_the_async_sdk_cancels_the_ids_it_names(
    any_fake: QStashTasksFake, async_sdk: Callable[..., AsyncQStash]
) -> None:
    client = async_sdk(any_fake.token, base_url=any_fake.base_url)
    ids = [
        (await client.message.publish(url=HOOK, body=str(i), delay="1d")).message_id
        for i in range(3)
    ]
    assert await client.message.cancel_many([ids[0]]) == 1
    assert states(any_fake, ids) == ["canceled", "created", "created"]
    await client.message.cancel(ids[2])
    assert states(any_fake, ids) == ["canceled", "created", "canceled"]


def test_one_cancelled_by_id_answers_200_with_json(
    any_fake: QStashTasksFake, client: QStash, http: httpx.Client
) -> None:
    first, second = publish(client, 2)
    answer = http.delete(f"/v2/messages/{first}")
    # The Node SDK parses this answer as JSON ({cancelled: number}).
    assert (answer.status_code, answer.json()) == (200, {"cancelled": 1})
    assert answer.headers["content-type"] == "application/json"
    assert states(any_fake, [first, second]) == ["canceled", "created"]


def test_filters_cancel_what_they_match_and_or_within_a_key(
    any_fake: QStashTasksFake, client: QStash, http: httpx.Client
) -> None:
    blue = publish(client, 2, label="blue")
    red = publish(client, 1, label="red")
    other = publish(client, 1, url=OTHER, label="blue")
    queued = client.message.enqueue(queue="q", url=HOOK, body="q").message_id
    # Keys AND'ed: blue and at HOOK's host, so not the blue one at OTHER.
    answer = bulk_cancel(http, "?label=blue&host=app.example.com")
    assert answer.json() == {"cancelled": 2}
    assert states(any_fake, [*blue, *red, *other, queued]) == [
        "canceled", "canceled", "created", "created", "created",
    ]  # fmt: skip
    # Values OR'ed, repeated or comma-separated, from the JSON body too.
    answer = bulk_cancel(http, body={"queueName": ["q"], "label": "red,nothing"})
    assert answer.json() == {"cancelled": 0}  # nothing is both queued and red
    assert bulk_cancel(http, "?path=/in/bound&path=/nowhere").json() == {"cancelled": 1}
    assert bulk_cancel(http, body={"url": [HOOK], "queueName": "q"}).json() == {"cancelled": 1}
    assert states(any_fake, [*red, *other, queued]) == ["created", "canceled", "canceled"]


def test_date_filters_bound_the_creation_time(
    any_fake: QStashTasksFake, client: QStash, http: httpx.Client
) -> None:
    early = publish(client, 1)
    any_fake.clock.advance(1_000)
    late = publish(client, 1)
    start = any_fake.clock.start
    assert bulk_cancel(http, f"?toDate={start + 999}").json() == {"cancelled": 1}
    assert bulk_cancel(http, body={"fromDate": start + 1_000}).json() == {"cancelled": 1}
    assert states(any_fake, [*early, *late]) == ["canceled", "canceled"]


def test_ids_win_over_filters(
    any_fake: QStashTasksFake, client: QStash, http: httpx.Client
) -> None:
    ids = publish(client, 2, label="x")
    assert bulk_cancel(http, f"?messageIds={ids[0]}&label=x").json() == {"cancelled": 1}
    assert states(any_fake, ids) == ["canceled", "created"]


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("", None),
        ("?count=100", None),  # the Node SDK's cancel({all: true})
        ("", {}),
        ("", {"messageIds": []}),  # QStash's docs: an empty array cancels every message
    ],
)
def test_all_are_cancelled_only_when_nothing_is_named(
    any_fake: QStashTasksFake, client: QStash, http: httpx.Client, query: str, body: Any
) -> None:
    ids = publish(client, 3)
    assert bulk_cancel(http, query, body).json() == {"cancelled": 3}
    assert states(any_fake, ids) == ["canceled"] * 3


@pytest.mark.parametrize(
    ("query", "body", "error"),
    [
        ("?messageId=msg_1", None, "unknown filter 'messageId': this endpoint takes "),
        ("?labels=a", None, "unknown filter 'labels'"),
        ("", {"ids": ["msg_1"]}, "unknown filter 'ids'"),
        ("?messageIds=", None, "messageIds has an empty value"),
        ("?label=a,", None, "label has an empty value"),
        ("?count=0", None, "count must be a positive integer, got '0'"),
        ("?count=\u00b2", None, "count must be a positive integer"),
        ("?fromDate=yesterday", None, "fromDate must be one unix time in milliseconds"),
        ("?toDate=1&toDate=2", None, "toDate must be one unix time in milliseconds"),
        ("", ["msg_1"], "the body must be a JSON object of messageIds or filters"),
        ("", {"messageIds": "msg_1"}, "messageIds must be an array of strings, got 'msg_1'"),
        ("", {"messageIds": [1]}, "messageIds must be a string, an array of strings"),
        ("", {"label": None}, "label must be a string, an array of strings"),
        ("", {"fromDate": -1}, "fromDate must be a string, an array of strings"),
        ("", {"count": True}, "count must be a string, an array of strings"),
    ],
)
def test_what_a_bulk_cancel_cannot_read_is_refused_with_nothing_cancelled(
    any_fake: QStashTasksFake,
    client: QStash,
    http: httpx.Client,
    query: str,
    body: Any,
    error: str,
) -> None:
    ids = publish(client, 2)
    answer = bulk_cancel(http, query, body)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(error)
    any_fake.expect_unserved("bad_request")
    assert states(any_fake, ids) == ["created", "created"]


def test_a_deeply_nested_body_is_refused(any_fake: QStashTasksFake, http: httpx.Client) -> None:
    answer = http.request("DELETE", "/v2/messages", content="[" * 100_000 + "]" * 100_000)
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "the body is not valid JSON: nested too deeply"},
    )
    any_fake.expect_unserved("bad_request")


def test_a_cancelled_task_has_no_next_attempt_anywhere_it_is_read(
    any_fake: QStashTasksFake, client: QStash, http: httpx.Client
) -> None:
    from pytest_qstash_tasks import TasksPage

    any_fake.destination(HOOK).answers(500)
    waiting = client.message.publish(url=HOOK, body="x").message_id
    planned = publish(client, 1)[0]
    any_fake.clock.advance(1_000)  # the first failed once and waits for its retry
    assert bulk_cancel(http).json() == {"cancelled": 2}
    for message_id in (waiting, planned):
        page = http.get(f"/v1/messages/{message_id}/tasks").json()
        (task,) = TasksPage.model_validate(page).tasks  # the package's own model reads it
        assert (task.state, task.next_process_at, page["tasks"][0]["nextProcessAt"]) == (
            "canceled",
            0,
            0,
        )
        assert any_fake.tasks(message_id)[0].next_process_at == 0


def test_the_control_api_shows_a_cancelled_task_with_no_next_attempt() -> None:
    from pytest_qstash_tasks import QStashTasksServer

    with QStashTasksServer(control=True) as fake, httpx.Client(base_url=fake.base_url) as http:
        http.headers["Authorization"] = "Bearer t"
        message_id = http.post(f"/v2/publish/{HOOK}", content=b"x").json()["messageId"]
        http.delete(f"/v2/messages/{message_id}")
        (task,) = http.get(f"/_fake/messages/{message_id}").json()["tasks"]
        assert (task["state"], task["nextProcessAt"]) == ("canceled", 0)


def test_dates_bound_both_ends_inclusive(
    any_fake: QStashTasksFake, client: QStash, http: httpx.Client
) -> None:
    start = any_fake.clock.start
    ids = []
    for _ in range(3):  # created at start, +1000, +2000
        ids += publish(client, 1)
        any_fake.clock.advance(1_000)
    middle = f"?fromDate={start + 1_000}&toDate={start + 1_000}"
    assert bulk_cancel(http, middle).json() == {"cancelled": 1}
    assert states(any_fake, ids) == ["planned", "canceled", "planned"]
    assert bulk_cancel(http, body={"fromDate": start + 1_001}).json() == {"cancelled": 1}
    assert bulk_cancel(http, body={"toDate": 0}).json() == {"cancelled": 0}  # 0: a date too
    assert states(any_fake, ids) == ["planned", "canceled", "canceled"]


def test_every_documented_filter_matches_what_a_message_was_given(
    any_fake: QStashTasksFake, client: QStash, http: httpx.Client
) -> None:
    any_fake.url_groups.upsert_endpoints("orders", [OTHER])
    grouped: Any = client.message.publish(url_group="orders", body="g", delay="1d")
    keyed = publish(client, 1, flow_control=_flow_control("tenant-1"))
    plain = publish(client, 1)
    assert bulk_cancel(http, "?scheduleId=scd_1").json() == {"cancelled": 0}  # none has one
    assert bulk_cancel(http, "?topicName=orders").json() == {"cancelled": 1}
    assert bulk_cancel(http, "?flowControlKey=tenant-1").json() == {"cancelled": 1}
    assert states(any_fake, [grouped[0].message_id, *keyed, *plain]) == [
        "canceled", "canceled", "created",
    ]  # fmt: skip
    assert bulk_cancel(http, "?callerIp=10.0.0.1").json() == {"cancelled": 0}
    assert bulk_cancel(http, "?callerIP=127.0.0.1").json() == {"cancelled": 1}  # the old name


def _flow_control(key: str) -> Any:
    from qstash.message import FlowControl

    return FlowControl(key=key, parallelism=1)


def test_ids_and_filters_are_read_past_a_count_before_them(
    any_fake: QStashTasksFake, client: QStash, http: httpx.Client
) -> None:
    ids = publish(client, 2)
    assert bulk_cancel(http, f"?count=10&messageIds={ids[0]}").json() == {"cancelled": 1}
    assert states(any_fake, ids) == ["canceled", "created"]


def test_the_words_of_a_bulk_cancel_s_refusals(
    any_fake: QStashTasksFake, http: httpx.Client
) -> None:
    any_fake.expect_unserved("bad_request")
    assert bulk_cancel(http, "?nope=1").json() == {
        "error": "unknown filter 'nope': this endpoint takes callerIp, flowControlKey, "
        "fromDate, host, label, messageIds, path, queueName, scheduleId, toDate, "
        "topicName, url"
    }
    assert bulk_cancel(http, body={"fromDate": ["1", "2"]}).json() == {
        "error": "fromDate must be one unix time in milliseconds, got ['1', '2']"
    }
