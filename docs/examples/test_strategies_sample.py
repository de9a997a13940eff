from hypothesis import given, settings

from pytest_qstash_tasks import TasksPage
from pytest_qstash_tasks import strategies as qst


def read_all(pages: list[TasksPage]) -> list[str]:
    """Your parser: task ids of a walk, stopping at the end marker."""
    ids = []
    for page in pages:
        ids += [task.task_id for task in page.tasks]
        if not page.cursor:
            break
    return ids


@settings(max_examples=50, deadline=None)
@given(pages=qst.tasks_pages(max_size=500))
def test_my_parser_reads_every_task(pages):
    assert len(read_all(pages)) == sum(len(page.tasks) for page in pages)
