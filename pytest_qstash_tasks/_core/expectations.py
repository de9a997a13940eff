"""What a test says it expects to go wrong: requests the fake is meant not to serve,
each checked at teardown (an expected miss that never happened is reported too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

from .args import check_message_id
from .endpoint import UnservedReason

if TYPE_CHECKING:
    from .calls import RecordedCall

__all__ = ["CallList", "ExpectedMiss", "check_reason"]

_REASONS: tuple[str, ...] = get_args(UnservedReason)


def check_reason(reason: object) -> UnservedReason:
    """``reason``, or a clear error naming the reasons there are."""
    if reason not in _REASONS:
        raise ValueError(f"expect_unserved() takes one of {', '.join(_REASONS)}; got {reason!r}")
    return reason  # type: ignore[return-value]


@dataclass
class ExpectedMiss:
    """Requests for ``reason`` (and ``message_id``, if given) are meant to go unserved."""

    reason: UnservedReason
    message_id: str | None = None

    @classmethod
    def checked(cls, reason: object, message_id: object) -> ExpectedMiss:
        if message_id is not None:
            check_message_id(message_id)
        return cls(check_reason(reason), message_id)  # type: ignore[arg-type]

    def covers(self, call: RecordedCall) -> bool:
        """Whether ``call`` is one of the misses this expects."""
        return call.unserved_reason == self.reason and (
            self.message_id is None or call.message_id == self.message_id
        )

    def describe(self) -> str:
        """``expect_unserved('unknown_message', message_id='m')``."""
        target = "" if self.message_id is None else f", message_id={self.message_id!r}"
        return f"expect_unserved({self.reason!r}{target})"


class CallList(list["RecordedCall"]):
    """The recorded calls: a copy, so changing it changes nothing; it says so."""

    def _refuse(self, *_: object, **__: object) -> None:
        raise TypeError(
            "calls is a copy of the recorded calls: changing it changes nothing in the "
            "fake; reset() forgets every call (and everything else)"
        )

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse  # type: ignore[assignment]
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]
