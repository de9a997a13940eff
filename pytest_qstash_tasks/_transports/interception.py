"""What an in-process interceptor (httpx's, requests') asks of the fake it intercepts
for: ``InProcess`` is the one there is. The interceptors know it by this shape only, so
that they import neither ``InProcess`` nor each other."""

from __future__ import annotations

from typing import Protocol

from pytest_qstash_tasks._core.exchange import Reply, Request

__all__ = ["Interception"]


class Interception(Protocol):
    """The fake's side of interception, in-process."""

    @property
    def base_url(self) -> str:
        """The base URL the fake answers on."""
        ...

    def intercept(
        self, request: Request, scheme: str, host: str, port: int | None, *, own_paths_only: bool
    ) -> Reply | None:
        """The reply to a request of this process, or ``None`` to let it go on."""
        ...

    def takes(
        self, scheme: str, host: str, port: int | None, raw_path: str, *, own_paths_only: bool
    ) -> bool:
        """Whether ``intercept`` answers a request to this URL (no side effects)."""
        ...
