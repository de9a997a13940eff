"""``ANY`` and the argument checks every public function shares: one helper per check,
so the same mistake gets the same words wherever it is made."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Literal, TypeAlias

__all__ = [
    "ANY",
    "AnyCursor",
    "CursorFilter",
    "check_cursor_filter",
    "check_end_cursor",
    "check_headers",
    "check_int",
    "check_message_id",
    "check_optional_str",
    "check_seconds",
    "check_token",
    "as_seconds",
]


class AnyCursor(enum.Enum):
    """The type of ``ANY``: a filter that matches every cursor, none included."""

    ANY = "ANY"

    def __repr__(self) -> str:
        return "ANY"

    __str__ = __repr__


ANY = AnyCursor.ANY
"""A cursor filter that matches any cursor, the first page's (no cursor) included: the
default of ``cursor=`` in ``get_calls``, ``assert_called`` and the fault methods."""

#: A cursor filter: a cursor, ``None`` (the first page, sent without one) or ``ANY``.
CursorFilter: TypeAlias = "int | AnyCursor | None"


def check_int(name: str, value: object, minimum: int = 0) -> int:
    """``value`` as an int ``>= minimum``, or a ``ValueError`` naming ``name``.

    ``True`` and ``False`` are refused: a flag is never a count.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def as_seconds(value: object) -> float | None:
    """``value`` as a float if it is a finite number of seconds ``>= 0`` (not a bool),
    else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def check_seconds(name: str, value: object) -> float:
    """A finite number of seconds ``>= 0``."""
    seconds = as_seconds(value)
    if seconds is None:
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return seconds


def check_end_cursor(value: object) -> Literal[0] | None:
    """``0`` or ``None`` (the last page leaves the field out)."""
    if value is None or (value == 0 and type(value) is int):
        return value
    raise ValueError(f"end_cursor must be 0 or None (leave the field out), got {value!r}")


def check_token(value: object) -> str | None:
    """A bearer token (non-empty, no spaces) or ``None`` (any non-empty token is accepted)."""
    if value is None or (isinstance(value, str) and value and " " not in value):
        return value
    raise ValueError(f"token must be a non-empty str without spaces, or None; got {value!r}")


def check_message_id(value: object, name: str = "message_id") -> str:
    """A message id as it can appear in the path: non-empty, no ``/``."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    if "/" in value:
        raise ValueError(f"{name} cannot contain '/': {value!r}")
    return value


def check_optional_str(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {value!r}")
    return value


def check_headers(headers: object) -> tuple[tuple[str, str], ...]:
    """Extra response headers: a dict of str to str, or ``None``."""
    if headers is None:
        return ()
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise TypeError(f"headers must be a dict of str to str, got {headers!r}")
    return tuple(headers.items())


def check_cursor_filter(value: object) -> int | AnyCursor | None:
    """A cursor filter: an int >= 0, ``None`` (the first page) or ``ANY``."""
    if value is ANY or value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"cursor must be an int >= 0, None (the first page) or ANY, got {value!r}")
    return value
