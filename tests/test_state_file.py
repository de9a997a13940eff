"""The state file (``serve --state``): the fake's whole state written and read back, the
fake going on exactly as it would have, and every damaged file refused in words with
nothing changed. The command's side (SIGTERM, SIGKILL mid-write) is in test_cli.py."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from pytest_qstash_tasks import QStashTasksMock
from pytest_qstash_tasks._core.control.state_codec import kinds, layout
from pytest_qstash_tasks._core.control.state_file import (
    STATE_VERSION,
    StateFileError,
    StateKeeper,
    restore,
    snapshot,
    write_state,
)
from tests.test_workflows import wait_body

APP = "https://app.example"
SEED = 7


def make_fake() -> QStashTasksMock:
    return QStashTasksMock(
        seed=SEED,
        assert_all_destination_answers_used=False,
        assert_all_scripted_pages_requested=False,
    )


def call(fake: QStashTasksMock, method: str, path: str, **kw: Any) -> requests.Response:
    headers = {"Authorization": "Bearer t", **kw.pop("headers", {})}
    return requests.request(method, fake.base_url + path, headers=headers, timeout=5, **kw)


def fill(fake: QStashTasksMock) -> dict[str, str]:
    """A bit of everything the fake keeps; the ids a test reads back."""
    fake.destination(f"{APP}/broken").answers(*[500] * 20)
    fake.add("msg_seeded", count=5, states=["delivered"])
    fake.add_pages("msg_pages", [{"cursor": 3, "tasks": []}, {"tasks": []}])
    fake.simulate_delivery("msg_simulated", url=f"{APP}/sim", outcomes=[500, 200])
    published = call(
        fake, "POST", f"/v2/publish/{APP}/broken", data=b"\x00\xffbinary",
        headers={
            "Upstash-Retries": "1", "Upstash-Retry-Delay": "3600000 * (retried + 1)",
            "Upstash-Failure-Callback": f"{APP}/failed", "Upstash-Callback": f"{APP}/each",
            "Upstash-Forward-X-Order": "42", "Upstash-Label": "orders",
            "Upstash-Failure-Callback-Retry-Delay": "2000 * retried",
        },
    ).json()  # fmt: skip
    later = call(
        fake, "POST", f"/v2/publish/{APP}/later", data=b"{}", headers={"Upstash-Delay": "2h"}
    ).json()
    call(fake, "POST", "/v2/queues", json={"queueName": "line", "parallelism": 1})
    for body in (b"first", b"second"):
        call(fake, "POST", f"/v2/enqueue/line/{APP}/q", data=body, headers={"Upstash-Delay": "1h"})
    for _ in range(2):
        call(
            fake, "POST", f"/v2/publish/{APP}/flow", data=b"f",
            headers={"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": "rate=1,period=1h"},
        )  # fmt: skip
    call(fake, "POST", "/v2/topics/team/endpoints", json={"endpoints": [{"url": f"{APP}/a"}]})
    call(
        fake, "POST", f"/v2/schedules/{APP}/nightly",
        headers={"Upstash-Cron": "CRON_TZ=Europe/Berlin 0 3 * * *", "Upstash-Schedule-Id": "night"},
    )  # fmt: skip
    call(fake, "POST", f"/v2/schedules/{APP}/hourly", headers={"Upstash-Cron": "0 * * * *"})
    call(fake, "PATCH", "/v2/schedules/night/pause")
    run_id = fake.workflows.trigger(f"{APP}/wf", "{}")
    fake.clock.advance(timedelta(seconds=10))
    call(fake, "POST", "/v2/wait/approve", json=wait_body(run_id, f"{APP}/wf", "ok", "3h"))
    call(fake, "POST", "/v2/keys/rotate")
    return {"failed": published["messageId"], "later": later["messageId"], "run": run_id}


def reads(fake: QStashTasksMock, ids: dict[str, str]) -> dict[str, Any]:
    """What an app reads of the fake."""
    return {
        path: call(fake, "GET", path).json()
        for path in (
            "/v2/dlq", "/v2/logs?count=1000", "/v2/schedules", "/v2/queues", "/v2/topics",
            "/v2/keys", "/v2/flowControl", "/v2/waiters/approve", f"/v2/messages/{ids['later']}",
            "/v1/messages/msg_seeded/tasks", "/v1/messages/msg_simulated/tasks",
            f"/v1/messages/{ids['failed']}/tasks", f"/v2/workflows/runs/{ids['run']}",
            "/v2/workflows/logs",
        )
    }  # fmt: skip


def test_a_restored_fake_reads_and_goes_on_as_the_one_it_was_taken_from() -> None:
    original = make_fake().start()
    try:
        ids = fill(original)
        data = snapshot(original)
        before = reads(original, ids)
        original.clock.advance(timedelta(hours=26))
        after = reads(original, ids)
        original_rest = snapshot(original)
    finally:
        original.stop()
    copy = make_fake()
    copy.destination(f"{APP}/broken").answers(*[500] * 20)
    restore(copy, data)
    assert snapshot(copy) == data  # the same state, the same bytes
    copy.start()
    try:
        assert reads(copy, ids) == before
        copy.clock.advance(timedelta(hours=26))  # retries, the queue, the schedules, the wait
        assert reads(copy, ids) == after
        assert snapshot(copy) == original_rest
    finally:
        copy.stop()
    logs = [(entry["messageId"], entry["state"]) for entry in after["/v2/logs?count=1000"]["logs"]]
    assert (ids["failed"], "FAILED") in logs  # the story went on: a retry, then the DLQ
    assert (ids["later"], "DELIVERED") in logs
    assert len(after["/v2/dlq"]["messages"]) == 1
    assert len(before["/v2/dlq"]["messages"]) == 0


def test_the_file_holds_a_retry_delay_and_a_cron_zone_as_their_text() -> None:
    data = snapshot(filled())
    assert b'{"$v":"RetryDelay","of":"2000 * retried"}' in data
    assert b'{"$v":"CronPlan","of":"CRON_TZ=Europe/Berlin 0 3 * * *"}' in data
    assert b": " not in data[:200]  # compact


def test_keys_that_look_like_the_file_s_own_tags_stay_keys() -> None:
    fake = make_fake().start()
    try:
        run_id = fake.workflows.trigger(f"{APP}/wf", "{}")
        fake.clock.advance(timedelta(seconds=1))
        body = wait_body(run_id, f"{APP}/wf", "ok")
        body["timeoutHeaders"] = {"$o": ["Message"], "$r": ["0"], "X": ["y"]}
        assert call(fake, "POST", "/v2/wait/approve", json=body).ok
    finally:
        fake.stop()
    data = snapshot(fake)
    copy = make_fake()
    restore(copy, data)
    assert snapshot(copy) == data
    (waiter,) = copy._outbox.runs.waiters["approve"]
    assert waiter.headers == {"$o": ["Message"], "$r": ["0"], "X": ["y"]}


def test_objects_met_twice_are_one_object_again() -> None:
    fake = filled()
    copy = make_fake()
    restore(copy, snapshot(fake))
    for message in copy._outbox.messages.values():
        assert message.delivery.message is message
    queue = copy._outbox.queues._queues["line"]
    waiting = {id(message) for message, _ in queue.waiting}
    assert waiting <= {id(message) for message in copy._outbox.messages.values()}
    assert copy._outbox.log is copy.logs._log  # the parts still hold the fake's own state


def test_the_layout_is_pinned_to_its_version() -> None:
    # A state class that gains, loses or renames a field changes what the file holds:
    # bump STATE_VERSION and pin the new layout here, or old files would load wrong.
    document = json.loads(snapshot(make_fake()))
    assert list(document) == ["format", "version", "clock", "state"]
    assert document["format"] == "qstash-tasks-fake state"
    assert list(document["state"]) == [
        "store", "agenda", "outbox", "log", "flow", "queues", "runs", "dlq", "schedules",
        "keys", "ids",
    ]  # fmt: skip
    pinned = {
        "Agenda": ["_due_times", "_due_at", "scheduled"],
        "CronPlan": ["(value)"],
        "DeadLetter": [
            "dlq_id", "message", "failed_at", "response_status", "response_headers",
            "response_body", "sequence", "failure_callback",
        ],
        "DeadLetterQueue": ["_entries", "_sequences", "_ordered", "_next"],
        "Firing": ["schedule", "generation"],
        "FlowControl": ["_keys"],
        "FlowKey": [
            "key", "given", "parallelism", "rate", "period_s", "paused", "pinned_parallelism",
            "pinned_rate", "active_until", "period_start", "rate_count", "waiting", "wake_at",
        ],
        "FlowLimits": ["parallelism", "rate", "period_s"],
        "FlowWake": ["key"],
        "Invoker": ["url", "run_id", "headers", "step"],
        "KeyRing": ["current", "next"],
        "LogEntry": ["time", "message_id", "state", "url", "fields", "order", "flow_key"],
        "Message": [
            "message_id", "url", "method", "headers", "body", "created_at", "not_before",
            "delivery", "url_group", "endpoint_name", "queue", "timeout_s", "callbacks",
            "schedule_id", "queue_place", "flow_key", "run_id", "call_type",
        ],
        "MessageLog": ["_times", "_at", "_next"],
        "MessageTasks": ["message_id", "_entries", "_neg_timestamps", "_bodies", "_ids",
                         "_has_simulated"],
        "Outbox": ["published", "messages", "url_groups", "deduplication"],
        "Publish": [
            "destination", "urls", "url_group", "queue", "method", "headers", "body",
            "retries", "retry_delay", "retry_delays", "first_attempt_at", "not_before",
            "deduplication_id", "timeout_s", "callbacks", "schedule_id", "flow", "workflow",
            "invoker",
        ],
        "PublishedDelivery": [
            "task_id", "message_id", "url", "max_retry", "created_at", "active_ms",
            "retry_delay", "retry_delays", "starts", "errors", "_canceled_at", "message",
            "flow_admitted",
        ],
        "PublishedMessage": [
            "destination", "method", "headers", "body", "message_ids", "urls", "published_at",
            "url_group", "queue", "deduplicated",
        ],
        "Queue": ["name", "created_at", "updated_at", "parallelism", "paused", "waiting", "active"],
        "QueueBook": ["_queues"],
        "Random": ["(value)"],
        "RetryDelay": ["(value)"],
        "Run": [
            "run_id", "url", "created_at", "state", "completed_at", "result", "error", "label",
            "messages", "invoker", "config",
        ],
        "RunBook": ["_runs", "waiters", "kept"],
        "RunMessage": ["message_id", "body", "call_type", "created_at", "url"],
        "Schedule": [
            "schedule_id", "destination", "plan", "method", "headers", "body", "created_at",
            "retries", "paused", "delay_s", "timeout_s", "next_time", "firings", "generation",
        ],
        "ScheduleBook": ["_schedules"],
        "ScriptedPages": ["message_id", "pages", "bodies", "by_cursor", "requested"],
        "SimulatedDelivery": [
            "task_id", "message_id", "url", "max_retry", "created_at", "active_ms", "errors",
        ],
        "Stream": ["rng", "taken_ids", "used"],
        "Task": ["(value)"],
        "TaskStore": ["messages", "scripted", "_registered"],
        "TasksPage": ["(value)"],
        "UrlGroupState": ["name", "created_at", "updated_at", "endpoints"],
        "WaitTimeout": ["waiter"],
        "Waiter": [
            "event_id", "run_id", "url", "deadline", "headers", "timeout_url", "timeout_body",
            "step", "timeout",
        ],
    }  # fmt: skip
    assert (STATE_VERSION, layout()) == (1, pinned), (
        "a state class changed: bump STATE_VERSION in control/state_file.py and pin the "
        "new layout here"
    )


def test_every_attribute_of_a_live_object_is_written_or_left_out_on_purpose() -> None:
    # The classes that are no dataclass list their fields by hand: an attribute added to
    # one in __init__ would be lost on restart without this.
    left_out = {
        "TaskStore": {"version"},  # an identity marker, made again
        "Agenda": {"on_earlier"},  # the wall clock's wake-up, wired again
        "Outbox": {"_store", "_agenda", "log", "flow", "queues", "runs"},  # parts of their own
        "FlowControl": {"_agenda", "_lasts_ms"},
        "QueueBook": {"_agenda"},
        "KeyRing": {"_initial"},  # the keys a reset goes back to: the command's
    }
    fake = filled()
    found = kinds()
    live = [
        fake._store, fake._agenda, fake._outbox, fake._outbox.log, fake._outbox.flow,
        fake._outbox.queues, fake._outbox.runs, fake._dlq, fake._schedules, fake._keys,
        next(iter(fake._outbox.messages.values())).delivery,
    ]  # fmt: skip
    for obj in live:
        name = type(obj).__name__
        assert not dataclasses.is_dataclass(obj)
        written = set(found[name].fields)
        assert set(vars(obj)) - left_out.get(name, set()) == written, name


def filled() -> QStashTasksMock:
    """A fake with a bit of everything, stopped."""
    fake = make_fake().start()
    try:
        fill(fake)
    finally:
        fake.stop()
    return fake


def _edited(edit: Callable[[dict[str, Any]], object]) -> Callable[[], bytes]:
    return lambda: _edit(edit)


def _edit(edit: Callable[[dict[str, Any]], object]) -> bytes:
    fake = filled()
    document = json.loads(snapshot(fake))
    edit(document)
    return json.dumps(document).encode()


def _first(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The first object of class ``name`` in the document."""
    found: list[dict[str, Any]] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if value.get("$o") == name and not found:
                found.append(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(document)
    return found[0]


def _set(target: dict[str, Any], key: str, value: object) -> None:
    target[key] = value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "not JSON (Expecting value: line 1 column 1 (char 0)): cut short, "
                     "or not a state file", id="empty"),
        pytest.param(b'{"format": "qstash-tasks-fake state", "version": 1, "clo',
                     "not JSON (Unterminated string starting at: line 1 column 53 (char 52)): "
                     "cut short, or not a state file", id="cut-short"),
        pytest.param(b"\xff\xfe", "not UTF-8 text: 'utf-8' codec can't decode byte 0xff in "
                     "position 0: invalid start byte", id="binary"),
        pytest.param(b"[]", "not a state file: its \"format\" is not 'qstash-tasks-fake state'",
                     id="not-a-state-file"),
        pytest.param(b'{"format": "qstash-tasks-fake state", "version": 2}',
                     "written by a newer qstash-tasks-fake (state version 2; this one reads "
                     "version 1): upgrade it, or start without the file", id="newer"),
        pytest.param(b'{"format": "qstash-tasks-fake state", "version": 0}',
                     "written by an older qstash-tasks-fake (state version 0; this one reads "
                     "version 1): start that version, or start without the file", id="older"),
        pytest.param(b'{"format": "qstash-tasks-fake state", "version": "1"}',
                     "its \"version\" is '1', not a number", id="version-text"),
        pytest.param(b'{"format": "qstash-tasks-fake state", "version": 1, "state": {}}',
                     'no "clock" (unix ms) and "state" (an object)', id="no-clock"),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "$o", "Popen")),
            "'Popen' is no kind of object a state file holds", id="foreign-class",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "$o", "Outbox")),
            "'Outbox' is no kind of object a state file holds", id="a-part-inside",
        ),
        pytest.param(
            _edited(lambda d: _first(d, "Message").pop("url")),
            "a Message with no url", id="missing-field",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "evil", 1)),
            "a Message with unknown evil", id="unknown-field",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "delivery", {"$r": 99999})),
            "a reference to no object ({\"$r\": 99999})", id="dangling-reference",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "body", {"$b": "not base64!"})),
            "not base64: \"not base64!\"", id="bad-base64",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Schedule"), "plan", {"$v": "CronPlan", "of": "x"})),
            "a CronPlan the fake refuses: invalid cron 'x': want five fields (minute hour "
            "day-of-month month day-of-week), optionally after CRON_TZ=<zone>; got 1",
            id="bad-cron",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "headers", {"$x": []})),
            "unexpected {\"$x\": []}", id="unknown-tag",
        ),
        pytest.param(
            _edited(lambda d: d["state"].pop("dlq")),
            "its parts are not the fake's: missing dlq", id="missing-part",
        ),
        pytest.param(
            _edited(lambda d: (d["state"].pop("dlq"), _set(d["state"], "x", {}), _set(d["state"], "y", {}))),
            "its parts are not the fake's: missing dlq; unknown x, y", id="foreign-parts",
        ),
        pytest.param(
            _edited(lambda d: _set(d["state"], "x", {})),
            "its parts are not the fake's: unknown x", id="foreign-part",
        ),
        pytest.param(
            _edited(lambda d: (_first(d, "Message").pop("url"), _first(d, "Message").pop("method"))),
            "a Message with no url, method", id="missing-fields",
        ),
        pytest.param(
            _edited(lambda d: (_set(_first(d, "Message"), "a", 1), _set(_first(d, "Message"), "b", 2))),
            "a Message with unknown a, b", id="unknown-fields",
        ),
        pytest.param(
            _edited(lambda d: (_first(d, "Message").pop("url"), _set(_first(d, "Message"), "a", 1))),
            "a Message with no url; unknown a", id="missing-and-unknown",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "url", _first(d, "Message").pop("url"))),
            "a Message with its fields out of order", id="out-of-order",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "headers", {"$fs": []})),
            "unexpected {\"$fs\": []}", id="frozenset-tag",
        ),
        pytest.param(
            _edited(lambda d: _set(d["state"], "dlq", [])),
            "state.dlq: not an object", id="part-not-an-object",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "delivery", {"$r": []})),
            "a reference to no object ({\"$r\": []})", id="unhashable-reference",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Schedule"), "plan", {"$v": [], "of": "x"})),
            "unexpected {\"$v\": [], \"of\": \"x\"}", id="unhashable-value-kind",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "$o", [])),
            "[] is no kind of object a state file holds", id="unhashable-class",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "headers", {"$t": "abc"})),
            "unexpected {\"$t\": \"abc\"}", id="tuple-of-text",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "headers", {"$s": [{"$r": 0}]})),
            'unexpected {"$s": ["<MessageTasks>"]}', id="unhashable-in-a-set",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "body", {"$b": "aGk=!"})),
            "not base64: \"aGk=!\"", id="base64-with-junk",
        ),
        pytest.param(
            _edited(lambda d: _set(_first(d, "Message"), "headers", {"$t": "x" * 100})),
            "unexpected {\"$t\": \"" + "x" * 69 + "...", id="long-value-cut",
        ),
        pytest.param(
            b'{"format": "qstash-tasks-fake state", "version": 1, "x": ' + b"[" * 100_000,
            "nested too deep for a state file", id="too-deep",
        ),
    ],
)  # fmt: skip
def test_a_damaged_file_is_refused_in_words_and_nothing_changes(
    data: bytes | Callable[[], bytes], message: str
) -> None:
    fake = filled()
    before = snapshot(fake)
    with pytest.raises(StateFileError) as refused:
        restore(fake, data if isinstance(data, bytes) else data())
    text = str(refused.value)
    assert text == message or text.endswith(": " + message), text  # the words, whole
    assert snapshot(fake) == before


def test_where_a_damaged_object_sits_is_named() -> None:
    data = _edit(lambda d: _first(d, "Message").pop("url"))
    with pytest.raises(StateFileError) as refused:
        restore(make_fake(), data)
    assert re.fullmatch(
        r"state\.store\.messages\[msg_\w+\]<MessageTasks \d+>\._entries\[0\]"
        r"<PublishedDelivery \d+>\.message<Message \d+>: a Message with no url",
        str(refused.value),
    ), str(refused.value)


def test_a_write_cut_short_leaves_the_last_good_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = filled()
    path = tmp_path / "state.json"
    first = write_state(fake, path)
    assert path.read_bytes() == first
    assert write_state(fake, path, first) == first  # unchanged: nothing written
    fake.clock.advance(timedelta(hours=3))
    real_fsync = os.fsync

    def crash(handle: int) -> None:
        real_fsync(handle)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="No space left on device"):
        write_state(fake, path, first)
    assert path.read_bytes() == first  # the last good file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no half file left
    monkeypatch.setattr(os, "fsync", real_fsync)
    second = write_state(fake, path, first)
    assert second != first
    assert path.read_bytes() == second


def test_a_snapshot_waits_for_the_delivery_under_way() -> None:
    import threading
    import time

    answering = threading.Event()

    def slow(delivery: object) -> int:
        answering.set()
        time.sleep(0.3)
        return 200

    fake = QStashTasksMock(seed=SEED, clock="wall")
    fake.destination(f"{APP}/slow").deliver_to(slow)
    fake.start()
    try:
        message_id = call(fake, "POST", f"/v2/publish/{APP}/slow", data=b"x").json()["messageId"]
        assert answering.wait(5)  # the wall clock's thread is in the receiver now
        document = json.loads(snapshot(fake))
    finally:
        fake.stop()
    copy = make_fake()
    restore(copy, json.dumps(document).encode())
    copy.clock.advance(timedelta(seconds=1))  # past the attempt's time shown active
    (task,) = copy.tasks(message_id)
    assert task.state == "delivered"  # not a delivery caught half way, lost on restart
    assert [entry.state for entry in copy.logs.list(message_id=message_id)][-1] == "DELIVERED"


def test_a_rewritten_file_keeps_the_mode_it_was_given(tmp_path: Path) -> None:
    fake = filled()
    path = tmp_path / "state.json"
    first = write_state(fake, path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # new: as any file the user makes
    path.chmod(0o640)
    fake.clock.advance(timedelta(hours=1))
    assert write_state(fake, path, first) != first
    assert path.stat().st_mode & 0o777 == 0o640


def test_the_keeper_tells_a_failing_write_once_and_writes_again_when_it_can(
    tmp_path: Path,
) -> None:
    told: list[str] = []
    path = tmp_path / "later" / "state.json"
    keeper = StateKeeper(filled(), path, 0, told.append)
    assert keeper.write() is False
    assert keeper.write() is False  # the same failure: told once
    assert len(told) == 1
    assert told[0] == f"could not write the state to {path}: No such file or directory"
    path.parent.mkdir()
    assert keeper.stop() is True
    assert path.exists()
    path.parent.joinpath(path.name).unlink()
    path.parent.rmdir()
    assert keeper.stop() is False  # a new failure is told again, and what it costs
    assert told[1:] == [told[0], f"the state since the last write to {path} is lost"]
