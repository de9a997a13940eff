"""Print pip constraints pinning each runtime dependency, and those of the `requests`
extra, to its declared lower bound."""

import re
from pathlib import Path

import tomllib

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
for requirement in [*project["dependencies"], *project["optional-dependencies"]["requests"]]:
    # name>=X, optionally capped (name>=X,<Y): X is the version pinned.
    match = re.fullmatch(
        r"([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][^,;\s]*)(\s*,\s*<\s*[0-9.]+)?", requirement
    )
    if match is None:
        raise SystemExit(f"no lower bound to pin in {requirement!r}")
    print(f"{match[1]}=={match[2]}")
