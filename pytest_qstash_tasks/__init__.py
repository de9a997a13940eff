"""pytest-qstash-tasks: a faithful, offline fake of QStash's message tasks endpoint and
the message API around it (publishing, URL groups, cancelling).

Public API::

    from pytest_qstash_tasks import QStashTasksMock, QStashTasksServer
    from pytest_qstash_tasks import Task, TaskState, TasksPage
    from pytest_qstash_tasks import make_task, make_tasks, make_pages

Names are imported on first use: pytest loads this package in every run of a
project that installs it, and most runs never touch pydantic or respx through it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._core.api.hosts import DEFAULT_BASE_URL
    from ._core.args import ANY
    from ._core.engine.clock import DEFAULT_START_MS, Clock
    from ._core.engine.destinations import Destination
    from ._core.engine.receivers import DeliveryAttempt, DeliveryRequest
    from ._core.errors import (
        QStashTasksLoopError,
        QStashTasksRealHostError,
        QStashTasksRunawayError,
    )
    from ._core.factories import make_pages, make_task, make_tasks
    from ._core.fake import QStashTasksFake
    from ._core.models import Task, TasksPage, TaskState
    from ._core.parts.dlq import Dlq, DlqEntry
    from ._core.parts.logs import Log, Logs
    from ._core.parts.messages import Messages
    from ._core.parts.signing_keys import SigningKeys
    from ._core.parts.url_groups import UrlGroup, UrlGroupEndpoint, UrlGroups
    from ._core.state.calls import RecordedCall
    from ._core.state.faults import Fault
    from ._core.state.lifecycle import backoff_ms
    from ._core.state.outbox import PublishedMessage
    from ._transports.in_process import QStashTasksMock
    from ._transports.server import QStashTasksServer

#: Each public name and the module it lives in: the one table ``__all__`` comes from.
_LAZY = {
    "ANY": "._core.args",
    "DEFAULT_BASE_URL": "._core.api.hosts",
    "RecordedCall": "._core.state.calls",
    "Clock": "._core.engine.clock",
    "Destination": "._core.engine.destinations",
    "DeliveryAttempt": "._core.engine.receivers",
    "DeliveryRequest": "._core.engine.receivers",
    "PublishedMessage": "._core.state.outbox",
    "QStashTasksLoopError": "._core.errors",
    "QStashTasksRealHostError": "._core.errors",
    "QStashTasksRunawayError": "._core.errors",
    "make_pages": "._core.factories",
    "make_task": "._core.factories",
    "make_tasks": "._core.factories",
    "Fault": "._core.state.faults",
    "QStashTasksFake": "._core.fake",
    "Task": "._core.models",
    "TaskState": "._core.models",
    "TasksPage": "._core.models",
    "DEFAULT_START_MS": "._core.engine.clock",
    "backoff_ms": "._core.state.lifecycle",
    "QStashTasksMock": "._transports.in_process",
    "QStashTasksServer": "._transports.server",
    "Messages": "._core.parts.messages",
    "SigningKeys": "._core.parts.signing_keys",
    "Dlq": "._core.parts.dlq",
    "DlqEntry": "._core.parts.dlq",
    "Log": "._core.parts.logs",
    "Logs": "._core.parts.logs",
    "FlowControl": "._core.parts.flow_control",
    "FlowControlKey": "._core.parts.flow_control",
    "Queue": "._core.parts.queues",
    "Queues": "._core.parts.queues",
    "Schedule": "._core.parts.schedules",
    "Schedules": "._core.parts.schedules",
    "UrlGroup": "._core.parts.url_groups",
    "UrlGroupEndpoint": "._core.parts.url_groups",
    "UrlGroups": "._core.parts.url_groups",
    "WorkflowRun": "._core.parts.workflows",
    "WorkflowStep": "._core.parts.workflows",
    "Workflows": "._core.parts.workflows",
}

# A test checks that __all__ lists exactly the names of _LAZY and __version__.
__all__ = [
    "ANY",
    "Clock",
    "DEFAULT_BASE_URL",
    "DEFAULT_START_MS",
    "DeliveryAttempt",
    "DeliveryRequest",
    "Destination",
    "Dlq",
    "DlqEntry",
    "Fault",
    "FlowControl",
    "FlowControlKey",
    "Log",
    "Logs",
    "Messages",
    "PublishedMessage",
    "QStashTasksFake",
    "QStashTasksLoopError",
    "QStashTasksRealHostError",
    "QStashTasksRunawayError",
    "QStashTasksMock",
    "QStashTasksServer",
    "Queue",
    "Queues",
    "RecordedCall",
    "Schedule",
    "Schedules",
    "SigningKeys",
    "Task",
    "TaskState",
    "TasksPage",
    "UrlGroup",
    "UrlGroupEndpoint",
    "UrlGroups",
    "WorkflowRun",
    "WorkflowStep",
    "Workflows",
    "__version__",
    "backoff_ms",
    "make_pages",
    "make_task",
    "make_tasks",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
