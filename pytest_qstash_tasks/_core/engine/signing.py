"""``Upstash-Signature``: the JWT QStash signs each delivery with, and the signing keys.

The token is HS256 over the *current signing key* (the key string itself is the HMAC
secret), with QStash's claims: ``iss`` ``"Upstash"``, ``sub`` the destination URL,
``iat`` and ``nbf`` now, ``exp`` five minutes on, ``jti`` a unique id and ``body`` the
base64url SHA-256 of the raw body. The official SDK's ``Receiver`` verifies it with
PyJWT; nothing here needs PyJWT.

The claim times come from ``time.time()``, not from the fake's clock: a verifier checks
``exp`` and ``nbf`` against ``time.time()``, which the real clock, time-machine and
freezegun all move, so a signature is valid whenever the receiver reads it.
"""

from __future__ import annotations

import base64
import itertools
import json
import time

from pytest_qstash_tasks._core.ids import BASE58

__all__ = ["DEFAULT_CURRENT_SIGNING_KEY", "DEFAULT_NEXT_SIGNING_KEY", "KeyRing", "sign"]

#: How long a signature stays valid (s), as QStash signs.
_VALID_S = 300
_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
_serial = itertools.count(1)


def derived_key(source: str) -> str:
    """A ``sig_`` + 28 base58 key, the same for the same ``source`` on every run."""
    import hashlib  # on first use: the standalone command starts without it

    digest = hashlib.sha256(source.encode()).digest()
    return "sig_" + "".join(BASE58[byte % len(BASE58)] for byte in digest[:28])


#: The keys every fake signs with unless given others: fixed, so a receiver configured
#: before the fake exists (an app reading ``QSTASH_CURRENT_SIGNING_KEY`` at import) works.
#: ``derived_key("pytest-qstash-tasks current signing key")`` and ``"... next ..."``,
#: written out (a test checks them) so that importing this module hashes nothing.
DEFAULT_CURRENT_SIGNING_KEY = "sig_RDQYAdJzCn3U4J8P7v3asPJRdnXB"
DEFAULT_NEXT_SIGNING_KEY = "sig_emxMME1CXkDThQayjEYRPQbDHGX5"


def check_key(name: str, key: object) -> str:
    """``key``, or a clear error: a str of at least 32 characters, without blanks."""
    if not isinstance(key, str) or not key or key.strip() != key or " " in key:
        raise ValueError(f"{name} must be a non-empty str without blanks, got {key!r}")
    if len(key.encode()) < 32:
        # PyJWT, which the official SDK's Receiver verifies with, refuses shorter HMAC
        # keys; QStash's own keys are sig_ and 28 characters.
        raise ValueError(
            f"{name} must be at least 32 bytes long, like QStash's (sig_ and 28 "
            f"characters): the SDK's Receiver (PyJWT) refuses a shorter one; got {key!r}"
        )
    return key


class KeyRing:
    """The current and next signing keys. ``rotate()`` does what rotating the keys in
    Upstash's console does: the next key becomes the current one, and a new next key
    is made (derived from the old one, so the same on every run)."""

    def __init__(self, current: str | None = None, next_: str | None = None) -> None:
        self.current = check_key(
            "current_signing_key", DEFAULT_CURRENT_SIGNING_KEY if current is None else current
        )
        self.next = check_key(
            "next_signing_key", DEFAULT_NEXT_SIGNING_KEY if next_ is None else next_
        )
        if self.current == self.next:
            raise ValueError("current_signing_key and next_signing_key must differ")
        self._initial = (self.current, self.next)

    def rotate(self) -> None:
        """The next key becomes the current one; a new next key is made."""
        self.current, self.next = self.next, derived_key(f"rotated from {self.next}")

    def restart(self) -> None:
        """Back to the keys the fake was made with (``reset()``)."""
        self.current, self.next = self._initial


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def sign(key: str, body: bytes, url: str) -> str:
    """An ``Upstash-Signature`` for a delivery of ``body`` to ``url``, signed with ``key``;
    its times from ``time.time()``."""
    import hashlib
    import hmac

    issued = int(time.time())
    claims = {
        "iss": "Upstash",
        "sub": url,
        "exp": issued + _VALID_S,
        "nbf": issued,
        "iat": issued,
        "jti": f"jwt_{next(_serial):012d}{hashlib.sha256(url.encode()).hexdigest()[:12]}",
        "body": _b64(hashlib.sha256(body).digest()).decode("ascii"),
    }
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = _HEADER + b"." + payload
    signature = _b64(hmac.new(key.encode(), signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode("ascii")
