"""The filters QStash's bulk and list endpoints take, read from the query string and the
JSON body alike: ``DELETE /v2/messages`` today, the DLQ and the logs after it.

QStash's rule (its OpenAPI): a record matches when, for every filter given, its value is
one of that filter's values: values of one key are OR'ed (``label=a&label=b``, or
``label=a,b``), keys are AND'ed; ``fromDate``/``toDate`` bound the creation time (unix
ms, inclusive). Ids named outright (``messageIds``) win over every filter.

A key the endpoint does not know is refused, never skipped: an endpoint that cancels
"everything" when nothing narrows it must not take a filter it cannot read for no filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pytest_qstash_tasks._core.exchange import ascii_int

__all__ = ["FilterError", "Filters", "Selection", "read_selection"]


class FilterError(ValueError):
    """A filter the endpoint cannot read; the text says which and why."""


@dataclass(frozen=True)
class Filters:
    """Values each key must match (one of), and the creation-time bounds."""

    values: Mapping[str, frozenset[str]]
    from_date: int | None = None
    to_date: int | None = None

    def __bool__(self) -> bool:
        return bool(self.values) or self.from_date is not None or self.to_date is not None

    def matches(self, fields: Mapping[str, str | None], created_at: int) -> bool:
        """Whether a record with these ``fields`` (a key the record lacks is ``None``,
        matching no value) and creation time passes every filter."""
        if self.from_date is not None and created_at < self.from_date:
            return False
        if self.to_date is not None and created_at > self.to_date:
            return False
        return all(fields.get(key) in accepted for key, accepted in self.values.items())


@dataclass(frozen=True)
class Selection:
    """What a bulk request names: ids outright (``None``: it names none), else filters."""

    ids: tuple[str, ...] | None
    filters: Filters


def read_selection(
    query: str,
    body: object,
    *,
    id_key: str,
    keys: Iterable[str],
    aliases: Mapping[str, str] | None = None,
    ignored: Iterable[str] = ("count", "cursor"),
) -> Selection:
    """The ids and filters of a bulk request, from its raw ``query`` and its parsed JSON
    ``body`` (``None`` for no body). ``keys`` are the filters the endpoint knows,
    ``aliases`` old spellings of them, ``ignored`` keys it accepts and does not act on
    (``count``, a positive integer, and ``cursor``). Raises ``FilterError``."""
    known, renamed = frozenset(keys), dict(aliases or {})
    skipped = frozenset(ignored)
    pairs = [(key, [value]) for key, value in parse_qsl(query, keep_blank_values=True)]
    if body is not None:
        if not isinstance(body, dict):
            raise FilterError(f"the body must be a JSON object of {id_key} or filters")
        for key, value in body.items():
            if key == id_key and not isinstance(value, list):
                raise FilterError(f"{id_key} must be an array of strings, got {value!r}")
            pairs.append((key, _body_values(key, value)))
    ids: list[str] | None = None
    values: dict[str, set[str]] = {}
    dates: dict[str, int] = {}
    for key, raw_values in pairs:
        key = renamed.get(key, key)
        if key in skipped:
            if key == "count" and any(_positive(v) is None for v in raw_values):
                raise FilterError(f"count must be a positive integer, got {raw_values[0]!r}")
            continue
        if key in ("fromDate", "toDate"):
            if key in dates:
                raise FilterError(f"{key} must be one unix time in milliseconds, given twice")
            dates[key] = _date(key, raw_values)
            continue
        if key != id_key and key not in known:
            expected = ", ".join(sorted({id_key, "fromDate", "toDate", *known}))
            raise FilterError(f"unknown filter {key!r}: this endpoint takes {expected}")
        split = [part for raw in raw_values for part in raw.split(",")]
        if any(not part for part in split):
            raise FilterError(f"{key} has an empty value: name at least one, or leave it out")
        if key == id_key:
            ids = [*(ids or []), *split]
        else:
            values.setdefault(key, set()).update(split)
    filters = Filters(
        {key: frozenset(accepted) for key, accepted in values.items()},
        dates.get("fromDate"),
        dates.get("toDate"),
    )
    return Selection(None if not ids else tuple(dict.fromkeys(ids)), filters)


def _body_values(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return [str(value)]  # dates and count, as numbers
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise FilterError(
        f"{key} must be a string, an array of strings or a whole number, got {value!r}"
    )


def _positive(raw: str) -> int | None:
    number = ascii_int(raw)
    return number if number else None


def _date(key: str, raw_values: list[str]) -> int:
    value = ascii_int(raw_values[0]) if len(raw_values) == 1 else None
    if value is None:
        raise FilterError(f"{key} must be one unix time in milliseconds, got {raw_values!r}")
    return value
