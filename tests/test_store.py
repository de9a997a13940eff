from __future__ import annotations

import pytest

from pytest_qstash_tasks import make_task, make_tasks
from pytest_qstash_tasks._core.store import TaskStore


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
