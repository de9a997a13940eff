"""The page at ``/_fake/ui``: one static file (``ui.html``) that reads the fake's JSON
API in the browser. It holds no data, so it is served without the token; every request
it makes carries the token, as any client's would.

Its Content-Security-Policy lets only its own inline script and style run, pinned by
hash: were a message body ever put in the page as markup, no script in it would run.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources

from pytest_qstash_tasks._core.exchange import Reply

__all__ = ["page"]


@cache
def page() -> Reply:
    """The page, with its security headers."""
    html = resources.files(__package__).joinpath("ui.html").read_bytes()

    def hashes(tag: str) -> str:
        blocks = re.findall(rb"<%s>(.*?)</%s>" % (tag.encode(), tag.encode()), html, re.DOTALL)
        return " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(block).digest()).decode()}'"
            for block in blocks
        )

    policy = (
        f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    headers = (
        ("content-type", "text/html; charset=utf-8"),
        ("content-security-policy", policy),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-cache"),
    )
    return Reply("answer", 200, headers, html)
