"""The layers, as the file list shows them: each may import only what it is for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pytest_qstash_tasks

# The package as imported: the source tree, or the installed wheel (make package).
PACKAGE = Path(pytest_qstash_tasks.__file__).parent
CORE = sorted(
    ".".join(p.relative_to(PACKAGE / "_core").with_suffix("").parts)
    for p in (PACKAGE / "_core").rglob("*.py")
    if p.stem != "__init__"
)
HTTP_AND_PYTEST = {"httpx", "respx", "requests", "responses", "aiohttp", "pytest", "_pytest"}


def imported_by(module: str) -> set[str]:
    """The top-level packages importing ``module`` pulls in, in a fresh interpreter."""
    code = (
        "import sys; before = set(sys.modules);"
        f"import {module};"
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_no_http_library_and_no_pytest(module: str) -> None:
    assert imported_by(f"pytest_qstash_tasks._core.{module}") & HTTP_AND_PYTEST == set()


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("httpx", {"httpx", "respx"}),
        ("requests", {"requests", "responses"}),
        ("in_process", set()),
        ("server", set()),
        ("http_server", set()),
        ("connections", set()),
        ("framing", set()),
        ("interception", set()),
    ],
)
def test_a_transport_imports_only_its_own_library(module: str, allowed: set[str]) -> None:
    found = imported_by(f"pytest_qstash_tasks._transports.{module}") & HTTP_AND_PYTEST
    assert found <= allowed


# -- the order of the layers, and no import circle ------------------------------------------

#: The layers, top first: a module may import from its own layer and the ones below it,
#: never above. Type-only imports (``if TYPE_CHECKING``) count too: they are where a
#: circle starts.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("the plugin and the command", ("_plugin", "_config", "_cli", "__main__", "strategies")),
    ("the transports", ("_transports",)),
    ("the standalone fake's control API", ("_core.control",)),
    ("the fake", ("_core.fake",)),
    ("the fake's parts", ("_core.parts",)),
    ("the HTTP API", ("_core.api",)),
    ("the words", ("_core.report",)),
    ("generated data", ("_core.factories", "_core.seeding")),
    ("the engine", ("_core.engine",)),
    ("the state", ("_core.state",)),
    (
        "the vocabulary",
        ("_core.exchange", "_core.args", "_core.errors", "_core.ids", "_core.models", "_version"),
    ),
    ("the folders' docstrings", ("_core",)),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports (anywhere in it)."""
    import ast

    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    found: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(
                        [p for p in base if p] + ([node.module] if node.module else [])
                    )
                else:
                    target = (node.module or "").removeprefix("pytest_qstash_tasks").lstrip(".")
                for candidate in (target, *(f"{target}.{a.name}" for a in node.names)):
                    candidate = candidate.strip(".")
                    if candidate in modules and candidate != name:
                        targets.add(candidate)
        found[name] = targets
    return found


def _layer(module: str) -> int | None:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in _imports() if m and _layer(m) is None)
    assert unplaced == [], f"put these in a layer of tests/test_layers.py: {unplaced}"


def test_imports_run_down_the_layers() -> None:
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module, targets in _imports().items()
        for target in sorted(targets)
        if module and (_layer(target) or 0) < (_layer(module) or 0)
    ]
    assert upward == [], "imports against the order of the layers:\n" + "\n".join(upward)


def test_no_import_circle() -> None:
    graph = _imports()
    circles: list[str] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert circles == []


def test_the_architecture_page_names_every_module() -> None:
    page = (Path(__file__).parent.parent / "docs" / "architecture.md").read_text()
    core = PACKAGE / "_core"
    modules = [
        *(p.relative_to(core).as_posix() for p in core.rglob("*.py") if p.stem != "__init__"),
        *(p.name for p in (PACKAGE / "_transports").glob("*.py") if p.stem != "__init__"),
    ]
    # A root module may be listed as its name alone, in a row of several.
    missing = [m for m in modules if m not in page and Path(m).name not in page]
    assert missing == [], f"docs/architecture.md does not name: {missing}"
