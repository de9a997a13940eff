"""The endpoint core on its own: request in, response out, no HTTP library."""

from __future__ import annotations

import json

import pytest

from pytest_qstash_tasks import QStashTasksFake, make_tasks
from pytest_qstash_tasks._core.api.tasks import EndpointConfig, EndpointRequest, handle
from pytest_qstash_tasks._core.state.store import TaskStore
from tests.helpers import client_for

AUTH = "Bearer t0ken"


@pytest.fixture
def store() -> TaskStore:
    store = TaskStore()
    store.add("msg_1", make_tasks(5, message_id="msg_1", timeline_at=lambda i: 100 - i), now=1000)
    store.add_message("msg_empty")
    return store


def get(
    store: TaskStore,
    path: str,
    query: str = "",
    auth: str | None = AUTH,
    method: str = "GET",
    **config: object,
):
    return handle(EndpointRequest(method, path, query, auth), store, EndpointConfig(**config))  # type: ignore[arg-type]


def body(answer) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return json.loads(answer.body)  # type: ignore[no-any-return]


def test_first_page_and_following(store: TaskStore) -> None:
    first = get(store, "/v1/messages/msg_1/tasks", page_size=2)
    assert first.status == 200
    assert first.unserved_reason is None
    assert body(first)["cursor"] == 98
    assert [t["taskId"] for t in body(first)["tasks"]] == [
        t.task_id for t in store.messages["msg_1"].tasks_at(0)[:2]
    ]
    second = get(store, "/v1/messages/msg_1/tasks", "cursor=98", page_size=2)
    assert second.cursor == 98
    assert len(body(second)["tasks"]) == 2
    assert body(second)["cursor"] == 96
    last = get(store, "/v1/messages/msg_1/tasks", "cursor=96", page_size=2)
    assert body(last) == {"cursor": 0, "tasks": body(last)["tasks"]}
    assert len(body(last)["tasks"]) == 1


def test_end_marker_can_be_left_out(store: TaskStore) -> None:
    assert "cursor" not in body(get(store, "/v1/messages/msg_1/tasks", end_cursor=None))


def test_cursor_returns_tasks_at_or_before_it(store: TaskStore) -> None:
    answer = get(store, "/v1/messages/msg_1/tasks", "cursor=97")
    assert [t["taskId"] for t in body(answer)["tasks"]] == [
        t.task_id for t in store.messages["msg_1"].tasks_at(0)[3:]
    ]
    assert body(get(store, "/v1/messages/msg_1/tasks", "cursor=0")) == {"cursor": 0, "tasks": []}


def test_known_message_without_tasks(store: TaskStore) -> None:
    answer = get(store, "/v1/messages/msg_empty/tasks")
    assert (answer.status, body(answer)) == (200, {"cursor": 0, "tasks": []})


def test_unknown_message_is_404_and_says_what_is_registered(store: TaskStore) -> None:
    answer = get(store, "/v1/messages/msg_2/tasks")
    assert (answer.status, body(answer)) == (404, {"error": "Message not found"})
    assert answer.unserved_reason == "unknown_message"
    assert answer.detail == "message 'msg_2' is not registered; registered: 'msg_1', 'msg_empty'"


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5", "1e3", " 5", "٣", "9" * 30, "0x10"])
def test_bad_cursor_is_400(store: TaskStore, cursor: str) -> None:
    from urllib.parse import quote

    answer = get(store, "/v1/messages/msg_1/tasks", "cursor=" + quote(cursor))
    assert answer.status == 400
    assert answer.unserved_reason == "bad_cursor"
    assert "invalid cursor" in body(answer)["error"]


def test_empty_cursor_counts_as_absent_and_the_first_one_wins(store: TaskStore) -> None:
    assert body(get(store, "/v1/messages/msg_1/tasks", "cursor=")) == body(
        get(store, "/v1/messages/msg_1/tasks")
    )
    assert get(store, "/v1/messages/msg_1/tasks", "cursor=97&cursor=abc").cursor == 97


@pytest.mark.parametrize(
    ("auth", "error"),
    [
        (None, "missing Authorization header: want 'Bearer <token>'"),
        ("t0ken", "malformed Authorization header: want 'Bearer <token>'"),
        ("Bearer ", "malformed Authorization header: want 'Bearer <token>'"),
        ("Basic dXNlcjpwdw==", "malformed Authorization header: want 'Bearer <token>'"),
        ("Bearer a b", "malformed Authorization header: want 'Bearer <token>'"),
    ],
)
def test_missing_or_malformed_auth_is_401(store: TaskStore, auth: str | None, error: str) -> None:
    answer = get(store, "/v1/messages/msg_1/tasks", auth=auth)
    assert (answer.status, body(answer), answer.unserved_reason) == (
        401,
        {"error": error},
        "unauthorized",
    )


def test_any_token_unless_one_is_configured(store: TaskStore) -> None:
    assert get(store, "/v1/messages/msg_1/tasks", auth="bearer anything").token == "anything"
    wrong = get(store, "/v1/messages/msg_1/tasks", auth="Bearer other", token="t0ken")
    assert (wrong.status, body(wrong)) == (401, {"error": "invalid token"})
    assert get(store, "/v1/messages/msg_1/tasks", token="t0ken").status == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD"])
def test_other_methods_are_405(store: TaskStore, method: str) -> None:
    answer = get(store, "/v1/messages/msg_1/tasks", method=method)
    assert answer.status == 405
    assert ("allow", "GET") in answer.headers
    assert answer.unserved_reason == "method_not_allowed"


@pytest.mark.parametrize(
    "path",
    ["/v2/publish", "/v1/messages/msg_1", "/v1/messages/msg_1/tasks/", "/v1/messages//tasks", "/"],
)
def test_other_paths_are_404(store: TaskStore, path: str) -> None:
    answer = get(store, path)
    assert (answer.status, answer.unserved_reason) == (404, "unknown_path")
    assert "the fake serves GET /v1/messages/{messageId}/tasks and, of the v2" in answer.detail


def test_base_path_prefix(store: TaskStore) -> None:
    assert get(store, "/qstash/v1/messages/msg_1/tasks", base_path="/qstash").status == 200
    assert (
        get(store, "/v1/messages/msg_1/tasks", base_path="/qstash").unserved_reason
        == "unknown_path"
    )


def test_percent_encoded_message_ids(store: TaskStore) -> None:
    store.add_message("msg ü")
    assert get(store, "/v1/messages/msg%20%C3%BC/tasks").status == 200
    assert get(store, "/v1/messages/%FF/tasks").unserved_reason == "unknown_message"


def test_scripted_pages_are_served_verbatim() -> None:
    store = TaskStore()
    pages = [{"cursor": 7, "tasks": []}, {"cursor": 3, "tasks": []}, {"tasks": []}]
    store.add_pages("msg_s", pages)
    assert body(get(store, "/v1/messages/msg_s/tasks")) == pages[0]
    assert body(get(store, "/v1/messages/msg_s/tasks", "cursor=7")) == pages[1]
    third = get(store, "/v1/messages/msg_s/tasks", "cursor=3")
    assert (body(third), third.scripted_page) == (pages[2], 3)
    stray = get(store, "/v1/messages/msg_s/tasks", "cursor=5")
    assert (stray.status, stray.unserved_reason) == (400, "unknown_cursor")
    assert (
        stray.detail
        == "cursor 5 is not one the scripted pages of 'msg_s' hand out (they hand out: 7, 3)"
    )


def test_the_int64_cursor_edge(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=1)
    any_fake.expect_unserved("bad_cursor", message_id="m")
    with client_for(any_fake) as client:
        largest = client.get("/v1/messages/m/tasks", params={"cursor": 2**63 - 1})
        beyond = client.get("/v1/messages/m/tasks", params={"cursor": 2**63})
    assert largest.status_code == 200
    assert (beyond.status_code, beyond.json()["error"]) == (
        400,
        "invalid cursor '9223372036854775808': want a unix timestamp in ms (integer >= 0)",
    )


def test_query_parameter_names_are_case_sensitive(store: TaskStore) -> None:
    answer = get(store, "/v1/messages/msg_1/tasks", "CURSOR=97&Cursor=96", page_size=2)
    assert answer.cursor is None  # neither is a cursor: the first page
    assert len(body(answer)["tasks"]) == 2
    assert body(answer)["cursor"] == 98


def test_cursor_0_is_no_cursor_a_scripted_message_hands_out() -> None:
    store = TaskStore()
    store.add_pages("msg_s", [{"cursor": 7, "tasks": []}, {"tasks": []}])
    stray = get(store, "/v1/messages/msg_s/tasks", "cursor=0")  # not the first page again
    assert (stray.status, stray.unserved_reason) == (400, "unknown_cursor")
    assert stray.detail == (
        "cursor 0 is not one the scripted pages of 'msg_s' hand out (they hand out: 7)"
    )
