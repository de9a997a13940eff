"""Properties: pagination proven for any tasks and page size; bad input fuzzed."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pytest_qstash_tasks import QStashTasksMock, Task, TasksPage, TaskState, backoff_ms, make_pages
from pytest_qstash_tasks import strategies as qst
from pytest_qstash_tasks._core.api.tasks import EndpointConfig, EndpointRequest, handle
from pytest_qstash_tasks._core.state.store import TaskStore
from tests.helpers import is_qstash_id, tasks_path, walk_pages

SLOW = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def walk_endpoint(
    store: TaskStore, config: EndpointConfig, message_id: str
) -> list[dict[str, Any]]:
    """Follow cursors through the pure endpoint; returns the pages' JSON bodies."""

    def page(cursor: int | None) -> dict[str, Any]:
        query = "" if cursor is None else f"cursor={cursor}"
        request = EndpointRequest("GET", tasks_path(message_id), query, "Bearer t")
        response = handle(request, store, config)
        assert response.status == 200, response.body
        body: dict[str, Any] = json.loads(response.body)
        return body

    return walk_pages(page)  # type: ignore[return-value]


def test_an_empty_states_list_is_refused_in_words() -> None:
    @given(qst.tasks(states=[]))
    def draw(task: Task) -> None:
        pass

    # Hypothesis may add a line saying what it was drawing.
    with pytest.raises(ValueError, match=r"^states cannot be empty($|\n)"):
        draw()


@SLOW
@given(
    tasks=qst.message_tasks(max_size=3_000),
    page_size=st.integers(min_value=1, max_value=100),
    end_cursor=st.sampled_from([0, None]),
)
def test_following_cursors_yields_every_task_once_newest_first(
    tasks: list[Task], page_size: int, end_cursor: int | None
) -> None:
    store = TaskStore()
    message_id = tasks[0].message_id if tasks else "msg_empty"
    store.add(message_id, tasks, now=0) if tasks else store.add_message(message_id)
    config = EndpointConfig(page_size=page_size, end_cursor=end_cursor)  # type: ignore[arg-type]
    pages = walk_endpoint(store, config, message_id)
    seen = [task["taskId"] for page in pages for task in page["tasks"]]
    assert sorted(seen) == sorted(t.task_id for t in tasks)  # each exactly once
    assert len(seen) == len(set(seen))
    order = {t.task_id: t.timeline_at for t in tasks}
    stamps = [order[task_id] for task_id in seen]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    for page in pages[:-1]:
        assert page["cursor"] > 0  # every page but the last leads on ...
    assert pages[-1].get("cursor", 0) == 0  # ... and the last ends the walk
    assert ("cursor" in pages[-1]) is (end_cursor == 0)
    # No page splits a millisecond, and only a tie group makes a page longer than page_size.
    for page in pages:
        if len(page["tasks"]) > page_size:
            assert len({order[t["taskId"]] for t in page["tasks"]}) == 1
    # make_pages agrees with what the fake serves for the same tasks.
    expected = make_pages(tasks, page_size=page_size, end_cursor=end_cursor)  # type: ignore[arg-type]
    assert [p.model_dump(by_alias=True, exclude_none=True) for p in expected] == pages


@SLOW
@given(tasks=qst.message_tasks(max_size=400), page_size=st.integers(1, 100))
def test_a_real_client_walks_the_fake_the_same_way(tasks: list[Task], page_size: int) -> None:
    assume(tasks)
    message_id = tasks[0].message_id
    with (
        QStashTasksMock(page_size=page_size, seed=1) as fake,
        httpx.Client(base_url=fake.base_url) as client,
    ):
        fake.add(message_id, tasks)
        seen: list[str] = []
        cursor = None
        while True:
            body = client.get(
                f"/v1/messages/{message_id}/tasks",
                params={"cursor": cursor} if cursor else {},
                headers={"Authorization": "Bearer t"},
            ).json()
            seen += [t["taskId"] for t in body["tasks"]]
            cursor = body["cursor"]
            if not cursor:
                break
        fake.assert_all_pages_fetched(message_id)
    assert seen == [t.task_id for t in fake.tasks(message_id)]
    assert sorted(seen) == sorted(t.task_id for t in tasks)


@SLOW
@given(task=qst.tasks())
def test_strategy_tasks_are_valid_and_follow_the_lifecycle(task: Task) -> None:
    assert Task.model_validate(task.model_dump(by_alias=True)) == task.model_copy(
        update={"timeline_at": None}
    )
    assert task.retried <= task.max_retry
    assert is_qstash_id(task.message_id, "msg")  # the length of QStash's ids, exactly
    assert is_qstash_id(task.task_id, "tsk")
    if task.state in (TaskState.CREATED, TaskState.PLANNED):
        assert (task.retried, task.completed_at, task.error) == (0, 0, "")
    if task.state is TaskState.ERROR:
        assert task.retried >= 1
        assert task.next_process_at == task.last_error_at + backoff_ms(task.retried)
    if task.state is TaskState.FAILED:
        assert task.retried == task.max_retry
    if task.state in (TaskState.DELIVERED, TaskState.FAILED, TaskState.CANCELED):
        assert task.next_process_at == 0
    if task.state is TaskState.DELIVERED:
        assert task.completed_at > 0
    if task.retried:
        assert task.error
        assert task.last_error_at


@SLOW
@given(pages=qst.tasks_pages(max_size=300), page=qst.tasks_page(states=["delivered"]))
def test_strategy_pages_link_up(pages: list[TasksPage], page: TasksPage) -> None:
    for current, following in itertools.pairwise(pages):
        assert current.has_more
        assert following.tasks[0].timeline_at == current.cursor
    assert not pages[-1].has_more
    assert all(task.state is TaskState.DELIVERED for task in page.tasks)


# -- fuzzing the endpoint ------------------------------------------------------------------

DOCUMENTED = {200, 400, 401, 404, 405}

odd_text = st.text(min_size=0, max_size=300)
message_id_parts = st.one_of(
    st.just("msg_1"),
    qst.message_ids(),
    odd_text.map(lambda t: quote(t, safe="")),
    st.text(alphabet="%/?#&=+ .", max_size=20),
    st.text(min_size=1000, max_size=5000, alphabet="abc%20"),
)
cursors = st.one_of(
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    odd_text,
    st.sampled_from(["", "+5", "0x10", "\uff11\uff12", "1e3", " 5", "5 ", "-0", "9" * 40]),
)
requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(
            ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "get"]
        ),
        "path": st.one_of(
            message_id_parts.map(lambda m: f"/v1/messages/{m}/tasks"),
            odd_text.map(lambda t: "/" + quote(t, safe="/")),
            st.sampled_from(
                ["/", "/v1/messages//tasks", "/v1/messages/msg_1/tasks/", "/v2/messages/msg_1"]
            ),
        ),
        "cursor": cursors,
        "extra_query": st.sampled_from(["", "&cursor=5", "&cursor=abc", "&x=1", "&&", "&cursor"]),
        "auth": st.one_of(
            st.none(),
            st.sampled_from(
                ["Bearer t", "bearer t", "Bearer", "Bearer  ", "Basic x", "Bearer a b", ""]
            ),
            odd_text.map(lambda t: "Bearer " + t),
        ),
    }
)


def _store() -> TaskStore:
    from pytest_qstash_tasks import make_tasks

    store = TaskStore()
    store.add("msg_1", make_tasks(30, message_id="msg_1", seed=3), now=10_000)
    store.add_message("msg_empty")
    store.add_pages(
        "msg_scripted", make_pages(make_tasks(5, message_id="msg_scripted", seed=4), page_size=2)
    )
    return store


STORE = _store()


@settings(max_examples=3_000, deadline=None)
@given(request=requests, token=st.sampled_from([None, "t"]))
def test_fuzzed_requests_always_get_a_documented_json_answer(
    request: dict[str, Any], token: str | None
) -> None:
    query = "" if request["cursor"] is None else "cursor=" + quote(request["cursor"], safe="")
    query += request["extra_query"]
    answer = handle(
        EndpointRequest(request["method"], request["path"], query, request["auth"]),
        STORE,
        EndpointConfig(token=token, page_size=7),
    )
    assert answer.status in DOCUMENTED
    body = json.loads(answer.body)
    if answer.status == 200:
        assert isinstance(body["tasks"], list)
        assert answer.unserved_reason is None
    else:
        assert set(body) == {"error"}
        assert isinstance(body["error"], str)
        assert body["error"]
        assert answer.unserved_reason is not None
        assert answer.detail


def test_fuzzed_requests_through_httpx() -> None:
    """The same fuzzing through a real client and the respx transport, on one fake."""
    with QStashTasksMock(
        assert_all_requests_served=False, max_identical_requests=10**9, seed=1
    ) as fake:
        fake.add("msg_1", count=30)
        with httpx.Client(base_url=fake.base_url) as client:

            @settings(max_examples=500, deadline=None)
            @given(request=requests)
            def check(request: dict[str, Any]) -> None:
                params = {} if request["cursor"] is None else {"cursor": request["cursor"]}
                headers = {} if request["auth"] is None else {"Authorization": request["auth"]}
                try:
                    built = client.build_request(
                        request["method"], request["path"], params=params, headers=headers
                    )
                except (httpx.InvalidURL, UnicodeEncodeError, ValueError):
                    assume(False)
                before = len(fake.calls)
                answer = client.send(built)
                assert answer.status_code in DOCUMENTED
                if request["method"] != "HEAD":
                    assert isinstance(answer.json(), dict)
                calls = fake.calls
                assert len(calls) == before + 1  # every request recorded exactly once
                assert calls[-1].status == answer.status_code

            check()


@pytest.mark.parametrize(
    ("count", "page_size", "ties"), [(3_000, 1, 50), (5_000, 100, 90), (2_000, 7, 0)]
)
def test_large_messages_walk_to_the_end(count: int, page_size: int, ties: int) -> None:
    from pytest_qstash_tasks import make_tasks

    stamps = [10**9 - (i - i * ties // 100) for i in range(count)]
    tasks = make_tasks(count, message_id="msg_big", seed=count, timeline_at=lambda i: stamps[i])
    store = TaskStore()
    store.add("msg_big", tasks, now=0)
    pages = walk_endpoint(store, EndpointConfig(page_size=page_size), "msg_big")
    assert [t["taskId"] for p in pages for t in p["tasks"]] == [t.task_id for t in tasks]
