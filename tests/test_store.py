from __future__ import annotations

import warnings

import httpx
import pytest

from pytest_qstash_tasks import (
    DEFAULT_START_MS,
    QStashTasksMock,
    Task,
    TasksPage,
    make_task,
    make_tasks,
)
from pytest_qstash_tasks._core.state.store import TaskStore
from tests.helpers import client_for


def test_tasks_merge_into_timeline_order_and_ties_keep_the_order_added() -> None:
    store = TaskStore()
    first = make_tasks(3, message_id="m", timeline_at=lambda i: [30, 20, 10][i])
    store.add("m", first, now=100)
    later = make_tasks(2, message_id="m", timeline_at=lambda i: [25, 20][i])
    store.add("m", later, now=100)
    order = [t.task_id for t in store.messages["m"].tasks_at(0)]
    assert order == [
        first[0].task_id,
        later[0].task_id,
        first[1].task_id,
        later[1].task_id,
        first[2].task_id,
    ]


def test_duplicate_task_ids_are_refused_and_nothing_is_stored() -> None:
    store = TaskStore()
    task = make_task(message_id="m")
    store.add("m", [task], now=100)
    with pytest.raises(ValueError, match=f"already has a task '{task.task_id}'"):
        store.add("m", [make_task(message_id="m"), task], now=100)
    assert len(store.messages["m"]) == 1


def test_tasks_of_another_message_are_refused() -> None:
    store = TaskStore()
    with pytest.raises(ValueError, match="belongs to message 'other', not 'm'"):
        store.add("m", [make_task(message_id="other")], now=100)
    assert "m" not in store.messages


def test_scripted_and_stored_do_not_mix() -> None:
    store = TaskStore()
    store.add_message("m")
    with pytest.raises(ValueError, match="already holds stored tasks"):
        store.add_pages("m", [{"tasks": []}])
    store.add_pages("s", [{"tasks": []}])
    with pytest.raises(ValueError, match="served from scripted pages"):
        store.add("s", [], now=1)
    with pytest.raises(ValueError, match="already has scripted pages"):
        store.add_pages("s", [{"tasks": []}])


@pytest.mark.parametrize(
    ("pages", "complaint"),
    [
        ([], "needs at least one page"),
        ([{"cursor": 0, "tasks": []}, {"tasks": []}], r"page 1 of 'm' ends the list \(cursor 0\)"),
        ([{"cursor": 5, "tasks": []}], "hands out cursor 5, which leads nowhere"),
        (
            [{"cursor": 5, "tasks": []}, {"cursor": 5, "tasks": []}, {"tasks": []}],
            "both hand out cursor 5",
        ),
    ],
)
def test_inconsistent_scripts_are_refused(pages: list[dict[str, object]], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        TaskStore().add_pages("m", pages)


@pytest.mark.parametrize("bad", ["", None, "a/b", 5])
def test_bad_message_ids_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="message id"):
        TaskStore().add_message(bad)  # type: ignore[arg-type]


# What a client reads of the store, through a real client.


def _tasks(client: httpx.Client, message_id: str, **params: object) -> list[dict[str, object]]:
    response = client.get(f"/v1/messages/{message_id}/tasks", params=params)  # type: ignore[arg-type]
    tasks: list[dict[str, object]] = response.json()["tasks"]
    return tasks


def test_adding_no_tasks_changes_nothing() -> None:
    with QStashTasksMock() as fake, client_for(fake) as client:
        fake.add("m", count=2)
        before = _tasks(client, "m")
        assert fake.add("m", count=0) == []
        fake.add("m", [])
        assert _tasks(client, "m") == before


def test_a_page_holds_stored_and_simulated_tasks_each_as_of_now() -> None:
    with QStashTasksMock() as fake, client_for(fake) as client:
        fake.add("m", [make_task(message_id="m", task_id="stored", state="delivered")])
        fake.clock.advance(1)
        fake.simulate_delivery("m", url="https://example.com", outcomes=[200], task_id="sim")
        fake.clock.advance(200)
        assert [(t["taskId"], t["state"]) for t in _tasks(client, "m")] == [
            ("sim", "active"),
            ("stored", "delivered"),
        ]


def test_odd_payloads_are_sent_as_given_without_a_warning() -> None:
    odd = Task.unchecked(task_id="t", message_id="m", retried="many", max_retry=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with QStashTasksMock() as fake, client_for(fake) as client:
            fake.add("m", [odd])
            fake.add_pages("s", [TasksPage.model_construct(tasks=[odd], cursor=None)])
            (served,) = _tasks(client, "m")
            (scripted,) = _tasks(client, "s")
    assert (served["retried"], served["maxRetry"]) == ("many", -1)
    assert scripted == served


def test_a_page_fault_leaves_a_cursor_no_page_hands_out_alone() -> None:
    with QStashTasksMock(page_size=2) as fake, client_for(fake) as client:
        fake.add("m", count=5)
        fault = fake.fail_next(503, page=2)
        stale = client.get("/v1/messages/m/tasks", params={"cursor": 1})
        assert (stale.status_code, fault.fired) == (200, 0)
        first = client.get("/v1/messages/m/tasks").json()
        second = client.get("/v1/messages/m/tasks", params={"cursor": first["cursor"]})
        assert (second.status_code, fault.fired) == (503, 1)


def test_message_ids_are_listed_in_the_order_registered() -> None:
    fake = QStashTasksMock()
    fake.add_pages("scripted", [{"tasks": []}])
    fake.add("stored", count=1)
    fake.simulate_delivery("simulated", url="https://example.com", outcomes=[200])
    fake.add_message("empty")
    fake.add("scripted-not", count=1)
    fake.add("stored", count=1)  # already registered: keeps its place
    assert fake.message_ids() == ["scripted", "stored", "simulated", "empty", "scripted-not"]


def test_reset_forgets_everything_but_the_settings(qstash_tasks: QStashTasksMock) -> None:
    qstash_tasks.add("m", count=3)
    qstash_tasks.fail_next(503)
    qstash_tasks.expect_unserved("bad_cursor")
    qstash_tasks.clock.advance(5000)
    with client_for(qstash_tasks) as client:
        client.get("/v1/messages/m/tasks")
    qstash_tasks.reset()
    assert (qstash_tasks.calls, qstash_tasks.faults, qstash_tasks.problems()) == ([], [], [])
    assert qstash_tasks.clock.now == qstash_tasks.clock.start
    assert qstash_tasks.page_size == 100


def test_a_duplicate_task_id_in_one_batch_is_refused_and_nothing_is_stored() -> None:
    fake = QStashTasksMock()
    task = make_task(seed=1, message_id="m")
    with pytest.raises(ValueError, match=f"message 'm' already has a task '{task.task_id}'"):
        fake.add("m", [task, task])
    assert fake.message_ids() == []


def test_added_tasks_older_and_newer_than_the_stored_ones_are_served_in_order() -> None:
    fake = QStashTasksMock()
    middle = [
        make_task(seed=i, message_id="m", timeline_at=DEFAULT_START_MS - 1000 * i) for i in (1, 2)
    ]
    fake.add("m", middle)
    newest = make_task(seed=3, message_id="m", timeline_at=DEFAULT_START_MS)
    oldest = make_task(seed=4, message_id="m", timeline_at=DEFAULT_START_MS - 10_000)
    fake.add("m", [oldest, newest])
    assert fake.tasks("m") == [newest, *middle, oldest]


def test_stored_tasks_and_scripted_pages_never_share_a_message() -> None:
    fake = QStashTasksMock()
    fake.add_pages("scripted", [{"tasks": []}])
    fake.add("stored", count=1)
    with pytest.raises(
        ValueError,
        match=r"^message 'scripted' is served from scripted pages; it cannot also hold "
        r"stored tasks$",
    ):
        fake.add("scripted", count=1)
    with pytest.raises(
        ValueError,
        match=r"^message 'stored' already holds stored tasks; scripted pages would hide them$",
    ):
        fake.add_pages("stored", [{"tasks": []}])
    with pytest.raises(ValueError, match=r"^message 'scripted' is served from scripted pages"):
        fake.simulate_delivery("scripted", url="https://x", outcomes=[200])
    assert len(fake.tasks("stored")) == 1


def test_untimed_tasks_on_a_clock_at_zero_are_stamped_one() -> None:
    fake = QStashTasksMock(start=0)
    untimed = [
        make_task(seed=i, message_id="m").model_copy(update={"timeline_at": None}) for i in range(3)
    ]
    fake.add("m", untimed)
    assert [task.timeline_at for task in fake.tasks("m")] == [1, 1, 1]
