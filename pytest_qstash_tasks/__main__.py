"""``python -m pytest_qstash_tasks``: the ``qstash-tasks-fake`` command."""

import sys

from ._cli import main

sys.exit(main())
