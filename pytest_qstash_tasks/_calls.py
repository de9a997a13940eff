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
    served one; ``detail`` explains it in words.
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

    @property
    def status(self) -> int | None:
        """The response's status code (``None`` when the client got an exception)."""
        return None if self.response is None else self.response.status_code

    @property
    def served(self) -> bool:
        """Whether the fake answered with a page of tasks."""
        return self.miss is None and self.status == 200

    def describe(self) -> str:
        """One line: method, URL, cursor, what the client got, and why it missed."""
        got = (
            f"raised {type(self.exception).__name__}"
            if self.exception is not None
            else f"-> {self.status}"
        )
        cursor = "" if self.cursor is None else f" (cursor={self.cursor})"
        why = f": {self.detail}" if self.detail else ""
        return f"{self.request.method} {self.request.url}{cursor} {got}{why}"
