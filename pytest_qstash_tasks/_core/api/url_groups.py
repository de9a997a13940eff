"""QStash's URL groups (``/v2/topics``): list, get and delete a group, add and remove its
endpoints. One request in, one response out; the groups live in the ``Outbox``, where
publishing finds them."""

from __future__ import annotations

import json
from urllib.parse import unquote

from pytest_qstash_tasks._core.exchange import EndpointResponse, Request
from pytest_qstash_tasks._core.state.outbox import Outbox, UrlGroupState

from .refusals import NAME_RE, Refused, allow, json_body, url_problem

__all__ = ["handle"]


def handle(
    request: Request, now: int, outbox: Outbox, token: str | None, parts: list[str]
) -> EndpointResponse:
    """Answer one request under ``/v2/topics`` (``parts``: the path after it)."""
    if not parts or parts == [""]:
        allow(request, "GET")
        groups = [group.to_json() for group in outbox.url_groups.values()]
        return EndpointResponse(200, json.dumps(groups).encode(), token=token)
    name = unquote(parts[0])
    if not NAME_RE.fullmatch(name):
        raise Refused(400, f"invalid URL group name {name!r}: use letters, digits, '.', '_', '-'")
    if len(parts) == 2 and parts[1] == "endpoints":
        allow(request, "POST", "DELETE")
        endpoints = _endpoints(request, adding=request.method == "POST")
        group = outbox.url_groups.get(name)
        if request.method == "POST":
            if group is None:
                group = outbox.url_groups[name] = UrlGroupState(name, now, now)
            for url, endpoint_name in endpoints:
                assert url is not None  # _endpoints refuses an endpoint to add without one
                group.upsert(url, endpoint_name, now)
        else:
            group = _group(outbox, name)
            for url, endpoint_name in endpoints:
                group.remove(url, endpoint_name, now)
            if not group.endpoints:  # QStash deletes a group left with no endpoint
                del outbox.url_groups[name]
        return EndpointResponse(200, b"", (), token=token)
    allow(request, "GET", "DELETE")
    group = _group(outbox, name)
    if request.method == "GET":
        return EndpointResponse(200, json.dumps(group.to_json()).encode(), token=token)
    del outbox.url_groups[name]
    return EndpointResponse(200, b"", (), token=token)


def _group(outbox: Outbox, name: str) -> UrlGroupState:
    group = outbox.url_groups.get(name)
    if group is None:
        raise Refused(404, f"URL group {name!r} not found", "unknown_url_group")
    return group


def _endpoints(request: Request, *, adding: bool) -> list[tuple[str | None, str | None]]:
    body = json_body(request)
    endpoints = body.get("endpoints") if isinstance(body, dict) else None
    if not isinstance(endpoints, list) or not endpoints:
        raise Refused(400, 'want {"endpoints": [{"url": ..., "name": ...}, ...]}')
    checked = []
    for endpoint in endpoints:
        url = endpoint.get("url") if isinstance(endpoint, dict) else None
        name = endpoint.get("name") if isinstance(endpoint, dict) else None
        if name is not None and not isinstance(name, str):
            raise Refused(400, f"an endpoint's name must be a string, got {name!r}")
        if url is None and (adding or name is None):
            raise Refused(400, "each endpoint needs a url" + ("" if adding else " or a name"))
        if url is not None and (not isinstance(url, str) or url_problem(url) is not None):
            problem = url_problem(url) if isinstance(url, str) else "want an http(s) URL"
            raise Refused(400, f"invalid endpoint url {url!r}: {problem}")
        checked.append((url, name))
    return checked
