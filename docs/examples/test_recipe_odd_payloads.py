import httpx

from pytest_qstash_tasks import Task, TaskState


def test_states_outside_the_v1_list(qstash_tasks):
    # The API page's own example shows "processing" and "retrying". Generated tasks
    # keep to the seven v1 states, so give these as they come on the wire.
    odd = [
        {
            "taskId": f"tsk_{state}",
            "messageId": "msg_1",
            "url": "https://a.example",
            "state": state,
            "retried": 0,
            "maxRetry": 3,
        }
        for state in ("processing", "retrying")
    ]
    qstash_tasks.add("msg_1", odd)
    client = httpx.Client(base_url=qstash_tasks.base_url, headers={"Authorization": "Bearer x"})
    states = [t["state"] for t in client.get("/v1/messages/msg_1/tasks").json()["tasks"]]
    assert sorted(states) == ["processing", "retrying"]
    assert not any(isinstance(t.state, TaskState) for t in qstash_tasks.tasks("msg_1"))


def test_a_payload_that_breaks_the_rules(qstash_tasks):
    # Task.unchecked skips validation: for testing how your parser copes.
    broken = Task.unchecked(
        task_id="tsk_1", message_id="msg_1", url="", state="delivered", retried=9, max_retry=3
    )
    qstash_tasks.add("msg_1", [broken])
    client = httpx.Client(base_url=qstash_tasks.base_url, headers={"Authorization": "Bearer x"})
    (task,) = client.get("/v1/messages/msg_1/tasks").json()["tasks"]
    assert (task["retried"], task["maxRetry"]) == (9, 3)
