"""``qstash_tasks.signing_keys``: the keys the fake signs deliveries with (qstash-py's
``client.signing_key``), to rotate them and to sign a request the test builds. The fake
reaches the same flat: ``current_signing_key``, ``next_signing_key``, ``sign``,
``rotate_signing_keys``."""

from __future__ import annotations

import threading

from pytest_qstash_tasks._core.engine.signing import KeyRing, sign

__all__ = ["SigningKeys"]


class SigningKeys:
    """The signing keys: ``qstash_tasks.signing_keys``."""

    def __init__(self, ring: KeyRing, lock: threading.Lock) -> None:
        self._keys = ring
        self._lock = lock

    @property
    def current(self) -> str:
        """The key deliveries are signed with now (``QSTASH_CURRENT_SIGNING_KEY``)."""
        return self._keys.current

    @property
    def next(self) -> str:
        """The key that becomes current at the next rotation (``QSTASH_NEXT_SIGNING_KEY``)."""
        return self._keys.next

    def sign(self, body: bytes | str, url: str) -> str:
        """A valid ``Upstash-Signature`` for a delivery of ``body`` to ``url``, signed
        with the current key: for a request to a receiver that the test builds itself.
        Its times come from ``time.time()``, as a verifier expects."""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes):
            raise TypeError(f"sign() takes the body as bytes or str, got {type(body).__name__}")
        if not isinstance(url, str) or not url:
            raise ValueError(f"sign() takes the destination URL, got {url!r}")
        return sign(self._keys.current, body, url)

    def rotate(self) -> None:
        """Rotate the keys as Upstash's console does: the next key becomes the current
        one and a new next key is made. Receivers that know the old next key still
        verify (they try the next key when the current one fails)."""
        with self._lock:
            self._keys.rotate()
