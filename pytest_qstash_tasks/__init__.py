"""pytest-qstash-tasks: a faithful, offline fake of QStash's message tasks endpoint.

Public API::

    from pytest_qstash_tasks import QStashTasksMock, Task, TaskState, TasksPage
    from pytest_qstash_tasks import make_task, make_tasks, make_pages

Names are imported on first use: pytest loads this package in every run of a
project that installs it, and most runs never touch pydantic or respx through it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._calls import RecordedCall
    from ._clock import Clock
    from ._errors import QStashTasksLoopError
    from ._factories import make_pages, make_task, make_tasks
    from ._faults import ANY, Fault
    from ._mock import DEFAULT_BASE_URL, QStashTasksMock
    from ._models import Task, TasksPage, TaskState
    from ._timing import DEFAULT_START_MS, backoff_ms

__all__ = [
    "ANY",
    "DEFAULT_BASE_URL",
    "DEFAULT_START_MS",
    "Clock",
    "Fault",
    "QStashTasksLoopError",
    "QStashTasksMock",
    "RecordedCall",
    "Task",
    "TaskState",
    "TasksPage",
    "__version__",
    "backoff_ms",
    "make_pages",
    "make_task",
    "make_tasks",
]

_LAZY = {
    "RecordedCall": "._calls",
    "Clock": "._clock",
    "QStashTasksLoopError": "._errors",
    "ANY": "._faults",
    "Fault": "._faults",
    "make_pages": "._factories",
    "make_task": "._factories",
    "make_tasks": "._factories",
    "DEFAULT_BASE_URL": "._mock",
    "QStashTasksMock": "._mock",
    "Task": "._models",
    "TaskState": "._models",
    "TasksPage": "._models",
    "DEFAULT_START_MS": "._timing",
    "backoff_ms": "._timing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
