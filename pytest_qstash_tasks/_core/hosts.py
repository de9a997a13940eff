"""The real QStash's hosts: where a test must never send a request.

QStash answers on ``qstash.upstash.io`` (the SDKs' default, in the EU region) and on
one host per region, ``qstash-<region>.upstash.io`` (``qstash-eu-central-1``,
``qstash-us-east-1``). A fake that is active answers its own base URL; a request to
any of these other hosts is a client the test forgot to point at the fake.
"""

from __future__ import annotations

__all__ = ["is_real_qstash_host", "real_host_message"]

_DOMAIN = ".upstash.io"


def is_real_qstash_host(host: str) -> bool:
    """Whether ``host`` is one of the real QStash's hosts (any region)."""
    name = host.lower().rstrip(".")
    if not name.endswith(_DOMAIN):
        return False
    label = name[: -len(_DOMAIN)]
    return label == "qstash" or (label.startswith("qstash-") and "." not in label)


def real_host_message(what: str, host: str, base_url: str, switch_off: str) -> str:
    """What a request (``what``: ``GET <url>``, or ``a connection to <host>``) to the
    real QStash is told, and what the test reports; ``switch_off`` says how to turn the
    guard off."""
    return (
        f"{what} was stopped before it reached the real QStash ({host}): "
        f"while this test's fake is active it answers at {base_url}, not at {host}. "
        "Point the client at the fake: create it after the fixture starts with "
        f"QSTASH_URL={base_url} set (the official SDK reads QSTASH_URL when the client "
        "is created), or pass the fake's base_url (QStash(token, base_url=...)). "
        f"(To let such requests through, use {switch_off}.)"
    )
