"""The layers, as the file list shows them: each may import only what it is for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pytest_qstash_tasks

# The package as imported: the source tree, or the installed wheel (make package).
PACKAGE = Path(pytest_qstash_tasks.__file__).parent
CORE = sorted(p.stem for p in (PACKAGE / "_core").glob("*.py") if p.stem != "__init__")
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
    ],
)
def test_a_transport_imports_only_its_own_library(module: str, allowed: set[str]) -> None:
    found = imported_by(f"pytest_qstash_tasks._transports.{module}") & HTTP_AND_PYTEST
    assert found <= allowed
