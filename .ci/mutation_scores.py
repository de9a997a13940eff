"""The mutation score of each module, from `mutmut results --all true` (make mutation).

A killed mutant failed a test; a timeout counts as killed (the mutant hung a test). A
survivor passed every test that reaches its function; "no tests" means none reaches it.
Prints a Markdown table for docs/mutation.md and exits 1 below --min (percent) anywhere.
"""

import argparse
import collections
import re
import subprocess
import sys

KILLED = {"killed", "timeout"}
LINE = re.compile(r"^\s*(?P<module>[\w.]+?)\.x[_ǁ].*__mutmut_\d+: (?P<status>.+)$")

parser = argparse.ArgumentParser()
parser.add_argument("--min", type=float, default=0.0, help="fail below this score (percent)")
minimum = parser.parse_args().min
out = subprocess.run(
    [sys.executable, "-m", "mutmut", "results", "--all", "true"],
    capture_output=True,
    text=True,
    check=True,
).stdout
counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
for line in out.splitlines():
    match = LINE.match(line)
    if match:
        counts[match["module"]][match["status"].strip()] += 1
if not counts:
    sys.exit("no mutants found: run `mutmut run` first")
print("| Module | Mutants | Killed | Survived | No tests | Not run | Score |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
low = []
for module, status in sorted(counts.items()):
    total = sum(status.values())
    killed = sum(status[s] for s in KILLED)
    checked = total - status["not checked"]
    score = 100 * killed / checked if checked else 0.0
    low += [module] if score < minimum else []
    name = module.removeprefix("pytest_qstash_tasks.")
    print(
        f"| `{name}` | {total} | {killed} | {status['survived']} | {status['no tests']} "
        f"| {status['not checked']} | {score:.0f}% |"
    )
if low:
    sys.exit(f"below {minimum:g}%: {', '.join(low)}")
