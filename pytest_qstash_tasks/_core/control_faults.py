"""``POST /_fake/faults``: a planned fault, as JSON, turned into the fake's own call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fake import QStashTasksFake
    from .faults import Fault

__all__ = ["FAULT_KINDS", "plan_fault"]

#: What every kind takes besides its own keys: how often, and which requests.
_TARGET = {"times": "times", "messageId": "message_id", "cursor": "cursor", "page": "page"}

#: kind -> its own keys (JSON name -> the fake's argument)
FAULT_KINDS: dict[str, dict[str, str]] = {
    "fail": {"status": "status", "error": "error", "delay": "delay"},
    "rateLimit": {
        "daily": "daily",
        "limit": "limit",
        "remaining": "remaining",
        "reset": "reset",
        "delay": "delay",
    },
    "close": {"delay": "delay"},  # the connection closed without an answer
    "timeout": {"delay": "delay"},  # no answer until the client gives up
    "delay": {"seconds": "seconds"},
}


def plan_fault(fake: QStashTasksFake, body: dict[str, Any]) -> Fault:
    """Plan the fault ``body`` describes (``{"kind": "fail", "status": 503, ...}``)."""
    kind = body.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError(f"a fault's kind is one of {', '.join(FAULT_KINDS)}; got {kind!r}")
    keys = {**FAULT_KINDS[kind], **_TARGET}
    unknown = sorted(set(body) - {"kind", *keys})
    if unknown:
        raise ValueError(f"a {kind} fault takes {', '.join(keys)}; not {', '.join(unknown)}")
    args = {keys[key]: value for key, value in body.items() if key != "kind"}
    if kind == "fail":
        if "status" not in args:
            raise ValueError("a fail fault takes a status (400-599)")
        return fake.fail_next(args.pop("status"), **args)
    if kind == "rateLimit":
        return fake.rate_limit_next(**args)
    if kind == "delay":
        if "seconds" not in args:
            raise ValueError("a delay fault takes seconds (> 0)")
        return fake.delay_next(args.pop("seconds"), **args)
    error = ConnectionError if kind == "close" else TimeoutError
    return fake.raise_next(error, **args)
