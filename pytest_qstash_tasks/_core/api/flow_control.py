"""Flow control, as QStash serves it: ``GET /v2/flowControl`` (a plain array), ``GET
/v2/flowControl/{key}``, ``POST /v2/flowControl/{key}/pause|resume|resetRate``,
``POST .../pin?parallelism=&rate=&period=`` and ``.../unpin?parallelism=true&rate=true``,
and ``GET /v2/globalParallelism``. The keys and their wait lists are
``state/flow_control.py``; messages bring their keys when published.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote

from pytest_qstash_tasks._core.exchange import Request
from pytest_qstash_tasks._core.state.flow_control import FlowControl, FlowKey, FlowLimits

from .refusals import Refused, allow

__all__ = ["is_flow_control_path", "respond"]

_PREFIX = "/v2/flowControl"
_GLOBAL = "/v2/globalParallelism"
_ACTIONS = ("pause", "resume", "resetRate", "pin", "unpin")


def is_flow_control_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is ``/v2/flowControl`` or under it, or ``/v2/globalParallelism``."""
    rest = raw_path[len(base_path) :]
    return rest in (_PREFIX, _GLOBAL) or rest.startswith(_PREFIX + "/")


def respond(request: Request, now: int, flow: FlowControl, rest: str) -> tuple[int, Any]:
    """The status and JSON (``None``: an empty body) of one request; ``rest`` is the path
    from ``/v2/``. Raises ``Refused``."""
    if rest == _GLOBAL:
        allow(request, "GET")
        # The fake has no plan: no global cap (0), as the SDKs read a missing one.
        return 200, {"parallelismMax": 0, "parallelismCount": flow.active_count(now)}
    parts = rest[len(_PREFIX) :].split("/")[1:]
    if not parts:
        allow(request, "GET")
        return 200, [state.to_json(now) for state in flow]
    if len(parts) == 1:
        allow(request, "GET")
        return 200, _known(flow, parts[0]).to_json(now)
    if len(parts) != 2 or parts[1] not in _ACTIONS:
        raise Refused(404, f"no such flow-control path {request.raw_path!r}", "unknown_path")
    allow(request, "POST")
    state = _known(flow, parts[0])
    action = parts[1]
    params = dict(parse_qsl(request.query, keep_blank_values=True))
    if action == "pin":
        _pin(state, params)
    elif action == "unpin":
        _unpin(state, params)
    elif action == "resetRate":
        state.period_start, state.rate_count = now, 0
    else:
        state.paused = action == "pause"
    flow.changed(state, now)
    return 200, None


def _known(flow: FlowControl, raw_key: str) -> FlowKey:
    key = unquote(raw_key)
    state = flow.get(key)
    if state is None:
        known = ", ".join(repr(s.key) for s in flow) or "none"
        raise Refused(
            404,
            f"flow-control key {key!r} not found: a key exists once a message is "
            f"published with it (keys: {known})",
        )
    return state


def _pin(state: FlowKey, params: dict[str, str]) -> None:
    unknown = sorted(set(params) - {"parallelism", "rate", "period"})
    if unknown or not params:
        raise Refused(400, f"pin takes parallelism, rate and period (seconds), not {unknown}")
    numbers = {}
    for name, raw in params.items():
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise Refused(400, f"invalid {name} {raw!r}: want a whole number >= 1")
        numbers[name] = int(raw)
    if "period" in numbers and "rate" not in numbers and not state.pinned_rate:
        raise Refused(400, "period applies to a rate: pin rate with it")
    if "parallelism" in numbers:
        state.parallelism, state.pinned_parallelism = numbers["parallelism"], True
    if "rate" in numbers or "period" in numbers:
        state.rate = numbers.get("rate", state.rate)
        state.period_s = numbers.get("period", state.period_s)
        state.pinned_rate = True


def _unpin(state: FlowKey, params: dict[str, str]) -> None:
    unknown = sorted(set(params) - {"parallelism", "rate"})
    bad = [f"{k}={v!r}" for k, v in params.items() if v not in ("true", "false")]
    if unknown or bad or not params:
        raise Refused(400, "unpin takes parallelism=true and/or rate=true")
    given: FlowLimits = state.given
    if params.get("parallelism") == "true":
        state.pinned_parallelism = False
        state.parallelism = given.parallelism
    if params.get("rate") == "true":
        state.pinned_rate = False
        state.rate, state.period_s = given.rate, given.period_s
