"""The in-test assertions on recorded calls, and the words they fail with.

Pure functions over a list of ``RecordedCall``: the mock hands them its calls under
its lock and raises what they return.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._calls import RecordedCall
from ._faults import ANY, _Any

__all__ = ["all_pages_fetched_problem", "filter_calls", "format_calls", "times_text"]


def filter_calls(
    calls: Sequence[RecordedCall],
    message_id: str | None = None,
    *,
    cursor: int | _Any | None = ANY,
    status: int | None = None,
    served: bool | None = None,
) -> list[RecordedCall]:
    """The calls that match every filter given."""
    return [
        call
        for call in calls
        if (message_id is None or call.message_id == message_id)
        and (cursor is ANY or call.cursor == cursor)
        and (status is None or call.status == status)
        and (served is None or call.served == served)
    ]


def describe_filter(message_id: str | None, cursor: int | _Any | None) -> str:
    """``requests for message 'm' with cursor=5`` and the like."""
    text = "requests" if message_id is None else f"requests for message {message_id!r}"
    if cursor is None:
        text += " without a cursor"
    elif cursor is not ANY:
        text += f" with cursor={cursor}"
    return text


def times_text(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def format_calls(calls: Sequence[RecordedCall], marked: Sequence[RecordedCall] = ()) -> str:
    """The recorded calls, numbered, one a line; ``marked`` ones flagged with ``>``."""
    if not calls:
        return "Recorded calls: none."
    chosen = {id(call) for call in marked}
    lines = [f"Recorded calls ({len(calls)}):"]
    for number, call in enumerate(calls, 1):
        flag = ">" if id(call) in chosen else " "
        lines.append(f" {flag}{number:>3}. {call.describe()}")
    return "\n".join(lines)


def all_pages_fetched_problem(
    calls: Sequence[RecordedCall], message_id: str, known: Sequence[str]
) -> str | None:
    """Why the client did not follow ``message_id``'s cursors to the end, or None."""
    if message_id not in known:
        listed = ", ".join(repr(k) for k in known) or "none"
        return (
            f"message {message_id!r} is not registered with the fake "
            f"(registered: {listed}), so no page of it could be fetched"
        )
    served = [c for c in calls if c.message_id == message_id and c.served]
    by_cursor: dict[int | None, RecordedCall] = {}
    for call in served:
        by_cursor.setdefault(call.cursor, call)
    if None not in by_cursor:
        return f"the first page of {message_id!r} (a request without a cursor) was never served"
    call, pages = by_cursor[None], 1
    while call.next_cursor is not None:
        following = by_cursor.get(call.next_cursor)
        if following is None:
            return (
                f"page {pages} of {message_id!r} handed out cursor={call.next_cursor}, "
                f"but no request with cursor={call.next_cursor} was served: the client "
                f"fetched {pages} page(s) and stopped before the end"
            )
        call, pages = following, pages + 1
    return None
