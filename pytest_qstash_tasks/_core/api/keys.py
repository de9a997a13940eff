"""The signing keys, as QStash serves them: ``GET /v2/keys`` (``{"current", "next"}``)
and ``POST /v2/keys/rotate`` (the next key becomes the current one; the answer is the new
pair). They are the keys the fake signs its deliveries with."""

from __future__ import annotations

from typing import Any

from pytest_qstash_tasks._core.engine.signing import KeyRing
from pytest_qstash_tasks._core.exchange import Request

from .refusals import Refused, allow

__all__ = ["is_keys_path", "respond"]

_PREFIX = "/v2/keys"


def is_keys_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is ``/v2/keys`` or under it."""
    rest = raw_path[len(base_path) :]
    return rest == _PREFIX or rest.startswith(_PREFIX + "/")


def respond(request: Request, keys: KeyRing, rest: str) -> tuple[int, Any]:
    """The status and JSON of one request; ``rest`` is the path from ``/v2/``."""
    if rest == _PREFIX + "/rotate":
        # Workflow's OpenAPI lists GET too; both SDKs send POST.
        allow(request, "POST", "GET")
        keys.rotate()
    elif rest == _PREFIX:
        allow(request, "GET")
    else:
        raise Refused(404, f"no such signing-keys path {request.raw_path!r}", "unknown_path")
    return 200, {"current": keys.current, "next": keys.next}
