from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from pytest_qstash_tasks import QStashTasksFake, Task, TasksPage, TaskState
from tests.helpers import SEED_EXAMPLE, client_for

VALID: dict[str, Any] = {
    "taskId": "tsk_1",
    "messageId": "msg_1",
    "url": "https://example.com/hook",
    "state": "delivered",
    "maxRetry": 3,
    "retried": 0,
}


def test_seed_example_round_trips_key_for_key(seed_example: dict[str, Any]) -> None:
    page = TasksPage.model_validate(seed_example)
    assert page.model_dump(by_alias=True) == seed_example
    assert json.loads(page.model_dump_json(by_alias=True)) == seed_example
    # Same keys in the same order as the page shows them.
    dumped = json.loads(page.model_dump_json(by_alias=True))
    assert [list(t) for t in dumped["tasks"]] == [list(t) for t in seed_example["tasks"]]


def test_seed_example_json_text_parses_the_same() -> None:
    page = TasksPage.model_validate_json(SEED_EXAMPLE.read_text())
    assert page.cursor == 1678901234567
    assert page.tasks[1].error == "Connection timeout"
    assert page.tasks[1].last_error_at == 1678901800000


def test_placeholder_states_of_the_docs_page_stay_strings(seed_example: dict[str, Any]) -> None:
    page = TasksPage.model_validate(seed_example)
    assert [t.state for t in page.tasks] == ["processing", "retrying"]
    assert not any(isinstance(t.state, TaskState) for t in page.tasks)
    assert not page.tasks[0].is_known_state


@pytest.mark.parametrize("state", list(TaskState))
def test_known_states_parse_to_the_enum(state: TaskState) -> None:
    task = Task.model_validate({**VALID, "state": state.value})
    assert task.state is state
    assert task.is_known_state
    assert task.model_dump(by_alias=True, mode="json")["state"] == state.value


def test_the_seven_v1_states() -> None:
    assert [s.value for s in TaskState] == [
        "created",
        "planned",
        "active",
        "delivered",
        "error",
        "failed",
        "canceled",
    ]


def test_snake_case_in_python_camel_case_on_the_wire() -> None:
    task = Task(
        task_id="tsk_1", message_id="msg_1", url="u", state="failed", max_retry=3, retried=3
    )
    assert task.max_retry == 3
    wire = task.model_dump(by_alias=True)
    assert "maxRetry" in wire
    assert "max_retry" not in wire
    assert Task.model_validate(wire) == task


def test_optional_fields_default_to_the_unset_values_qstash_sends() -> None:
    task = Task.model_validate(VALID)
    assert (task.completed_at, task.error, task.last_error_at, task.next_process_at) == (
        0,
        "",
        0,
        0,
    )


def test_timeline_at_is_never_on_the_wire() -> None:
    task = Task.model_validate({**VALID, "timeline_at": 5})
    assert task.timeline_at == 5
    assert "timelineAt" not in task.model_dump_json(by_alias=True)
    assert "timeline_at" not in task.model_dump()


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"retried": "1"}, "valid integer"),
        ({"maxRetry": 2.5}, "valid integer"),
        ({"completedAt": True}, "valid integer"),
        ({"lastErrorAt": -1}, "greater than or equal to 0"),
        ({"retried": -1}, "greater than or equal to 0"),
        ({"state": ""}, "at least 1 character"),
        ({"state": 3}, "state"),
        ({"taskId": ""}, "at least 1 character"),
        ({"error": None}, "valid string"),
        ({"retried": 4}, "retried (4) exceeds max_retry (3)"),
        ({"taskID": "typo"}, "Extra inputs are not permitted"),
    ],
)
def test_wrong_payloads_are_refused(change: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        Task.model_validate({**VALID, **change})


@pytest.mark.parametrize("missing", ["taskId", "messageId", "url", "state", "maxRetry", "retried"])
def test_required_fields(missing: str) -> None:
    data = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(ValidationError, match=f"{missing}\n  Field required"):
        Task.model_validate(data)


def test_tasks_are_immutable() -> None:
    task = Task.model_validate(VALID)
    with pytest.raises(ValidationError, match="frozen"):
        task.retried = 2  # type: ignore[misc]


def test_equal_tasks_hash_alike_and_different_ones_spread() -> None:
    from pytest_qstash_tasks import make_tasks

    tasks = make_tasks(200, message_id="m", seed=1)
    again = [Task.model_validate(task.model_dump(by_alias=True)) for task in tasks]
    assert [hash(task) for task in tasks] == [hash(task) for task in again]
    assert len({*tasks, *again}) == 200  # one set member per task
    assert len({hash(task) for task in tasks}) == 200  # a set of them stays fast


def test_unchecked_builds_inconsistent_payloads_and_sends_them_as_given() -> None:
    odd = Task.unchecked(
        taskId="tsk_odd", message_id="msg_1", url="u", state="failed", max_retry=1, retried=7
    )
    assert odd.retried > odd.max_retry
    wire = json.loads(odd.model_dump_json(by_alias=True))
    assert wire["retried"] == 7
    assert wire["maxRetry"] == 1
    assert wire["completedAt"] == 0


def test_unchecked_still_refuses_unknown_fields() -> None:
    with pytest.raises(TypeError, match="Task has no field 'retries'"):
        Task.unchecked(retries=1)


def test_page_end_markers() -> None:
    assert not TasksPage(tasks=[], cursor=0).has_more
    assert not TasksPage(tasks=[]).has_more
    assert TasksPage(tasks=[], cursor=5).has_more
    assert TasksPage(tasks=[]).model_dump(by_alias=True) == {"tasks": []}
    assert TasksPage(tasks=[], cursor=0).model_dump_json(by_alias=True) == '{"cursor":0,"tasks":[]}'
    assert TasksPage.model_validate({"tasks": []}).cursor is None


def test_page_requires_tasks() -> None:
    with pytest.raises(ValidationError, match="tasks\n  Field required"):
        TasksPage.model_validate({"cursor": 0})


def test_tasks_read_back_from_the_wire_equal_the_stored_ones(any_fake: QStashTasksFake) -> None:
    stored = any_fake.add("m", count=5)
    with client_for(any_fake) as client:
        wire = [Task.model_validate(t) for t in client.get("/v1/messages/m/tasks").json()["tasks"]]
    assert wire == stored
    assert set(wire) == set(stored)
    assert all(task.timeline_at is None for task in wire)
    assert "timeline_at" not in repr(stored[0])
    assert stored[0] != stored[0].model_copy(update={"retried": 1})
