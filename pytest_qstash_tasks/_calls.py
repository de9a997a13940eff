"""What the fake records of each request it answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from ._endpoint import Miss

__all__ = ["RecordedCall"]


@dataclass(frozen=True)
class RecordedCall:
    """One request that reached the fake, and what the client got back.

    ``message_id``, ``cursor`` and ``token`` are what the fake read from the request
    (``None`` where the request had none, or where it was refused before that part
    was read). ``miss`` says why a request was not served with tasks, ``None`` for a
    served one; ``detail`` explains it in words. ``fault`` describes the injected
    fault that answered it (``fail_next``, ``rate_limit_next``, ``raise_next``,
    ``delay_next``), if one did; ``exception`` is what the client got instead of a
    response, if anything.
    """

    request: httpx.Request
    response: httpx.Response | None
    message_id: str | None = None
    cursor: int | None = None
    token: str | None = None
    miss: Miss | None = None
    detail: str = ""
    exception: BaseException | None = None
    scripted_page: int | None = None
    #: The cursor the served page handed out (``None`` at the end of the list).
    next_cursor: int | None = None
    #: How many tasks the served page held (``None`` when no page was served).
    task_count: int | None = None
    fault: str | None = None

    @property
    def status(self) -> int | None:
        """The response's status code (``None`` when the client got an exception)."""
        return None if self.response is None else self.response.status_code

    @property
    def served(self) -> bool:
        """Whether the client got a page of tasks (no miss, no fault but a delay)."""
        return self.task_count is not None and self.status == 200

    def describe(self) -> str:
        """One line: method, URL, cursor, what the client got, and why."""
        if self.exception is not None:
            got = f"raised {type(self.exception).__name__}"
        elif self.task_count is not None and self.status == 200:
            end = "end" if self.next_cursor is None else f"next cursor {self.next_cursor}"
            got = f"-> 200 ({self.task_count} task{'' if self.task_count == 1 else 's'}, {end})"
        else:
            got = f"-> {self.status}"
        cursor = "" if self.cursor is None else f" (cursor={self.cursor})"
        why = f": {self.detail}" if self.detail else ""
        fault = f" [{self.fault}]" if self.fault else ""
        return f"{self.request.method} {self.request.url}{cursor} {got}{fault}{why}"
