"""Whole pytest runs side by side: the fixture's cost per test, and start-up cost.

Run through ``python benchmarks/bench.py`` (or alone: ``python benchmarks/bench_pytest.py``).

1. Fixture setup+teardown, timed by hooks (``pytest_runtest_setup``/``teardown``) in one
   run where tests taking ``qstash_tasks``, ``respx_mock`` or neither alternate; the
   median of each side, minus the side with neither. This is the CI gate.
   Also, as information, the whole-run difference: files of N and 2N tests taking
   ``qstash_tasks``, respx's ``respx_mock``, or neither; the per-test cost of a side is
   (time for 2N - time for N) / N, so one-off imports cancel out. Every run loads the
   same plugins (autoload off, ``-p`` both), so only the fixture differs. Reported:
   ours/respx, the fixtures' own cost (each side's per-test time minus that of a test
   without either), and ours/none (a whole test with the fixture vs one without).
2. Start-up: ``pytest.main()`` on one trivial test with the plugin loaded but unused vs
   not loaded (median CPU time of interleaved runs, timed in the child after
   ``import pytest``; as a ratio and as ms). Autoload is off on both
   sides: the other plugins installed here (hypothesis, polyfactory's faker, pytest-httpx)
   cost seconds of start-up on this machine and their noise hides a 20 ms signal. Bytecode
   writing is allowed and a warm-up run comes first, as after a user's ``pip install``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

OURS = ("-p", "pytest_qstash_tasks._plugin")
RESPX = ("-p", "respx.plugin")


def _env(*, autoload: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if not autoload:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def fixture_cost(quick: bool) -> dict[str, float]:
    """Per-test ms of each side, and the ratios ours/respx and ours/none."""
    # Large N: a run's noise (tens of ms here) is divided by N, and the fixtures' own
    # cost is a difference of per-test times well under a millisecond.
    n = 500 if quick else 1000
    rounds = 5 if quick else 7
    sides = {"ours": "qstash_tasks", "respx": "respx_mock", "none": ""}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text("[pytest]\n")
        for name, fixture in sides.items():
            for count in (n, 2 * n):
                body = "\n".join(f"def test_{i}({fixture}):\n    pass\n" for i in range(count))
                (root / f"test_{name}_{count}.py").write_text(body)
        times: dict[str, list[float]] = {f"{s}_{c}": [] for s in sides for c in (n, 2 * n)}
        main_cpu(root, *OURS, *RESPX, f"test_none_{n}.py")  # warm-up
        for _ in range(rounds):
            for key in times:
                times[key].append(main_cpu(root, *OURS, *RESPX, f"test_{key}.py"))
    median = {key: statistics.median(values) for key, values in times.items()}
    per_test = {s: (median[f"{s}_{2 * n}"] - median[f"{s}_{n}"]) / n for s in sides}
    return {
        "ours_ms": per_test["ours"] * 1e3,
        "respx_ms": per_test["respx"] * 1e3,
        "none_ms": per_test["none"] * 1e3,
        # The fixtures' own cost: each side's per-test time minus a test without either.
        "ours/respx": (per_test["ours"] - per_test["none"])
        / (per_test["respx"] - per_test["none"]),
        "ours/none": per_test["ours"] / per_test["none"],
    }


_TIMING_CONFTEST = """
import json, os, time
import pytest

SPENT = {"ours": [], "respx": [], "none": []}


def _side(item):
    if "qstash_tasks" in item.fixturenames:
        return "ours"
    return "respx" if "respx_mock" in item.fixturenames else "none"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    start = time.perf_counter()
    yield
    item.stash_setup = time.perf_counter() - start


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    start = time.perf_counter()
    yield
    SPENT[_side(item)].append(item.stash_setup + time.perf_counter() - start)


def pytest_sessionfinish(session):
    with open(os.environ["TIMINGS_OUT"], "w") as out:
        json.dump(SPENT, out)
"""


def fixture_setup_teardown(quick: bool) -> dict[str, float]:
    """Setup + teardown of each test, timed by hooks in one run where tests taking
    ``qstash_tasks``, ``respx_mock`` or neither alternate: medians over hundreds of tests
    of each side, in the same run, so machine noise hits all three alike."""
    import json

    n = 400 if quick else 1000
    runs = 1 if quick else 3
    spent: dict[str, list[float]] = {"ours": [], "respx": [], "none": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "conftest.py").write_text(_TIMING_CONFTEST)
        tests = []
        for i in range(n):
            tests.append(f"def test_{i}_ours(qstash_tasks):\n    pass\n")
            tests.append(f"def test_{i}_respx(respx_mock):\n    pass\n")
            tests.append(f"def test_{i}_none():\n    pass\n")
        (root / "test_side_by_side.py").write_text("\n".join(tests))
        for run in range(runs):
            out = root / f"timings_{run}.json"
            env = _env() | {"TIMINGS_OUT": str(out)}
            subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *OURS, *RESPX],
                cwd=root,
                check=True,
                capture_output=True,
                env=env,
            )
            for side, values in json.loads(out.read_text()).items():
                spent[side].extend(values)
    median = {side: statistics.median(values) for side, values in spent.items()}
    return {
        "ours_us": median["ours"] * 1e6,
        "respx_us": median["respx"] * 1e6,
        "none_us": median["none"] * 1e6,
        "ours/respx": (median["ours"] - median["none"]) / (median["respx"] - median["none"]),
    }


# CPU time of pytest.main() only: the interpreter's own start and `import pytest` are the
# same on both sides and only add noise.
_TIMED_MAIN = (
    "import sys, time\n"
    "import pytest\n"
    "start = time.process_time()\n"
    "pytest.main(sys.argv[1:])\n"
    "sys.stderr.write(repr(time.process_time() - start))\n"
)


def main_cpu(directory: Path, *args: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _TIMED_MAIN, "-q", "-p", "no:cacheprovider", *args],
        cwd=directory,
        check=True,
        capture_output=True,
        text=True,
        env=_env(),
    )
    return float(done.stderr.strip().splitlines()[-1])


def whole_run_cpu(directory: Path, *args: str) -> float:
    """CPU seconds of a whole ``python -m pytest`` run, plugins autoloaded as installed."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=directory,
        check=True,
        capture_output=True,
        env=_env(autoload=True),
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def installed_startup_ratio(quick: bool) -> float:
    """A whole pytest run, the plugin installed but unused vs ``-p no:qstash_tasks``.

    This is the issue's own comparison, with every installed plugin autoloaded: seconds
    of other plugins' imports here, whose noise (tens to hundreds of ms between runs)
    allows only a coarse bound. The ms the plugin adds are measured by ``startup_cost``;
    that loading it imports neither pydantic, respx nor httpx is a unit test.
    """
    rounds = 11 if quick else 21
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "test_trivial.py").write_text("def test_it():\n    pass\n")
        whole_run_cpu(root, "test_trivial.py")  # warm-up
        with_plugin: list[float] = []
        without: list[float] = []
        for _ in range(rounds):
            with_plugin.append(whole_run_cpu(root, "test_trivial.py"))
            without.append(whole_run_cpu(root, "-p", "no:qstash_tasks", "test_trivial.py"))
    return statistics.median(with_plugin) / statistics.median(without)


def startup_cost(quick: bool) -> dict[str, float]:
    """pytest.main() on one trivial test with the plugin loaded but unused vs not loaded."""
    rounds = 41 if quick else 81
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "test_trivial.py").write_text("def test_it():\n    pass\n")
        main_cpu(root, *OURS, "test_trivial.py")  # warm-up: writes the .pyc files
        with_plugin: list[float] = []
        without: list[float] = []
        for _ in range(rounds):
            with_plugin.append(main_cpu(root, *OURS, "test_trivial.py"))
            without.append(main_cpu(root, "test_trivial.py"))
    a, b = statistics.median(with_plugin), statistics.median(without)
    return {"with/without": a / b, "added_ms": (a - b) * 1e3, "without_ms": b * 1e3}


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(fixture_setup_teardown(quick))
    print(fixture_cost(quick))
    print(startup_cost(quick))
    print(installed_startup_ratio(quick))
