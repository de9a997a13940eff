import httpx

from pytest_qstash_tasks import TasksPage, make_task


def test_pages_exactly_as_written(qstash_tasks):
    first = make_task(message_id="msg_1", state="delivered")
    second = make_task(message_id="msg_1", state="failed")
    qstash_tasks.add_pages(
        "msg_1",
        [
            TasksPage(cursor=1_767_225_000_000, tasks=[first]),
            {"cursor": 0, "tasks": [second.model_dump(by_alias=True)]},  # wire dicts work too
        ],
    )
    client = httpx.Client(base_url=qstash_tasks.base_url, headers={"Authorization": "Bearer x"})
    assert client.get("/v1/messages/msg_1/tasks").json()["cursor"] == 1_767_225_000_000
    last = client.get("/v1/messages/msg_1/tasks", params={"cursor": 1_767_225_000_000}).json()
    assert last["tasks"][0]["state"] == "failed"
    # At teardown, a page nobody asked for fails the test (assert_all_scripted_pages_requested).
