"""Check a built wheel holds what users need and nothing else: the package with its
py.typed marker, the plugin and command entry points, and no tests or docs."""

import sys
import zipfile

wheel = sys.argv[1]
names = zipfile.ZipFile(wheel).namelist()
problems = []
if "pytest_qstash_tasks/py.typed" not in names:
    problems.append("no pytest_qstash_tasks/py.typed")
for name in names:
    top = name.split("/", 1)[0]
    if top not in ("pytest_qstash_tasks",) and not top.endswith(".dist-info"):
        problems.append(f"{name}: not part of the package")
entry_points = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
if entry_points is None:
    problems.append("no entry_points.txt")
else:
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for needed in ("[pytest11]", "qstash_tasks = pytest_qstash_tasks._plugin", "qstash-tasks-fake"):
        if needed not in text:
            problems.append(f"entry_points.txt lacks {needed!r}")
if problems:
    sys.exit(f"{wheel}:\n" + "\n".join(f"  - {p}" for p in problems))
print(f"{wheel}: {len(names)} files, py.typed, entry points, no tests or docs")
