import httpx
import pytest

from pytest_qstash_tasks import make_tasks


def all_task_ids(client: httpx.Client, message_id: str) -> list[str]:
    """Your code: every task id of a message, newest first."""
    ids: list[str] = []
    cursor = None
    while True:
        params = {"cursor": cursor} if cursor else {}
        response = client.get(f"/v1/messages/{message_id}/tasks", params=params)
        response.raise_for_status()
        page = response.json()
        ids += [task["taskId"] for task in page["tasks"]]
        cursor = page.get("cursor")
        if not cursor:  # 0, or no cursor at all
            return ids


@pytest.fixture
def client(qstash_tasks):
    with httpx.Client(
        base_url=qstash_tasks.base_url,
        headers={"Authorization": f"Bearer {qstash_tasks.token}"},
    ) as client:
        yield client


def test_every_task_exactly_once(qstash_tasks, client):
    stored = qstash_tasks.add("msg_1", count=1_234)
    assert all_task_ids(client, "msg_1") == [task.task_id for task in stored]
    qstash_tasks.assert_all_pages_fetched("msg_1")


def test_many_tasks_in_one_millisecond(qstash_tasks, client):
    # A fan-out creates tasks in the same ms: 150 of them share each timestamp.
    tasks = make_tasks(450, message_id="msg_1", timeline_at=lambda i: 5_000 - i // 150)
    qstash_tasks.add("msg_1", tasks)
    assert len(all_task_ids(client, "msg_1")) == 450
    # A page never splits a millisecond: three pages of 150, not 100 + 100 + ...
    assert [call.task_count for call in qstash_tasks.calls] == [150, 150, 150]


@pytest.mark.qstash_tasks(page_size=10, end_cursor=None)
def test_small_pages_and_an_omitted_end_cursor(qstash_tasks, client):
    qstash_tasks.add("msg_1", count=95)
    assert len(all_task_ids(client, "msg_1")) == 95
    assert "cursor" not in qstash_tasks.calls[-1].response.json()
    qstash_tasks.assert_called("msg_1", times=10)


def test_a_message_without_tasks(qstash_tasks, client):
    qstash_tasks.add_message("msg_empty")
    assert all_task_ids(client, "msg_empty") == []
