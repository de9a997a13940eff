from pytest_qstash_tasks import TaskState, make_pages, make_task, make_tasks


def test_factories():
    task = make_task(state="error", retried=2, url="https://example.com/hook")
    assert task.state is TaskState.ERROR
    assert task.error.startswith("HTTP status ")
    assert task.next_process_at > task.last_error_at  # a retry is scheduled

    batch = make_tasks(500, message_id="msg_1", states={"delivered": 0.9, "failed": 0.1})
    assert {t.message_id for t in batch} == {"msg_1"}
    assert len({t.task_id for t in batch}) == 500

    pages = make_pages(batch, page_size=100)
    assert [len(p.tasks) for p in pages] == [100] * 5
    assert pages[-1].cursor == 0


def test_same_seed_same_data():
    assert make_tasks(3, seed=42) == make_tasks(3, seed=42)
