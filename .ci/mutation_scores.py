"""The mutation score of each module, from `mutmut results --all true` (make mutation).

A killed mutant failed a test; a timeout counts as killed (the mutant hung a test), and so
does a mutant that `mypy --strict` refuses ("caught by type check": CI would refuse it
too). A survivor passed every test that reaches its function; "no tests" means none
reaches it.

Survivors that no test can kill, because they behave exactly as the code does, are listed
in docs/mutation.md's "Equivalent mutants" table: the mutant's name, the line it changes
to, and why. Each listed one must still exist, still survive and still make that change,
or the list is stale and this fails; listed ones leave the score's denominator.

Prints a Markdown table for docs/mutation.md and exits 1 below --min (percent) anywhere,
or when a survivor neither is killed nor listed and --min is given.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

KILLED = {"killed", "timeout", "caught by type check"}
LINE = re.compile(r"^\s*(?P<name>(?P<module>[\w.]+?)\.x[_ǁ]\S*__mutmut_\d+): (?P<status>.+)$")
# | `name` | `changed line` | why |
ROW = re.compile(r"^\| `(?P<name>[^`]+__mutmut_\d+)` \| `(?P<change>.+?)` \| (?P<why>.+) \|$")
PREFIX = "pytest_qstash_tasks."


def mutmut(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "mutmut", *args], capture_output=True, text=True, check=True
    ).stdout


def module_of(name: str) -> str:
    """The dotted module of a mutant's name."""
    return re.split(r"\.x[_ǁ]", name, maxsplit=1)[0]


def listed_equivalents(page: Path) -> dict[str, str]:
    """Mutant name -> the line it changes to, from the page's table."""
    rows = (ROW.match(line.strip()) for line in page.read_text().splitlines())
    return {PREFIX + row["name"]: row["change"].replace("\\|", "|") for row in rows if row}


def stale_equivalents(equivalents: dict[str, str], status: dict[str, str]) -> list[str]:
    """Listed mutants that are gone, killed, or no longer make the listed change."""
    mutated = {module_of(name) for name in status}
    stale = []
    for name, change in equivalents.items():
        if status.get(name) == "not checked":  # outside this run's sample
            continue
        if module_of(name) not in mutated:  # a module this run did not mutate (the sample)
            continue
        if status.get(name) != "survived":
            stale.append(f"{name}: listed as equivalent, but {status.get(name, 'gone')}")
            continue
        try:
            shown = mutmut("show", name)
        except subprocess.CalledProcessError as error:  # e.g. while a run rewrites mutants/
            last = (error.stderr or "").strip().splitlines()[-1:] or ["no output"]
            stale.append(f"{name}: `mutmut show` failed: {last[0]}")
            continue
        added = [
            line[1:].strip()
            for line in shown.splitlines()
            if line.startswith("+") and not line.startswith("+++")
        ]
        if change not in added:
            stale.append(f"{name}: listed as changing to `{change}`, but it changes {added}")
    return stale


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--min", type=float, default=0.0, help="fail below this score (percent)")
    parser.add_argument("--equivalents", type=Path, default=Path("docs/mutation.md"))
    options = parser.parse_args()
    matches = [m for m in map(LINE.match, mutmut("results", "--all", "true").splitlines()) if m]
    status = {match["name"]: match["status"].strip() for match in matches}
    module_of = {match["name"]: match["module"] for match in matches}
    if not status:
        sys.exit("no mutants found: run `mutmut run` first")
    equivalents = listed_equivalents(options.equivalents)
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    unexplained = []
    for name, state in status.items():
        module = module_of[name].removeprefix(PREFIX)  # the package's own __init__ stays whole
        if name in equivalents and state == "survived":
            state = "equivalent"
        elif state == "survived":
            unexplained.append(name)
        counts[module][state] += 1
    print(
        "| Module | Mutants | Killed | By mypy | Equivalent | Survived | No tests | Not run "
        "| Score |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    low = []
    for module, seen in sorted(counts.items()):
        killed = sum(seen[s] for s in KILLED)
        scored = sum(seen.values()) - seen["not checked"] - seen["equivalent"]
        score = f"{100 * killed / scored:.0f}%" if scored else "-"
        if scored and 100 * killed / scored < options.min:
            low.append(module)
        print(
            f"| `{module}` | {sum(seen.values())} | {killed} | {seen['caught by type check']} "
            f"| {seen['equivalent']} "
            f"| {seen['survived']} | {seen['no tests']} | {seen['not checked']} | {score} |"
        )
    problems = stale_equivalents(equivalents, status)
    if low:
        problems.append(f"below {options.min:g}%: {', '.join(low)}")
    if options.min and unexplained:
        problems += [f"{name}: survived (kill it or list it as equivalent)" for name in unexplained]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
