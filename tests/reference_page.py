"""docs/reference.md, made from the public names' signatures and docstrings: plain
Markdown, so the page reads the same on the repository's page as on the docs site.

``tests/test_public_api.py`` checks that the page is what this makes of the package as it
is; after a change to the public API or a docstring, write it again with
``python -m tests.reference_page``.
"""

from __future__ import annotations

import enum
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest_qstash_tasks as package

PAGE = Path(__file__).parent.parent / "docs" / "reference.md"

#: The page's sections, and the names each documents, in order.
SECTIONS: list[tuple[str, list[str]]] = [
    ("Fakes", ["QStashTasksFake", "QStashTasksMock", "QStashTasksServer"]),
    (
        "What the fake records and plans",
        [
            "RecordedCall",
            "Fault",
            "PublishedMessage",
            "Destination",
            "DeliveryRequest",
            "DeliveryAttempt",
            "Clock",
            "Messages",
            "SigningKeys",
            "Dlq",
            "DlqEntry",
            "Logs",
            "Log",
            "Schedules",
            "Schedule",
            "Queues",
            "Queue",
            "FlowControl",
            "FlowControlKey",
            "Workflows",
            "WorkflowRun",
            "WorkflowStep",
            "UrlGroups",
            "UrlGroup",
            "UrlGroupEndpoint",
            "ANY",
        ],
    ),
    (
        "Errors raised in the code under test",
        ["QStashTasksLoopError", "QStashTasksRealHostError", "QStashTasksRunawayError"],
    ),
    ("Models", ["Task", "TaskState", "TasksPage"]),
    ("Factories", ["make_task", "make_tasks", "make_pages", "backoff_ms"]),
    ("Constants", ["DEFAULT_BASE_URL", "DEFAULT_START_MS"]),
    ("Strategies", ["strategies"]),
]

#: What a constant is (a value has no docstring of its own).
CONSTANTS = {
    "ANY": "A cursor filter that matches any cursor, the first page's (no cursor) "
    "included: the default of `cursor=` in `get_calls`, `assert_called` and the fault "
    "methods.",
    "DEFAULT_BASE_URL": "Where a fake listens when neither `base_url` nor `$QSTASH_URL` "
    "says otherwise: QStash's own URL.",
    "DEFAULT_START_MS": "Where a fake's clock starts by default: 2026-01-01T00:00:00Z, in unix ms.",
}

INTRO = """\
# API reference

Everything here is importable from `pytest_qstash_tasks`, and nothing else is public:
modules and names with a leading underscore are the package's own and may change in any
release. `tests/test_public_api.py` pins this list and the methods of each fake, and checks
that this page is made from the package as it is (`python -m tests.reference_page` writes
it again).

The fixture `qstash_tasks` yields a `QStashTasksMock`, the fixture `qstash_tasks_server` a
`QStashTasksServer`. Both are a `QStashTasksFake`, which holds the API they share; annotate
a helper that takes either with `QStashTasksFake`.
"""

_SECTION_HEAD = re.compile(r"^(Args|Arguments|Returns|Raises|Yields|Attributes|Example|Examples):$")


def render() -> str:
    """The whole page."""
    parts = [INTRO]
    for title, names in SECTIONS:
        parts.append(f"## {title}\n")
        for name in names:
            parts.append(_entry(name, _public(name)))
    return "\n".join(parts).rstrip() + "\n"


def _public(name: str) -> object:
    """A public name; ``strategies`` is a module of its own (it needs hypothesis)."""
    if name == "strategies":
        import pytest_qstash_tasks.strategies

        return pytest_qstash_tasks.strategies
    return getattr(package, name)


def documented_names() -> list[str]:
    return [name for _, names in SECTIONS for name in names]


def _entry(name: str, obj: object) -> str:
    if name in CONSTANTS:
        return f"### `{name}`\n\n`{name} = {obj!r}`\n\n{CONSTANTS[name]}\n"
    if inspect.ismodule(obj):
        members = [(member, getattr(obj, member)) for member in obj.__all__]
        lines = [f"### `{name}`\n", _markdown(inspect.getdoc(obj) or "")]
        lines += [_member(member, value, f"{name}.") for member, value in members]
        return "\n".join(lines) + "\n"
    if inspect.isclass(obj):
        return _class(name, obj)
    return f"### `{name}`\n\n{_code(name, obj)}{_markdown(inspect.getdoc(obj) or '')}\n"


def _code(name: str, obj: Callable[..., Any]) -> str:
    return f"```text\n{name}{_signature(obj)}\n```\n\n"


#: The parts a test reaches on the fake: no one builds them, so no constructor is shown.
PARTS = {
    "Dlq": "dlq",
    "Logs": "logs",
    "Messages": "messages",
    "Queues": "queues",
    "Schedules": "schedules",
    "FlowControl": "flow_control",
    "Workflows": "workflows",
    "SigningKeys": "signing_keys",
    "UrlGroups": "url_groups",
}


def _class(name: str, cls: type) -> str:
    signature = "" if issubclass(cls, (enum.Enum, BaseException)) else _code(name, cls)
    if name in PARTS:
        signature = f"Reached as `qstash_tasks.{PARTS[name]}` (any fake's `.{PARTS[name]}`).\n\n"
    lines = [f"### `{name}`\n", signature + _markdown(inspect.getdoc(cls) or "")]
    if issubclass(cls, enum.Enum):
        values = ", ".join(f"`{member.value}`" for member in cls)
        lines.append(f"Values: {values}.\n")
        return "\n".join(lines)
    members = list(_own_members(cls))
    base = next((b.__name__ for b in cls.__mro__[1:] if b.__name__ in package.__all__), None)
    if base is not None and not members:
        lines.append(f"Everything `{base}` has.\n")
    if members:
        besides = f" (besides everything `{base}` has)" if base is not None else ""
        lines.append(f"**Members**{besides}:\n")
        lines += [_member(member, value, ".") for member, value in members]
        lines.append("")
    return "\n".join(lines)


def _own_members(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties ``cls`` defines itself, in source order; a
    pydantic model's machinery and an enum's members left out."""
    for member, value in vars(cls).items():
        if member.startswith(("_", "model_")):
            continue
        if isinstance(value, (property, staticmethod, classmethod)) or inspect.isfunction(value):
            yield member, value


def _member(name: str, value: Any, prefix: str) -> str:
    function = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
    if isinstance(value, property):
        doc = inspect.getdoc(value.fget) or ""
        head = f"`{prefix}{name}`"
    else:
        doc = inspect.getdoc(function) or ""
        bound = inspect.isfunction(value) or isinstance(value, classmethod)
        head = f"`{prefix}{name}{_signature(function, bound=bound)}`"
    return f"- {head}: {_summary(doc)}"


def _signature(obj: Callable[..., Any], *, bound: bool = False) -> str:
    """``(a, b=1, *, c=None)``: names and defaults, no annotations (they read as code)."""
    fields = getattr(obj, "model_fields", None)
    if fields is not None:  # a pydantic model: its fields, by the names the wire uses
        # (pydantic builds __signature__ lazily, so inspect's answer depends on what ran)
        shown = [
            (field.alias or name) + ("" if field.is_required() else f"={field.default!r}")
            for name, field in fields.items()
        ]
        return f"(*, {', '.join(shown)})"
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # a builtin without one
        return "(...)"
    parameters = list(signature.parameters.values())
    if bound and parameters and parameters[0].name in ("self", "cls"):
        parameters = parameters[1:]
    plain = [parameter.replace(annotation=inspect.Parameter.empty) for parameter in parameters]
    return str(signature.replace(parameters=plain, return_annotation=inspect.Signature.empty))


def _summary(doc: str) -> str:
    """The first paragraph, on one line."""
    first = doc.split("\n\n", 1)[0]
    return " ".join(line.strip() for line in first.splitlines()) or "(no docstring)"


def _markdown(doc: str) -> str:
    """A docstring as Markdown: paragraphs kept; Google-style sections (``Args:`` and
    indented ``name: text`` entries) as a bold title and a list."""
    out: list[str] = []
    in_section = False
    for line in doc.splitlines():
        if _SECTION_HEAD.match(line):
            out += ["", f"**{line[:-1]}:**", ""]
            in_section = True
        elif in_section and line.startswith("    ") and not line.startswith("        "):
            entry, _, text = line.strip().partition(": ")
            out.append(f"- `{entry}`: {text}" if text else f"- {entry}")
        elif in_section and line.startswith("        "):
            out[-1] += " " + line.strip()
        else:
            if line.strip():  # text at the margin ends a section; a blank line does not
                in_section = False
            out.append(line)
    return "\n".join(out).strip() + "\n"


def main() -> None:
    PAGE.write_text(render())
    sys.stdout.write(f"wrote {PAGE}\n")


if __name__ == "__main__":
    main()
