"""Whole pytest runs side by side: fixture cost per test and start-up cost.

    python benchmarks/bench_pytest.py

1. 300 tests taking ``qstash_tasks`` vs 300 taking respx's ``respx_mock`` vs 300 taking
   neither: (ours - none) / (respx - none), the fixture's setup+teardown relative to respx's.
2. ``pytest`` on one trivial test with the plugin installed but unused vs ``-p no:qstash_tasks``:
   the difference in ms (median of interleaved runs).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_TESTS = 300


def run(directory: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=directory,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text(
            "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        )
        # Per-test cost = (time for 2N tests - time for N tests) / N: the one-off
        # imports (pydantic for us, nothing for respx) cancel out.
        sides = {"ours": "qstash_tasks", "respx": "respx_mock", "none": ""}
        for name, fixture in sides.items():
            for count in (N_TESTS, 2 * N_TESTS):
                body = "\n".join(f"def test_{i}({fixture}):\n    pass\n" for i in range(count))
                (root / f"test_{name}_{count}.py").write_text(body)
        (root / "test_trivial.py").write_text("def test_it():\n    pass\n")

        times: dict[str, list[float]] = {
            f"{n}_{c}": [] for n in sides for c in (N_TESTS, 2 * N_TESTS)
        }
        for _ in range(5):
            for key in times:
                times[key].append(run(root, f"test_{key}.py"))
        median = {key: statistics.median(values) for key, values in times.items()}
        per_test = {
            name: (median[f"{name}_{2 * N_TESTS}"] - median[f"{name}_{N_TESTS}"]) / N_TESTS
            for name in sides
        }
        ratio = (per_test["ours"] - per_test["none"]) / (per_test["respx"] - per_test["none"])
        print(
            f"fixture setup+teardown vs respx_mock: {ratio:.2f}x (per test: ours "
            f"{per_test['ours'] * 1e3:.2f} ms, respx {per_test['respx'] * 1e3:.2f} ms, "
            f"none {per_test['none'] * 1e3:.2f} ms)"
        )

        start: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(15):
            start["with"].append(run(root, "test_trivial.py"))
            start["without"].append(run(root, "test_trivial.py", "-p", "no:qstash_tasks"))
        added = statistics.median(start["with"]) - statistics.median(start["without"])
        print(f"start-up added by the unused plugin: {added * 1000:.1f} ms (whole-run medians)")


if __name__ == "__main__":
    main()
