"""``qstash_tasks.url_groups``: the URL groups the fake holds, read and changed as the
SDK's ``client.url_group`` does (``list``, ``get``, ``upsert_endpoints``,
``remove_endpoints``, ``delete``), and asserted on (``assert_endpoints``). The groups
are the ones the HTTP API serves: a group the code under test made is here, and one made
here is what the code under test publishes to."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_qstash_tasks._core.api.refusals import NAME_RE, url_problem
from pytest_qstash_tasks._core.engine.clock import Clock
from pytest_qstash_tasks._core.state.outbox import Outbox, UrlGroupState

__all__ = ["UrlGroup", "UrlGroupEndpoint", "UrlGroups"]

#: An endpoint as ``upsert_endpoints`` and ``remove_endpoints`` take it: a URL, or the
#: SDK's shape, ``{"url": ..., "name": ...}`` (either key alone, to remove).
EndpointSpec = str | Mapping[str, str]


@dataclass(frozen=True)
class UrlGroupEndpoint:
    """One endpoint of a URL group: its ``url`` and, if it was given one, its ``name``."""

    url: str
    name: str | None = None


@dataclass(frozen=True)
class UrlGroup:
    """A URL group as the fake holds it at one moment: its ``name``, its ``endpoints`` in
    the order added, and when it was created and last changed (the fake clock's unix ms)."""

    name: str
    endpoints: tuple[UrlGroupEndpoint, ...]
    created_at: int
    updated_at: int

    @property
    def urls(self) -> list[str]:
        """The endpoints' URLs, in order."""
        return [endpoint.url for endpoint in self.endpoints]


class UrlGroups:
    """The URL groups the fake holds: ``qstash_tasks.url_groups``.

    Shaped like the SDK's ``client.url_group``: ``list()``, ``get(name)``,
    ``upsert_endpoints(name, endpoints)``, ``remove_endpoints(name, endpoints)``,
    ``delete(name)``. An endpoint is a URL, or ``{"url": ..., "name": ...}`` as the SDK
    takes it. What is read is a copy: it does not change as the fake does.
    """

    def __init__(self, outbox: Outbox, clock: Clock, lock: threading.Lock) -> None:
        self._outbox = outbox
        self._clock = clock
        self._lock = lock

    def __repr__(self) -> str:
        return f"<UrlGroups {', '.join(repr(g.name) for g in self.list()) or 'none'}>"

    def list(self) -> list[UrlGroup]:
        """Every URL group, in the order made."""
        with self._lock:
            return [_snapshot(group) for group in self._outbox.url_groups.values()]

    def get(self, name: str) -> UrlGroup:
        """The URL group ``name``; ``KeyError`` naming the groups there are if none is."""
        with self._lock:
            return _snapshot(self._group(name))

    def upsert_endpoints(self, url_group: str, endpoints: Sequence[EndpointSpec]) -> UrlGroup:
        """Add endpoints to ``url_group``, making the group if need be; an endpoint with
        the URL or the name of one already there replaces it (as QStash does)."""
        _check_name(url_group)
        checked = [_endpoint(spec, adding=True) for spec in _non_empty(endpoints)]
        with self._lock:
            now = self._clock.now
            group = self._outbox.url_groups.get(url_group)
            if group is None:
                group = self._outbox.url_groups[url_group] = UrlGroupState(url_group, now, now)
            for url, name in checked:
                assert url is not None  # _endpoint requires one to add
                group.upsert(url, name, now)
            return _snapshot(group)

    def remove_endpoints(self, url_group: str, endpoints: Sequence[EndpointSpec]) -> None:
        """Remove the endpoints with these URLs or names; a group left with none is
        deleted, as QStash deletes it."""
        checked = [_endpoint(spec, adding=False) for spec in _non_empty(endpoints)]
        with self._lock:
            group = self._group(url_group)
            for url, name in checked:
                group.remove(url, name, self._clock.now)
            if not group.endpoints:
                del self._outbox.url_groups[url_group]

    def delete(self, url_group: str) -> None:
        """Delete the URL group ``url_group`` (``KeyError`` if there is none)."""
        with self._lock:
            self._group(url_group)
            del self._outbox.url_groups[url_group]

    def assert_endpoints(self, url_group: str, urls: Sequence[str]) -> UrlGroup:
        """Assert that ``url_group`` exists with exactly the endpoints ``urls`` (in any
        order); returns it. The failure lists every group the fake holds."""
        groups = self.list()
        found = next((group for group in groups if group.name == url_group), None)
        if found is not None and sorted(found.urls) == sorted(urls):
            return found
        held = "\n".join(f"  - {group.name}: {', '.join(group.urls)}" for group in groups)
        seen = (
            f"the fake holds {len(groups)} URL group(s):\n{held}"
            if groups
            else ("the fake holds no URL group")
        )
        raise AssertionError(
            f"expected URL group {url_group!r} with endpoints {sorted(urls)!r}; {seen}"
        )

    def _group(self, name: str) -> UrlGroupState:
        group = self._outbox.url_groups.get(name)
        if group is None:
            known = ", ".join(repr(n) for n in self._outbox.url_groups) or "none"
            raise KeyError(f"no URL group {name!r} (URL groups: {known})")
        return group


def _snapshot(group: UrlGroupState) -> UrlGroup:
    endpoints = tuple(UrlGroupEndpoint(url, name) for url, name in group.endpoints)
    return UrlGroup(group.name, endpoints, group.created_at, group.updated_at)


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValueError(
            f"a URL group's name is 1-256 letters, digits, '.', '_' or '-', got {name!r}"
        )


def _non_empty(endpoints: Sequence[EndpointSpec]) -> Sequence[EndpointSpec]:
    if isinstance(endpoints, (str, Mapping)) or not endpoints:
        raise ValueError(
            "endpoints is a non-empty list of URLs or {'url': ..., 'name': ...}, got "
            f"{endpoints!r}"
        )
    return endpoints


def _endpoint(spec: object, *, adding: bool) -> tuple[str | None, str | None]:
    url: object
    name: object
    if isinstance(spec, str):
        url, name = spec, None
    elif isinstance(spec, Mapping) and set(spec) <= {"url", "name"}:
        url, name = spec.get("url"), spec.get("name")
    else:
        raise ValueError(f"an endpoint is a URL or {{'url': ..., 'name': ...}}, got {spec!r}")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"an endpoint's name is a str, got {name!r}")
    if url is None and (adding or name is None):
        raise ValueError(f"an endpoint needs a url{'' if adding else ' or a name'}: {spec!r}")
    if url is not None:
        problem = url_problem(url) if isinstance(url, str) else "want a str"
        if problem is not None:
            raise ValueError(f"invalid endpoint url {url!r}: {problem}")
    return url, name
