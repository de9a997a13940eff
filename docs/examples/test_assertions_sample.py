import httpx


def test_what_the_client_asked_for(qstash_tasks):
    qstash_tasks.add("msg_1", count=150)
    client = httpx.Client(base_url=qstash_tasks.base_url, headers={"Authorization": "Bearer x"})
    first = client.get("/v1/messages/msg_1/tasks").json()
    client.get("/v1/messages/msg_1/tasks", params={"cursor": first["cursor"]})

    qstash_tasks.assert_called("msg_1", times=2)
    qstash_tasks.assert_called("msg_1", cursor=None, times=1)  # one first page
    qstash_tasks.assert_not_called("msg_2")
    qstash_tasks.assert_all_pages_fetched("msg_1")

    second = qstash_tasks.get_calls("msg_1", cursor=first["cursor"])[0]
    assert (second.status, second.task_count, second.next_cursor) == (200, 50, None)
    assert second.request.headers["authorization"] == "Bearer x"
    assert second.token == "x"
