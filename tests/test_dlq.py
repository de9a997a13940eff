"""When a message fails: its callbacks, its failure callback, and the DLQ, read through
the official SDK and over HTTP, and from the test's side (``qstash_tasks.dlq``)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from qstash import AsyncQStash, QStash

from pytest_qstash_tasks import DeliveryRequest, QStashTasksFake, QStashTasksMock

APP = "https://app.example.com"
Sdk = Callable[..., QStash]


@pytest.fixture
def client(any_fake: QStashTasksFake, sdk: Sdk) -> QStash:
    return sdk(any_fake.token, base_url=any_fake.base_url)


def http(
    fake: QStashTasksFake, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {fake.token}", **(headers or {})}
    return requests.request(method, f"{fake.base_url}{path}", headers=headers, timeout=5, **kw)


def recorder(into: list[dict[str, Any]]) -> Callable[[DeliveryRequest], int]:
    def receive(delivery: DeliveryRequest) -> int:
        into.append({"at": delivery, **delivery.json()})
        return 200

    return receive


def test_a_failing_message_calls_back_after_each_attempt_then_fails_into_the_dlq(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    called: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    any_fake.destination(f"{APP}/hook").deliver_to(lambda d: (500, "database down"))
    any_fake.destination(f"{APP}/callback").deliver_to(recorder(called))
    any_fake.destination(f"{APP}/failed").deliver_to(recorder(failed))
    message_id = client.message.publish(
        url=f"{APP}/hook",
        body='{"order": 7}',
        content_type="application/json",
        retries=2,
        callback=f"{APP}/callback",
        failure_callback=f"{APP}/failed",
    ).message_id
    start = any_fake.clock.now
    any_fake.clock.run_all()

    assert [c["retried"] for c in called] == [0, 1, 2]
    first = called[0]
    assert {key: value for key, value in first.items() if key != "at"} == {
        "status": 500,
        "header": {},
        "body": base64.b64encode(b"database down").decode(),
        "retried": 0,
        "maxRetries": 2,
        "sourceMessageId": message_id,
        "url": f"{APP}/hook",
        "method": "POST",
        "sourceHeader": {"Content-Type": ["application/json"]},
        "sourceBody": base64.b64encode(b'{"order": 7}').decode(),
        "notBefore": str(start),
        "createdAt": str(start),
        "callerIP": "127.0.0.1",
    }
    # Each callback is a signed delivery of its own, published at its attempt's instant.
    assert first["at"].header("Upstash-Signature")
    assert first["at"].header("Content-Type") == "application/json"
    (entry,) = client.dlq.list().messages
    assert (entry.message_id, entry.url, entry.response_status) == (message_id, f"{APP}/hook", 500)
    assert entry.response_body == "database down"
    (failure,) = failed
    assert failure["dlqId"] == entry.dlq_id
    assert (failure["retried"], failure["sourceMessageId"]) == (2, message_id)
    assert client.dlq.get(entry.dlq_id).max_retries == 2
    (dead,) = any_fake.dlq.assert_dead_lettered(f"{APP}/hook", times=1)
    assert (dead.dlq_id, dead.response_body) == (entry.dlq_id, b"database down")


def test_callbacks_take_their_settings_by_the_prefix_rule(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination(f"{APP}/hook").answers(200)
    any_fake.destination(f"{APP}/callback").answers(503, 503)
    seen: list[DeliveryRequest] = []
    any_fake.destination(f"{APP}/callback").deliver_to(lambda d: seen.append(d) or 200)
    client.message.publish(
        url=f"{APP}/hook",
        body="x",
        retries=0,
        callback=f"{APP}/callback",
        # qstash-py sends each as Upstash-Callback-<name>.
        callback_headers={"Retries": "2", "Method": "PUT", "Forward-Tenant": "acme"},
    )
    any_fake.clock.run_all()
    # The callback failed twice and was retried by its own policy (2), not the message's (0).
    (delivery,) = seen
    assert (delivery.method, delivery.header("Tenant")) == ("PUT", "acme")
    assert delivery.header("Upstash-Retried") == "2"
    assert delivery.json()["status"] == 200
    assert any_fake.dlq.list() == []


@pytest.mark.qstash_tasks(assert_all_requests_served=False)  # the refusal is what it wants
def test_a_callbacks_bad_setting_is_refused_at_publish(
    any_fake: QStashTasksFake,
) -> None:
    answer = http(
        any_fake,
        "POST",
        f"/v2/publish/{APP}/hook",
        data="x",
        headers={
            "Upstash-Callback": f"{APP}/callback",
            "Upstash-Callback-Retries": "lots",
        },
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "Upstash-Callback: invalid Upstash-Retries 'lots': want an integer 0-100"
    }
    assert any_fake.published == []


def _fail_many(fake: QStashTasksFake, client: QStash, count: int) -> list[str]:
    fake.destination(f"{APP}/*").answers(*[500] * count)
    ids = []
    for number in range(count):
        url = f"{APP}/{'even' if number % 2 == 0 else 'odd'}"
        ids.append(client.message.publish(url=url, body=str(number), retries=0).message_id)
    fake.clock.advance(1_000)
    return ids


def test_the_dlq_pages_250_entries_by_cursor_and_filters_them(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    ids = _fail_many(any_fake, client, 250)
    seen: list[str] = []
    cursor = None
    pages = 0
    for _ in range(5):  # three pages; a cursor that went nowhere would loop
        page = client.dlq.list(cursor=cursor)
        seen += [entry.message_id for entry in page.messages]
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    assert (seen, pages) == (ids, 3)
    odd = client.dlq.list(filter={"url": f"{APP}/odd"}, count=100)
    assert [e.message_id for e in odd.messages] == ids[1::2][:100]
    both = http(any_fake, "GET", f"/v2/dlq?url={APP}/odd&url={APP}/even&count=5").json()
    assert [e["messageId"] for e in both["messages"]] == ids[:5]
    one = client.dlq.list(filter={"message_id": ids[7]})
    assert [e.message_id for e in one.messages] == [ids[7]]


def test_bulk_delete_in_both_forms(any_fake: QStashTasksFake, client: QStash) -> None:
    _fail_many(any_fake, client, 6)
    entries = [entry.dlq_id for entry in any_fake.dlq.list()]
    assert client.dlq.delete_many(entries[:2]) == 2  # qstash-py: a JSON body
    query = "&".join(f"dlqIds={dlq_id}" for dlq_id in entries[2:4])
    answer = http(any_fake, "DELETE", f"/v2/dlq?{query}")  # the Node SDK: the query
    assert answer.json() == {"deleted": 2}
    filtered = http(any_fake, "DELETE", f"/v2/dlq?url={APP}/odd")
    assert filtered.json() == {"deleted": 1}
    client.dlq.delete(entries[4])
    assert any_fake.dlq.list() == []


def test_a_retry_from_the_dlq_is_a_new_message_delivered_once_the_receiver_recovers(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    healthy = [False]
    received: list[str] = []

    def hook(delivery: DeliveryRequest) -> int:
        received.append(delivery.header("Upstash-Message-Id") or "")
        return 200 if healthy[0] else 500

    any_fake.destination(f"{APP}/hook").deliver_to(hook)
    first = client.message.publish(url=f"{APP}/hook", body="x", retries=0).message_id
    any_fake.clock.advance(1_000)
    (entry,) = any_fake.dlq.list()
    healthy[0] = True
    answer = http(any_fake, "POST", f"/v2/dlq/retry/{entry.dlq_id}")  # qstash-py has none
    again = answer.json()["messageId"]
    assert again != first
    assert any_fake.dlq.list() == []
    any_fake.clock.advance(1_000)
    assert received == [first, again]
    assert any_fake.tasks(again)[0].state == "delivered"


@pytest.mark.qstash_tasks(assert_all_requests_served=False)  # refusals are what it wants
def test_bad_dlq_requests_are_refused_with_nothing_changed(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    _fail_many(any_fake, client, 2)
    for method, path, status, error in [
        ("GET", "/v2/dlq/nope", 404, "no DLQ entry 'nope'"),
        ("DELETE", "/v2/dlq/nope", 404, "no DLQ entry 'nope'"),
        ("POST", "/v2/dlq/retry/nope", 404, "no DLQ entry 'nope'"),
        ("GET", "/v2/dlq?cursor=abc", 400, "invalid cursor 'abc': use the cursor of a page"),
        ("GET", "/v2/dlq?count=0", 400, "invalid count '0': want 1-100"),
        ("GET", "/v2/dlq?count=101", 400, "invalid count '101': want 1-100"),
        ("DELETE", "/v2/dlq?colour=red", 400, "unknown filter 'colour'"),
    ]:
        answer = http(any_fake, method, path)
        assert answer.status_code == status, path
        assert answer.json()["error"].startswith(error), answer.json()
    assert len(any_fake.dlq.list()) == 2


def test_assert_dead_lettered_lists_what_is_there(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    with pytest.raises(AssertionError, match="the DLQ is empty"):
        any_fake.dlq.assert_dead_lettered(f"{APP}/even")
    _fail_many(any_fake, client, 1)
    (entry,) = any_fake.dlq.list()
    with pytest.raises(AssertionError) as failed:
        any_fake.dlq.assert_dead_lettered(f"{APP}/odd")
    assert str(failed.value) == (
        f"expected a dead-lettered message with url='{APP}/odd' at least once, got 0 times; "
        f"the DLQ holds 1 message(s):\n  - {entry.dlq_id}: POST {APP}/even "
        f"(message {entry.message_id}) -> status 500"
    )
    any_fake.dlq.delete(entry.dlq_id)
    with pytest.raises(KeyError, match="no DLQ entry"):
        any_fake.dlq.get(entry.dlq_id)


@pytest.mark.asyncio
async def test_the_async_sdk_reads_the_dlq() -> None:
    async with QStashTasksMock(default_answer=503) as fake:
        client = AsyncQStash(fake.token, base_url=fake.base_url)
        message_id = (await client.message.publish(url=f"{APP}/x", body="x", retries=0)).message_id
        fake.clock.advance(1_000)
        (entry,) = (await client.dlq.list()).messages
        assert (entry.message_id, entry.response_status) == (message_id, 503)
        await client.dlq.delete(entry.dlq_id)
        assert (await client.dlq.list()).messages == []


def test_reset_empties_the_dlq(any_fake: QStashTasksFake, client: QStash) -> None:
    _fail_many(any_fake, client, 1)
    any_fake.reset()
    assert any_fake.dlq.list() == []
    assert json.loads(http(any_fake, "GET", "/v2/dlq").text) == {"messages": []}


def test_a_message_carries_what_it_was_given(any_fake: QStashTasksFake, client: QStash) -> None:
    from qstash.message import FlowControl

    message_id = client.message.publish(
        url=f"{APP}/hook",
        body="x",
        callback=f"{APP}/callback",
        callback_headers={"Forward-Tenant": "acme"},
        label="billing",
        flow_control=FlowControl(key="tenant-1", parallelism=2, rate=10, period="1m"),
    ).message_id
    message = client.message.get(message_id)
    assert message.callback_headers == {"Tenant": ["acme"]}
    assert message.label == "billing"
    assert message.flow_control is not None
    flow = message.flow_control
    assert (flow.key, flow.parallelism, flow.rate, flow.period) == ("tenant-1", 2, 10, 60)
    raw = http(any_fake, "GET", f"/v2/messages/{message_id}").json()
    assert raw["labels"] == ["billing"]
    any_fake.clock.run_all()
    (entry,) = [e for e in any_fake.logs.list(message_id) if e.state == "DELIVERED"]
    assert entry.url == f"{APP}/hook"


# -- the DLQ's API, every part of it a client can see -----------------------------------


@pytest.mark.qstash_tasks(token="secret", assert_all_requests_served=False)
def test_every_dlq_answer_is_as_documented_and_recorded_with_its_token(
    any_fake: QStashTasksFake, sdk: Sdk
) -> None:
    client = sdk("secret", base_url=any_fake.base_url)
    any_fake.destination(f"{APP}/*").answers(*[502] * 4)
    client.message.publish(url=f"{APP}/a", body="a", retries=0)
    client.message.publish(url=f"{APP}/b", body="b", retries=0)
    client.message.publish(url=f"{APP}/c", body="c", retries=0)
    client.message.publish(url=f"{APP}/d", body="d", retries=0)
    any_fake.clock.advance(1_000)
    ids = [entry.dlq_id for entry in any_fake.dlq.list()]
    wrong = http(any_fake, "GET", "/v2/dlq", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, any_fake.calls[-1].token) == (401, "nope")
    assert any_fake.calls[-1].unserved_reason == "unauthorized"
    answers = [
        ("GET", "/v2/dlq?count=1&cursor=", 200),
        ("GET", f"/v2/dlq/{ids[0]}", 200),
        ("DELETE", f"/v2/dlq/{ids[0]}", 200),
        ("DELETE", f"/v2/dlq?dlqIds={ids[1]}", 200),
        ("POST", f"/v2/dlq/retry/{ids[2]}", 200),
        ("POST", "/v2/dlq/retry?count=100", 200),
        ("GET", "/v2/dlq/a/b", 404),
        ("GET", "/v2/dlq/nope", 404),
    ]
    bodies = []
    for method, path, status in answers:
        answer = http(any_fake, method, path)
        assert answer.status_code == status, path
        assert any_fake.calls[-1].token == "secret", path
        bodies.append(answer.json())
    assert bodies[0]["cursor"] == "0"
    assert len(bodies[0]["messages"]) == 1
    assert bodies[1]["dlqId"] == ids[0]
    assert bodies[2] == {"deleted": 1}
    assert bodies[3] == {"deleted": 1}
    assert set(bodies[4]) == {"messageId"}
    assert [set(r) for r in bodies[5]["responses"]] == [{"messageId"}]
    assert bodies[6] == {"error": "no DLQ endpoint at /v2/dlq/a/b"}
    assert any_fake.calls[-2].unserved_reason == "unknown_path"
    assert any_fake.calls[-1].unserved_reason == "unknown_message"
    assert any_fake.dlq.list() == []


def test_a_bulk_call_goes_on_from_its_cursor(any_fake: QStashTasksFake, client: QStash) -> None:
    _fail_many(any_fake, client, 5)
    first = http(any_fake, "DELETE", "/v2/dlq?count=2").json()
    assert first == {"deleted": 2, "cursor": "1"}
    second = http(any_fake, "DELETE", f"/v2/dlq?count=2&cursor={first['cursor']}").json()
    assert second == {"deleted": 2, "cursor": "3"}
    assert http(any_fake, "DELETE", "/v2/dlq?count=2&cursor=3").json() == {"deleted": 1}


def test_every_dlq_filter_reads_its_own_field(any_fake: QStashTasksFake, client: QStash) -> None:
    from qstash.message import FlowControl

    any_fake.destination(f"{APP}/*").answers(500, 503, 504)
    client.url_group.upsert_endpoints(url_group="team", endpoints=[{"url": f"{APP}/group"}])
    client.message.publish(url_group="team", body="x", retries=0, label="billing")
    client.message.enqueue(queue="jobs", url=f"{APP}/queued", body="x", retries=0)
    client.message.publish(
        url=f"{APP}/flow", body="x", retries=0, flow_control=FlowControl(key="tenant", rate=1)
    )
    any_fake.clock.advance(1_000)
    group, queued, flow = (entry.message_id for entry in any_fake.dlq.list())
    entry_time = any_fake.dlq.list()[0].failed_at

    def listed(query: str) -> list[str]:
        return [
            e["messageId"] for e in http(any_fake, "GET", f"/v2/dlq?{query}").json()["messages"]
        ]

    assert listed("topicName=team") == [group]
    assert listed("label=billing") == [group]
    assert listed("responseStatus=503") == [queued]
    assert listed("queueName=jobs") == [queued]
    assert listed("flowControlKey=tenant") == [flow]
    assert listed(f"url={APP}/flow&url={APP}/queued") == [queued, flow]
    assert listed("callerIP=127.0.0.1") == [group, queued, flow]
    assert listed("scheduleId=scd_1") == []
    dlq_ids = [entry.dlq_id for entry in any_fake.dlq.list()]
    assert listed(f"dlqIds={dlq_ids[2]}&dlqIds={dlq_ids[0]}") == [group, flow]
    assert listed(f"dlqIds={dlq_ids[1]}&responseStatus=500") == [queued]  # ids win
    assert listed(f"fromDate={entry_time + 1}") == []
    assert listed(f"toDate={entry_time}") == [group, queued, flow]


def test_what_the_dlq_keeps_of_an_answer_and_of_no_answer(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination(f"{APP}/binary").deliver_to(lambda delivery: (500, b"\xff\x00"))
    any_fake.destination(f"{APP}/gone").answers(ConnectionError("refused"))
    binary = client.message.publish(url=f"{APP}/binary", body="x", retries=0).message_id
    gone = client.message.publish(url=f"{APP}/gone", body="x", retries=0).message_id
    any_fake.clock.advance(1_000)
    first, second = any_fake.dlq.list()
    raw = http(any_fake, "GET", f"/v2/dlq/{first.dlq_id}").json()
    assert (raw["responseHeader"], raw["responseBodyBase64"]) == ({}, "/wA=")
    assert "responseBody" not in raw
    assert second.response_status == 0
    with pytest.raises(AssertionError) as failed:
        any_fake.dlq.assert_dead_lettered(message_id=gone, times=2)
    assert str(failed.value) == (
        f"expected a dead-lettered message with message_id={gone!r} 2 times, got once; "
        f"the DLQ holds 2 message(s):\n"
        f"  - {first.dlq_id}: POST {APP}/binary (message {binary}) -> status 500\n"
        f"  - {second.dlq_id}: POST {APP}/gone (message {gone}) -> no answer"
    )
    with pytest.raises(ValueError, match="times must be"):
        any_fake.dlq.assert_dead_lettered(times=-1)
    with pytest.raises(KeyError) as missing:
        any_fake.dlq.get("nope")
    assert (
        missing.value.args[0] == f"no DLQ entry 'nope' (there are: {first.dlq_id}, {second.dlq_id})"
    )
    any_fake.dlq.delete(first.dlq_id)
    any_fake.dlq.delete(second.dlq_id)
    with pytest.raises(KeyError) as empty:
        any_fake.dlq.get("nope")
    assert empty.value.args[0] == "no DLQ entry 'nope' (there are: none)"


def test_a_callback_of_a_url_group_names_the_group_and_endpoint(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    called: list[dict[str, Any]] = []
    any_fake.destination(f"{APP}/callback").deliver_to(recorder(called))
    client.url_group.upsert_endpoints(
        url_group="team", endpoints=[{"url": f"{APP}/member", "name": "member"}]
    )
    client.message.publish(url_group="team", body="x", callback=f"{APP}/callback")
    any_fake.clock.run_all()
    ((callback),) = called
    assert (callback["topicName"], callback["endpointName"]) == ("team", "member")


def test_an_entry_given_to_the_dlq_reads_as_one_earned(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[bytes] = []
    any_fake.destination(f"{APP}/orders").deliver_to(lambda d: received.append(d.body) or 200)
    entry = any_fake.dlq.add(
        f"{APP}/orders", '{"order": 7}', headers={"Content-Type": "application/json"},
        retries=2, response_status=503, response_body="database down",
    )  # fmt: skip
    assert entry.failed_at == any_fake.clock.now
    (listed,) = client.dlq.list().messages
    assert (listed.dlq_id, listed.message_id, listed.url, listed.body) == (
        entry.dlq_id,
        entry.message_id,
        f"{APP}/orders",
        '{"order": 7}',
    )
    assert (listed.response_status, listed.response_body, listed.max_retries) == (
        503,
        "database down",
        2,
    )
    assert listed.headers == {"Content-Type": ["application/json"]}
    (task,) = any_fake.tasks(entry.message_id)
    assert (task.state, task.retried, task.error) == ("failed", 2, "HTTP status 503: database down")
    states = any_fake.logs.states(entry.message_id)
    assert states == ["CREATED"] + ["ACTIVE", "ERROR", "RETRY"] * 2 + ["ACTIVE", "FAILED"]
    assert any_fake.logs.list(entry.message_id)[-1].time == entry.failed_at
    answer = http(any_fake, "POST", f"/v2/dlq/retry/{entry.dlq_id}")
    any_fake.clock.advance(1_000)
    assert received == [b'{"order": 7}']
    assert any_fake.tasks(answer.json()["messageId"])[0].state == "delivered"
    assert any_fake.dlq.list() == []


def test_what_the_dlq_cannot_be_given_is_refused_in_words(any_fake: QStashTasksFake) -> None:
    for kwargs, error, text in [
        (
            {"url": "app/orders"},
            ValueError,
            "a DLQ entry's url is an http(s) URL, got 'app/orders'",
        ),
        ({"url": APP, "method": "PO ST"}, ValueError, "a DLQ entry's method is an HTTP method"),
        ({"url": APP, "retries": -1}, ValueError, "retries must be an int >= 0, got -1"),
        ({"url": APP, "response_status": 201}, ValueError, "that is not 2xx, got 201"),
        ({"url": APP, "response_status": 600}, ValueError, "that is not 2xx, got 600"),
        ({"url": APP, "body": 7}, TypeError, "body is bytes or str, not int"),
        ({"url": APP, "response_body": None}, TypeError, "response_body is bytes or str"),
        ({"url": APP, "headers": {"X": 1}}, TypeError, "map names to str values"),
    ]:
        with pytest.raises(error, match=re.escape(text)):
            any_fake.dlq.add(**kwargs)
    assert any_fake.dlq.list() == []
    assert any_fake.message_ids() == []
    entry = any_fake.dlq.add(APP, response_status=0, retries=0)
    assert any_fake.dlq.get(entry.dlq_id).describe().endswith("-> no answer")
    assert any_fake.tasks(entry.message_id)[0].error == "connection failed: no answer"


def test_an_entry_given_to_the_dlq_takes_documented_defaults_and_bounds(
    any_fake: QStashTasksFake,
) -> None:
    """What ``dlq.add`` gives when told only the URL, and the edges of what it takes."""
    entry = any_fake.dlq.add("http://app.example.com/x", headers={"X-Tenant": "t1"})
    assert (entry.method, entry.body, entry.response_status, entry.response_body) == (
        "POST", b"", 500, b"",
    )  # fmt: skip
    shown = http(any_fake, "GET", f"/v2/dlq/{entry.dlq_id}").json()
    assert (shown["maxRetries"], shown["header"]) == (3, {"X-Tenant": ["t1"]})
    (task,) = any_fake.tasks(entry.message_id)
    assert (task.retried, task.error) == (3, "HTTP status 500")
    assert task.message_id.startswith("msg_")
    assert task.task_id.startswith("tsk_")
    for status in (100, 199, 300, 599):
        assert any_fake.dlq.add(APP, response_status=status).response_status == status
    for status in (99, 200, 299, 600):
        words = (
            "response_status is what the last attempt met: 0 (no answer) or a status of "
            f"100-599 that is not 2xx, got {status}"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(words)}$"):
            any_fake.dlq.add(APP, response_status=status)
    with pytest.raises(ValueError, match=r"^response_status must be an int >= 0, got '500'$"):
        any_fake.dlq.add(APP, response_status="500")  # type: ignore[arg-type]
    with pytest.raises(TypeError) as bad_header:
        any_fake.dlq.add(APP, headers={"X": 1})  # type: ignore[dict-item]
    assert str(bad_header.value) == "a DLQ entry's headers map names to str values"
    assert len(any_fake.dlq.list()) == 5
