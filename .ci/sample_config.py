"""Print pyproject.toml with its [tool.mutmut] limited to the sample (make mutation-sample):
the modules of the given mutant names, and the given test files instead of all of tests/.
mutmut then generates and type-checks the sample's modules only, and maps and runs the
sample's tests only, instead of every module and every test, which took most of the
sample's time (10 minutes of CI's 27).

    python .ci/sample_config.py NAME_OR_GLOB... --tests tests/test_x.py... > pyproject.toml
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# A mutant name or glob: the module's dotted path, then `.x_` or `.xǁ` (a function or a
# method) or `.*`.
MODULE = re.compile(r"^(?P<module>[\w.]+?)\.(?:x[_ǁ]|x?\*)")


def module_path(name: str) -> str:
    match = MODULE.match(name)
    if not match:
        sys.exit(f"{name!r}: not a mutant name or glob of one module (package.module.x_*)")
    return match["module"].replace(".", "/") + ".py"


def main() -> None:
    names, _, tests = " ".join(sys.argv[1:]).partition(" --tests ")
    paths = sorted({module_path(name) for name in names.split()})
    if not paths or not tests.split():
        sys.exit("usage: sample_config.py MUTANT_NAME_OR_GLOB... --tests TEST_FILE...")
    for test in tests.split():
        if not Path(test).is_file():
            sys.exit(f"{test}: no such test file")
    text = Path("pyproject.toml").read_text()
    table, all_tests = "\n[tool.mutmut]\n", '\n    "tests/",\n'
    start = text.find(table)
    if start < 0 or all_tests not in text[start:]:
        sys.exit('pyproject.toml has no [tool.mutmut] table selecting "tests/"')
    only = "only_mutate = [" + ", ".join(f'"{path}"' for path in paths) + "]\n"
    selected = "".join(f'\n    "{test}",' for test in tests.split()) + "\n"
    head, tail = text[:start], text[start:].replace(all_tests, selected, 1)
    sys.stdout.write(head + tail.replace(table, table + only, 1))


if __name__ == "__main__":
    main()
