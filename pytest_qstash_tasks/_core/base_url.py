"""The base URL a fake answers on, parsed and normalised without an HTTP library."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_PORTS", "BaseURL"]

#: The base URL the official SDK talks to when ``QSTASH_URL`` is not set.
DEFAULT_BASE_URL = "https://qstash.upstash.io"
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class BaseURL:
    """Scheme, host (lowercase, IPv6 without brackets), port and path prefix."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, base_url: object) -> BaseURL:
        """Parse ``base_url``, or raise a clear error."""
        if not isinstance(base_url, str):
            raise TypeError(f"base_url must be a str, got {base_url!r}")
        return _parse(base_url)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"

    def owns(self, scheme: str, host: str, port: int | None) -> bool:
        """Whether a request to ``scheme://host:port`` is for this base URL."""
        return (
            scheme == self.scheme
            and host.lower() == self.host
            and (port or DEFAULT_PORTS.get(scheme)) == self.port
        )


@functools.lru_cache(maxsize=64)  # the same URL for every test of a run
def _parse(base_url: str) -> BaseURL:
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"base_url {base_url!r} is not a valid URL: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    if parts.query or parts.fragment or base_url.rstrip().endswith(("?", "#")):
        raise ValueError(f"base_url cannot have a query or fragment: {base_url!r}")
    if parts.username is not None or any(c.isspace() for c in base_url):
        raise ValueError(f"base_url {base_url!r} is not a valid URL")
    return BaseURL(scheme, parts.hostname, port or DEFAULT_PORTS[scheme], parts.path.rstrip("/"))
