import pytest
from pydantic import ValidationError

from pytest_qstash_tasks import Task, TasksPage, TaskState


def test_parse_a_page():
    text = (
        '{"cursor": 1767225599000, "tasks": [{"maxRetry": 3, "messageId": "msg_1", '
        '"retried": 0, "state": "delivered", "taskId": "tsk_1", "url": "https://x", '
        '"completedAt": 1767225600000}]}'
    )
    page = TasksPage.model_validate_json(text)
    assert page.tasks[0].state is TaskState.DELIVERED
    assert page.tasks[0].max_retry == 3
    assert page.model_dump(by_alias=True)["tasks"][0]["maxRetry"] == 3
    assert page.has_more


def test_wrong_payloads_are_refused():
    with pytest.raises(ValidationError, match="retried"):
        Task(
            task_id="tsk_1",
            message_id="msg_1",
            url="https://x",
            state="failed",
            max_retry=1,
            retried=7,
        )


def test_odd_payloads_on_purpose(qstash_tasks):
    odd = Task.unchecked(
        task_id="tsk_1", message_id="msg_1", url="https://x", state="failed", max_retry=1, retried=7
    )
    qstash_tasks.add("msg_1", [odd])  # served as given
    assert qstash_tasks.tasks("msg_1")[0].retried == 7
