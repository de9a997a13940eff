"""The control endpoints under ``/_fake/``: the fake's API as JSON over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from pytest_qstash_tasks import QStashTasksMock, QStashTasksServer

TOKEN = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def fake() -> Iterator[QStashTasksServer]:
    server = QStashTasksServer(control=True, token="s3cret", seed=1)
    with server:
        yield server
        server.assert_all_requests_served = False  # some tests ask for misses


@pytest.fixture
def http(fake: QStashTasksServer) -> Iterator[Any]:
    """A session that calls ``/_fake/...`` with the token: ``http.get("clock")``."""

    class Control(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *a: Any, **k: Any) -> Any:  # type: ignore[override]
            return super().request(method, f"{fake.base_url}/_fake/{url!s}", *a, **k)

    with Control() as session:
        session.headers.update(TOKEN)
        yield session


def tasks_of(fake: QStashTasksServer, message_id: str) -> list[dict[str, Any]]:
    url = f"{fake.base_url}/v1/messages/{message_id}/tasks"
    body: dict[str, Any] = requests.get(url, headers=TOKEN, timeout=5).json()
    return body["tasks"]  # type: ignore[no-any-return]


def test_add_register_list_and_read_messages(fake: QStashTasksServer, http: Any) -> None:
    created = http.post("messages", json={"messageId": "m1", "count": 3, "states": ["failed"]})
    assert created.status_code == 201
    assert len(created.json()["taskIds"]) == 3
    given = {
        "taskId": "tsk_1",
        "messageId": "m2",
        "url": "https://x",
        "state": "delivered",
        "retried": 0,
        "maxRetry": 3,
    }
    assert http.post("messages", json={"messageId": "m2", "tasks": [given]}).json() == {
        "messageId": "m2",
        "taskIds": ["tsk_1"],
    }
    assert http.post("messages", json={"messageId": "m3"}).status_code == 201
    assert http.get("messages").json() == {"messages": ["m1", "m2", "m3"]}
    assert [t["state"] for t in http.get("messages/m1").json()["tasks"]] == ["failed"] * 3
    assert tasks_of(fake, "m2")[0]["taskId"] == "tsk_1"
    assert tasks_of(fake, "m3") == []
    # Control requests are not QStash requests: never recorded as calls.
    assert [call.message_id for call in fake.calls] == ["m2", "m3"]


def test_scripted_pages_deliveries_and_the_clock(fake: QStashTasksServer, http: Any) -> None:
    pages = [{"cursor": 9, "tasks": []}, {"tasks": []}]
    assert http.post("messages", json={"messageId": "p", "pages": pages}).status_code == 201
    assert tasks_of(fake, "p") == []
    url = f"{fake.base_url}/v1/messages/p/tasks?cursor=9"
    assert requests.get(url, headers=TOKEN, timeout=5).json() == {"tasks": []}  # verbatim
    delivery = {"url": "https://hook", "outcomes": [500, 200], "maxRetry": 3}
    made = http.post("messages/d/deliveries", json=delivery)
    assert made.status_code == 201
    (task_id,) = made.json()["taskIds"]
    assert tasks_of(fake, "d")[0]["state"] == "created"
    start = http.get("clock").json()
    assert start["now"] == start["start"] == fake.clock.now
    assert http.post("clock", json={"advanceMs": 60_000}).json()["now"] == start["now"] + 60_000
    (task,) = tasks_of(fake, "d")
    assert (task["taskId"], task["state"], task["retried"]) == (task_id, "delivered", 1)
    assert http.post("clock", json={"set": "2027-01-01T00:00:00Z"}).json()["now"] == 1798761600000
    assert http.post("clock", json={"set": 0}).status_code == 400
    assert "advanceMs" in http.post("clock", json={"advance": 1}).json()["error"]


def test_the_dlq_is_read_and_given_entries(fake: QStashTasksServer, http: Any) -> None:
    assert http.get("dlq").json() == {"dlq": []}
    given = {"url": "https://app.test/orders", "body": "x", "retries": 1, "responseStatus": 0}
    made = http.post("dlq", json=given)
    assert made.status_code == 201
    entry = made.json()
    assert http.get("dlq").json() == {"dlq": [entry]}
    assert entry["failedAt"] == fake.clock.now
    assert entry["description"] == (
        f"{entry['dlqId']}: POST https://app.test/orders (message {entry['messageId']}) "
        "-> no answer"
    )
    assert [(t["state"], t["retried"]) for t in tasks_of(fake, entry["messageId"])] == [
        ("failed", 1)
    ]
    (listed,) = fake.dlq.list()
    assert listed.dlq_id == entry["dlqId"]
    for body, error in [
        (
            {"url": "https://a.test/", "colour": "red"},
            "body.colour: Extra inputs are not permitted",
        ),
        ({"body": "x"}, "body.url: Field required"),
        ({"url": "https://a.test/", "responseStatus": 200}, "response_status is what the last"),
        ({"url": "https://a.test/", "method": "GET /"}, "a DLQ entry's method is an HTTP method"),
        ([], "POST /_fake/dlq takes a JSON object, got []"),
    ]:
        refused = http.post("dlq", json=body)
        assert refused.status_code == 400, body
        assert refused.json()["error"].startswith(error), refused.json()
    assert len(fake.dlq.list()) == 1


def test_a_delivery_s_every_field_reaches_simulate_delivery(
    fake: QStashTasksServer, http: Any
) -> None:
    given = {"url": "https://hook", "outcomes": [500, 200], "maxRetry": 5, "activeMs": 250}
    made = http.post("messages/d/deliveries", json={**given, "taskId": "tsk_given"})
    assert made.json() == {"messageId": "d", "taskIds": ["tsk_given"]}
    with QStashTasksMock() as direct:  # what the same call in a test gives
        direct.simulate_delivery(
            "d", url="https://hook", outcomes=[500, 200], max_retry=5, active_ms=250,
            task_id="tsk_given",
        )  # fmt: skip
        direct.clock.advance(60_000)
        expected = [task.model_dump(by_alias=True, exclude_none=True) for task in direct.tasks("d")]
    http.post("clock", json={"advanceMs": 60_000})
    assert tasks_of(fake, "d") == expected
    assert (expected[0]["maxRetry"], expected[0]["retried"]) == (5, 1)


def test_faults_calls_problems_and_reset(fake: QStashTasksServer, http: Any) -> None:
    http.post("messages", json={"messageId": "m", "count": 1})
    plans = [
        {"kind": "fail", "status": 503, "error": "busy"},
        {"kind": "rateLimit", "daily": True},
        {"kind": "delay", "seconds": 0.01},
        {"kind": "close"},
        {"kind": "timeout", "messageId": "other"},
    ]
    labels = [http.post("faults", json=plan).json()["fault"] for plan in plans]
    assert labels[:2] == ["fail_next(503)", "rate_limit_next(daily=True)"]
    url = f"{fake.base_url}/v1/messages/m/tasks"
    assert requests.get(url, headers=TOKEN, timeout=5).json() == {"error": "busy"}
    limited = requests.get(url, headers=TOKEN, timeout=5)
    assert (limited.status_code, limited.headers["RateLimit-Limit"]) == (429, "1000")
    assert requests.get(url, headers=TOKEN, timeout=5).ok  # after the delay
    with pytest.raises(requests.ConnectionError):
        requests.get(url, headers=TOKEN, timeout=5)
    calls = http.get("calls").json()["calls"]
    assert [c["status"] for c in calls] == [503, 429, 200, None]
    assert calls[3]["action"] == "close"
    assert calls[2]["taskCount"] == 1
    assert (
        http.get("faults").json()["faults"][-1]
        == "raise_next(TimeoutError, message_id='other'): fired 0 of 1 time(s)"
    )
    problems = http.get("problems").json()["problems"]
    assert problems == fake.problems()
    assert "raise_next(TimeoutError" in problems[0]
    fake.clock.advance(5)
    assert http.post("reset").json() == {"reset": True, "now": fake.clock.start, "messages": []}
    assert (fake.message_ids(), fake.calls, fake.faults, fake.problems()) == ([], [], [], [])


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("POST", "messages", b"{not json", 400, "the body is not JSON: Expecting property name"),
        ("POST", "messages", b"[1]", 400, "POST /_fake/messages takes a JSON object, got [1]"),
        ("POST", "clock", b"[" * 100_000, 400, "the body is not JSON: nested too deeply"),
        ("POST", "messages", b'{"count": 1}', 400, "body.messageId: Field required"),
        (
            "POST",
            "messages",
            b'{"messageId": "m", "count": 1, "tasks": []}',
            400,
            "body: Value error, give one of tasks, count and pages, not tasks and count",
        ),
        ("GET", "messages/nope", b"", 404, "unknown message 'nope' (known: none)"),
        ("POST", "messages/m/deliveries", b'{"url": "x"}', 400, "body.outcomes: Field required"),
        ("POST", "faults", b'{"kind": "boom"}', 400, "a fault's kind is one of fail, rateLimit"),
        ("POST", "faults", b'{"kind": "fail"}', 400, "a fail fault takes a status (400-599)"),
        ("POST", "faults", b'{"kind": "delay"}', 400, "a delay fault takes seconds (> 0)"),
        (
            "POST",
            "faults",
            b'{"kind": "fail", "status": 200}',
            400,
            "fail_next() takes an HTTP error status 400-599, got 200",
        ),
        (
            "POST",
            "faults",
            b'{"kind": "delay", "times": 1, "x": 1, "y": 2}',
            400,
            "a delay fault takes seconds, times, messageId, cursor, page; not x, y",
        ),
        ("DELETE", "calls", b"", 405, "DELETE /_fake/calls is not allowed; use GET"),
        ("PUT", "clock", b"", 405, "PUT /_fake/clock is not allowed; use GET or POST"),
        (
            "POST",
            "messages",
            b'{"messageId": "m", "count": 1, "overrides": {"nope": 1}}',
            400,
            "add() got unknown field(s) ['nope']; Task fields are ['completed_at', ",
        ),
        (
            "POST",
            "destinations",
            b'{"target": "https://a.example/", "answers": [true]}',
            400,
            'POST /_fake/destinations takes {"target": <URL, or a prefix ending in *>, '
            '"answers": [<HTTP status or error text>, ...]}',
        ),
        (
            "POST",
            "destinations",
            b'{"target": "https://a.example/", "answers": [99]}',
            400,
            "an outcome status must be 100-599, got 99",
        ),
        ("POST", "destinations", b'{"target": "", "answers": [500]}', 400, "destination() takes"),
        ("GET", "nope", b"", 404, "no control endpoint /_fake/nope; there are GET /_fake/health, "),
    ],
)
def test_bad_control_requests_get_a_clear_json_error(
    http: Any, method: str, path: str, body: bytes, status: int, error: str
) -> None:
    answer = http.request(method, path, data=body)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"].startswith(error)


def test_the_token_guards_every_endpoint_but_health(fake: QStashTasksServer) -> None:
    base = f"{fake.base_url}/_fake"
    assert requests.get(f"{base}/health", timeout=5).json() == {
        "status": "ok",
        "baseUrl": fake.base_url,
    }
    for method, path in [("GET", "calls"), ("POST", "reset"), ("POST", "messages")]:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = requests.request(method, f"{base}/{path}", headers=headers, timeout=5)
            assert refused.status_code == 401
            assert refused.json() == {
                "error": "the control endpoints take the fake's token (Bearer)"
            }
    assert fake.message_ids() == []


def test_without_control_the_prefix_is_an_unknown_path() -> None:
    with QStashTasksServer(assert_all_requests_served=False) as fake:
        assert requests.get(f"{fake.base_url}/_fake/health", timeout=5).status_code == 404
        assert fake.calls[0].unserved_reason == "unknown_path"


def test_a_delivery_attempt_as_json_has_every_field(fake: QStashTasksServer, http: Any) -> None:
    hook = "https://app.example.com/hook"
    fake.destination(hook).deliver_to(lambda delivery: (503, b"busy \xff"))
    requests.post(
        f"{fake.base_url}/v2/publish/{hook}",
        data=b"caf\xc3\xa9 \xff",
        headers={**TOKEN, "Upstash-Retries": "0"},
        timeout=5,
    )
    http.post("clock", json={"advanceMs": 1_000})
    (attempt,) = http.get("deliveries").json()["deliveries"]
    (recorded,) = fake.deliveries
    headers = attempt.pop("headers")
    assert attempt == {
        "messageId": recorded.message_id,
        "url": hook,
        "method": "POST",
        "body": "café \ufffd",
        "retried": 0,
        "at": recorded.at,
        "status": 503,
        "answerBody": "busy \ufffd",
        "durationMs": recorded.duration_ms,
        "error": "HTTP status 503: busy \ufffd",
        "receiver": recorded.receiver,
    }
    assert headers["Upstash-Message-Id"] == recorded.message_id


def test_a_planned_delay_keeps_its_target(fake: QStashTasksServer, http: Any) -> None:
    fake.add_message("other")
    planned = http.post(
        "faults", json={"kind": "delay", "seconds": 0.01, "messageId": "other", "times": 2}
    )
    assert planned.json()["fault"] == "delay_next(0.01, times=2, message_id='other')"
    fake.add_message("mine")
    assert requests.get(f"{fake.base_url}/v1/messages/mine/tasks", headers=TOKEN, timeout=5).ok
    assert fake.faults[0].fired == 0  # it waits for its own message
    fake.assert_all_faults_triggered = False


def test_calls_report_the_cursor_a_page_hands_out(fake: QStashTasksServer, http: Any) -> None:
    fake.add("m", count=150, timeline_at=lambda i: 10_000 - i)
    tasks_of(fake, "m")  # the first page only
    (call,) = http.get("calls").json()["calls"]
    assert (call["cursor"], call["nextCursor"]) == (None, 9_900)


def test_a_call_and_a_publish_as_json_have_every_field(fake: QStashTasksServer, http: Any) -> None:
    fake.add("m", count=1)
    fake.fail_next(503)
    for message_id in ("m", "nope"):
        requests.get(f"{fake.base_url}/v1/messages/{message_id}/tasks", headers=TOKEN, timeout=5)
    failed, unknown = http.get("calls").json()["calls"]
    assert failed == {
        "method": "GET",
        "url": f"{fake.base_url}/v1/messages/m/tasks",
        "status": 503,
        "messageId": "m",
        "cursor": None,
        "served": False,  # a fault answered, not the endpoint
        "taskCount": None,
        "nextCursor": None,
        "unservedReason": None,
        "detail": "",
        "fault": "fail_next(503)",
        "action": "answer",
        "description": fake.calls[0].describe(),
    }
    assert (unknown["served"], unknown["unservedReason"], unknown["status"]) == (
        False,
        "unknown_message",
        404,
    )
    assert unknown["detail"] == "message 'nope' is not registered; registered: 'm'"
    assert unknown["description"] == fake.calls[1].describe()
    requests.post(
        f"{fake.base_url}/v2/topics/group/endpoints",
        json={"endpoints": [{"url": "https://a.example.com/"}]},
        headers=TOKEN,
        timeout=5,
    )
    requests.post(
        f"{fake.base_url}/v2/publish/group",
        data="héllo".encode(),
        headers={**TOKEN, "Upstash-Method": "PUT", "Upstash-Deduplication-Id": "d"},
        timeout=5,
    )
    again = requests.post(
        f"{fake.base_url}/v2/enqueue/q/https://b.example.com/",
        data=b"x",
        headers={**TOKEN, "Upstash-Deduplication-Id": "e"},
        timeout=5,
    )
    requests.post(
        f"{fake.base_url}/v2/enqueue/q/https://b.example.com/",
        data=b"x",
        headers={**TOKEN, "Upstash-Deduplication-Id": "e"},
        timeout=5,
    )
    to_group, queued, deduplicated = http.get("published").json()["published"]
    headers = to_group.pop("headers")
    ids = to_group.pop("messageIds")
    assert to_group == {
        "destination": "group",
        "method": "PUT",
        "urls": ["https://a.example.com/"],
        "publishedAt": fake.clock.start,
        "urlGroup": "group",
        "queue": None,
        "deduplicated": False,
        "body": "héllo",
    }
    assert (len(ids), headers["upstash-deduplication-id"]) == (1, "d")
    assert (queued["queue"], queued["urlGroup"], queued["method"]) == ("q", None, "POST")
    assert (deduplicated["deduplicated"], deduplicated["messageIds"]) == (
        True,
        [again.json()["messageId"]],
    )


def test_the_clock_takes_one_move_at_a_time(fake: QStashTasksServer, http: Any) -> None:
    moved = http.post("clock", json={"advanceMs": 1, "set": 1893456000000})
    assert moved.status_code == 400
    assert moved.json() == {
        "error": 'POST /_fake/clock takes {"advanceMs": <int>}, {"set": <unix ms or ISO 8601>} '
        'or {"runAll": true | <horizon ms>}'
    }
    assert fake.clock.now == fake.clock.start


def test_destinations_and_what_was_published(fake: QStashTasksServer, http: Any) -> None:
    hook = "https://app.example.com/hook"
    scripted = http.post("destinations", json={"target": hook, "answers": [500, "refused"]})
    assert scripted.status_code == 201
    assert scripted.json() == {"target": hook, "remaining": [500, "refused"], "used": 0}
    published = requests.post(
        f"{fake.base_url}/v2/publish/{hook}",
        data=b"\xff\x00",
        headers={**TOKEN, "Upstash-Retries": "1"},
        timeout=5,
    )
    assert published.status_code == 200
    message_id = published.json()["messageId"]
    http.post("clock", json={"advanceMs": 60_000})
    (task,) = tasks_of(fake, message_id)
    assert (task["state"], task["retried"], task["error"]) == ("failed", 1, "refused")
    assert http.get("destinations").json() == {
        "destinations": [{"target": hook, "remaining": [], "used": 2}]
    }
    (record,) = http.get("published").json()["published"]
    assert record["destination"] == hook
    assert (record["messageIds"], record["urls"]) == ([message_id], [hook])
    assert (record["bodyBase64"], record["headers"]["upstash-retries"]) == ("/wA=", "1")
    assert record["publishedAt"] == fake.clock.start
    http.post("reset", json={"empty": True})
    assert http.get("published").json() == {"published": []}
    assert http.get("destinations").json() == {"destinations": []}
    fake.destination(re.compile(r"^https://b\.")).answers(503, ConnectionRefusedError("no"))
    assert http.get("destinations").json() == {
        "destinations": [
            {
                "target": r"^https://b\.",
                "remaining": [503, "connection failed: no"],
                "used": 0,
            }
        ]
    }
    fake.assert_all_destination_answers_used = False
