"""Where a page starts and ends: the one place the cursor semantics live.

Tasks are ordered by their timeline timestamp, newest first. A request without a
cursor starts at the newest task; a request with cursor ``c`` starts at the newest
task whose timestamp is ``<= c``. The answer's cursor is the timestamp of the newest
task not yet returned.

Since a cursor is a millisecond, it cannot point inside a group of tasks that share
one: a page never ends inside such a group. It ends before the group (a short page),
or, when the group alone is larger than a page, holds the whole group (a long page).
Either way a client that follows the cursors sees every task exactly once.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

__all__ = ["page_bounds"]


def page_bounds(
    neg_timestamps: Sequence[int], cursor: int | None, page_size: int
) -> tuple[int, int, int | None]:
    """``(start, end, next_cursor)`` of one page.

    ``neg_timestamps`` are the negated timeline timestamps in ascending order (newest
    task first). ``next_cursor`` is ``None`` when the page is the last one.
    """
    count = len(neg_timestamps)
    start = 0 if cursor is None else bisect_left(neg_timestamps, -cursor)
    end = min(start + page_size, count)
    # page_size >= 1, so end > start whenever end < count. Every task before start is
    # newer than the cursor, so a tied group never begins before start.
    if end < count and neg_timestamps[end] == neg_timestamps[end - 1]:
        tied = neg_timestamps[end - 1]
        group_start = bisect_left(neg_timestamps, tied)
        end = group_start if group_start > start else bisect_right(neg_timestamps, tied)
    next_cursor = -neg_timestamps[end] if end < count else None
    return start, end, next_cursor
