"""Every Python sample in the docs and the README, tested where it stands: found by
pytest-examples, linted and formatted by ruff with the code base's own settings, and run
as the pytest module it is, fixtures and all. A failure names the page and the lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pytest_examples import CodeExample, find_examples

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXAMPLES = list(find_examples(*PAGES))


def ruff(*args: str, example: CodeExample) -> subprocess.CompletedProcess[str]:
    """ruff on the sample, from the project root: pyproject.toml's settings apply."""
    name = f"{example.path.relative_to(ROOT).with_suffix('')}_{example.start_line}.py"
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", name, "-"],
        input=example.source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_every_page_with_code_is_found() -> None:
    shown = {example.path.relative_to(ROOT).as_posix() for example in EXAMPLES}
    assert {
        "README.md",
        "docs/index.md",
        "docs/transports/requests.md",
        "docs/howto/polling.md",
    } <= shown
    assert len(EXAMPLES) >= 18


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_docs_sample(example: CodeExample, pytester: pytest.Pytester) -> None:
    linted = ruff("check", "--no-fix", example=example)
    assert linted.returncode == 0, f"{example}: ruff check:\n{linted.stdout}"
    formatted = ruff("format", "--diff", example=example)
    assert formatted.returncode == 0, f"{example}: ruff would format it:\n{formatted.stdout}"
    pytester.makepyfile(**{f"test_{example.module_name}": example.source})
    # hypothesis imports parts of itself on first use, which an in-process run's module
    # snapshot then drops: a second sample would meet two copies of its classes.
    run = pytester.runpytest_subprocess if "hypothesis" in example.source else pytester.runpytest
    result = run("-p", "no:randomly", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1, f"{example}: no test ran\n{result.stdout.str()}"
    assert set(outcomes) <= {"passed", "warnings"}, f"{example}:\n{result.stdout.str()}"


def test_the_readme_sample_passes_mypy_strict(tmp_path: Path) -> None:
    (readme,) = [e for e in EXAMPLES if e.path.name == "README.md"]
    sample = tmp_path / "test_readme.py"
    sample.write_text(readme.source)
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(sample)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout


def test_no_page_includes_a_sample_from_elsewhere() -> None:
    for page in PAGES:
        for line in page.read_text().splitlines():
            if line.startswith("--8<--"):
                assert line == '--8<-- "CHANGELOG.md"', f"{page}: {line}: put the sample inline"
