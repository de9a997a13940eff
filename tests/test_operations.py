"""Every documented QStash operation is served: each of ``tests/data/qstash_operations.txt``
(both public OpenAPI files, and the calls the SDKs make beyond them) is answered by the
fake's own resource, never by its unknown-path 404 or a 405, through both transports;
and the README's table of what the fake serves names where each one lives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_qstash_tasks import QStashTasksFake
from tests.helpers import unserved, v2

ROOT = Path(__file__).parent.parent
OPERATIONS = [
    tuple(line.split("#")[0].split())
    for line in (Path(__file__).parent / "data" / "qstash_operations.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
#: What stands in for each path parameter: a URL for a destination, a plain name else.
_VALUES = {
    "destination": "https://app.example.com/hook",
    "workflowUrl": "https://app.example.com/flow",
}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: _VALUES.get(match[1], "x1"), path)


def test_the_operations_file_lists_what_the_spec_counts() -> None:
    assert len(OPERATIONS) == 65
    assert len(set(OPERATIONS)) == 65


def not_served(fake: QStashTasksFake, method: str, target: str) -> str | None:
    """Why the fake's answer to ``method target`` says it does not serve it (its
    unknown-path 404, a resource's own "no such path" 404, a 405), else ``None``."""
    answer = v2(fake, method, target, data=b"{}")
    if answer.status_code == 405:
        return f"405: {answer.text}"
    if answer.status_code == 404 and (
        answer.json() == {"error": unserved(method, target)}
        or "no such" in answer.text
        or "endpoint at" in answer.text
    ):
        return f"404: {answer.text}"
    return None


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[" ".join(op) for op in OPERATIONS])
def test_every_documented_operation_is_served(
    any_fake: QStashTasksFake, method: str, path: str
) -> None:
    assert not_served(any_fake, method, concrete(path)) is None
    any_fake.assert_all_requests_served = False


@pytest.mark.parametrize(
    ("method", "target"),
    [("GET", "/v2/nothing"), ("PUT", "/v2/queues"), ("GET", "/v2/workflows/dlq/a/b")],
)
def test_the_walk_tells_an_operation_not_served(
    any_fake: QStashTasksFake, method: str, target: str
) -> None:
    assert not_served(any_fake, method, target) is not None
    any_fake.assert_all_requests_served = False


def test_the_readme_names_where_each_operation_is_served() -> None:
    """Each operation's path, cut at its first parameter and then segment by segment,
    meets a path the README's table of what the fake serves names."""
    table = "\n".join(
        line.split("|")[1]
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| ") and "`" in line.split("|")[1]
    )
    named = set(re.findall(r"/v[12]/[\w/]*\w", table))
    missing = []
    for method, path in OPERATIONS:
        literal = path.split("{")[0].rstrip("/")
        segments = literal.split("/")
        prefixes = {"/".join(segments[:end]) for end in range(3, len(segments) + 1)}
        if not prefixes & named:
            missing.append(f"{method} {path}")
    assert missing == []
