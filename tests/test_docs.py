"""Every code sample in the docs runs: pages include files from docs/examples/, which
the suite runs as tests; the README's sample is run here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
SNIPPET = re.compile(r'^--8<-- "(docs/examples/[\w/]+\.py)"$')


def python_blocks(path: Path) -> list[str]:
    return FENCE.findall(path.read_text())


def test_doc_pages_show_only_samples_the_suite_runs() -> None:
    included: set[str] = set()
    for page in sorted(DOCS.rglob("*.md")):
        for block in python_blocks(page):
            lines = block.strip().splitlines()
            assert len(lines) == 1, (
                f"{page}: inline Python sample; include a file from docs/examples/"
            )
            match = SNIPPET.match(lines[0])
            assert match, f"{page}: {lines[0]!r} is not a docs/examples/ include"
            assert (ROOT / match[1]).is_file(), f"{page}: {match[1]} does not exist"
            included.add(match[1])
    samples = {str(p.relative_to(ROOT)) for p in (DOCS / "examples").glob("*.py")}
    assert samples - included == set(), "samples no page shows"
    assert included, "no samples found: is the fence pattern right?"


def test_every_shell_sample_is_shown() -> None:
    pages = "".join(page.read_text() for page in DOCS.rglob("*.md"))
    for script in (DOCS / "examples").glob("*.sh"):
        include = f'--8<-- "{script.relative_to(ROOT)}"'
        assert include in pages, f"{script.name}: no page shows it"


def test_the_readme_sample_passes(pytester: pytest.Pytester) -> None:
    (block,) = python_blocks(ROOT / "README.md")
    pytester.makepyfile(test_readme=block)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_the_readme_sample_passes_mypy_strict(tmp_path: Path) -> None:
    (block,) = python_blocks(ROOT / "README.md")
    sample = tmp_path / "test_readme.py"
    sample.write_text(block)
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(sample)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout
