"""Whole pytest runs side by side: fixture cost per test and start-up cost.

    python benchmarks/bench_pytest.py

1. 300 tests taking ``qstash_tasks`` vs 300 taking respx's ``respx_mock`` vs 300 taking
   neither: (ours - none) / (respx - none), the fixture's setup+teardown relative to respx's.
2. ``pytest`` on one trivial test with the plugin loaded but unused vs not loaded: the
   difference in ms (median CPU time of interleaved runs). Both sides run with
   ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`` and load the plugin with ``-p`` on one side only:
   the other plugins installed here (hypothesis, polyfactory's faker, pytest-httpx) cost
   seconds of start-up on this machine and their noise hides a 20 ms signal. Bytecode
   writing is allowed and a warm-up run comes first, as after a user's ``pip install``.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_TESTS = 300


def run(directory: Path, *args: str, env: dict[str, str] | None = None) -> float:
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
        env=env,
    )
    return time.perf_counter() - start


def cpu_run(directory: Path, *args: str, env: dict[str, str]) -> float:
    """CPU seconds (user + system) of one pytest run: steadier than wall time here."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run(directory, *args, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


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

        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        plugin = ("-p", "pytest_qstash_tasks._plugin")
        run(root, *plugin, "test_trivial.py", env=env)  # warm-up: writes the .pyc files
        start: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(31):
            start["with"].append(cpu_run(root, *plugin, "test_trivial.py", env=env))
            start["without"].append(cpu_run(root, "test_trivial.py", env=env))
        added = statistics.median(start["with"]) - statistics.median(start["without"])
        print(
            f"start-up added by the unused plugin: {added * 1000:.1f} ms (median CPU time, "
            f"{statistics.median(start['without']) * 1000:.0f} ms without it)"
        )


if __name__ == "__main__":
    main()
