"""The logs: every state change of every published message, through the official SDK
(``client.log``, which reads ``/v2/events``), over HTTP (``/v2/logs``) and from the test's
side (``qstash_tasks.logs``), always agreeing with the tasks endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from qstash import QStash
from qstash.log import LogState

from pytest_qstash_tasks import QStashTasksFake

APP = "https://app.example.com"
Sdk = Callable[..., QStash]
#: The task's state for the last log entry's state, as the tasks endpoint shows it.
TASK_STATE = {
    "CREATED": ("created", "planned"),
    "ACTIVE": ("active",),
    "RETRY": ("error", "planned"),
    "DELIVERED": ("delivered",),
    "FAILED": ("failed",),
    "CANCELED": ("canceled",),
}


@pytest.fixture
def client(any_fake: QStashTasksFake, sdk: Sdk) -> QStash:
    return sdk(any_fake.token, base_url=any_fake.base_url)


def http(fake: QStashTasksFake, path: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {fake.token}"}
    return requests.get(f"{fake.base_url}{path}", headers=headers, timeout=5)


def test_the_logs_tell_the_whole_story_in_order_and_match_the_tasks_at_every_instant(
    any_fake: QStashTasksFake, client: QStash, capsys: pytest.CaptureFixture[str]
) -> None:
    any_fake.destination(f"{APP}/hook").answers(500, 503, 200)
    message_id = client.message.publish(url=f"{APP}/hook", body="x", retries=3).message_id
    start = any_fake.clock.now
    for _ in range(40):  # through the whole delivery, a step at a time
        (task,) = any_fake.tasks(message_id)
        last = any_fake.logs.states(message_id)[-1]
        assert task.state in TASK_STATE[last], (any_fake.clock.now - start, last, task.state)
        any_fake.clock.advance(5_000)
    assert any_fake.logs.states(message_id) == [
        "CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "DELIVERED",
    ]  # fmt: skip
    logs = client.log.list(filter={"message_id": message_id}).logs
    capsys.readouterr()  # qstash-py prints each answer of client.log.list
    assert [entry.state for entry in reversed(logs)] == [
        LogState.CREATED, LogState.ACTIVE, LogState.ERROR, LogState.RETRY, LogState.ACTIVE,
        LogState.ERROR, LogState.RETRY, LogState.ACTIVE, LogState.DELIVERED,
    ]  # fmt: skip
    error = next(entry for entry in logs if entry.state == LogState.ERROR)
    assert error.error == "HTTP status 503"
    retry = next(entry for entry in logs if entry.state == LogState.RETRY)
    (task,) = any_fake.tasks(message_id)
    assert retry.next_delivery_time == task.timeline_at + 200 + 500 + 12_182 + 500 + 148_413
    assert [entry.time for entry in logs] == sorted((entry.time for entry in logs), reverse=True)


def test_a_failed_and_a_cancelled_message(any_fake: QStashTasksFake, client: QStash) -> None:
    any_fake.destination(f"{APP}/down").answers(500)
    failed = client.message.publish(url=f"{APP}/down", body="x", retries=0).message_id
    cancelled = client.message.publish(url=f"{APP}/later", body="x", delay="1h").message_id
    any_fake.clock.advance(1_000)
    client.message.cancel(cancelled)
    any_fake.clock.advance(3_600_000)
    assert any_fake.logs.states(failed) == ["CREATED", "ACTIVE", "FAILED"]
    assert any_fake.logs.states(cancelled) == ["CREATED", "CANCEL_REQUESTED", "CANCELED"]
    (entry,) = [e for e in any_fake.logs.list(failed) if e.state == "FAILED"]
    assert entry.error == "HTTP status 500"


def test_both_paths_page_and_filter_250_entries(any_fake: QStashTasksFake, client: QStash) -> None:
    ids = [
        client.message.publish(url=f"{APP}/{'a' if n % 2 else 'b'}", body="x").message_id
        for n in range(50)
    ]
    any_fake.clock.advance(1_000)  # 50 messages x CREATED, ACTIVE, DELIVERED = 150 entries
    ids += [client.message.publish(url=f"{APP}/c", body="x").message_id for _ in range(100)]
    seen: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = http(any_fake, f"/v2/logs?count=100&cursor={cursor}").json()
        seen += page["logs"]
        if "cursor" not in page:
            break
        cursor = page["cursor"]
    assert len(seen) == 250
    assert [e["time"] for e in seen] == sorted((e["time"] for e in seen), reverse=True)
    events = http(any_fake, "/v2/events?count=2").json()
    assert set(events) == {"events", "cursor"}
    delivered = http(any_fake, f"/v2/logs?state=DELIVERED&url={APP}/a").json()["logs"]
    assert len(delivered) == 25
    assert {e["url"] for e in delivered} == {f"{APP}/a"}
    waiting = http(any_fake, f"/v2/events?state=IN_PROGRESS&url={APP}/c").json()["events"]
    assert waiting == []  # created only: not in progress yet
    some = http(any_fake, f"/v2/logs?messageIds={ids[0]}&messageIds={ids[1]}").json()["logs"]
    assert {e["messageId"] for e in some} == {ids[0], ids[1]}


@pytest.mark.qstash_tasks(assert_all_requests_served=False)  # refusals are what it wants
def test_bad_log_requests_are_refused(any_fake: QStashTasksFake) -> None:
    for path, error in [
        ("/v2/logs?cursor=abc", "invalid cursor 'abc': use the cursor of a page"),
        ("/v2/logs?count=0", "invalid count '0': want 1-1000"),
        ("/v2/events?count=1001", "invalid count '1001': want 1-1000"),
        (
            "/v2/logs?state=LOST",
            "unknown state 'LOST': want one of CREATED, ACTIVE, RETRY, ERROR, DELIVERED, "
            "FAILED, CANCEL_REQUESTED, CANCELED, or IN_PROGRESS",
        ),
        ("/v2/logs?colour=red", "unknown filter 'colour'"),
    ]:
        answer = http(any_fake, path)
        assert answer.status_code == 400, path
        assert answer.json()["error"].startswith(error), answer.json()


@pytest.mark.qstash_tasks(token="secret", assert_all_requests_served=False)
def test_every_log_answer_is_recorded_with_its_token(any_fake: QStashTasksFake) -> None:
    wrong = requests.get(
        f"{any_fake.base_url}/v2/logs", headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert (wrong.status_code, any_fake.calls[-1].token) == (401, "nope")
    assert any_fake.calls[-1].unserved_reason == "unauthorized"
    for path, status in [("/v2/logs", 200), ("/v2/events?count=0", 400)]:
        answer = requests.get(
            f"{any_fake.base_url}{path}", headers={"Authorization": "Bearer secret"}, timeout=5
        )
        assert answer.status_code == status
        assert any_fake.calls[-1].token == "secret"


def test_every_log_filter_reads_its_own_field(any_fake: QStashTasksFake, client: QStash) -> None:
    client.url_group.upsert_endpoints(url_group="team", endpoints=[{"url": f"{APP}/group"}])
    (grouped,) = client.message.publish(url_group="team", body="x", label="billing")
    queued = client.message.enqueue(queue="jobs", url=f"{APP}/deep/queued", body="x").message_id
    start = any_fake.clock.now
    any_fake.clock.advance(1_000)

    def listed(query: str) -> set[str]:
        answer = http(any_fake, f"/v2/logs?{query}").json()["logs"]
        return {f"{e['messageId']}:{e['state']}" for e in answer}

    group_id = grouped.message_id
    assert listed("topicName=team&state=CREATED") == {f"{group_id}:CREATED"}
    assert listed("label=billing&state=ACTIVE") == {f"{group_id}:ACTIVE"}
    assert listed("queueName=jobs&state=DELIVERED") == {f"{queued}:DELIVERED"}
    assert listed("path=/deep/queued&state=DELIVERED") == {f"{queued}:DELIVERED"}
    assert listed("host=elsewhere.example.com") == set()
    assert listed(f"host=app.example.com&messageId={queued}&state=CREATED") == {f"{queued}:CREATED"}
    assert listed(f"callerIP=127.0.0.1&messageId={queued}&state=CREATED") == {f"{queued}:CREATED"}
    assert listed("scheduleId=scd_1") == set()
    # IN_PROGRESS: ACTIVE, RETRY or ERROR, within the dates given.
    assert listed(f"state=IN_PROGRESS&fromDate={start + 200}&toDate={start + 200}") == {
        f"{group_id}:ACTIVE",
        f"{queued}:ACTIVE",
    }
    assert listed(f"state=IN_PROGRESS&fromDate={start + 201}") == set()
    assert listed(f"state=IN_PROGRESS&toDate={start + 199}") == set()
    assert len(http(any_fake, "/v2/logs?count=1000").json()["logs"]) == 6
    one = http(any_fake, "/v2/logs?count=1").json()
    rest = http(any_fake, f"/v2/logs?count=5&cursor={one['cursor']}").json()
    assert len(one["logs"]) + len(rest["logs"]) == 6
    assert "cursor" not in rest
    filtered = http(any_fake, f"/v2/logs?count=1&url={APP}/group").json()
    more = http(any_fake, f"/v2/logs?count=5&url={APP}/group&cursor={filtered['cursor']}").json()
    assert [e["state"] for e in filtered["logs"] + more["logs"]] == [
        "DELIVERED", "ACTIVE", "CREATED",
    ]  # fmt: skip
    assert http(any_fake, "/v2/logs?cursor=").status_code == 200


def test_the_logs_filter_by_flow_control_key_and_schedule_and_callbacks_name_the_schedule(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    got: list[Any] = []
    any_fake.destination(f"{APP}/*").deliver_to(lambda delivery: got.append(delivery) or 200)
    keyed = client.message.publish(
        url=f"{APP}/keyed", body="k", flow_control={"key": "tenant-1", "parallelism": 2}
    ).message_id  # type: ignore[union-attr]
    client.message.publish(url=f"{APP}/plain", body="p")
    schedule_id = any_fake.schedules.create(
        f"{APP}/nightly", "* * * * *", headers={"Upstash-Callback": f"{APP}/told"}
    )
    any_fake.clock.advance(61_000)

    by_key = http(any_fake, "/v2/logs?flowControlKey=tenant-1").json()["logs"]
    assert {entry["messageId"] for entry in by_key} == {keyed}
    assert all("flowControlKey" not in entry for entry in by_key)  # QStash's entries lack it
    by_schedule = http(any_fake, f"/v2/logs?scheduleId={schedule_id}&state=DELIVERED").json()
    (fired,) = by_schedule["logs"]
    assert fired["scheduleId"] == schedule_id
    (told,) = [delivery for delivery in got if delivery.url == f"{APP}/told"]
    assert told.json()["scheduleId"] == schedule_id
    assert told.json()["sourceMessageId"] == fired["messageId"]
