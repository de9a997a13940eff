"""The public surface, pinned: what users import and what the fakes offer. A change here
is a change users see; make it on purpose, in this file and in docs/reference.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pytest_qstash_tasks as package
from pytest_qstash_tasks import QStashTasksMock, QStashTasksServer

REFERENCE = Path(__file__).parent.parent / "docs" / "reference.md"

PACKAGE_NAMES = [
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
    "QStashTasksMock",
    "QStashTasksRealHostError",
    "QStashTasksRunawayError",
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

#: What a test reads and calls on the fixture's fake.
FAKE_NAMES = [
    "add",
    "add_message",
    "add_pages",
    "assert_all_destination_answers_used",
    "assert_all_faults_triggered",
    "assert_all_pages_fetched",
    "assert_all_requests_served",
    "assert_all_scripted_pages_requested",
    "assert_called",
    "assert_delivered",
    "assert_not_called",
    "assert_published",
    "base_url",
    "calls",
    "clock",
    "current_signing_key",
    "default_answer",
    "default_retries",
    "delay_next",
    "deliveries",
    "destination",
    "dlq",
    "end_cursor",
    "env",
    "expect_unserved",
    "fail_next",
    "faults",
    "flow_control",
    "get_calls",
    "guard_real_qstash",
    "logs",
    "max_chained_events",
    "max_identical_requests",
    "max_message_size",
    "message_ids",
    "messages",
    "next_signing_key",
    "page_size",
    "patch_sleep",
    "problems",
    "published",
    "queues",
    "raise_next",
    "rate_limit_next",
    "reset",
    "rotate_signing_keys",
    "schedules",
    "sign",
    "signing_keys",
    "simulate_delivery",
    "start",
    "stop",
    "tasks",
    "token",
    "url_groups",
    "verify",
    "workflows",
]


def public(obj: object) -> list[str]:
    return sorted(name for name in dir(obj) if not name.startswith("_"))


def test_the_package_exports_what_users_import() -> None:
    assert sorted(package.__all__) == PACKAGE_NAMES
    assert sorted([*package._LAZY, "__version__"]) == PACKAGE_NAMES  # one table
    assert public(package) == sorted(set(PACKAGE_NAMES) - {"__version__"})
    for name in package.__all__:
        assert getattr(package, name) is not None


def test_each_name_loads_from_its_module_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    for name, module in package._LAZY.items():
        monkeypatch.delitem(vars(package), name, raising=False)  # as before its first use
        value = getattr(package, name)
        assert value is getattr(importlib.import_module(module, "pytest_qstash_tasks"), name)
        assert vars(package)[name] is value  # kept: the next use is a plain lookup
    with pytest.raises(AttributeError) as raised:
        package.QStashTasksNope  # noqa: B018
    assert str(raised.value) == "module 'pytest_qstash_tasks' has no attribute 'QStashTasksNope'"


def test_the_in_process_fake_shows_only_the_api() -> None:
    assert public(QStashTasksMock()) == FAKE_NAMES


def test_the_server_fake_shows_the_api_and_its_env() -> None:
    fake = QStashTasksServer()
    try:
        assert public(fake) == FAKE_NAMES
    finally:
        fake.stop()  # frees the port it bound


def test_the_reference_page_documents_exactly_the_public_names() -> None:
    from tests.reference_page import documented_names

    headings = re.findall(r"^### `(\w+)`$", REFERENCE.read_text(), re.M)
    assert headings == documented_names()
    assert sorted(headings) == sorted({*PACKAGE_NAMES, "strategies"} - {"__version__"})


def test_the_reference_page_is_made_from_the_package_as_it_is() -> None:
    from tests.reference_page import render

    assert REFERENCE.read_text() == render(), (
        "docs/reference.md is out of date: write it again with python -m tests.reference_page"
    )


def test_help_shows_the_unset_json_filter_as_unset() -> None:
    # assert_published(json=None) checks for a JSON null: the default is its own value.
    import inspect

    default = inspect.signature(QStashTasksMock.assert_published).parameters["json"].default
    assert repr(default) == "<unset>"
